//! Open sign-up: uninvited users confirm their email with a six-digit code.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn open_mode_users_confirm_by_emailed_code() {
    let app = spawn_app_with(|c| c.service.policy = domain::SignUpPolicy::Open).await;
    let signed_up = app.post("/sign_up", json!({ "email": "vic@example.com", "password": PASSWORD })).await;
    let signed_up = expect_json(signed_up, StatusCode::OK).await;
    assert_eq!(signed_up["userConfirmed"], false);

    let sign_in = app.post("/sign_in", json!({ "email": "vic@example.com", "password": PASSWORD })).await;
    expect_error(sign_in, StatusCode::FORBIDDEN, "user_not_confirmed").await;

    let first_code = app.confirmation_code("vic@example.com").await;
    assert_eq!(first_code.len(), 6);
    let wrong = if first_code == "000000" { "111111" } else { "000000" };
    let bad = app.post("/confirm_sign_up", json!({ "email": "vic@example.com", "code": wrong })).await;
    expect_error(bad, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;

    // Resending replaces the code.
    expect_json(app.post("/resend_confirmation", json!({ "email": "vic@example.com" })).await, StatusCode::OK).await;
    assert_eq!(app.mail_count("vic@example.com").await, 2);
    let code = app.confirmation_code("vic@example.com").await;
    if code != first_code {
        let old = app.post("/confirm_sign_up", json!({ "email": "vic@example.com", "code": first_code })).await;
        expect_error(old, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;
    }
    let ok = app.post("/confirm_sign_up", json!({ "email": "vic@example.com", "code": code })).await;
    assert_eq!(expect_json(ok, StatusCode::OK).await["userConfirmed"], true);
    let user = app.parts.pool.find_by_email(&domain::Email::parse("vic@example.com").unwrap()).await.unwrap().unwrap();
    assert_eq!(user.status, domain::UserStatus::Confirmed);
    // Cognito marks the email verified on ConfirmSignUp; the emulator does not.
    if app.backend == TestBackend::Embedded {
        assert!(user.email_verified);
    }
    let tokens = app.sign_in("vic@example.com", PASSWORD).await;
    let me = expect_json(app.get_auth("/me", tokens["accessToken"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(me["invitedBy"], serde_json::Value::Null);

    // Confirming twice, or an unknown address, is the same error; resend to them says nothing.
    let twice = app.post("/confirm_sign_up", json!({ "email": "vic@example.com", "code": code })).await;
    expect_error(twice, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;
    let unknown = app.post("/confirm_sign_up", json!({ "email": "who@example.com", "code": "123456" })).await;
    expect_error(unknown, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;
    expect_json(app.post("/resend_confirmation", json!({ "email": "who@example.com" })).await, StatusCode::OK).await;
    assert_eq!(app.mail_count("who@example.com").await, 0);
}

#[tokio::test]
async fn invited_users_are_confirmed_at_once_in_open_mode_and_uninvited_refused_in_invite_only() {
    let open = spawn_app_with(|c| c.service.policy = domain::SignUpPolicy::Open).await;
    open.operator_invite("xena@example.com").await;
    let code = open.access_code("xena@example.com").await;
    let body = expect_json(open.sign_up("xena@example.com", PASSWORD, &code).await, StatusCode::OK).await;
    assert_eq!(body["userConfirmed"], true);

    let closed = spawn_app().await;
    let no_code = closed.post("/sign_up", json!({ "email": "yan@example.com", "password": PASSWORD })).await;
    expect_error(no_code, StatusCode::BAD_REQUEST, "missing_params").await;
    assert!(closed.parts.pool.list_users().await.unwrap().is_empty());
}

/// A resend gives a new code but does not give a guesser new tries: wrong
/// codes are counted per email in a window that resends do not reset.
#[tokio::test]
async fn resending_the_code_does_not_reset_the_wrong_code_limit() {
    let app = spawn_app_with(|c| c.service.policy = domain::SignUpPolicy::Open).await;
    let email = "guessed@example.com";
    expect_json(app.post("/sign_up", json!({ "email": email, "password": PASSWORD })).await, StatusCode::OK).await;
    let code = app.confirmation_code(email).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..10 {
        let bad = app.post("/confirm_sign_up", json!({ "email": email, "code": wrong })).await;
        expect_error(bad, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;
    }
    expect_json(app.post("/resend_confirmation", json!({ "email": email })).await, StatusCode::OK).await;
    let fresh = app.confirmation_code(email).await;
    let after = app.post("/confirm_sign_up", json!({ "email": email, "code": fresh })).await;
    expect_error(after, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}
