//! The whole invite-only flow, as a user meets it.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn operator_invites_user_who_signs_up_signs_in_and_invites_a_friend() {
    let app = spawn_app().await;

    // The operator invites Alice; the code arrives only by email, with a sign-up link.
    let invitation = app.operator_invite("Alice@Example.com").await;
    assert_eq!(invitation.email.as_str(), "alice@example.com");
    let mail = app.latest_mail("alice@example.com").await;
    let code = app.access_code("alice@example.com").await;
    assert_eq!(code.len(), 19, "four groups of four: {code}");
    assert!(mail.contains(&format!("{}/signup?email=alice%40example.com&code={code}", app.base)), "{mail}");

    // Alice signs up with the code typed loosely (lower case, no dashes) and is confirmed at once.
    let typed = code.replace('-', "").to_lowercase();
    let body = expect_json(app.sign_up("alice@example.com", PASSWORD, &typed).await, StatusCode::OK).await;
    assert_eq!(body["userConfirmed"], true);
    let alice_sub = body["userSub"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&alice_sub).is_ok());
    let alice =
        app.parts.pool.find_by_email(&domain::Email::parse("alice@example.com").unwrap()).await.unwrap().unwrap();
    assert_eq!(alice.status, domain::UserStatus::Confirmed);
    assert!(alice.email_verified);

    // She signs in and sees her profile.
    let tokens = app.sign_in("ALICE@example.com", PASSWORD).await;
    assert_eq!(tokens["tokenType"], "Bearer");
    assert_eq!(tokens["expiresIn"], 3600);
    let access = tokens["accessToken"].as_str().unwrap();
    let me = expect_json(app.get_auth("/me", access).await, StatusCode::OK).await;
    assert_eq!(
        me,
        json!({ "sub": alice_sub, "email": "alice@example.com", "invitesRemaining": 5, "invitedBy": "operator" })
    );

    // She invites Bob over the API; the response never carries the code.
    let created = app.post_auth("/invitations", access, json!({ "email": "bob@example.com" })).await;
    let created = expect_json(created, StatusCode::CREATED).await;
    assert_eq!(created["email"], "bob@example.com");
    assert_eq!(created["status"], "pending");
    let typed: server::wire::InvitationResponse = serde_json::from_value(created.clone()).unwrap();
    assert_eq!(typed.status, domain::InvitationStatus::Pending);
    assert!(typed.expires_at > typed.created_at);
    assert!(created["expiresAt"].as_str().is_some());
    let bob_code = app.access_code("bob@example.com").await;
    assert!(!created.to_string().contains(&bob_code));

    // Bob signs up the same way, and the record says who invited whom.
    let bob = expect_json(app.sign_up("bob@example.com", PASSWORD, &bob_code).await, StatusCode::OK).await;
    assert_eq!(bob["userConfirmed"], true);
    let bob_tokens = app.sign_in("bob@example.com", PASSWORD).await;
    let bob_me =
        expect_json(app.get_auth("/me", bob_tokens["accessToken"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(bob_me["invitedBy"], alice_sub.as_str());

    let listed = expect_json(app.get_auth("/invitations", access).await, StatusCode::OK).await;
    let _: server::wire::InvitationListResponse = serde_json::from_value(listed.clone()).unwrap();
    let listed = listed["invitations"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "redeemed");
    assert_eq!(listed[0]["redeemedBy"], bob["userSub"]);
    let me = expect_json(app.get_auth("/me", access).await, StatusCode::OK).await;
    assert_eq!(me["invitesRemaining"], 4);
}

#[tokio::test]
async fn health_keys_and_unknown_routes() {
    let app = spawn_app().await;
    let health = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(expect_json(health, StatusCode::OK).await["status"], "ok");
    let jwks = app.client.get(format!("{}/.well-known/jwks.json", app.base)).send().await.unwrap();
    let jwks = expect_json(jwks, StatusCode::OK).await;
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    let missing = app.client.get(format!("{}/nope", app.base)).send().await.unwrap();
    expect_error(missing, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn errors_from_outside_the_handlers_are_json_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app_with(|c| c.request_timeout = std::time::Duration::from_millis(300)).await;
    let wrong_method = app.client.get(format!("{}/sign_up", app.base)).send().await.unwrap();
    assert!(wrong_method.headers().contains_key("allow"));
    expect_error(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    // A client that promises a body and never sends it is cut off at the timeout.
    let mut socket = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    socket
        .write_all(
            b"POST /sign_up HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    let mut response = vec![0; 4096];
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut response)).await.unwrap().unwrap();
    let response = String::from_utf8_lossy(&response[..read]);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains(r#""code":"timeout""#), "{response}");
}

#[tokio::test]
async fn the_openapi_document_is_served_and_docs_hold_the_current_one() {
    let app = spawn_app().await;
    let response = app.client.get(format!("{}/openapi.json", app.base)).send().await.unwrap();
    let served = expect_json(response, StatusCode::OK).await;
    assert_eq!(served["openapi"], "3.1.0");
    for path in ["/sign_up", "/sign_in", "/invitations/{id}", "/me"] {
        assert!(served["paths"].get(path).is_some(), "{path} is documented");
    }
    let committed = include_str!("../../../../../docs/openapi.json");
    let committed: serde_json::Value = serde_json::from_str(committed).unwrap();
    assert_eq!(served, committed, "docs/openapi.json is stale: save GET /openapi.json there");
}
