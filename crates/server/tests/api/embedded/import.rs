//! `invitegate users import firebase` as an operator runs it: the real binary
//! killed in the middle and run again, and exports it must refuse.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::conformance::migration::{import_args, write_export};
use crate::helpers::*;
use xtask::firebase::{MEM_COST, ROUNDS, SALT_SEPARATOR, SIGNER_KEY, firebase_export, password_of};

fn import_command(data_dir: &std::path::Path, file: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_invitegate"));
    command
        .args(["--data-dir", data_dir.to_str().unwrap(), "users", "import", "firebase", file.to_str().unwrap()])
        .args(["--hash-key", SIGNER_KEY, "--salt-separator", SALT_SEPARATOR])
        .args(["--rounds", &ROUNDS.to_string(), "--mem-cost", &MEM_COST.to_string()]);
    command
}

fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |row| row.get(0)).unwrap_or(0)
}

#[tokio::test]
async fn an_import_killed_midway_is_finished_by_running_it_again() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let users = 40_000;
    let export = write_export(dir.path(), "users.json", &firebase_export("kill", users));
    let database = app.data_dir.path().join("invitegate.sqlite3");

    let mut child = import_command(app.data_dir.path(), &export)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once some batches are in, well before the end.
    let deadline = Instant::now() + Duration::from_secs(60);
    let written = loop {
        let db = rusqlite::Connection::open(&database).unwrap();
        let written = count(&db, "SELECT count(*) FROM legacy_passwords");
        if written > 0 {
            break written;
        }
        assert!(Instant::now() < deadline, "the import wrote nothing");
        assert!(child.try_wait().unwrap().is_none(), "the import ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let db = rusqlite::Connection::open(&database).unwrap();
    let before = count(&db, "SELECT count(*) FROM legacy_passwords");
    assert!(before >= written && before < users as i64, "killed midway: {before} of {users} recorded");

    let output = import_command(app.data_dir.path(), &export).output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(report.contains("rejected 0"), "{report}");
    assert_eq!(count(&db, "SELECT count(*) FROM users WHERE firebase_uid LIKE 'kill-uid-%'"), users as i64);
    assert_eq!(count(&db, "SELECT count(*) FROM legacy_passwords WHERE state = 'active'"), users as i64);
    assert_eq!(count(&db, "SELECT count(DISTINCT email) FROM users WHERE firebase_uid IS NOT NULL"), users as i64);
    let last = format!("kill{}@example.com", users - 1);
    assert_eq!(
        app.post("/sign_in", json!({ "email": last, "password": password_of(users - 1) })).await.status(),
        StatusCode::OK
    );

    // The lazy rehash, seen in the store: argon2id now, no Firebase hash left.
    let hash: String = db.query_row("SELECT password_hash FROM users WHERE email = ?1", [&last], |r| r.get(0)).unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let (state, legacy): (String, Option<Vec<u8>>) = db
        .query_row("SELECT state, hash FROM legacy_passwords WHERE email = ?1", [&last], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((state.as_str(), legacy), ("retired", None));
}

#[tokio::test]
async fn a_malformed_export_is_refused_with_nothing_written() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let database = app.data_dir.path().join("invitegate.sqlite3");
    let mut document = serde_json::to_string(&firebase_export("bad", 50)).unwrap();
    document.truncate(document.len() / 2);
    let file = dir.path().join("users.json");
    std::fs::write(&file, document).unwrap();
    let output = import_command(app.data_dir.path(), &file).output().unwrap();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("is not a JSON document from `firebase auth:export`"), "{error}");
    assert!(!error.contains(SIGNER_KEY), "{error}");
    let db = rusqlite::Connection::open(&database).unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM users"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM legacy_passwords"), 0);

    // Wrong parameters are refused before the file is read.
    let export = write_export(dir.path(), "good.json", &firebase_export("bad", 5));
    let mut args = import_args(export.clone(), false);
    args.mem_cost = 15;
    let mut out = Vec::new();
    let refused = server::cli::import_firebase(&app.service, &args, &mut out).await.unwrap_err();
    assert!(refused.to_string().contains("--mem-cost"), "{refused}");
    args = import_args(export, false);
    args.hash_algo = "BCRYPT".into();
    let refused = server::cli::import_firebase(&app.service, &args, &mut out).await.unwrap_err();
    assert!(refused.to_string().contains("only SCRYPT"), "{refused}");
    assert_eq!(count(&db, "SELECT count(*) FROM users"), 0);
}

#[tokio::test]
async fn a_csv_export_imports_the_same_way() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let document = firebase_export("csv", 3);
    let mut lines = String::new();
    for user in document["users"].as_array().unwrap() {
        let mut row = vec![String::new(); 26];
        row[0] = user["localId"].as_str().unwrap().to_owned();
        row[1] = user["email"].as_str().unwrap().to_owned();
        row[2] = user["emailVerified"].to_string();
        row[3] = user["passwordHash"].as_str().unwrap().to_owned();
        row[4] = user["salt"].as_str().unwrap().to_owned();
        row[5] = "Name, with a comma".into();
        row[23] = user["createdAt"].as_str().unwrap().to_owned();
        lines.push_str(&row.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(","));
        lines.push('\n');
    }
    let file = dir.path().join("users.csv");
    std::fs::write(&file, lines).unwrap();
    let output = import_command(app.data_dir.path(), &file).output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("Imported 3 users"), "{report}{}", String::from_utf8_lossy(&output.stderr));
    let status =
        app.post("/sign_in", json!({ "email": "csv2@example.com", "password": password_of(2) })).await.status();
    assert_eq!(status, StatusCode::OK);
}
