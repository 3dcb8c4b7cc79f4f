//! The admin API: the operator's actions over HTTP, behind the admin token.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

impl TestApp {
    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn every_admin_route_refuses_a_missing_or_wrong_token() {
    let app = spawn_app().await;
    let (sub, user_token) = app.signed_in_user("someone@example.com").await;
    let routes = [
        (Method::POST, "/admin/invitations".to_owned()),
        (Method::GET, "/admin/invitations".to_owned()),
        (Method::POST, "/admin/invitations/x/revoke".to_owned()),
        (Method::POST, "/admin/invitations/x/resend".to_owned()),
        (Method::GET, "/admin/users".to_owned()),
        (Method::GET, format!("/admin/users/{sub}")),
        (Method::DELETE, format!("/admin/users/{sub}")),
        (Method::POST, format!("/admin/users/{sub}/disable")),
        (Method::POST, format!("/admin/users/{sub}/enable")),
        (Method::POST, format!("/admin/users/{sub}/sign_out")),
        (Method::POST, format!("/admin/users/{sub}/reset_password")),
    ];
    for (method, path) in &routes {
        let url = format!("{}{path}", app.base);
        for token in [None, Some("wrong-token"), Some(user_token.as_str()), Some("")] {
            let mut request = app.client.request(method.clone(), &url).json(&json!({ "email": "x@example.com" }));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            expect_error(response, StatusCode::UNAUTHORIZED, "not_authorized").await;
        }
    }
    assert!(!captured_log().contains(ADMIN_TOKEN), "the admin token never reaches the log");
    // Nothing happened: the account is still there and enabled.
    assert_eq!(
        app.post("/sign_in", json!({ "email": "someone@example.com", "password": PASSWORD })).await.status(),
        200
    );
}

#[tokio::test]
async fn operators_invite_list_revoke_and_resend_over_the_api() {
    let app = spawn_app().await;
    let created =
        app.admin(Method::POST, "/admin/invitations", Some(json!({ "email": "mailed@example.com", "quota": 2 }))).await;
    let created: Value = expect_json(created, StatusCode::CREATED).await;
    assert_eq!(created["status"], "pending");
    assert!(created.get("signUpLink").is_none(), "a mailed invitation's code is not shown");
    assert_eq!(app.mail_count("mailed@example.com").await, 1);

    // Without email: the link comes back once, and works; nothing is mailed.
    let quiet = json!({ "email": "quiet@example.com", "sendEmail": false, "expiresInHours": 2 });
    let quiet: Value =
        expect_json(app.admin(Method::POST, "/admin/invitations", Some(quiet)).await, StatusCode::CREATED).await;
    let link = quiet["signUpLink"].as_str().expect("the sign-up link");
    assert!(link.starts_with(&format!("{}/signup?email=quiet%40example.com&code=", app.base)), "{link}");
    assert_eq!(app.mail_count("quiet@example.com").await, 0);
    let expires = time::OffsetDateTime::parse(
        quiet["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let created_at = time::OffsetDateTime::parse(
        quiet["createdAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires - created_at, time::Duration::hours(2));
    let code = link.split("code=").nth(1).unwrap().to_owned();
    assert_eq!(app.sign_up("quiet@example.com", PASSWORD, &code).await.status(), StatusCode::OK);
    assert!(!captured_log().contains(&code), "the code never reaches the log");

    // Other tests' invitations may share the AWS table, over many pages: all of them, then ours only.
    let listed = all_pages(&app, "/admin/invitations?status=pending", "invitations").await.concat();
    let emails: Vec<&str> = listed.iter().map(|i| i["email"].as_str().unwrap()).collect();
    assert!(emails.contains(&"mailed@example.com"), "{emails:?}");
    assert!(!emails.contains(&"quiet@example.com"), "redeemed, not pending: {emails:?}");
    let bad = app.admin(Method::GET, "/admin/invitations?status=nonsense", None).await;
    expect_error(bad, StatusCode::BAD_REQUEST, "invalid_request").await;

    let id = created["id"].as_str().unwrap();
    let resent = app.admin(Method::POST, &format!("/admin/invitations/{id}/resend"), None).await;
    assert_eq!(resent.status(), StatusCode::OK);
    assert_eq!(app.mail_count("mailed@example.com").await, 2);
    let revoked: Value =
        expect_json(app.admin(Method::POST, &format!("/admin/invitations/{id}/revoke"), None).await, StatusCode::OK)
            .await;
    assert_eq!(revoked["status"], "revoked");
    let unknown = app.admin(Method::POST, "/admin/invitations/no-such-id/revoke", None).await;
    expect_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn operators_see_an_account_with_who_invited_it_and_whom_it_invited() {
    let app = spawn_app().await;
    let (sub, token) = app.signed_in_user("parent@example.com").await;
    let invited = app.post_auth("/invitations", &token, json!({ "email": "child@example.com" })).await;
    assert_eq!(invited.status(), StatusCode::CREATED);
    let code = app.access_code("child@example.com").await;
    let child: Value = expect_json(app.sign_up("child@example.com", PASSWORD, &code).await, StatusCode::OK).await;
    app.post_auth("/invitations", &token, json!({ "email": "pending@example.com" })).await;

    let users: Value = expect_json(app.admin(Method::GET, "/admin/users", None).await, StatusCode::OK).await;
    let listed = users["users"].as_array().unwrap();
    assert!(
        listed.iter().any(|u| u["sub"] == sub.as_str() && u["email"] == "parent@example.com" && u["disabled"] == false)
    );

    let details: Value =
        expect_json(app.admin(Method::GET, &format!("/admin/users/{sub}"), None).await, StatusCode::OK).await;
    assert_eq!(details["email"], "parent@example.com");
    assert_eq!(details["status"], "CONFIRMED");
    assert_eq!(details["invitedBy"], "operator");
    assert_eq!(details["invitees"], json!([child["userSub"]]));
    // Newest first, but these two share a second (DynamoDB keeps no order within one).
    let mut states: Vec<(&str, &str)> = details["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["email"].as_str().unwrap(), i["status"].as_str().unwrap()))
        .collect();
    states.sort_unstable();
    assert_eq!(states, [("child@example.com", "redeemed"), ("pending@example.com", "pending")]);
    let unknown = app.admin(Method::GET, "/admin/users/no-such-sub", None).await;
    expect_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_disabled_account_is_told_so_only_with_its_password_and_its_sessions_stop() {
    let app = spawn_app().await;
    let email = "paused@example.com";
    app.invited_user(email).await;
    let session: Value = app.sign_in(email, PASSWORD).await;
    let sub = {
        let me: Value =
            expect_json(app.get_auth("/me", session["accessToken"].as_str().unwrap()).await, StatusCode::OK).await;
        me["sub"].as_str().unwrap().to_owned()
    };

    let disabled: Value =
        expect_json(app.admin(Method::POST, &format!("/admin/users/{sub}/disable"), None).await, StatusCode::OK).await;
    assert_eq!(disabled["disabled"], true);
    let right = app.post("/sign_in", json!({ "email": email, "password": PASSWORD })).await;
    expect_error(right, StatusCode::FORBIDDEN, "user_disabled").await;
    let wrong = app.post("/sign_in", json!({ "email": email, "password": "Wr0ng-password!" })).await;
    expect_error(wrong, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let refreshed = app.post("/refresh", json!({ "refreshToken": session["refreshToken"] })).await;
    expect_error(refreshed, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let me = app.get_auth("/me", session["accessToken"].as_str().unwrap()).await;
    expect_error(me, StatusCode::UNAUTHORIZED, "not_authorized").await;

    let enabled: Value =
        expect_json(app.admin(Method::POST, &format!("/admin/users/{sub}/enable"), None).await, StatusCode::OK).await;
    assert_eq!(enabled["disabled"], false);
    // The sessions from before stay ended.
    let me = app.get_auth("/me", session["accessToken"].as_str().unwrap()).await;
    expect_error(me, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let again: Value = app.sign_in(email, PASSWORD).await;
    assert_eq!(app.get_auth("/me", again["accessToken"].as_str().unwrap()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn operators_sign_out_reset_and_delete_accounts() {
    let app = spawn_app().await;
    let email = "managed@example.com";
    app.invited_user(email).await;
    let session: Value = app.sign_in(email, PASSWORD).await;
    let me: Value =
        expect_json(app.get_auth("/me", session["accessToken"].as_str().unwrap()).await, StatusCode::OK).await;
    let sub = me["sub"].as_str().unwrap().to_owned();

    let out = app.admin(Method::POST, &format!("/admin/users/{sub}/sign_out"), None).await;
    assert_eq!(out.status(), StatusCode::OK);
    let refreshed = app.post("/refresh", json!({ "refreshToken": session["refreshToken"] })).await;
    expect_error(refreshed, StatusCode::UNAUTHORIZED, "not_authorized").await;

    let mails = app.mail_count(email).await;
    let sent: Value =
        expect_json(app.admin(Method::POST, &format!("/admin/users/{sub}/reset_password"), None).await, StatusCode::OK)
            .await;
    assert_eq!(sent, json!({ "sent": true }));
    let mail = app.wait_for_mail(email, mails + 1).await;
    let code: String = mail.split_once("code is ").unwrap().1.chars().take_while(char::is_ascii_digit).collect();
    let reset = app
        .post("/confirm_forgot_password", json!({ "email": email, "code": code, "password": "N3w-password!" }))
        .await;
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(
        app.post("/sign_in", json!({ "email": email, "password": "N3w-password!" })).await.status(),
        StatusCode::OK
    );

    let deleted: Value =
        expect_json(app.admin(Method::DELETE, &format!("/admin/users/{sub}"), None).await, StatusCode::OK).await;
    assert_eq!(deleted, json!({ "deleted": true }));
    let gone = app.post("/sign_in", json!({ "email": email, "password": "N3w-password!" })).await;
    expect_error(gone, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let again = app.admin(Method::GET, &format!("/admin/users/{sub}"), None).await;
    expect_error(again, StatusCode::NOT_FOUND, "not_found").await;
}

/// Follows `nextCursor` from `path` (which has a `?`) until the end; every page's entries under `field`.
async fn all_pages(app: &TestApp, path: &str, field: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}&cursor={cursor}"),
            None => path.to_owned(),
        };
        let page: Value = expect_json(app.admin(Method::GET, &url, None).await, StatusCode::OK).await;
        pages.push(page[field].as_array().unwrap().clone());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 5000, "pagination must end");
    }
}

#[tokio::test]
async fn listings_come_in_pages_that_cover_everything_once() {
    let app = spawn_app().await;
    let mut subs = Vec::new();
    for i in 0..5 {
        subs.push(app.invited_user(&format!("paged{i}@example.com")).await);
    }
    let pages = all_pages(&app, "/admin/users?limit=2", "users").await;
    assert!(pages.iter().all(|p| p.len() <= 2), "{pages:?}");
    assert!(pages.len() >= 3, "5 accounts, 2 per page: {} pages", pages.len());
    let mut listed: Vec<String> = pages.iter().flatten().map(|u| u["sub"].as_str().unwrap().to_owned()).collect();
    listed.sort();
    subs.sort();
    assert_eq!(listed, subs, "each account exactly once");

    for i in 0..5 {
        app.operator_invite(&format!("paged-invite{i}@example.com")).await;
    }
    let pages = all_pages(&app, "/admin/invitations?status=pending&limit=2", "invitations").await;
    let ours: Vec<String> = pages
        .iter()
        .flatten()
        .map(|i| i["email"].as_str().unwrap().to_owned())
        .filter(|e| e.starts_with("paged-invite"))
        .collect();
    let mut sorted = ours.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "each pending invitation exactly once: {ours:?}");
    assert_eq!(ours.len(), 5, "no duplicates: {ours:?}");
    if app.backend == TestBackend::Embedded {
        let expected: Vec<String> = (0..5).rev().map(|i| format!("paged-invite{i}@example.com")).collect();
        assert_eq!(ours, expected, "newest first");
    }

    for bad in [
        "/admin/users?limit=0",
        "/admin/users?limit=1001",
        "/admin/users?cursor=not-a-cursor",
        "/admin/invitations?cursor=zz",
    ] {
        let response = app.admin(Method::GET, bad, None).await;
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}
