//! Single use under contention.

use futures::future::join_all;
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_sign_ups_with_one_code_create_exactly_one_user() {
    // Limits are not what this test is about: let all fifty through to storage.
    let app = spawn_app_with(|c| {
        c.attempt_limits.per_client = 1_000;
        c.attempt_limits.per_email = 1_000;
    })
    .await;
    app.operator_invite("zoe@example.com").await;
    let code = app.access_code("zoe@example.com").await;

    let attempts = (0..50).map(|i| {
        let (app, code) = (&app, code.clone());
        async move { app.sign_up("zoe@example.com", &format!("{PASSWORD}{i}"), &code).await.status() }
    });
    let statuses = join_all(attempts).await;
    let successes = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(successes, 1, "{statuses:?}");
    // The others were told the invitation is taken, never that something broke.
    assert!(
        statuses.iter().all(|s| [StatusCode::OK, StatusCode::CONFLICT, StatusCode::FORBIDDEN].contains(s)),
        "{statuses:?}"
    );
    let users = app.parts.pool.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    let invitation =
        app.parts.store.latest_for_email(&domain::Email::parse("zoe@example.com").unwrap()).await.unwrap().unwrap();
    assert_eq!(invitation.status, domain::StoredStatus::Redeemed);
    assert_eq!(invitation.redeemed_by.as_ref(), Some(&users[0].sub));
}

#[tokio::test]
async fn a_lapsed_reservation_is_settled_before_the_code_is_used_again() {
    let app = spawn_app().await;
    app.operator_invite("abe@example.com").await;
    let code = app.access_code("abe@example.com").await;
    let email = domain::Email::parse("abe@example.com").unwrap();
    let hash = app.parts.codes.present(&code);
    // A sign-up reserved the invitation and then died without creating a user.
    let outcome = app
        .parts
        .store
        .reserve(
            &email,
            &hash,
            domain::ReservationNonce::generate(&mut rand::rng()),
            server::clock::Clock::now(&app.clock),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, domain::ReserveOutcome::Reserved(_)));
    expect_error(app.sign_up("abe@example.com", PASSWORD, &code).await, StatusCode::CONFLICT, "invitation_in_use")
        .await;
    // After the lease, the next attempt finds no user, puts it back and goes ahead.
    app.clock.advance(domain::invitation::RESERVATION_LEASE + time::Duration::seconds(1));
    expect_json(app.sign_up("abe@example.com", PASSWORD, &code).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_reservation_that_lapses_and_expires_does_not_lock_the_email_out() {
    let app = spawn_app().await;
    let first = app.operator_invite("bo@example.com").await;
    let code = app.access_code("bo@example.com").await;
    let email = domain::Email::parse("bo@example.com").unwrap();
    let hash = app.parts.codes.present(&code);
    let now = server::clock::Clock::now(&app.clock);
    app.parts.store.reserve(&email, &hash, domain::ReservationNonce::generate(&mut rand::rng()), now).await.unwrap();
    // The sign-up died and nobody came back before the invitation expired.
    app.clock.advance(time::Duration::days(8));
    expect_error(app.sign_up("bo@example.com", PASSWORD, &code).await, StatusCode::FORBIDDEN, "invitation_expired")
        .await;
    assert_eq!(app.parts.store.get(&first.id).await.unwrap().unwrap().status, domain::StoredStatus::Pending);
    // The operator can invite the address again, and the new code works.
    app.operator_invite("bo@example.com").await;
    let new_code = app.access_code("bo@example.com").await;
    expect_json(app.sign_up("bo@example.com", PASSWORD, &new_code).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_burst_of_parallel_wrong_passwords_is_still_limited() {
    let app = spawn_app_with(|c| c.attempt_limits.per_email = 5).await;
    app.invited_user("cy@example.com").await;
    let guesses = (0..20).map(|i| {
        let app = &app;
        async move {
            app.post("/sign_in", serde_json::json!({ "email": "cy@example.com", "password": format!("Wr0ng-{i}!") }))
                .await
                .status()
        }
    });
    let statuses = join_all(guesses).await;
    let answered = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert_eq!(answered, 5, "only five guesses were checked: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 15);
}

#[tokio::test]
async fn an_open_sign_up_is_not_confirmed_by_an_invitees_reservation() {
    let app = spawn_app_with(|c| c.service.policy = domain::SignUpPolicy::Open).await;
    app.operator_invite("held@example.com").await;
    let code = app.access_code("held@example.com").await;
    let email = domain::Email::parse("held@example.com").unwrap();
    let hash = app.parts.codes.present(&code);
    // The invitee's sign-up holds the invitation (between reserving and creating the user)…
    let now = server::clock::Clock::now(&app.clock);
    let outcome = app
        .parts
        .store
        .reserve(&email, &hash, domain::ReservationNonce::generate(&mut rand::rng()), now)
        .await
        .unwrap();
    let domain::ReserveOutcome::Reserved(reservation) = outcome else { panic!("not reserved") };
    // …yet a code-less sign-up for the same email is not confirmed by it: the
    // reservation belongs to the sign-up that carries its nonce.
    let intruder = app.post("/sign_up", serde_json::json!({ "email": "held@example.com", "password": PASSWORD })).await;
    let intruder = expect_json(intruder, StatusCode::OK).await;
    assert_eq!(intruder["userConfirmed"], false);
    let squatter = app.parts.pool.find_by_email(&email).await.unwrap().unwrap();
    assert_eq!(squatter.status, domain::UserStatus::Unconfirmed);
    // The invitee then signs up with the code, and the unconfirmed account gives way.
    app.parts.store.release(&reservation).await.unwrap();
    let invitee = expect_json(app.sign_up("held@example.com", PASSWORD, &code).await, StatusCode::OK).await;
    assert_eq!(invitee["userConfirmed"], true);
    assert_ne!(invitee["userSub"], intruder["userSub"]);
}
