//! `invitegate backup` while the service takes sign-ups, then `restore` into
//! a new data dir: every user acknowledged before the backup signs in there,
//! their tokens still verify, and outstanding codes still work.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use serde_json::json;
use server::startup::Application;

use crate::helpers::*;

fn invitegate(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_invitegate"))
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "invitegate {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_every_acknowledged_user() {
    let app = spawn_app().await;
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        let email = format!("before{i}@example.com");
        app.invited_user(&email).await;
        acknowledged.push(email);
    }
    let (_, token) = app.signed_in_user("token@example.com").await;
    acknowledged.push("token@example.com".to_owned());
    app.operator_invite("outstanding@example.com").await;
    let outstanding_code = app.access_code("outstanding@example.com").await;

    // Sign-ups keep coming while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (service, client, base, stop) = (app.service.clone(), app.client.clone(), app.base.clone(), stop.clone());
        let data_dir = app.data_dir.path().to_path_buf();
        tokio::spawn(async move {
            let mut created = 0;
            while !stop.load(Ordering::Relaxed) {
                let email = format!("during{created}@example.com");
                let actor = server::service::Actor::Operator;
                service.invite(&actor, domain::Email::parse(&email).unwrap(), None).await.unwrap();
                let code = latest_code_in(&data_dir, &email);
                let response = client
                    .post(format!("{base}/sign_up"))
                    .json(&json!({ "email": email, "password": PASSWORD, "accessCode": code }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                created += 1;
            }
            created
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let archive_dir = tempfile::tempdir().unwrap();
    let archive = archive_dir.path().join("invitegate.backup");
    let source = app.data_dir.path().to_path_buf();
    let archive_path = archive.clone();
    let report = tokio::task::spawn_blocking(move || invitegate(&source, &["backup", archive_path.to_str().unwrap()]))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let during = load.await.unwrap();
    assert!(during > 0, "sign-ups ran during the backup");
    let report = String::from_utf8(report.stdout).unwrap();
    assert!(report.contains("backed up"), "{report}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777, 0o600, "the archive is private");
    assert_eq!(std::fs::read_dir(archive_dir.path()).unwrap().count(), 1, "no partial files left behind");

    // Restore into a fresh data dir and serve from it.
    let restored_dir = tempfile::tempdir().unwrap();
    let restored = restored_dir.path().join("data");
    let output = invitegate(&restored, &["restore", archive.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("restored"));
    // Restoring over existing data is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_invitegate"))
        .args(["--data-dir", restored.to_str().unwrap(), "restore", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success(), "a restore never overwrites a database");

    let mut config = test_config(&restored);
    config.public_url = Some(app.base.clone()); // the same issuer, as after a real restore
    let clock = Arc::new(app.clock.clone());
    let restored_app = Application::build(config, clock).await.unwrap();
    let base = format!("http://{}", restored_app.address());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(restored_app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    for email in &acknowledged {
        let response =
            client.post(format!("{base}/sign_in")).json(&json!({ "email": email, "password": PASSWORD })).send().await;
        assert_eq!(response.unwrap().status(), StatusCode::OK, "{email} signs in after the restore");
    }
    // The signing key came back: a token issued before the backup still works.
    let me = client.get(format!("{base}/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    // The code key came back: an invitation sent before the backup still works.
    let response = client
        .post(format!("{base}/sign_up"))
        .json(&json!({ "email": "outstanding@example.com", "password": PASSWORD, "accessCode": outstanding_code }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// The code in the newest invitation mail to `to` in a data dir's outbox.
fn latest_code_in(data_dir: &std::path::Path, to: &str) -> String {
    // Newest first.
    backend_embedded::outbox_messages(data_dir)
        .unwrap()
        .iter()
        .map(|path| decode_quoted_printable(&std::fs::read_to_string(path).unwrap()))
        .find(|mail| mail.lines().any(|l| l.eq_ignore_ascii_case(&format!("To: {to}"))))
        .and_then(|mail| mail.lines().find_map(|l| l.strip_prefix("Your access code: ")).map(|c| c.trim().to_owned()))
        .unwrap()
}
