//! SIGKILL of `serve` in the middle of concurrent sign-ups, then a restart:
//! every acknowledged user can sign in, no invitation is redeemed without its
//! user, no user exists whose invitation is still pending, and the
//! reservations the crash left behind settle once their lease is over.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use server::clock::ManualClock;
use server::startup::{Application, Backend, EmbeddedSettings};

use crate::helpers::*;

const INVITEES: usize = 48;

fn invitegate(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_invitegate"));
    command.env("INVITEGATE_DATA_DIR", data_dir).env("NO_COLOR", "1").env("RUST_LOG", "info");
    command
}

fn serve(data_dir: &Path) -> (ServerProcess, String) {
    let mut command = invitegate(data_dir);
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    start_server(command)
}

/// Every access code in the outbox, by recipient.
fn codes_in_outbox(data_dir: &Path) -> HashMap<String, String> {
    let mut codes = HashMap::new();
    for path in backend_embedded::outbox_messages(data_dir).unwrap() {
        let mail = std::fs::read_to_string(path).unwrap();
        let to = mail.lines().find_map(|l| l.strip_prefix("To: ")).unwrap().trim().to_owned();
        let code = mail.lines().find_map(|l| l.strip_prefix("Your access code: ")).unwrap().trim().to_owned();
        codes.entry(to).or_insert(code);
    }
    codes
}

fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[tokio::test]
async fn a_killed_server_loses_no_acknowledged_user_and_spends_no_invitation_twice() {
    let data_dir = tempfile::tempdir().unwrap();
    let emails: Vec<String> = (0..INVITEES).map(|i| format!("crash{i}@example.com")).collect();
    // The operator's invitations, from the CLI.
    for email in &emails {
        let status = invitegate(data_dir.path())
            .args(["invite", "create", email])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(status.unwrap().success());
    }
    let codes = codes_in_outbox(data_dir.path());
    assert_eq!(codes.len(), INVITEES);

    // Sign-ups race while the server is killed: OWASP hashing makes each take a while.
    let (mut server, address) = serve(data_dir.path());
    let client = reqwest::Client::new();
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut requests = Vec::new();
    for email in &emails {
        let (client, email, code, address) = (client.clone(), email.clone(), codes[email].clone(), address.clone());
        let acknowledged = Arc::clone(&acknowledged);
        requests.push(tokio::spawn(async move {
            let body = json!({ "email": email, "password": PASSWORD, "accessCode": code });
            if let Ok(response) = client.post(format!("http://{address}/sign_up")).json(&body).send().await
                && response.status() == StatusCode::OK
            {
                acknowledged.lock().unwrap().push(email);
            }
        }));
    }
    // Kill it once some, not all, have been answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "no sign-up was answered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    for request in requests {
        request.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() < INVITEES, "the kill came too late to cut any sign-up");
    eprintln!("{} of {INVITEES} sign-ups acknowledged before SIGKILL", acknowledged.len());

    // Restarted, every acknowledged user signs in.
    let (restarted, address) = serve(data_dir.path());
    for email in &acknowledged {
        let body = json!({ "email": email, "password": PASSWORD });
        let response = client.post(format!("http://{address}/sign_in")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{email} was acknowledged but cannot sign in");
    }
    drop(restarted);

    // What the crash left on disk is consistent.
    let db = rusqlite::Connection::open(data_dir.path().join("invitegate.sqlite3")).unwrap();
    let orphaned = "SELECT COUNT(*) FROM invitations i WHERE status = 'redeemed' \
                    AND NOT EXISTS (SELECT 1 FROM users u WHERE u.sub = i.redeemed_by)";
    assert_eq!(count(&db, orphaned), 0, "an invitation was redeemed without its user");
    let unspent = "SELECT COUNT(*) FROM users u JOIN invitations i ON i.email = u.email \
                   WHERE i.status IN ('pending', 'reserved')";
    assert_eq!(count(&db, unspent), 0, "a user exists whose invitation is not spent");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM users"),
        count(&db, "SELECT COUNT(*) FROM invitations WHERE status = 'redeemed'")
    );
    drop(db);

    // Once the lease is over, the reservations the crash left settle, and every
    // invitee who was not acknowledged can sign up (or learns it already happened).
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let mut config = test_config(data_dir.path());
    let Backend::Embedded(EmbeddedSettings { hashing_cost, .. }) = &mut config.backend else { unreachable!() };
    *hashing_cost = backend_embedded::HashingCost::OWASP;
    let app = Application::build(config, Arc::new(clock.clone())).await.unwrap();
    let service = app.service().clone();
    let base = format!("http://{}", app.address());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    clock.advance(domain::invitation::RESERVATION_LEASE + time::Duration::seconds(1));
    for email in emails.iter().filter(|e| !acknowledged.contains(e)) {
        let body = json!({ "email": email, "password": PASSWORD, "accessCode": codes[email] });
        let response = client.post(format!("{base}/sign_up")).json(&body).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        // Answered 200 now, or 403 invitation_redeemed if the killed server had created them.
        assert!(
            status == StatusCode::OK || (status == StatusCode::FORBIDDEN && text.contains("invitation_redeemed")),
            "{email}: {status} {text}"
        );
    }
    let users = service.list_users().await.unwrap();
    assert_eq!(users.len(), INVITEES, "every invitee has exactly one account");
    let invitations = service.list_invitations(&server::service::Actor::Operator, None).await.unwrap();
    assert!(invitations.iter().all(|i| i.status == domain::InvitationStatus::Redeemed));
}
