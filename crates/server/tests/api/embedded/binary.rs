//! The real `invitegate` binary: a fresh start greets the operator, SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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
