//! What operators rely on: request ids, readiness, metrics.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestBackend, captured_log, expect_error, spawn_app};

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_plain_one_is_kept() {
    let app = spawn_app().await;
    let get = |id: Option<&'static str>| {
        let mut request = app.client.get(format!("{}/healthz", app.base));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };
    let fresh = get(None).await.unwrap();
    let id = fresh.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a new id is a UUID: {id}");
    let other = get(None).await.unwrap().headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, other, "each request gets its own id");

    let kept = get(Some("lb-7f3a.42")).await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "lb-7f3a.42", "the caller's id is kept");
    let replaced = get(Some("no spaces or {json} please")).await.unwrap();
    let replaced = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(replaced).is_ok(), "an unsafe id is replaced: {replaced}");

    // Errors carry one too.
    let missing = app.client.get(format!("{}/no-such-page", app.base)).send().await.unwrap();
    assert!(missing.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn a_requests_log_lines_carry_its_id() {
    let app = spawn_app().await;
    let (_, token) = app.signed_in_user("logger@example.com").await;
    let id = format!("test-{}", uuid::Uuid::new_v4().simple());
    let response = app
        .client
        .post(format!("{}/invitations", app.base))
        .bearer_auth(&token)
        .header("x-request-id", &id)
        .json(&json!({ "email": "logged@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let log = captured_log();
    let line = log
        .lines()
        .find(|l| l.contains("invitation sent") && l.contains(&id))
        .unwrap_or_else(|| panic!("no 'invitation sent' line with request_id={id}"));
    assert!(line.contains(&format!("request_id={id}")), "{line}");
}

#[tokio::test]
async fn ready_when_the_backend_answers() {
    let app = spawn_app().await;
    let response = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({ "status": "ready" }));
}

/// The value of the sample whose name and labels are exactly `series`, if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_what_happened() {
    let app = spawn_app().await;
    let (_, token) = app.signed_in_user("counted@example.com").await;
    let failed = app.post("/sign_in", json!({ "email": "counted@example.com", "password": "wrong password 1" })).await;
    expect_error(failed, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let invitation = app.post_auth("/invitations", &token, json!({ "email": "friend@example.com" })).await;
    let invitation: serde_json::Value = invitation.json().await.unwrap();
    let id = invitation["id"].as_str().unwrap();
    assert_eq!(app.delete_auth(&format!("/invitations/{id}"), &token).await.status(), StatusCode::OK);

    let response = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let metrics = response.text().await.unwrap();
    let count = |series: &str| sample(&metrics, series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"));

    assert_eq!(count(r#"invitegate_http_requests_total{route="/sign_in",method="POST",status="200"}"#), 1.0);
    assert_eq!(count(r#"invitegate_http_requests_total{route="/sign_in",method="POST",status="401"}"#), 1.0);
    // Routes are labelled by pattern, never by the id in the path.
    assert_eq!(count(r#"invitegate_http_requests_total{route="/invitations/{id}",method="DELETE",status="200"}"#), 1.0);
    assert!(!metrics.contains(id), "no raw ids in labels");
    assert_eq!(count(r#"invitegate_http_request_duration_seconds_count{route="/sign_in"}"#), 2.0);
    assert_eq!(count(r#"invitegate_http_request_duration_seconds_bucket{le="+Inf",route="/sign_in"}"#), 2.0);
    assert_eq!(count("invitegate_sign_ups_total"), 1.0);
    assert_eq!(count(r#"invitegate_sign_ins_total{outcome="ok"}"#), 1.0);
    assert_eq!(count(r#"invitegate_sign_ins_total{outcome="refused"}"#), 1.0);
    assert_eq!(count(r#"invitegate_invitations_total{outcome="created"}"#), 2.0);
    assert_eq!(count(r#"invitegate_invitations_total{outcome="redeemed"}"#), 1.0);
    assert_eq!(count(r#"invitegate_invitations_total{outcome="revoked"}"#), 1.0);
    // Where this service hashes passwords itself, its queue is on show.
    match app.backend {
        TestBackend::Embedded => {
            assert_eq!(count("invitegate_password_hashes_queued"), 0.0);
            assert_eq!(count("invitegate_password_hashes_running"), 0.0);
        }
        TestBackend::Aws => assert!(!metrics.contains("password_hashes"), "Cognito hashes, not us"),
    }
    // Nothing secret in there.
    assert!(!metrics.contains(PASSWORD) && !metrics.contains(&token) && !metrics.contains("counted@example.com"));
}

#[tokio::test]
async fn refusals_are_counted_by_code() {
    let app = spawn_app().await;
    app.invited_user("target@example.com").await;
    for attempt in 0..12 {
        app.post("/sign_in", json!({ "email": "target@example.com", "password": format!("wrong password {attempt}") }))
            .await;
    }
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let refused = sample(&metrics, r#"invitegate_refused_requests_total{code="too_many_attempts"}"#);
    assert!(refused.is_some_and(|n| n >= 1.0), "429s are counted:\n{metrics}");
}
