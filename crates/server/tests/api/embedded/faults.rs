//! Faults the embedded backend must survive without a 500 or a lost email.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// Another process (the CLI, say) holding SQLite's write lock: requests wait
/// for it (busy_timeout) instead of failing at once with "database is locked".
#[tokio::test]
async fn a_write_lock_held_elsewhere_delays_sign_ups_but_fails_none() {
    let app = spawn_app().await;
    app.operator_invite("locked@example.com").await;
    let code = app.access_code("locked@example.com").await;
    let db = app.data_dir.path().join("invitegate.sqlite3");
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        conn.execute_batch("COMMIT").unwrap();
    });
    held_rx.recv().unwrap();
    let started = std::time::Instant::now();
    let response = app.sign_up("locked@example.com", PASSWORD, &code).await;
    let body = expect_json(response, StatusCode::OK).await;
    assert_eq!(body["userConfirmed"], true);
    assert!(started.elapsed() >= Duration::from_millis(500), "the sign-up waited for the lock");
    holder.join().unwrap();
}

/// A path segment that is not UTF-8 is a bad request in the API's format, not plain text.
#[tokio::test]
async fn undecodable_path_segments_answer_json() {
    let app = spawn_app().await;
    let (_, token) = app.signed_in_user("paths@example.com").await;
    for (method, path) in
        [(reqwest::Method::DELETE, "/invitations/%FF"), (reqwest::Method::POST, "/invitations/%C0%AF/resend")]
    {
        let response =
            app.client.request(method, format!("{}{path}", app.base)).bearer_auth(&token).send().await.unwrap();
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

/// A full disk: the invitation email cannot be written, so the invitation is
/// revoked and the quota refunded instead of an empty file and a 201.
#[tokio::test]
#[ignore = "mounts a tmpfs, so needs root: scripts/test.sh runs it"]
async fn a_full_outbox_disk_fails_the_invitation_and_refunds_it() {
    let app = spawn_app().await;
    let (_, token) = app.signed_in_user("full@example.com").await;
    let outbox = app.data_dir.path().join("outbox");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4k,mode=0700", "tmpfs"])
        .arg(&outbox)
        .status()
        .expect("running mount");
    assert!(mounted.success(), "mounting a tmpfs on the outbox needs root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(outbox.clone());
    // Fill it: room for the file's name, none for its bytes.
    let filler = vec![b'x'; 64 * 1024];
    let _ = std::fs::write(outbox.join("filler"), &filler);

    let response = app.post_auth("/invitations", &token, json!({ "email": "nospace@example.com" })).await;
    expect_error(response, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    let me = expect_json(app.get_auth("/me", &token).await, StatusCode::OK).await;
    assert_eq!(me["invitesRemaining"], 5, "the quota was refunded");
    let latest = app.parts.store.latest_for_email(&domain::Email::parse("nospace@example.com").unwrap()).await.unwrap();
    assert_eq!(latest.unwrap().status, domain::StoredStatus::Revoked);
    let leftovers: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "filler")
        .collect();
    assert!(leftovers.is_empty(), "nothing half-written stays: {leftovers:?}");
}

/// Clients that hang up before the answer (a closed tab, a proxy timeout) must
/// not leave their attempts counted: ten abandoned *correct* sign-ins used to
/// put the email at 429.
#[tokio::test]
async fn abandoned_correct_sign_ins_are_not_counted_as_failures() {
    let app = spawn_app_with(|c| {
        let server::startup::Backend::Embedded(embedded) = &mut c.backend else { unreachable!() };
        // Real hashing cost, so the answer takes longer than the impatient client waits.
        embedded.hashing_cost = backend_embedded::HashingCost::OWASP;
    })
    .await;
    app.invited_user("quitter@example.com").await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(2)).build().unwrap();
    for _ in 0..12 {
        let sent = impatient
            .post(format!("{}/sign_in", app.base))
            .json(&json!({ "email": "quitter@example.com", "password": PASSWORD }))
            .send()
            .await;
        assert!(sent.is_err(), "the client gave up before the answer: {:?}", sent.map(|r| r.status()));
        // Attempts in flight count (a parallel burst is limited): let this one run to its end.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.sign_in("quitter@example.com", PASSWORD).await;
}

/// A validly signed access token outlives its user; the service checks the user is still there.
#[tokio::test]
async fn a_token_whose_user_is_gone_is_refused() {
    let app = spawn_app().await;
    let (sub, token) = app.signed_in_user("gone@example.com").await;
    expect_json(app.get_auth("/invitations", &token).await, StatusCode::OK).await;
    let conn = rusqlite::Connection::open(app.data_dir.path().join("invitegate.sqlite3")).unwrap();
    conn.execute("DELETE FROM refresh_tokens WHERE sub = ?1", [&sub]).unwrap();
    conn.execute("DELETE FROM users WHERE sub = ?1", [&sub]).unwrap();
    expect_error(app.get_auth("/invitations", &token).await, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let invite = app.post_auth("/invitations", &token, json!({ "email": "ghost-friend@example.com" })).await;
    expect_error(invite, StatusCode::UNAUTHORIZED, "not_authorized").await;
}

/// A data dir the operator made beforehand (0755) and the database are made private.
#[tokio::test]
async fn an_existing_data_dir_and_the_database_are_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let app = spawn_app_with(|c| {
        let server::startup::Backend::Embedded(embedded) = &mut c.backend else { unreachable!() };
        embedded.data_dir = dir.clone();
    })
    .await;
    app.operator_invite("private@example.com").await;
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    for file in ["invitegate.sqlite3", "invitegate.sqlite3-wal"] {
        let mode = std::fs::metadata(dir.join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} is {mode:o}");
    }
}

/// A resend whose email cannot go out changes nothing: the old code still works.
#[tokio::test]
async fn a_failed_resend_keeps_the_old_code() {
    let app = spawn_app().await;
    app.operator_invite("resend-fail@example.com").await;
    let old_code = app.access_code("resend-fail@example.com").await;
    let outbox = app.data_dir.path().join("outbox");
    std::fs::remove_dir_all(&outbox).unwrap();
    std::fs::write(&outbox, "not a directory").unwrap();
    let target = server::service::InvitationRef::LatestFor(domain::Email::parse("resend-fail@example.com").unwrap());
    let resent = app.service.resend(&server::service::Actor::Operator, &target).await;
    assert!(resent.is_err(), "the email could not be written");
    std::fs::remove_file(&outbox).unwrap();
    std::fs::create_dir(&outbox).unwrap();
    let body = expect_json(app.sign_up("resend-fail@example.com", PASSWORD, &old_code).await, StatusCode::OK).await;
    assert_eq!(body["userConfirmed"], true);
}
