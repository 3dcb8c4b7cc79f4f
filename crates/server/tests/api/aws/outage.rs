//! AWS going away in the middle of a sign-up saga, and coming back: the
//! service reaches the emulator through a proxy this test controls, which cuts
//! the connection at Cognito's SignUp, before the request or after it (the
//! user created, the answer lost). Once the reservation's lease lapses, the
//! invitation is neither lost nor spent twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

const PASS: u8 = 0;
const CUT_BEFORE_SIGN_UP: u8 = 1;
const CUT_AFTER_SIGN_UP: u8 = 2;

const SIGN_UP_TARGET: &[u8] = b"AWSCognitoIdentityProviderService.SignUp";

/// A TCP proxy to the emulator that, when armed, cuts the first connection
/// carrying a SignUp (then disarms itself).
struct OutageProxy {
    address: String,
    mode: Arc<AtomicU8>,
}

impl OutageProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(PASS));
        let armed = Arc::clone(&mode);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, mode) = (upstream.clone(), Arc::clone(&armed));
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, mode).await;
                    }
                });
            }
        });
        Self { address, mode }
    }

    fn arm(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

async fn relay(client: TcpStream, server: TcpStream, mode: Arc<AtomicU8>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let drop_answer = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drop_flag = Arc::clone(&drop_answer);
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            if chunk.windows(SIGN_UP_TARGET.len()).any(|w| w == SIGN_UP_TARGET) {
                match mode.swap(PASS, Ordering::SeqCst) {
                    // The request never reaches Cognito.
                    CUT_BEFORE_SIGN_UP => return,
                    // It does, but its answer will not come back.
                    CUT_AFTER_SIGN_UP => drop_flag.store(true, Ordering::SeqCst),
                    _ => {}
                }
            }
            if server_write.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if drop_answer.load(Ordering::SeqCst) {
                return;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Whichever side ends first ends the connection.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

async fn app_behind_proxy() -> (TestApp, OutageProxy) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the emulator's endpoint");
    let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let proxy = OutageProxy::start(upstream).await;
    let address = proxy.address.clone();
    assert_eq!(test_backend(), TestBackend::Aws, "this test needs the emulator: run ./scripts/test.sh");
    let app = spawn_app_with(move |c| {
        if let server::startup::Backend::Aws(aws) = &mut c.backend {
            aws.endpoint_url = Some(address.clone());
        }
    })
    .await;
    (app, proxy)
}

#[tokio::test]
#[ignore = "needs the AWS emulator: scripts/test.sh runs it"]
async fn aws_lost_before_sign_up_reaches_it_gives_the_invitation_back_after_the_lease() {
    let (app, proxy) = app_behind_proxy().await;
    let email = "outage-before@example.com";
    app.operator_invite(email).await;
    let code = app.access_code(email).await;
    proxy.arm(CUT_BEFORE_SIGN_UP);
    let cut = app.sign_up(email, PASSWORD, &code).await;
    assert!(cut.status().is_server_error(), "the saga could not finish: {}", cut.status());
    // AWS is back; the reservation holds until its lease ends…
    expect_error(app.sign_up(email, PASSWORD, &code).await, StatusCode::CONFLICT, "invitation_in_use").await;
    app.clock.advance(domain::invitation::RESERVATION_LEASE + time::Duration::seconds(1));
    // …then no user was created, so the invitation is still the invitee's.
    let body = expect_json(app.sign_up(email, PASSWORD, &code).await, StatusCode::OK).await;
    assert_eq!(body["userConfirmed"], true);
    let invitation = app.parts.store.latest_for_email(&domain::Email::parse(email).unwrap()).await.unwrap().unwrap();
    assert_eq!(invitation.status, domain::StoredStatus::Redeemed);
    assert_eq!(invitation.redeemed_by.unwrap().as_str(), body["userSub"].as_str().unwrap());
}

#[tokio::test]
#[ignore = "needs the AWS emulator: scripts/test.sh runs it"]
async fn aws_lost_after_sign_up_created_the_user_settles_the_invitation_as_theirs() {
    let (app, proxy) = app_behind_proxy().await;
    let email = "outage-after@example.com";
    app.operator_invite(email).await;
    let code = app.access_code(email).await;
    proxy.arm(CUT_AFTER_SIGN_UP);
    let cut = app.sign_up(email, PASSWORD, &code).await;
    assert!(cut.status().is_server_error(), "the answer was lost: {}", cut.status());
    app.clock.advance(domain::invitation::RESERVATION_LEASE + time::Duration::seconds(1));
    // The user Cognito created holds the invitation; it is not spent again.
    expect_error(app.sign_up(email, PASSWORD, &code).await, StatusCode::FORBIDDEN, "invitation_redeemed").await;
    let user = app.parts.pool.find_by_email(&domain::Email::parse(email).unwrap()).await.unwrap().unwrap();
    let invitation = app.parts.store.latest_for_email(&domain::Email::parse(email).unwrap()).await.unwrap().unwrap();
    assert_eq!(invitation.status, domain::StoredStatus::Redeemed);
    assert_eq!(invitation.redeemed_by.unwrap(), user.sub);
    app.sign_in(email, PASSWORD).await;
}
