//! A model-based test of the invitation store: random sequences of create,
//! reserve, release, complete, revoke, rotate, settle and the passing of time,
//! applied to the backend's real store (SQLite, or DynamoDB on the emulator)
//! and, step by step, to the domain's state machine as the reference: each
//! step's outcome and the stored invitation afterwards must match the model.

use domain::invitation::{Reservable, whole_seconds};
use domain::{
    AccessCode, Email, Error, Invitation, InvitationId, Inviter, NewInvitation, QuotaCharge, Reservation,
    ReservationNonce, ReserveOutcome, StoredStatus, UserSub,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use time::{Duration, OffsetDateTime};

use crate::helpers::*;

#[derive(Debug, Clone)]
enum Op {
    Create,
    Reserve {
        right_code: bool,
    },
    Release,
    Complete,
    Revoke,
    Rotate,
    Settle {
        user_created: bool,
    },
    /// Minutes: enough to cross the 60-second lease and the one-hour expiry used here.
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Create),
        4 => any::<bool>().prop_map(|right_code| Op::Reserve { right_code }),
        2 => Just(Op::Release),
        2 => Just(Op::Complete),
        1 => Just(Op::Revoke),
        1 => Just(Op::Rotate),
        1 => any::<bool>().prop_map(|user_created| Op::Settle { user_created }),
        2 => (1i64..90).prop_map(Op::Advance),
    ]
}

/// What the model knows about the newest invitation of the case's email.
struct Current {
    model: Invitation,
    code: AccessCode,
    /// The sign-up's reservation and the user it will create.
    reservation: Option<(Reservation, UserSub)>,
}

fn kind(result: &Result<(), Error>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(Error::Unexpected(_)) => "unexpected".into(),
        Err(e) => format!("{e:?}"),
    }
}

async fn run_case(app: &TestApp, case: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let store = &app.parts.store;
    let codes = &app.parts.codes;
    let email = Email::parse(&format!("model-{case}-{}@example.com", uuid::Uuid::new_v4().simple())).unwrap();
    let mut now = whole_seconds(OffsetDateTime::now_utc());
    let mut current: Option<Current> = None;
    for (step, op) in ops.iter().enumerate() {
        let context = format!("step {step} {op:?}");
        match op {
            Op::Create => {
                let blocked = current.as_ref().is_some_and(|c| c.model.blocks_email(now));
                let code = AccessCode::generate(&mut rand::rng());
                let new = NewInvitation {
                    id: InvitationId::new(uuid::Uuid::new_v4().to_string()),
                    email: email.clone(),
                    code_hash: codes.hash_access_code(&code),
                    inviter: Inviter::Operator,
                    invitee_quota: None,
                    created_at: now,
                    expires_at: now + Duration::hours(1),
                };
                let result = store.create(new.clone(), QuotaCharge::None, now).await;
                if blocked {
                    prop_assert!(matches!(result, Err(Error::AlreadyInvited)), "{context}: {result:?}");
                } else {
                    prop_assert!(result.is_ok(), "{context}: {result:?}");
                    current = Some(Current { model: Invitation::from(new), code, reservation: None });
                }
            }
            Op::Reserve { right_code } => {
                let presented = match (&current, right_code) {
                    (Some(c), true) => codes.present(&c.code.expose_grouped()),
                    _ => codes.present(&AccessCode::generate(&mut rand::rng()).expose_grouped()),
                };
                let expected = match (&current, right_code) {
                    (Some(c), true) => c.model.check_reservable(now),
                    _ => Err(Error::InvalidAccessCode),
                };
                let result = store.reserve(&email, &presented, ReservationNonce::generate(&mut rand::rng()), now).await;
                match (expected, result) {
                    (Ok(Reservable::Now), Ok(ReserveOutcome::Reserved(reservation))) => {
                        let c = current.as_mut().unwrap();
                        c.model.status = StoredStatus::Reserved;
                        c.model.reserved_until = Some(reservation.until);
                        c.reservation = Some((reservation, UserSub::new(uuid::Uuid::new_v4().to_string())));
                    }
                    (Ok(Reservable::Lapsed), Ok(ReserveOutcome::Lapsed(_))) => {}
                    (Err(expected), Err(actual)) => {
                        prop_assert_eq!(format!("{expected:?}"), format!("{actual:?}"), "{}", context);
                    }
                    (expected, actual) => prop_assert!(false, "{context}: model {expected:?}, store {actual:?}"),
                }
            }
            Op::Release => {
                let Some(c) = current.as_mut() else { continue };
                let Some((reservation, _)) = c.reservation.take() else { continue };
                let result = store.release(&reservation).await;
                prop_assert!(result.is_ok(), "{context}: {result:?}");
                if c.model.status == StoredStatus::Reserved && c.model.reserved_until == Some(reservation.until) {
                    c.model.status = StoredStatus::Pending;
                    c.model.reserved_until = None;
                }
            }
            Op::Complete => {
                let Some(c) = current.as_mut() else { continue };
                let Some((reservation, sub)) = c.reservation.clone() else { continue };
                let held =
                    c.model.status == StoredStatus::Reserved && c.model.reserved_until == Some(reservation.until);
                let expected = if held { Ok(()) } else { c.model.check_already_completed_by(&sub) };
                let result = store.complete(&reservation, &sub, now).await;
                prop_assert_eq!(kind(&expected), kind(&result), "{}", context);
                if held {
                    c.model.status = StoredStatus::Redeemed;
                    c.model.reserved_until = None;
                    c.model.redeemed_by = Some(sub);
                }
            }
            Op::Revoke => {
                let Some(c) = current.as_mut() else { continue };
                let expected = c.model.check_revocable();
                let result = store.revoke(&c.model.id, now).await.map(|_| ());
                prop_assert_eq!(expected.is_ok(), result.is_ok(), "{}: {:?}", context, result);
                if expected.is_ok() {
                    c.model.status = StoredStatus::Revoked;
                }
            }
            Op::Rotate => {
                let Some(c) = current.as_mut() else { continue };
                let expected = c.model.check_resendable();
                let code = AccessCode::generate(&mut rand::rng());
                let (hash, expires_at) = (codes.hash_access_code(&code), now + Duration::hours(1));
                let result = store.rotate_code(&c.model.id, hash.clone(), expires_at, now).await.map(|_| ());
                prop_assert_eq!(expected.is_ok(), result.is_ok(), "{}: {:?}", context, result);
                if expected.is_ok() {
                    c.model.code_hash = hash;
                    c.model.expires_at = expires_at;
                    c.code = code;
                }
            }
            Op::Settle { user_created } => {
                let Some(c) = current.as_mut() else { continue };
                let sub = UserSub::new(uuid::Uuid::new_v4().to_string());
                let created = user_created.then_some(&sub);
                let result = store.settle_lapsed(&c.model.id, created, now).await;
                prop_assert!(result.is_ok(), "{context}: {result:?}");
                if c.model.reservation_lapsed(now) {
                    c.model.reserved_until = None;
                    c.reservation = None;
                    if *user_created {
                        c.model.status = StoredStatus::Redeemed;
                        c.model.redeemed_by = Some(sub);
                    } else {
                        c.model.status = StoredStatus::Pending;
                    }
                }
            }
            Op::Advance(minutes) => now += Duration::minutes(*minutes),
        }
        if let Some(c) = &current {
            let stored = store.get(&c.model.id).await.unwrap();
            prop_assert!(stored.is_some(), "{context}: the invitation is gone");
            let stored = stored.unwrap();
            prop_assert_eq!(stored.status, c.model.status, "{}", context);
            prop_assert_eq!(stored.reserved_until, c.model.reserved_until, "{}", context);
            prop_assert_eq!(stored.expires_at, c.model.expires_at, "{}", context);
            prop_assert!(stored.code_hash == c.model.code_hash, "{context}: code hash differs");
            prop_assert_eq!(&stored.redeemed_by, &c.model.redeemed_by, "{}", context);
            prop_assert_eq!(stored.status_at(now), c.model.status_at(now), "{}", context);
        }
    }
    Ok(())
}

#[test]
fn the_invitation_store_follows_the_domains_state_machine() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    // Fewer cases against the emulator, where every step is a few HTTP calls.
    let cases = if app.backend == TestBackend::Aws { 24 } else { 96 };
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&prop::collection::vec(op(), 1..30), |ops| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime.block_on(run_case(&app, n, &ops))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    drop(app);
}
