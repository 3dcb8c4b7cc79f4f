//! The operator's commands, run in-process against a data dir.

use clap::Parser;
use reqwest::StatusCode;
use serde_json::json;
use server::config::{Cli, Command};

use crate::helpers::*;

async fn run(app: &TestApp, args: &[&str]) -> String {
    let mut argv = vec!["invitegate", "--data-dir", app.data_dir.path().to_str().unwrap(), "--public-url", &app.base];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    assert!(!matches!(cli.command, Command::Serve(_)), "operator commands only");
    let mut out = Vec::new();
    server::cli::run_writing_to(&cli, &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn operator_invites_lists_resends_and_revokes_from_the_cli() {
    let app = spawn_app().await;
    let created = run(&app, &["invite", "create", "Amy@Example.com", "--quota", "2"]).await;
    assert!(created.contains("Invited amy@example.com"), "{created}");
    let code = app.access_code("amy@example.com").await;
    assert!(!created.contains(&code), "the CLI never prints the code");
    let outbox = run(&app, &["outbox", "--count", "1"]).await;
    assert!(outbox.contains(&code), "{outbox}");

    let resent = run(&app, &["invite", "resend", "amy@example.com"]).await;
    assert!(resent.contains("old one no longer works"), "{resent}");
    let new_code = app.access_code("amy@example.com").await;
    assert_ne!(code, new_code);

    run(&app, &["invite", "create", "bea@example.com"]).await;
    run(&app, &["invite", "revoke", "bea@example.com"]).await;
    let pending = run(&app, &["invite", "list", "--status", "pending"]).await;
    assert!(pending.contains("amy@example.com") && !pending.contains("bea@example.com"), "{pending}");
    let revoked = run(&app, &["invite", "list", "--status", "revoked"]).await;
    assert!(revoked.contains("bea@example.com"), "{revoked}");

    // The running service sees what the CLI wrote (one database).
    let body = expect_json(app.sign_up("amy@example.com", PASSWORD, &new_code).await, StatusCode::OK).await;
    let users = run(&app, &["users", "list"]).await;
    assert!(users.contains(body["userSub"].as_str().unwrap()) && users.contains("CONFIRMED"), "{users}");
    let tokens = app.sign_in("amy@example.com", PASSWORD).await;
    let me = expect_json(app.get_auth("/me", tokens["accessToken"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(me["invitesRemaining"], 2);
}

#[test]
fn production_defaults_use_owasp_hashing_and_documented_settings() {
    let cli = Cli::try_parse_from(["invitegate", "serve"]).unwrap();
    let Command::Serve(serve) = &cli.command else { panic!() };
    let config = server::config::app_config(&cli.common, Some(serve)).unwrap();
    let server::startup::Backend::Embedded(embedded) = &config.backend else { panic!("embedded by default") };
    assert_eq!(embedded.hashing_cost, backend_embedded::HashingCost::OWASP);
    assert_eq!(embedded.mail_from, server::config::DEFAULT_MAIL_FROM);
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.service.default_invite_quota, 5);
    assert_eq!(config.service.invitation_ttl, time::Duration::days(7));
    assert_eq!(config.service.policy, domain::SignUpPolicy::InviteOnly);
    assert!(config.cors_origins.is_empty());
}

#[test]
fn a_missing_aws_setting_is_named_at_start() {
    let cli = Cli::try_parse_from([
        "invitegate",
        "--backend",
        "aws",
        "--cognito-user-pool-id",
        "pool",
        "--cognito-app-client-id",
        "client",
        "--cognito-app-client-secret",
        "secret",
        "--mail-from",
        "a@example.com",
        "--code-key",
        "key",
        "serve",
    ])
    .unwrap();
    let Command::Serve(serve) = &cli.command else { panic!() };
    let error = server::config::app_config(&cli.common, Some(serve)).unwrap_err().to_string();
    assert!(error.contains("INVITEGATE_TABLE"), "{error}");
}

#[test]
fn help_documents_every_setting_with_its_variable() {
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    for variable in [
        "INVITEGATE_DATA_DIR",
        "INVITEGATE_SMTP_URL",
        "INVITEGATE_MAIL_FROM",
        "INVITEGATE_POLICY",
        "AWS_COGNITO_USER_POOL_ID",
        "AWS_COGNITO_APP_CLIENT_ID",
        "AWS_COGNITO_APP_CLIENT_SECRET",
        "INVITEGATE_TABLE",
        "INVITEGATE_CODE_KEY",
        "INVITEGATE_COGNITO_ISSUER",
        "INVITEGATE_COGNITO_JWKS_URL",
    ] {
        assert!(help.contains(variable), "--help does not mention {variable}:\n{help}");
    }
}

#[tokio::test]
async fn operator_manages_accounts_from_the_cli() {
    let app = spawn_app().await;
    let (sub, token) = app.signed_in_user("cli-user@example.com").await;
    app.post_auth("/invitations", &token, json!({ "email": "their-friend@example.com" })).await;

    let shown = run(&app, &["users", "show", "cli-user@example.com"]).await;
    for expected in [sub.as_str(), "CONFIRMED", "the operator", "their-friend@example.com", "pending"] {
        assert!(shown.contains(expected), "{expected} in {shown}");
    }

    run(&app, &["users", "disable", "cli-user@example.com"]).await;
    let refused = app.post("/sign_in", json!({ "email": "cli-user@example.com", "password": PASSWORD })).await;
    expect_error(refused, StatusCode::FORBIDDEN, "user_disabled").await;
    assert!(run(&app, &["users", "show", "cli-user@example.com"]).await.contains("DISABLED"));
    run(&app, &["users", "enable", "cli-user@example.com"]).await;
    let session = app.sign_in("cli-user@example.com", PASSWORD).await;

    run(&app, &["users", "sign-out", "cli-user@example.com"]).await;
    let refreshed = app.post("/refresh", json!({ "refreshToken": session["refreshToken"] })).await;
    expect_error(refreshed, StatusCode::UNAUTHORIZED, "not_authorized").await;

    let mails = app.mail_count("cli-user@example.com").await;
    let sent = run(&app, &["users", "reset-password", "cli-user@example.com"]).await;
    assert!(sent.contains("recovery code"), "{sent}");
    assert_eq!(app.mail_count("cli-user@example.com").await, mails + 1);

    let deleted = run(&app, &["users", "delete", "cli-user@example.com"]).await;
    assert!(deleted.contains("Deleted cli-user@example.com"), "{deleted}");
    let gone = app.post("/sign_in", json!({ "email": "cli-user@example.com", "password": PASSWORD })).await;
    expect_error(gone, StatusCode::UNAUTHORIZED, "not_authorized").await;
    // Their unused invitation went with them.
    let revoked = run(&app, &["invite", "list", "--status", "revoked"]).await;
    assert!(revoked.contains("their-friend@example.com"), "{revoked}");
}

#[tokio::test]
async fn an_invitation_without_email_shows_its_link_once_to_the_operator() {
    let app = spawn_app().await;
    let created = run(&app, &["invite", "create", "hand@example.com", "--no-email", "--expires-in-hours", "3"]).await;
    assert_eq!(app.mail_count("hand@example.com").await, 0, "nothing mailed");
    let link = created.lines().find(|l| l.contains("/signup?")).unwrap_or_else(|| panic!("a link in {created}"));
    let code = link.split("code=").nth(1).unwrap();
    assert!(!captured_log().contains(code), "the link is for the operator's eyes only");
    assert_eq!(app.sign_up("hand@example.com", PASSWORD, code).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn operator_answers_access_requests_from_the_cli() {
    let app = spawn_app().await;
    for email in ["yes@example.com", "no@example.com"] {
        app.service.request_access(domain::Email::parse(email).unwrap(), [127, 0, 0, 1].into()).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listed = loop {
        let listed = run(&app, &["requests", "list", "--status", "open"]).await;
        if (listed.contains("yes@example.com") && listed.contains("no@example.com"))
            || std::time::Instant::now() > deadline
        {
            break listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(listed.contains("yes@example.com") && listed.contains("no@example.com"), "{listed}");
    let approved = run(&app, &["requests", "approve", "yes@example.com"]).await;
    assert!(approved.contains("Approved yes@example.com"), "{approved}");
    assert_eq!(app.mail_count("yes@example.com").await, 1, "an invitation was sent");
    run(&app, &["requests", "reject", "no@example.com"]).await;
    assert_eq!(app.mail_count("no@example.com").await, 0);
    let rejected = run(&app, &["requests", "list", "--status", "rejected"]).await;
    assert!(rejected.contains("no@example.com") && !rejected.contains("yes@example.com"), "{rejected}");
}
