//! People without an invitation ask for one; the operator approves or rejects.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn admin(app: &TestApp, method: Method, path: &str) -> reqwest::Response {
    app.client.request(method, format!("{}{path}", app.base)).bearer_auth(ADMIN_TOKEN).send().await.unwrap()
}

/// The open requests for `emails` (the AWS tests share one table), waiting
/// (up to 10 s) until there are `count`: they are recorded after the answer.
async fn open_requests(app: &TestApp, emails: &[&str], count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let listed: Value =
            expect_json(admin(app, Method::GET, "/admin/access_requests?status=open").await, StatusCode::OK).await;
        let requests: Vec<Value> = listed["accessRequests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| emails.contains(&r["email"].as_str().unwrap()))
            .cloned()
            .collect();
        if requests.len() >= count || std::time::Instant::now() > deadline {
            return requests;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_request_looks_the_same_for_any_address_and_an_approval_sends_an_invitation() {
    let app = spawn_app().await;
    app.invited_user("member@example.com").await;
    let mut answers = Vec::new();
    for email in ["newcomer@example.com", "member@example.com", "newcomer@example.com"] {
        let response = app.post("/access_requests", json!({ "email": email })).await;
        answers.push(expect_json(response, StatusCode::ACCEPTED).await);
    }
    assert!(answers.iter().all(|a| a == &json!({ "requested": true })), "{answers:?}");
    let bad = app.post("/access_requests", json!({ "email": "nope" })).await;
    expect_error(bad, StatusCode::BAD_REQUEST, "invalid_email").await;

    let ours = ["newcomer@example.com", "member@example.com"];
    let open = open_requests(&app, &ours, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let open_now = open_requests(&app, &ours, 1).await;
    assert_eq!(open.len(), 1, "one open request per email, none for an existing account: {open:?}");
    assert_eq!(open_now.len(), 1);
    assert_eq!(open[0]["email"], "newcomer@example.com");
    assert_eq!(open[0]["status"], "open");

    let id = open[0]["id"].as_str().unwrap();
    let approved: Value =
        expect_json(admin(&app, Method::POST, &format!("/admin/access_requests/{id}/approve")).await, StatusCode::OK)
            .await;
    assert_eq!(approved["accessRequest"]["status"], "approved");
    assert_eq!(approved["invitation"]["email"], "newcomer@example.com");
    let code = app.access_code("newcomer@example.com").await;
    assert_eq!(app.sign_up("newcomer@example.com", PASSWORD, &code).await.status(), StatusCode::OK);

    let twice = admin(&app, Method::POST, &format!("/admin/access_requests/{id}/approve")).await;
    expect_error(twice, StatusCode::CONFLICT, "already_decided").await;
    let unknown = admin(&app, Method::POST, "/admin/access_requests/no-such-id/reject").await;
    expect_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_rejected_request_sends_nothing_and_another_may_follow() {
    let app = spawn_app().await;
    app.post("/access_requests", json!({ "email": "hopeful@example.com" })).await;
    let open = open_requests(&app, &["hopeful@example.com"], 1).await;
    let id = open[0]["id"].as_str().unwrap();
    let rejected: Value =
        expect_json(admin(&app, Method::POST, &format!("/admin/access_requests/{id}/reject")).await, StatusCode::OK)
            .await;
    assert_eq!(rejected["status"], "rejected");
    assert!(rejected["decidedAt"].is_string());
    assert_eq!(app.mail_count("hopeful@example.com").await, 0);
    // A new request may be made later.
    app.post("/access_requests", json!({ "email": "hopeful@example.com" })).await;
    assert_eq!(open_requests(&app, &["hopeful@example.com"], 1).await.len(), 1);
}

#[tokio::test]
async fn there_are_no_access_requests_in_open_mode() {
    let app = spawn_app_with(|c| c.service.policy = domain::SignUpPolicy::Open).await;
    let response = app.post("/access_requests", json!({ "email": "anyone@example.com" })).await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn access_requests_are_limited() {
    let app = spawn_app().await;
    for _ in 0..10 {
        let response = app.post("/access_requests", json!({ "email": "eager@example.com" })).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let limited = app.post("/access_requests", json!({ "email": "eager@example.com" })).await;
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}
