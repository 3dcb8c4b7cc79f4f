//! Moving from Firebase, on every backend: users with their passwords
//! (checked once with Firebase's scrypt, then rehashed by the pool), through
//! the same code as `invitegate users import firebase`.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::Email;
use domain::firebase::LegacyState;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::config::FirebaseImportArgs;

use crate::helpers::*;

use xtask::firebase::{MEM_COST, ROUNDS, SALT_SEPARATOR, SIGNER_KEY, firebase_export, password_of, reference_params};

pub fn write_export(dir: &std::path::Path, name: &str, document: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(document).unwrap()).unwrap();
    path
}

pub fn import_args(file: PathBuf, dry_run: bool) -> FirebaseImportArgs {
    FirebaseImportArgs {
        file,
        hash_algo: "SCRYPT".into(),
        hash_key: SIGNER_KEY.into(),
        salt_separator: SALT_SEPARATOR.into(),
        rounds: ROUNDS,
        mem_cost: MEM_COST,
        dry_run,
        rejects: None,
    }
}

async fn import(app: &TestApp, file: PathBuf, dry_run: bool) -> String {
    let mut out = Vec::new();
    server::cli::import_firebase(&app.service, &import_args(file, dry_run), &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

async fn state_of(app: &TestApp, email: &str) -> Option<LegacyState> {
    let email = Email::parse(email).unwrap();
    app.parts.legacy.legacy_states(std::slice::from_ref(&email)).await.unwrap().first().map(|(_, state)| *state)
}

async fn sign_in_status(app: &TestApp, email: &str, password: &str) -> StatusCode {
    app.post("/sign_in", json!({ "email": email, "password": password })).await.status()
}

/// On the emulator every imported user is two Cognito calls: fewer of them there.
fn generated_users(app: &TestApp) -> usize {
    match app.backend {
        TestBackend::Embedded => 3000,
        TestBackend::Aws => 2000,
    }
}

#[tokio::test]
async fn imported_users_sign_in_with_their_firebase_password_which_is_then_rehashed() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let count = generated_users(&app);
    let export = write_export(dir.path(), "users.json", &firebase_export("fb", count));

    let dry = import(&app, export.clone(), true).await;
    assert!(dry.contains(&format!("Would import {count} users")), "{dry}");
    assert!(dry.contains("nothing was written"), "{dry}");
    assert_eq!(state_of(&app, "fb1@example.com").await, None, "a dry run writes nothing");
    assert_eq!(sign_in_status(&app, "fb1@example.com", &password_of(1)).await, StatusCode::UNAUTHORIZED);

    let report = import(&app, export.clone(), false).await;
    assert!(report.contains(&format!("Imported {count} users; skipped 0 already imported; rejected 0")), "{report}");

    // The account keeps what Firebase knew.
    let find = |email: &str| server::service::UserRef::Email(Email::parse(email).unwrap());
    let user = app.service.find_user(&find("fb7@example.com")).await.unwrap();
    assert!(user.email_verified);
    assert_eq!(user.created_at.unix_timestamp(), 1_600_000_007);
    assert!(!app.service.find_user(&find("fb5@example.com")).await.unwrap().email_verified);

    // First sign-in: checked against Firebase's hash, then the pool holds the password.
    let email = "fb7@example.com";
    assert_eq!(state_of(&app, email).await, Some(LegacyState::Active));
    assert_eq!(sign_in_status(&app, email, "Wr0ng-password!").await, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_status(&app, email, &password_of(7)).await, StatusCode::OK);
    assert_eq!(state_of(&app, email).await, Some(LegacyState::Retired));
    let legacy = app.parts.legacy.active_password(&Email::parse(email).unwrap()).await.unwrap();
    assert!(legacy.is_none(), "nothing Firebase-specific is kept after the first sign-in");
    // Second sign-in: the pool's own hash.
    let tokens = app.sign_in(email, &password_of(7)).await;
    let me = expect_json(app.get_auth("/me", tokens["accessToken"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(me["email"], email);
    assert_eq!(sign_in_status(&app, email, &password_of(6)).await, StatusCode::UNAUTHORIZED);
    // Another one, later in the file.
    let last = format!("fb{}@example.com", count - 1);
    assert_eq!(sign_in_status(&app, &last, &password_of(count - 1)).await, StatusCode::OK);

    // Again: everything is there already.
    let again = import(&app, export, false).await;
    assert!(again.contains(&format!("Imported 0 users; skipped {count} already imported")), "{again}");
    assert_eq!(state_of(&app, email).await, Some(LegacyState::Retired), "a repeated import brings nothing back");
    assert_eq!(sign_in_status(&app, email, &password_of(7)).await, StatusCode::OK);
}

#[tokio::test]
async fn an_interrupted_import_resumes_and_nothing_is_imported_twice() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let document = firebase_export("cut", 120);
    let export = write_export(dir.path(), "users.json", &document);
    // An earlier run stopped after recording the first 50 and making 20 of their accounts.
    let checked = server::migration::read_firebase_export(&export, time::OffsetDateTime::now_utc()).unwrap();
    app.parts.legacy.record_pending(&reference_params(), &checked.records[..50]).await.unwrap();
    app.parts.pool.import_users(&checked.records[..20]).await.unwrap();

    let report = import(&app, export, false).await;
    assert!(report.contains("Imported 120 users; skipped 0"), "{report}");
    for i in [0, 19, 20, 49, 50, 119] {
        let email = format!("cut{i}@example.com");
        assert_eq!(state_of(&app, &email).await, Some(LegacyState::Active), "{email}");
    }
    assert_eq!(sign_in_status(&app, "cut3@example.com", &password_of(3)).await, StatusCode::OK);
    assert_eq!(sign_in_status(&app, "cut30@example.com", &password_of(30)).await, StatusCode::OK);
    let listed = app.service.list_users().await.unwrap();
    let ours = listed.iter().filter(|u| u.email.as_str().starts_with("cut")).count();
    assert_eq!(ours, 120, "one account each");
}

#[tokio::test]
async fn an_address_with_an_account_of_its_own_is_left_alone_and_reported() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    app.invited_user("taken0@example.com").await;
    let export = write_export(dir.path(), "users.json", &firebase_export("taken", 3));
    let report = import(&app, export.clone(), false).await;
    assert!(report.contains("Imported 2 users; skipped 0 already imported; rejected 1"), "{report}");
    let rejects = std::fs::read_to_string(dir.path().join("users.json.rejected.csv")).unwrap();
    assert!(rejects.contains("taken-uid-0") && rejects.contains("already exists"), "{rejects}");
    assert!(!rejects.contains("salt") && !rejects.contains(SIGNER_KEY), "{rejects}");
    // The Firebase password does not open the existing account; its own does.
    assert_eq!(sign_in_status(&app, "taken0@example.com", &password_of(0)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_status(&app, "taken0@example.com", PASSWORD).await, StatusCode::OK);
    assert_eq!(state_of(&app, "taken0@example.com").await, None);
}

#[tokio::test]
async fn users_without_a_password_or_with_a_weak_one_choose_a_new_one_by_recovery() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let params = reference_params();
    let weak_salt = b"weak-salt".to_vec();
    let document = json!({ "users": [
        { "localId": "g1", "email": "google-only@example.com", "emailVerified": true,
          "providerUserInfo": [{ "providerId": "google.com" }] },
        { "localId": "w1", "email": "weak@example.com", "emailVerified": true,
          "passwordHash": STANDARD.encode(params.hash("abc123", &weak_salt)), "salt": STANDARD.encode(&weak_salt) },
        { "localId": "d1", "email": "off@example.com", "emailVerified": true, "disabled": true,
          "passwordHash": STANDARD.encode(params.hash(&password_of(0), &weak_salt)), "salt": STANDARD.encode(&weak_salt) },
    ]});
    let export = write_export(dir.path(), "users.json", &document);
    let report = import(&app, export, false).await;
    assert!(report.contains("Imported 3 users"), "{report}");

    // No password: nothing signs in, and recovery sets one.
    assert_eq!(sign_in_status(&app, "google-only@example.com", "").await, StatusCode::BAD_REQUEST);
    assert_eq!(sign_in_status(&app, "google-only@example.com", PASSWORD).await, StatusCode::UNAUTHORIZED);
    let mails = app.mail_count("google-only@example.com").await;
    expect_json(app.post("/forgot_password", json!({ "email": "google-only@example.com" })).await, StatusCode::OK)
        .await;
    let code = recovery_code(&app, "google-only@example.com", mails + 1).await;
    let reset = json!({ "email": "google-only@example.com", "code": code, "password": PASSWORD });
    expect_json(app.post("/confirm_forgot_password", reset).await, StatusCode::OK).await;
    assert_eq!(sign_in_status(&app, "google-only@example.com", PASSWORD).await, StatusCode::OK);

    // A Firebase password below this service's policy: right, but it must be changed.
    let mails = app.mail_count("weak@example.com").await;
    let weak = app.post("/sign_in", json!({ "email": "weak@example.com", "password": "abc123" })).await;
    expect_error(weak, StatusCode::FORBIDDEN, "password_reset_required").await;
    let code = recovery_code(&app, "weak@example.com", mails + 1).await;
    let wrong = app.post("/sign_in", json!({ "email": "weak@example.com", "password": "abc124" })).await;
    expect_error(wrong, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let reset = json!({ "email": "weak@example.com", "code": code, "password": PASSWORD });
    expect_json(app.post("/confirm_forgot_password", reset).await, StatusCode::OK).await;
    assert_eq!(state_of(&app, "weak@example.com").await, Some(LegacyState::Retired));
    assert_eq!(sign_in_status(&app, "weak@example.com", "abc123").await, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_status(&app, "weak@example.com", PASSWORD).await, StatusCode::OK);

    // Disabled in Firebase, disabled here: told so only with the right password.
    assert_eq!(sign_in_status(&app, "off@example.com", "Wr0ng-password!").await, StatusCode::UNAUTHORIZED);
    let off = app.post("/sign_in", json!({ "email": "off@example.com", "password": password_of(0) })).await;
    expect_error(off, StatusCode::FORBIDDEN, "user_disabled").await;
}

async fn recovery_code(app: &TestApp, to: &str, count: usize) -> String {
    let mail = app.wait_for_mail(to, count).await;
    let after = mail.split_once("code is ").expect("a recovery code").1;
    after.chars().take_while(char::is_ascii_digit).collect()
}

pub fn invite_import_args(file: PathBuf, rotate_weak: bool, dry_run: bool) -> server::config::InviteImportArgs {
    server::config::InviteImportArgs {
        file: Some(file),
        from_dynamodb: None,
        email_attr: "email".into(),
        code_attr: "accessCode".into(),
        expiry_attr: None,
        inviter_attr: None,
        rotate_weak,
        dry_run,
        rejects: None,
    }
}

pub async fn import_invitations(app: &TestApp, args: &server::config::InviteImportArgs) -> String {
    let mut out = Vec::new();
    server::cli::import_invitations(&app.service, args, &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn invitations_from_the_old_system_keep_their_codes_and_weak_ones_can_be_replaced() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    app.invited_user("old-boss@example.com").await;
    let expiry = (time::OffsetDateTime::now_utc() + time::Duration::days(3)).unix_timestamp();
    let csv = format!(
        "email,code,expires_at,inviter\n\
         strong@example.com,  Beta-2023-q7Xz-Lp9W  ,{expiry},old-boss@example.com\n\
         digits@example.com,482913,,\n\
         gone@example.com,Zz9-Yy8-Xx7-Ww6,1600000000,\n\
         orphan@example.com,Qq1-Rr2-Ss3-Tt4,,nobody@example.com\n\
         old-boss@example.com,Mm1-Nn2-Oo3-Pp4,,\n"
    );
    let file = dir.path().join("invitations.csv");
    std::fs::write(&file, csv).unwrap();

    let dry = import_invitations(&app, &invite_import_args(file.clone(), false, true)).await;
    assert!(dry.contains("Would import 2 invitations"), "{dry}");
    assert_eq!(app.mail_count("digits@example.com").await, 0);

    let report = import_invitations(&app, &invite_import_args(file.clone(), false, false)).await;
    assert!(
        report.contains("Imported 2 invitations; replaced 0 weak codes; skipped 1 already there; rejected 2"),
        "{report}"
    );
    assert!(report.contains("1 of the imported codes look guessable"), "{report}");
    let rejects = std::fs::read_to_string(dir.path().join("invitations.csv.rejected.csv")).unwrap();
    assert!(rejects.contains("expired before the import") && rejects.contains("nobody@example.com has no account"));
    assert!(!rejects.contains("Zz9") && !rejects.contains("Qq1"), "no code in the rejects: {rejects}");
    assert_eq!(app.mail_count("strong@example.com").await, 0, "nothing is mailed: they have their code");

    // The old code, exactly as issued (blanks aside), signs up; who invited whom is kept.
    let wrong_case = app.sign_up("strong@example.com", PASSWORD, "BETA-2023-Q7XZ-LP9W").await;
    expect_error(wrong_case, StatusCode::FORBIDDEN, "invalid_access_code").await;
    let signed_up = app.sign_up("strong@example.com", PASSWORD, " Beta-2023-q7Xz-Lp9W").await;
    let body = expect_json(signed_up, StatusCode::OK).await;
    assert_eq!(body["userConfirmed"], true);
    let tokens = app.sign_in("strong@example.com", PASSWORD).await;
    let me = expect_json(app.get_auth("/me", tokens["accessToken"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_ne!(me["invitedBy"], "operator", "{me}");

    // Again, with --rotate-weak: the six-digit code is replaced by one of ours, mailed.
    let again = import_invitations(&app, &invite_import_args(file.clone(), true, false)).await;
    assert!(again.contains("Imported 0 invitations; replaced 0 weak codes; skipped 3"), "{again}");
    // (It was imported before, so it stays; a fresh one is rotated.)
    let fresh = dir.path().join("more.jsonl");
    std::fs::write(&fresh, "{\"email\": \"pin@example.com\", \"accessCode\": 1234}\n").unwrap();
    let rotated = import_invitations(&app, &invite_import_args(fresh.clone(), true, false)).await;
    assert!(rotated.contains("Imported 0 invitations; replaced 1 weak codes"), "{rotated}");
    expect_error(app.sign_up("pin@example.com", PASSWORD, "1234").await, StatusCode::FORBIDDEN, "invalid_access_code")
        .await;
    let new_code = app.access_code("pin@example.com").await;
    expect_json(app.sign_up("pin@example.com", PASSWORD, &new_code).await, StatusCode::OK).await;
    // The weak one imported without --rotate-weak works as issued.
    expect_json(app.sign_up("digits@example.com", PASSWORD, "482913").await, StatusCode::OK).await;
}
