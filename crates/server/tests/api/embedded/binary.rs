//! The real `invitegate` binary: a fresh start greets the operator, SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::{ServerProcess, start_server};
use std::time::Duration;

#[tokio::test]
async fn serve_greets_a_new_operator_and_stops_gracefully_on_sigterm() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("nested").join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_invitegate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("INVITEGATE_DATA_DIR", &data_dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (mut address, mut greeted, mut line) = (None, false, String::new());
    while address.is_none() || !greeted {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "invitegate exited early");
        if let Some(rest) = line.split("address=").nth(1) {
            address = rest.split_whitespace().next().map(str::to_owned);
        }
        greeted |= line.contains("invite create you@example.com");
    }
    let address = address.unwrap();
    let health = reqwest::get(format!("http://{address}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    for file in ["invitegate.sqlite3", "code-hmac.key", "jwt-signing-key.pk8"] {
        assert!(data_dir.join(file).exists(), "{file} created on first start");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&data_dir).unwrap().permissions().mode() & 0o777, 0o700, "data dir is private");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "did not stop within 10 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

/// Starts the binary with `ulimit -n` lowered to `descriptors`; returns it and its address.
fn serve_with_descriptor_limit(data_dir: &std::path::Path, descriptors: u32, extra: &str) -> (ServerProcess, String) {
    let script = format!("ulimit -n {descriptors} && exec \"$0\" serve --listen 127.0.0.1:0 {extra}");
    let mut command = Command::new("sh");
    command.args(["-c", &script, env!("CARGO_BIN_EXE_invitegate")]).env("INVITEGATE_DATA_DIR", data_dir);
    start_server(command)
}

/// A connection from 127.0.0.2 that sends half a request's headers and stops.
async fn slow_header_connection(address: &str) -> Option<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind("127.0.0.2:0".parse().unwrap()).ok()?;
    let mut stream = socket.connect(address.parse().unwrap()).await.ok()?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: flood\r\n").await.ok()?;
    Some(stream)
}

/// Whether the server has closed this connection (EOF or reset) within `within`.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // an error response before closing is fine
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_slow_header_flood_beyond_the_descriptor_limit_leaves_others_served() {
    let data_dir = tempfile::tempdir().unwrap();
    let (_server, address) = serve_with_descriptor_limit(data_dir.path(), 256, "--header-read-timeout-secs 3");
    // More half-open connections from one host than the process has descriptors.
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Some(stream) = slow_header_connection(&address).await {
            flood.push(stream);
        }
    }
    assert!(flood.len() >= 250, "the flood connected {} times", flood.len());
    // Another client is still served at once.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let health = client.get(format!("http://{address}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Those beyond the per-client bound were closed at once; the rest close at the header timeout.
    let mut closed_early = 0;
    for stream in flood.iter_mut().rev().take(50) {
        closed_early += usize::from(closed_by_server(stream, Duration::from_millis(200)).await);
    }
    assert!(closed_early > 0, "connections beyond the bound are shed at once");
    let mut first = flood.remove(0);
    assert!(closed_by_server(&mut first, Duration::from_secs(6)).await, "slow headers time out");
}

#[tokio::test]
async fn idle_kept_alive_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data_dir = tempfile::tempdir().unwrap();
    let (_server, address) = serve_with_descriptor_limit(data_dir.path(), 1024, "--header-read-timeout-secs 2");
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: idle\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    // Kept alive, then idle: closed within the header-read timeout (plus slack).
    assert!(closed_by_server(&mut stream, Duration::from_secs(5)).await, "an idle connection stays open");
}

/// On first start the embedded service makes its admin token: a 0600 file in
/// the data dir, never logged, that opens `/admin` and nothing else does.
#[tokio::test]
async fn the_admin_token_is_made_on_first_start_in_a_private_file() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_invitegate"));
    command.args(["serve", "--listen", "127.0.0.1:0"]).env("INVITEGATE_DATA_DIR", data_dir.path());
    let (server, address) = start_server(command);
    let file = data_dir.path().join(backend_embedded::ADMIN_TOKEN_FILE);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(token.len() >= 40, "256 random bits");
    let client = reqwest::Client::new();
    let users = client.get(format!("http://{address}/admin/users")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(users.status(), 200);
    let wrong = client.get(format!("http://{address}/admin/users")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    drop(server);
    // The next start uses the same token.
    let mut command = Command::new(env!("CARGO_BIN_EXE_invitegate"));
    command.args(["serve", "--listen", "127.0.0.1:0"]).env("INVITEGATE_DATA_DIR", data_dir.path());
    let (_server, address) = start_server(command);
    let users = client.get(format!("http://{address}/admin/users")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(users.status(), 200);
}
