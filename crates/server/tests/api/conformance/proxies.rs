//! Attempt limits per client behind a reverse proxy.

use reqwest::StatusCode;
use serde_json::json;
use server::client_address::TrustedProxies;

use crate::helpers::*;

/// A wrong sign-in (an unknown email each time, so only the client's limit fills) from `forwarded_for`.
async fn wrong_sign_in(app: &TestApp, n: usize, forwarded_for: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/sign_in", app.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "email": format!("nobody{n}@example.com"), "password": "Wr0ng-password" }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let app = spawn_app_with(|c| c.trusted_proxies = TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap()])).await;
    for n in 0..100 {
        let response = wrong_sign_in(&app, n, "203.0.113.5").await;
        expect_error(response, StatusCode::UNAUTHORIZED, "not_authorized").await;
    }
    expect_error(wrong_sign_in(&app, 100, "203.0.113.5").await, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")
        .await;
    // Another client behind the same proxy is not locked out; nor is one that forges a hop.
    expect_error(wrong_sign_in(&app, 101, "198.51.100.8").await, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let forged = wrong_sign_in(&app, 102, "198.51.100.8, 203.0.113.5").await;
    expect_error(forged, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_peers_are_ignored() {
    let app = spawn_app().await;
    for n in 0..100 {
        let response = wrong_sign_in(&app, n, &format!("203.0.113.{n}")).await;
        expect_error(response, StatusCode::UNAUTHORIZED, "not_authorized").await;
    }
    // Every request came from this host, whatever the header claimed.
    expect_error(wrong_sign_in(&app, 100, "198.51.100.8").await, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")
        .await;
}

/// Wrong access codes sent by someone else never lock the invitee out: code
/// guesses are counted per email *and* client network (80-bit codes need no
/// per-email lock-out; see the README).
#[tokio::test]
async fn someone_elses_wrong_codes_do_not_lock_the_invitee_out() {
    let app = spawn_app_with(|c| c.trusted_proxies = TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap()])).await;
    app.operator_invite("target@example.com").await;
    let code = app.access_code("target@example.com").await;
    let sign_up = |code: String, client: &'static str| {
        let body = json!({ "email": "target@example.com", "password": PASSWORD, "accessCode": code });
        app.client.post(format!("{}/sign_up", app.base)).header("x-forwarded-for", client).json(&body).send()
    };
    for _ in 0..10 {
        let wrong = sign_up("AAAA-AAAA-AAAA-AAAA".into(), "203.0.113.66").await.unwrap();
        expect_error(wrong, StatusCode::FORBIDDEN, "invalid_access_code").await;
    }
    let blocked = sign_up("AAAA-AAAA-AAAA-AAAA".into(), "203.0.113.66").await.unwrap();
    expect_error(blocked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // The invitee, from their own network, signs up at once.
    let invitee = sign_up(code, "198.51.100.20").await.unwrap();
    let body = expect_json(invitee, StatusCode::OK).await;
    assert_eq!(body["userConfirmed"], true);
}
