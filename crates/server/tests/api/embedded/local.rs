//! Behaviour of the embedded backend itself: its outbox, its own confirmation codes.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn confirmation_codes_expire_and_are_attempt_limited() {
    let app = spawn_app_with(|c| c.service.policy = domain::SignUpPolicy::Open).await;
    expect_json(
        app.post("/sign_up", json!({ "email": "wes@example.com", "password": PASSWORD })).await,
        StatusCode::OK,
    )
    .await;
    let code = app.confirmation_code("wes@example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let bad = app.post("/confirm_sign_up", json!({ "email": "wes@example.com", "code": wrong })).await;
        expect_error(bad, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;
    }
    // Five wrong guesses spend the code, even the right one no longer works.
    let right = app.post("/confirm_sign_up", json!({ "email": "wes@example.com", "code": code })).await;
    expect_error(right, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;

    expect_json(app.post("/resend_confirmation", json!({ "email": "wes@example.com" })).await, StatusCode::OK).await;
    let code = app.confirmation_code("wes@example.com").await;
    app.clock.advance(time::Duration::hours(25));
    let late = app.post("/confirm_sign_up", json!({ "email": "wes@example.com", "code": code })).await;
    expect_error(late, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;
}

#[tokio::test]
async fn unexpected_failures_are_internal_without_detail_and_lose_nothing() {
    let app = spawn_app().await;
    let (_, token) = app.signed_in_user("grace@example.com").await;
    // Break the outbox: the invitation email cannot be written.
    let outbox = app.data_dir.path().join("outbox");
    std::fs::remove_dir_all(&outbox).unwrap();
    std::fs::write(&outbox, "not a directory").unwrap();
    let response = app.post_auth("/invitations", &token, json!({ "email": "heidi@example.com" })).await;
    let body = expect_error(response, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    assert_eq!(body, json!({ "error": "Internal error", "code": "internal" }));
    // The quota was given back and the email can be invited again once mail works.
    let me = expect_json(app.get_auth("/me", &token).await, StatusCode::OK).await;
    assert_eq!(me["invitesRemaining"], 5);
    std::fs::remove_file(&outbox).unwrap();
    std::fs::create_dir(&outbox).unwrap();
    let retry = app.post_auth("/invitations", &token, json!({ "email": "heidi@example.com" })).await;
    expect_json(retry, StatusCode::CREATED).await;
}

#[tokio::test]
async fn outbox_messages_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let app = spawn_app().await;
    app.operator_invite("perm@example.com").await;
    let outbox = app.data_dir.path().join("outbox");
    assert_eq!(std::fs::metadata(&outbox).unwrap().permissions().mode() & 0o777, 0o700);
    for message in backend_embedded::outbox_messages(app.data_dir.path()).unwrap() {
        assert_eq!(std::fs::metadata(&message).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

/// Refresh tokens do not pile up: a signed-out one is gone at once, an
/// expired one at the next purge, and a live one stays.
#[tokio::test]
async fn signed_out_and_expired_refresh_tokens_are_deleted() {
    let app = spawn_app().await;
    let count = || {
        let db = rusqlite::Connection::open(app.data_dir.path().join("invitegate.sqlite3")).unwrap();
        db.query_row("SELECT count(*) FROM refresh_tokens", [], |row| row.get::<_, i64>(0)).unwrap()
    };
    app.invited_user("rotating@example.com").await;
    let first = app.sign_in("rotating@example.com", PASSWORD).await["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(count(), 1);
    let signed_out = app.post("/sign_out", json!({ "refreshToken": first })).await;
    assert_eq!(signed_out.status(), StatusCode::OK);
    assert_eq!(count(), 0, "signing out deletes the token");

    app.sign_in("rotating@example.com", PASSWORD).await;
    app.clock.advance(time::Duration::days(29));
    let live = app.sign_in("rotating@example.com", PASSWORD).await["refreshToken"].as_str().unwrap().to_owned();
    app.clock.advance(time::Duration::days(2));
    assert_eq!(app.service.purge_expired().await.unwrap(), 1, "only the 31-day-old token");
    assert_eq!(count(), 1);
    let refreshed = app.post("/refresh", json!({ "refreshToken": live })).await;
    assert_eq!(refreshed.status(), StatusCode::OK, "the live token still works");
}

/// The embedded pool's own recovery codes: they last an hour and allow five
/// wrong tries, after which even the right code is refused.
#[tokio::test]
async fn recovery_codes_expire_after_an_hour_and_are_used_up_by_five_wrong_tries() {
    let app = spawn_app().await;
    let email = "clockwork@example.com";
    app.invited_user(email).await;
    let code_after = |count: usize| {
        let app = &app;
        async move {
            let mail = app.wait_for_mail(email, count).await;
            mail.split_once("code is ").unwrap().1.chars().take_while(char::is_ascii_digit).collect::<String>()
        }
    };
    let reset = |code: String| {
        app.post("/confirm_forgot_password", json!({ "email": email, "code": code, "password": "N3w-password!" }))
    };

    let mails = app.mail_count(email).await;
    app.post("/forgot_password", json!({ "email": email })).await;
    let code = code_after(mails + 1).await;
    app.clock.advance(time::Duration::minutes(61));
    expect_error(reset(code).await, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;

    app.post("/forgot_password", json!({ "email": email })).await;
    let code = code_after(mails + 2).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        expect_error(reset(wrong.to_owned()).await, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;
    }
    expect_error(reset(code).await, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;
    assert_eq!(app.post("/sign_in", json!({ "email": email, "password": PASSWORD })).await.status(), StatusCode::OK);
}
