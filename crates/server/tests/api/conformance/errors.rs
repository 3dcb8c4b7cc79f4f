//! Every error code of `/sign_up` and friends, with its status.

use reqwest::StatusCode;
use serde_json::json;

use server::service::{Actor, InvitationRef};

use crate::helpers::*;

#[tokio::test]
async fn missing_or_empty_fields_are_missing_params() {
    let app = spawn_app().await;
    let full = json!({ "email": "a@example.com", "password": PASSWORD, "accessCode": "ABCD-EFGH-JKMN-PQRS" });
    for field in ["email", "password", "accessCode"] {
        let mut body = full.clone();
        body.as_object_mut().unwrap().remove(field);
        let err = expect_error(app.post("/sign_up", body).await, StatusCode::BAD_REQUEST, "missing_params").await;
        assert_eq!(err["error"], "Missing params");
        let mut body = full.clone();
        body[field] = json!("  ");
        expect_error(app.post("/sign_up", body).await, StatusCode::BAD_REQUEST, "missing_params").await;
        let mut body = full.clone();
        body[field] = json!(null);
        expect_error(app.post("/sign_up", body).await, StatusCode::BAD_REQUEST, "missing_params").await;
    }
}

#[tokio::test]
async fn malformed_bodies_are_invalid_request() {
    let app = spawn_app().await;
    let url = format!("{}/sign_up", app.base);
    let not_json = app.client.post(&url).header("content-type", "application/json").body("{nope").send().await.unwrap();
    expect_error(not_json, StatusCode::BAD_REQUEST, "invalid_request").await;
    let wrong_type = app.client.post(&url).header("content-type", "text/plain").body("{}").send().await.unwrap();
    expect_error(wrong_type, StatusCode::BAD_REQUEST, "invalid_request").await;
    let wrong_shape = app.post("/sign_up", json!({ "email": 5, "password": PASSWORD, "accessCode": "x" })).await;
    expect_error(wrong_shape, StatusCode::BAD_REQUEST, "invalid_request").await;
    let too_big = app.post("/sign_up", json!({ "email": "a".repeat(20_000) })).await;
    expect_error(too_big, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn bad_email_and_weak_password_are_named() {
    let app = spawn_app().await;
    let code = "ABCD-EFGH-JKMN-PQRS";
    expect_error(app.sign_up("not-an-email", PASSWORD, code).await, StatusCode::BAD_REQUEST, "invalid_email").await;
    let err =
        expect_error(app.sign_up("a@example.com", "short", code).await, StatusCode::BAD_REQUEST, "invalid_password")
            .await;
    let message = err["error"].as_str().unwrap();
    for rule in ["at least 8 characters", "upper-case", "digit", "symbol"] {
        assert!(message.contains(rule), "{message} should mention {rule}");
    }
    assert!(!message.contains("lower-case"), "{message}");
}

#[tokio::test]
async fn wrong_email_or_wrong_code_get_one_answer_and_consume_nothing() {
    let app = spawn_app().await;
    app.operator_invite("carol@example.com").await;
    let code = app.access_code("carol@example.com").await;

    let wrong_code = expect_error(
        app.sign_up("carol@example.com", PASSWORD, "ZZZZ-ZZZZ-ZZZZ-ZZZZ").await,
        StatusCode::FORBIDDEN,
        "invalid_access_code",
    )
    .await;
    let wrong_email = expect_error(
        app.sign_up("dave@example.com", PASSWORD, &code).await,
        StatusCode::FORBIDDEN,
        "invalid_access_code",
    )
    .await;
    let garbage = expect_error(
        app.sign_up("carol@example.com", PASSWORD, "not a code").await,
        StatusCode::FORBIDDEN,
        "invalid_access_code",
    )
    .await;
    assert_eq!(wrong_code, wrong_email);
    assert_eq!(wrong_code, garbage);

    // None of that touched the invitation.
    expect_json(app.sign_up("carol@example.com", PASSWORD, &code).await, StatusCode::OK).await;
}

#[tokio::test]
async fn redeemed_expired_and_revoked_invitations_say_so_to_the_code_holder() {
    let app = spawn_app().await;

    app.operator_invite("once@example.com").await;
    let code = app.access_code("once@example.com").await;
    expect_json(app.sign_up("once@example.com", PASSWORD, &code).await, StatusCode::OK).await;
    expect_error(
        app.sign_up("once@example.com", "0ther-Password", &code).await,
        StatusCode::FORBIDDEN,
        "invitation_redeemed",
    )
    .await;

    app.operator_invite("late@example.com").await;
    let code = app.access_code("late@example.com").await;
    app.clock.advance(time::Duration::days(7));
    expect_error(app.sign_up("late@example.com", PASSWORD, &code).await, StatusCode::FORBIDDEN, "invitation_expired")
        .await;

    let invitation = app.operator_invite("gone@example.com").await;
    let code = app.access_code("gone@example.com").await;
    app.service.revoke(&Actor::Operator, &InvitationRef::Id(invitation.id.clone())).await.unwrap();
    expect_error(app.sign_up("gone@example.com", PASSWORD, &code).await, StatusCode::FORBIDDEN, "invitation_revoked")
        .await;
}

#[tokio::test]
async fn existing_account_is_user_exists_and_the_invitation_survives() {
    let app = spawn_app_with(|c| c.service.policy = domain::SignUpPolicy::Open).await;
    app.operator_invite("erin@example.com").await;
    let code = app.access_code("erin@example.com").await;
    // Erin signs up without the code (open mode) and confirms her address; then tries the code.
    let open = app.post("/sign_up", json!({ "email": "erin@example.com", "password": PASSWORD })).await;
    assert_eq!(expect_json(open, StatusCode::OK).await["userConfirmed"], false);
    let confirmation = app.confirmation_code("erin@example.com").await;
    let confirmed = app.post("/confirm_sign_up", json!({ "email": "erin@example.com", "code": confirmation })).await;
    expect_json(confirmed, StatusCode::OK).await;
    expect_error(app.sign_up("erin@example.com", PASSWORD, &code).await, StatusCode::CONFLICT, "user_exists").await;
    let again = app.post("/sign_up", json!({ "email": "erin@example.com", "password": PASSWORD })).await;
    expect_error(again, StatusCode::CONFLICT, "user_exists").await;
    // The failed sign-up gave the invitation back.
    let invitation =
        app.parts.store.latest_for_email(&domain::Email::parse("erin@example.com").unwrap()).await.unwrap().unwrap();
    assert_eq!(invitation.status, domain::StoredStatus::Pending);
}

#[tokio::test]
async fn an_invitation_replaces_an_unconfirmed_account_nobody_proved() {
    let app = spawn_app_with(|c| c.service.policy = domain::SignUpPolicy::Open).await;
    // Someone opens an account for Fay's address (open mode) but cannot confirm it.
    let squat = app.post("/sign_up", json!({ "email": "fay@example.com", "password": "Squatt3r-pass!" })).await;
    let squat = expect_json(squat, StatusCode::OK).await;
    // Fay can still be invited, and her code wins.
    app.operator_invite("fay@example.com").await;
    let code = app.access_code("fay@example.com").await;
    let fay = expect_json(app.sign_up("fay@example.com", PASSWORD, &code).await, StatusCode::OK).await;
    assert_eq!(fay["userConfirmed"], true);
    assert_ne!(fay["userSub"], squat["userSub"]);
    app.sign_in("fay@example.com", PASSWORD).await;
    let squatter = app.post("/sign_in", json!({ "email": "fay@example.com", "password": "Squatt3r-pass!" })).await;
    expect_error(squatter, StatusCode::UNAUTHORIZED, "not_authorized").await;
}

#[tokio::test]
async fn repeated_failures_are_too_many_attempts_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.attempt_limits.per_email = 3;
        c.attempt_limits.per_client = 6;
    })
    .await;
    app.operator_invite("frank@example.com").await;
    let code = app.access_code("frank@example.com").await;
    for _ in 0..3 {
        expect_error(
            app.sign_up("frank@example.com", PASSWORD, "ZZZZ-ZZZZ-ZZZZ-ZZZZ").await,
            StatusCode::FORBIDDEN,
            "invalid_access_code",
        )
        .await;
    }
    // Now even the right code waits: the guesser cannot tell.
    let response = app.sign_up("frank@example.com", PASSWORD, &code).await;
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;

    // Per client address: spread over many emails, the same address is stopped too.
    for i in 0..3 {
        expect_error(
            app.sign_up(&format!("x{i}@example.com"), PASSWORD, "ZZZZ-ZZZZ-ZZZZ-ZZZZ").await,
            StatusCode::FORBIDDEN,
            "invalid_access_code",
        )
        .await;
    }
    expect_error(
        app.sign_up("y@example.com", PASSWORD, "ZZZZ-ZZZZ-ZZZZ-ZZZZ").await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;

    // The window passes and the right code works; the invitation was never spent.
    app.clock.advance(time::Duration::minutes(16));
    expect_json(app.sign_up("frank@example.com", PASSWORD, &code).await, StatusCode::OK).await;
}
