//! The invitation API: quotas, revoke, resend, ownership.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn quota_is_enforced_and_revoking_gives_it_back() {
    let app = spawn_app_with(|c| c.service.default_invite_quota = 2).await;
    let (_, token) = app.signed_in_user("leo@example.com").await;
    let first = expect_json(
        app.post_auth("/invitations", &token, json!({ "email": "m1@example.com" })).await,
        StatusCode::CREATED,
    )
    .await;
    expect_json(app.post_auth("/invitations", &token, json!({ "email": "m2@example.com" })).await, StatusCode::CREATED)
        .await;
    let third = app.post_auth("/invitations", &token, json!({ "email": "m3@example.com" })).await;
    expect_error(third, StatusCode::FORBIDDEN, "invite_quota_exhausted").await;
    assert_eq!(expect_json(app.get_auth("/me", &token).await, StatusCode::OK).await["invitesRemaining"], 0);

    let code = app.access_code("m1@example.com").await;
    let revoked = app.delete_auth(&format!("/invitations/{}", first["id"].as_str().unwrap()), &token).await;
    assert_eq!(expect_json(revoked, StatusCode::OK).await["status"], "revoked");
    assert_eq!(expect_json(app.get_auth("/me", &token).await, StatusCode::OK).await["invitesRemaining"], 1);
    expect_error(app.sign_up("m1@example.com", PASSWORD, &code).await, StatusCode::FORBIDDEN, "invitation_revoked")
        .await;
    expect_json(app.post_auth("/invitations", &token, json!({ "email": "m3@example.com" })).await, StatusCode::CREATED)
        .await;
}

#[tokio::test]
async fn operator_sets_the_invitees_quota() {
    let app = spawn_app().await;
    app.operator_invite_with_quota("nina@example.com", Some(1)).await;
    let code = app.access_code("nina@example.com").await;
    expect_json(app.sign_up("nina@example.com", PASSWORD, &code).await, StatusCode::OK).await;
    let token = app.sign_in("nina@example.com", PASSWORD).await["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(expect_json(app.get_auth("/me", &token).await, StatusCode::OK).await["invitesRemaining"], 1);
    expect_json(app.post_auth("/invitations", &token, json!({ "email": "o1@example.com" })).await, StatusCode::CREATED)
        .await;
    let second = app.post_auth("/invitations", &token, json!({ "email": "o2@example.com" })).await;
    expect_error(second, StatusCode::FORBIDDEN, "invite_quota_exhausted").await;
}

#[tokio::test]
async fn resend_rotates_the_code_and_restarts_the_expiry() {
    let app = spawn_app().await;
    let (_, token) = app.signed_in_user("oscar@example.com").await;
    let created = expect_json(
        app.post_auth("/invitations", &token, json!({ "email": "pat@example.com" })).await,
        StatusCode::CREATED,
    )
    .await;
    let old_code = app.access_code("pat@example.com").await;

    app.clock.advance(time::Duration::days(6));
    let token = app.sign_in("oscar@example.com", PASSWORD).await["accessToken"].as_str().unwrap().to_owned();
    let resent =
        app.post_auth(&format!("/invitations/{}/resend", created["id"].as_str().unwrap()), &token, json!({})).await;
    let resent = expect_json(resent, StatusCode::OK).await;
    assert_eq!(app.mail_count("pat@example.com").await, 2);
    let new_code = app.access_code("pat@example.com").await;
    assert_ne!(old_code, new_code);
    assert!(resent["expiresAt"].as_str().unwrap() > created["expiresAt"].as_str().unwrap());

    // Six more days: past the first expiry, within the new one.
    app.clock.advance(time::Duration::days(6));
    let token = app.sign_in("oscar@example.com", PASSWORD).await["accessToken"].as_str().unwrap().to_owned();
    expect_error(
        app.sign_up("pat@example.com", PASSWORD, &old_code).await,
        StatusCode::FORBIDDEN,
        "invalid_access_code",
    )
    .await;
    expect_json(app.sign_up("pat@example.com", PASSWORD, &new_code).await, StatusCode::OK).await;

    // A redeemed invitation can be neither re-sent nor revoked.
    let id = created["id"].as_str().unwrap();
    let again = app.post_auth(&format!("/invitations/{id}/resend"), &token, json!({})).await;
    expect_error(again, StatusCode::FORBIDDEN, "invitation_redeemed").await;
    expect_error(
        app.delete_auth(&format!("/invitations/{id}"), &token).await,
        StatusCode::FORBIDDEN,
        "invitation_redeemed",
    )
    .await;
}

#[tokio::test]
async fn expired_invitations_are_listed_as_expired_and_can_be_replaced() {
    let app = spawn_app().await;
    let (_, token) = app.signed_in_user("quinn@example.com").await;
    expect_json(
        app.post_auth("/invitations", &token, json!({ "email": "rita@example.com" })).await,
        StatusCode::CREATED,
    )
    .await;
    let duplicate = app.post_auth("/invitations", &token, json!({ "email": "RITA@example.com" })).await;
    expect_error(duplicate, StatusCode::CONFLICT, "already_invited").await;
    app.clock.advance(time::Duration::days(8));
    let token = app.sign_in("quinn@example.com", PASSWORD).await["accessToken"].as_str().unwrap().to_owned();
    let listed = expect_json(app.get_auth("/invitations", &token).await, StatusCode::OK).await;
    assert_eq!(listed["invitations"][0]["status"], "expired");
    expect_json(
        app.post_auth("/invitations", &token, json!({ "email": "rita@example.com" })).await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn invitation_errors() {
    let app = spawn_app().await;
    let (_, token) = app.signed_in_user("sam@example.com").await;
    let (_, other_token) = app.signed_in_user("tess@example.com").await;

    let no_token = app
        .client
        .post(format!("{}/invitations", app.base))
        .json(&json!({ "email": "u@example.com" }))
        .send()
        .await
        .unwrap();
    expect_error(no_token, StatusCode::UNAUTHORIZED, "not_authorized").await;
    expect_error(app.get_auth("/invitations", "garbage").await, StatusCode::UNAUTHORIZED, "not_authorized").await;
    expect_error(app.get_auth("/me", "garbage").await, StatusCode::UNAUTHORIZED, "not_authorized").await;

    let bad = app.post_auth("/invitations", &token, json!({ "email": "nope" })).await;
    expect_error(bad, StatusCode::BAD_REQUEST, "invalid_email").await;
    let missing = app.post_auth("/invitations", &token, json!({})).await;
    expect_error(missing, StatusCode::BAD_REQUEST, "missing_params").await;
    let existing = app.post_auth("/invitations", &token, json!({ "email": "tess@example.com" })).await;
    expect_error(existing, StatusCode::CONFLICT, "user_exists").await;

    let created = expect_json(
        app.post_auth("/invitations", &token, json!({ "email": "uma@example.com" })).await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    // Someone else's invitation is not found, and stays untouched.
    expect_error(
        app.delete_auth(&format!("/invitations/{id}"), &other_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let resend = app.post_auth(&format!("/invitations/{id}/resend"), &other_token, json!({})).await;
    expect_error(resend, StatusCode::NOT_FOUND, "not_found").await;
    let others = expect_json(app.get_auth("/invitations", &other_token).await, StatusCode::OK).await;
    assert_eq!(others["invitations"], json!([]));
    expect_error(app.delete_auth("/invitations/does-not-exist", &token).await, StatusCode::NOT_FOUND, "not_found")
        .await;
    let code = app.access_code("uma@example.com").await;
    expect_json(app.sign_up("uma@example.com", PASSWORD, &code).await, StatusCode::OK).await;
}
