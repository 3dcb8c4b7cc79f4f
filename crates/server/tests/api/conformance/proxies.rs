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
