//! What only the AWS backend has: the Rust PreSignUp Lambda confirming invited
//! users (and only them), SECRET_HASH, and the sign-up saga against Cognito.

use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::UserStatusType;
use reqwest::StatusCode;

use crate::helpers::*;

/// These tests need the emulator: they are `#[ignore]`d, so a plain
/// `cargo test` reports them as ignored, and scripts/test.sh runs them with
/// `--include-ignored` and `INVITEGATE_TEST_BACKEND=aws`. Run any other way
/// they fail rather than pass without testing anything.
async fn aws_app(configure: impl Fn(&mut server::startup::AppConfig)) -> TestApp {
    assert_eq!(
        test_backend(),
        TestBackend::Aws,
        "this test needs the emulator: run ./scripts/test.sh (or set INVITEGATE_TEST_BACKEND=aws as it does)"
    );
    spawn_app_with(configure).await
}

fn email_verified(
    user: &aws_sdk_cognitoidentityprovider::operation::admin_get_user::AdminGetUserOutput,
) -> Option<&str> {
    user.user_attributes().iter().find(|a| a.name() == "email_verified").and_then(|a| a.value())
}

#[tokio::test]
#[ignore = "needs the AWS emulator: scripts/test.sh runs it"]
async fn the_rust_trigger_confirms_invited_users_and_verifies_their_email() {
    let app = aws_app(|_| {}).await;
    let aws = app.aws.as_ref().unwrap();
    app.operator_invite("lambda-ok@example.com").await;
    let code = app.access_code("lambda-ok@example.com").await;
    let body = expect_json(app.sign_up("lambda-ok@example.com", PASSWORD, &code).await, StatusCode::OK).await;
    // `userConfirmed` is Cognito's own SignUp answer: only a trigger can make it true.
    assert_eq!(body["userConfirmed"], true);
    let user = aws
        .cognito()
        .admin_get_user()
        .user_pool_id(&aws.config.user_pool_id)
        .username("lambda-ok@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(user.user_status(), Some(&UserStatusType::Confirmed));
    assert_eq!(email_verified(&user), Some("true"));
    assert_eq!(user.username(), body["userSub"].as_str().unwrap());
    // Cognito did not send its own confirmation code: nobody needs one.
    assert!(app.mails_to("lambda-ok@example.com").await.iter().all(|m| !m.contains("verification code")));
}

#[tokio::test]
#[ignore = "needs the AWS emulator: scripts/test.sh runs it"]
async fn a_direct_cognito_sign_up_without_an_invitation_is_rejected_by_the_trigger() {
    let app = aws_app(|_| {}).await;
    let aws = app.aws.as_ref().unwrap();
    let email = "lambda-no@example.com";
    let error = aws.direct_sign_up(email, Some(aws.config.client_secret.expose()), None).await.unwrap_err();
    assert_eq!(error.code(), Some("UserLambdaValidationException"), "{error:?}");
    assert!(format!("{:?}", error.message()).contains("invitation only"), "{error:?}");
    let lookup = aws.cognito().admin_get_user().user_pool_id(&aws.config.user_pool_id).username(email).send().await;
    assert_eq!(lookup.unwrap_err().code(), Some("UserNotFoundException"));
}

#[tokio::test]
#[ignore = "needs the AWS emulator: scripts/test.sh runs it"]
async fn the_emulator_refuses_a_client_without_secret_hash() {
    let app = aws_app(|_| {}).await;
    let aws = app.aws.as_ref().unwrap();
    let email = "no-hash@example.com";
    let without = aws.direct_sign_up(email, None, None).await.unwrap_err();
    assert_eq!(without.code(), Some("NotAuthorizedException"), "{without:?}");
    let wrong = aws.direct_sign_up(email, Some("not-the-secret"), None).await.unwrap_err();
    assert_eq!(wrong.code(), Some("NotAuthorizedException"), "{wrong:?}");
}

#[tokio::test]
#[ignore = "needs the AWS emulator: scripts/test.sh runs it"]
async fn when_cognito_rejects_the_sign_up_the_invitation_goes_back_to_pending() {
    // Our own policy let through a password Cognito's (the default) refuses: no symbol.
    let app = aws_app(|c| c.service.password_policy.require_symbol = false).await;
    app.operator_invite("saga-back@example.com").await;
    let code = app.access_code("saga-back@example.com").await;
    let refused = app.sign_up("saga-back@example.com", "NoSymbol123", &code).await;
    let body = expect_error(refused, StatusCode::BAD_REQUEST, "invalid_password").await;
    assert!(!body["error"].as_str().unwrap().contains("Exception"), "no SDK text: {body}");
    let invitation = app
        .parts
        .store
        .latest_for_email(&domain::Email::parse("saga-back@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(invitation.status, domain::StoredStatus::Pending);
    expect_json(app.sign_up("saga-back@example.com", PASSWORD, &code).await, StatusCode::OK).await;
}

#[tokio::test]
#[ignore = "needs the AWS emulator: scripts/test.sh runs it"]
async fn a_stale_reservation_whose_user_was_created_is_settled_as_redeemed() {
    let app = aws_app(|_| {}).await;
    let aws = app.aws.as_ref().unwrap();
    let email = "saga-stale@example.com";
    app.operator_invite(email).await;
    let code = app.access_code(email).await;
    // A sign-up reserved the invitation and Cognito created the user, then the
    // service died before marking the invitation redeemed.
    let parsed = domain::Email::parse(email).unwrap();
    let hash = app.parts.codes.present(&code);
    let now = server::clock::Clock::now(&app.clock);
    let nonce = domain::ReservationNonce::generate(&mut rand::rng());
    app.parts.store.reserve(&parsed, &hash, nonce.clone(), now).await.unwrap();
    let secret = aws.config.client_secret.expose();
    let created = aws.direct_sign_up(email, Some(secret), Some(nonce.expose())).await.unwrap();
    assert!(created.user_confirmed(), "the trigger saw the reservation");
    // After the lease, the next attempt finds the user and settles the invitation as theirs.
    app.clock.advance(domain::invitation::RESERVATION_LEASE + time::Duration::seconds(1));
    expect_error(app.sign_up(email, PASSWORD, &code).await, StatusCode::FORBIDDEN, "invitation_redeemed").await;
    let invitation = app.parts.store.latest_for_email(&parsed).await.unwrap().unwrap();
    assert_eq!(invitation.status, domain::StoredStatus::Redeemed);
    assert_eq!(invitation.redeemed_by.unwrap().as_str(), created.user_sub());
}

#[tokio::test]
#[ignore = "needs the AWS emulator: scripts/test.sh runs it"]
async fn a_direct_sign_up_during_a_live_reservation_is_not_confirmed_by_it() {
    let app = aws_app(|_| {}).await;
    let aws = app.aws.as_ref().unwrap();
    let email = "held-direct@example.com";
    app.operator_invite(email).await;
    let code = app.access_code(email).await;
    // An invitee's sign-up holds the invitation…
    let parsed = domain::Email::parse(email).unwrap();
    let hash = app.parts.codes.present(&code);
    let nonce = domain::ReservationNonce::generate(&mut rand::rng());
    let now = server::clock::Clock::now(&app.clock);
    app.parts.store.reserve(&parsed, &hash, nonce.clone(), now).await.unwrap();
    // …so a SignUp with the right SECRET_HASH but without its nonce, or with another, is refused.
    let secret = aws.config.client_secret.expose();
    let forged = domain::ReservationNonce::generate(&mut rand::rng());
    for presented in [None, Some(forged.expose())] {
        let error = aws.direct_sign_up(email, Some(secret), presented).await.unwrap_err();
        assert_eq!(error.code(), Some("UserLambdaValidationException"), "{error:?}");
    }
    let lookup = aws.cognito().admin_get_user().user_pool_id(&aws.config.user_pool_id).username(email).send().await;
    assert_eq!(lookup.unwrap_err().code(), Some("UserNotFoundException"));
    // The SignUp that carries the reservation's own nonce is confirmed.
    let held = aws.direct_sign_up(email, Some(secret), Some(nonce.expose())).await.unwrap();
    assert!(held.user_confirmed());
}

#[tokio::test]
#[ignore = "needs the AWS emulator: scripts/test.sh runs it"]
async fn instances_of_the_service_share_their_attempt_counts() {
    let app = aws_app(|_| {}).await;
    let (second, _stop) = app.second_instance().await;
    let wrong = serde_json::json!({ "email": "shared-limit@example.com", "password": "Wr0ng-password" });
    for _ in 0..10 {
        expect_error(app.post("/sign_in", wrong.clone()).await, StatusCode::UNAUTHORIZED, "not_authorized").await;
    }
    // The other instance knows: the email's ten wrong passwords were counted in the table.
    let response = app.client.post(format!("{second}/sign_in")).json(&wrong).send().await.unwrap();
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}
