//! The account's lifecycle after sign-up: recovery, password change, sign-out
//! everywhere, deletion.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const NEW_PASSWORD: &str = "N3w-password!";

/// The six digits after "code is " in the newest email to `to`, once `count` arrived.
async fn recovery_code(app: &TestApp, to: &str, count: usize) -> String {
    let mail = app.wait_for_mail(to, count).await;
    let after = mail.split_once("code is ").expect("a recovery code").1;
    after.chars().take_while(char::is_ascii_digit).collect()
}

async fn sign_in_status(app: &TestApp, email: &str, password: &str) -> StatusCode {
    app.post("/sign_in", json!({ "email": email, "password": password })).await.status()
}

#[tokio::test]
async fn recovery_answers_the_same_for_known_and_unknown_addresses() {
    let app = spawn_app().await;
    app.invited_user("known@example.com").await;
    let mails_before = app.mail_count("known@example.com").await;
    let known = app.post("/forgot_password", json!({ "email": "known@example.com" })).await;
    let unknown = app.post("/forgot_password", json!({ "email": "nobody@example.com" })).await;
    let known: Value = expect_json(known, StatusCode::OK).await;
    let unknown: Value = expect_json(unknown, StatusCode::OK).await;
    assert_eq!(known, json!({ "sent": true }));
    assert_eq!(known, unknown, "same answer whether or not the account exists");
    app.wait_for_mail("known@example.com", mails_before + 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.mail_count("nobody@example.com").await, 0, "nothing is sent to an unknown address");

    let bad = app.post("/forgot_password", json!({ "email": "not an address" })).await;
    expect_error(bad, StatusCode::BAD_REQUEST, "invalid_email").await;
    let missing = app.post("/forgot_password", json!({})).await;
    expect_error(missing, StatusCode::BAD_REQUEST, "missing_params").await;
}

#[tokio::test]
async fn a_recovery_code_sets_a_new_password_once_and_ends_every_session() {
    let app = spawn_app().await;
    let email = "forgetful@example.com";
    app.invited_user(email).await;
    let session: Value = app.sign_in(email, PASSWORD).await;
    let (refresh, access) = (session["refreshToken"].as_str().unwrap(), session["accessToken"].as_str().unwrap());

    let mails = app.mail_count(email).await;
    expect_json(app.post("/forgot_password", json!({ "email": email })).await, StatusCode::OK).await;
    let code = recovery_code(&app, email, mails + 1).await;
    assert!(code.len() >= 6, "{code}");

    let reset = |code: &str, password: &str| {
        app.post("/confirm_forgot_password", json!({ "email": email, "code": code, "password": password }))
    };
    expect_error(reset(&code, "weak").await, StatusCode::BAD_REQUEST, "invalid_password").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    expect_error(reset(wrong, NEW_PASSWORD).await, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;
    let done: Value = expect_json(reset(&code, NEW_PASSWORD).await, StatusCode::OK).await;
    assert_eq!(done, json!({ "passwordReset": true }));
    expect_error(reset(&code, "An0ther-password!").await, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;

    assert_eq!(sign_in_status(&app, email, PASSWORD).await, StatusCode::UNAUTHORIZED, "the old password is gone");
    assert_eq!(sign_in_status(&app, email, NEW_PASSWORD).await, StatusCode::OK);
    let refreshed = app.post("/refresh", json!({ "refreshToken": refresh })).await;
    expect_error(refreshed, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let me = app.get_auth("/me", access).await;
    expect_error(me, StatusCode::UNAUTHORIZED, "not_authorized").await;
}

#[tokio::test]
async fn a_recovery_code_for_one_address_is_no_good_for_another() {
    let app = spawn_app().await;
    app.invited_user("first@example.com").await;
    app.invited_user("second@example.com").await;
    let mails = app.mail_count("first@example.com").await;
    app.post("/forgot_password", json!({ "email": "first@example.com" })).await;
    let code = recovery_code(&app, "first@example.com", mails + 1).await;
    let response = app
        .post(
            "/confirm_forgot_password",
            json!({ "email": "second@example.com", "code": code, "password": NEW_PASSWORD }),
        )
        .await;
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_confirmation_code").await;
    assert_eq!(sign_in_status(&app, "second@example.com", PASSWORD).await, StatusCode::OK);
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one() {
    let app = spawn_app().await;
    let email = "changer@example.com";
    let (_, token) = app.signed_in_user(email).await;
    let change = |previous: &str, proposed: &str| {
        app.post_auth("/change_password", &token, json!({ "previousPassword": previous, "proposedPassword": proposed }))
    };
    expect_error(change("Wr0ng-password!", NEW_PASSWORD).await, StatusCode::UNAUTHORIZED, "not_authorized").await;
    expect_error(change(PASSWORD, "weak").await, StatusCode::BAD_REQUEST, "invalid_password").await;
    let changed: Value = expect_json(change(PASSWORD, NEW_PASSWORD).await, StatusCode::OK).await;
    assert_eq!(changed, json!({ "passwordChanged": true }));
    assert_eq!(sign_in_status(&app, email, PASSWORD).await, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_status(&app, email, NEW_PASSWORD).await, StatusCode::OK);

    let anonymous =
        app.post("/change_password", json!({ "previousPassword": NEW_PASSWORD, "proposedPassword": PASSWORD }));
    expect_error(anonymous.await, StatusCode::UNAUTHORIZED, "not_authorized").await;
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_but_not_the_account() {
    let app = spawn_app().await;
    let email = "everywhere@example.com";
    app.invited_user(email).await;
    let laptop: Value = app.sign_in(email, PASSWORD).await;
    let phone: Value = app.sign_in(email, PASSWORD).await;
    let access = laptop["accessToken"].as_str().unwrap();

    let response = app.post_auth("/global_sign_out", access, json!({})).await;
    let body: Value = expect_json(response, StatusCode::OK).await;
    assert_eq!(body, json!({ "signedOut": true }));
    for session in [&laptop, &phone] {
        let refreshed = app.post("/refresh", json!({ "refreshToken": session["refreshToken"] })).await;
        expect_error(refreshed, StatusCode::UNAUTHORIZED, "not_authorized").await;
        let me = app.get_auth("/me", session["accessToken"].as_str().unwrap()).await;
        expect_error(me, StatusCode::UNAUTHORIZED, "not_authorized").await;
    }
    // Signing in again works at once, and the new token is good.
    let again: Value = app.sign_in(email, PASSWORD).await;
    let me = app.get_auth("/me", again["accessToken"].as_str().unwrap()).await;
    assert_eq!(me.status(), StatusCode::OK);
    let refreshed = app.post("/refresh", json!({ "refreshToken": again["refreshToken"] })).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_deleted_account_is_gone_its_unused_invitations_too_and_the_address_can_be_invited_again() {
    let app = spawn_app().await;
    let email = "leaving@example.com";
    let (sub, token) = app.signed_in_user(email).await;
    let invited = app.post_auth("/invitations", &token, json!({ "email": "friend@example.com" })).await;
    assert_eq!(invited.status(), StatusCode::CREATED);
    let friend_code = app.access_code("friend@example.com").await;

    let delete = |password: &str| {
        app.client.delete(format!("{}/me", app.base)).bearer_auth(&token).json(&json!({ "password": password })).send()
    };
    expect_error(delete("Wr0ng-password!").await.unwrap(), StatusCode::UNAUTHORIZED, "not_authorized").await;
    assert_eq!(sign_in_status(&app, email, PASSWORD).await, StatusCode::OK, "a wrong password deletes nothing");
    let deleted: Value = expect_json(delete(PASSWORD).await.unwrap(), StatusCode::OK).await;
    assert_eq!(deleted, json!({ "deleted": true }));

    assert_eq!(sign_in_status(&app, email, PASSWORD).await, StatusCode::UNAUTHORIZED);
    expect_error(app.get_auth("/me", &token).await, StatusCode::UNAUTHORIZED, "not_authorized").await;
    // The invitation they sent, unused, no longer works.
    let friend = app.sign_up("friend@example.com", PASSWORD, &friend_code).await;
    expect_error(friend, StatusCode::FORBIDDEN, "invitation_revoked").await;
    // Who invited whom keeps the sub: the operator's invitation to them stays redeemed by it.
    let operator = server::service::Actor::Operator;
    let invitations = app.service.list_invitations(&operator, None).await.unwrap();
    let theirs = invitations.iter().find(|i| i.email.as_str() == email).unwrap();
    assert_eq!(theirs.redeemed_by.as_ref().map(ToString::to_string), Some(sub));
    // The address is free again.
    app.operator_invite(email).await;
    let code = app.access_code(email).await;
    let back = app.sign_up(email, PASSWORD, &code).await;
    assert_eq!(back.status(), StatusCode::OK);
}

#[tokio::test]
async fn recovery_requests_are_limited_per_address() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(app.post("/forgot_password", json!({ "email": "flooded@example.com" })).await.status());
    }
    assert!(statuses[..10].iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    let limited = app.post("/forgot_password", json!({ "email": "flooded@example.com" })).await;
    assert!(limited.headers().contains_key("retry-after"));
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}
