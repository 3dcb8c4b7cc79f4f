//! Mail by SMTP, and CORS.

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::*;

/// A minimal SMTP server (RFC 5321 without extensions) that keeps what it receives.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test-smtp ready\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "DATA" => {
                            write.write_all(b"354 go ahead\r\n").await.unwrap();
                            let mut message = String::new();
                            while let Ok(Some(data)) = lines.next_line().await {
                                if data == "." {
                                    break;
                                }
                                message.push_str(&data);
                                message.push('\n');
                            }
                            store.lock().unwrap().push(message);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, received)
}

#[tokio::test]
async fn invitations_go_out_by_smtp_when_configured() {
    let (port, received) = smtp_server().await;
    let app = spawn_app_with(|c| {
        let server::startup::Backend::Embedded(embedded) = &mut c.backend else { unreachable!() };
        embedded.smtp_url = Some(domain::SecretString::new(format!("smtp://127.0.0.1:{port}")));
    })
    .await;
    app.operator_invite("smtp-user@example.com").await;
    let messages = received.lock().unwrap().clone();
    assert_eq!(messages.len(), 1);
    let message = decode_quoted_printable(&messages[0]);
    assert!(message.contains("To: smtp-user@example.com"), "{message}");
    let code = message.lines().find_map(|l| l.strip_prefix("Your access code: ")).unwrap().trim().to_owned();
    // Nothing went to the outbox, and the emailed code works.
    assert!(backend_embedded::outbox_messages(app.data_dir.path()).unwrap().is_empty());
    expect_json(app.sign_up("smtp-user@example.com", PASSWORD, &code).await, StatusCode::OK).await;
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/sign_in", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let closed = spawn_app().await;
    let response = preflight(&closed, "https://app.example").await.unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());

    let open = spawn_app_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let allowed = preflight(&open, "https://app.example").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
    let other = preflight(&open, "https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
