//! The invitation state machine.
//!
//! ```text
//!            reserve (right email + code, not expired)
//!   Pending ─────────────────────────────────────────▶ Reserved ──complete(sub)──▶ Redeemed
//!     ▲  │ ◀──────────── release (sign-up failed) ─────────┘  │
//!     │  │ ◀──── settle_lapsed (lease over, no confirmed user) ───┘  (lease over, user confirmed → Redeemed)
//!     │  └──revoke──▶ Revoked
//!     └──resend: new code, new expiry (Pending only)
//! ```
//! "Expired" is not stored: a Pending invitation whose `expires_at` has passed
//! is expired, so no clock-driven job has to run for expiry to take effect.
//! Storage applies each arrow as a conditional write on the `from` state.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::{CodeHash, Email, Error, ReservationNonce, UserSub};

/// How long a sign-up may hold an invitation before another attempt may use it.
pub const RESERVATION_LEASE: Duration = Duration::seconds(60);
pub const DEFAULT_INVITATION_TTL: Duration = Duration::days(7);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InvitationId(String);

impl InvitationId {
    pub fn new(id: String) -> Self {
        Self(id)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvitationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// What storage records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredStatus {
    Pending,
    Reserved,
    Redeemed,
    Revoked,
}

impl StoredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Reserved => "reserved",
            Self::Redeemed => "redeemed",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "reserved" => Self::Reserved,
            "redeemed" => Self::Redeemed,
            "revoked" => Self::Revoked,
            _ => return None,
        })
    }
}

/// What people see. A reservation is an internal detail of an in-flight sign-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    Pending,
    Redeemed,
    Revoked,
    Expired,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Redeemed => "redeemed",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "pending" => Self::Pending,
            "redeemed" => Self::Redeemed,
            "revoked" => Self::Revoked,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// Who sent an invitation; operators (the CLI) have no quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inviter {
    Operator,
    User(UserSub),
}

#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: InvitationId,
    pub email: Email,
    pub code_hash: CodeHash,
    pub status: StoredStatus,
    pub inviter: Inviter,
    /// Invites the invitee may send once signed up; `None` means the server default.
    pub invitee_quota: Option<u32>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub reserved_until: Option<OffsetDateTime>,
    pub redeemed_by: Option<UserSub>,
    pub redeemed_at: Option<OffsetDateTime>,
}

impl Invitation {
    pub fn status_at(&self, now: OffsetDateTime) -> InvitationStatus {
        match self.status {
            StoredStatus::Redeemed => InvitationStatus::Redeemed,
            StoredStatus::Revoked => InvitationStatus::Revoked,
            StoredStatus::Pending | StoredStatus::Reserved if now >= self.expires_at => InvitationStatus::Expired,
            StoredStatus::Pending | StoredStatus::Reserved => InvitationStatus::Pending,
        }
    }

    /// A sign-up reserved this invitation and neither finished nor gave it back in time.
    pub fn reservation_lapsed(&self, now: OffsetDateTime) -> bool {
        self.status == StoredStatus::Reserved && !self.reserved_until.is_some_and(|until| lease_live(until, now))
    }

    /// Whether `reservation` still holds this invitation: the same reservation
    /// (fenced by its `until`), for this email, and its lease not yet over.
    /// The embedded pool asks this before confirming a sign-up.
    pub fn is_held_by(&self, reservation: &Reservation, now: OffsetDateTime) -> bool {
        self.id == reservation.invitation_id
            && self.email == reservation.email
            && self.status == StoredStatus::Reserved
            && self.reserved_until == Some(reservation.until)
            && lease_live(reservation.until, now)
    }

    /// Whether this invitation still keeps another from being sent to its email.
    pub fn blocks_email(&self, now: OffsetDateTime) -> bool {
        email_blocked(self.status, self.expires_at, self.reserved_until, now)
    }

    /// A completion that found the invitation no longer reserved: fine if this
    /// very user already redeemed it (the step is idempotent), an error otherwise.
    pub fn check_already_completed_by(&self, sub: &UserSub) -> Result<(), Error> {
        match (&self.status, &self.redeemed_by) {
            (StoredStatus::Redeemed, Some(by)) if by == sub => Ok(()),
            _ => Err(Error::unexpected("invitation was not reserved when completing a sign-up")),
        }
    }

    /// When the current reservation was taken (its lease runs from then).
    pub fn reserved_at(&self) -> Option<OffsetDateTime> {
        self.reserved_until.map(|until| until - RESERVATION_LEASE)
    }

    /// The check made once the right email and code were presented: may this
    /// invitation be reserved for a sign-up now? A reservation, live or
    /// lapsed, is reported before expiry: a lapsed one must be settled first
    /// (storage reports it), or it would stay reserved forever once expired.
    pub fn check_redeemable(&self, now: OffsetDateTime) -> Result<(), Error> {
        match self.status {
            StoredStatus::Redeemed => Err(Error::InvitationRedeemed),
            StoredStatus::Revoked => Err(Error::InvitationRevoked),
            StoredStatus::Reserved => Err(Error::InvitationInUse),
            StoredStatus::Pending if now >= self.expires_at => Err(Error::InvitationExpired),
            StoredStatus::Pending => Ok(()),
        }
    }

    /// The right email and code were presented: may storage reserve it now?
    /// `Lapsed` means an earlier sign-up's lease ran out unsettled; the caller
    /// must settle it first (see `ReserveOutcome::Lapsed`).
    pub fn check_reservable(&self, now: OffsetDateTime) -> Result<Reservable, Error> {
        match self.check_redeemable(now) {
            Ok(()) => Ok(Reservable::Now),
            Err(Error::InvitationInUse) if self.reservation_lapsed(now) => Ok(Reservable::Lapsed),
            Err(e) => Err(e),
        }
    }

    /// The reservation a sign-up holds once storage has reserved this invitation at `now`.
    pub fn reservation(&self, now: OffsetDateTime, nonce: ReservationNonce) -> Reservation {
        Reservation {
            nonce,
            invitation_id: self.id.clone(),
            email: self.email.clone(),
            invitee_quota: self.invitee_quota,
            // Whole seconds, as stored: the reservation is later recognised by its `until`.
            until: whole_seconds(now + RESERVATION_LEASE),
        }
    }

    /// Resend rotates the code and restarts the clock; only pending (or merely expired) ones.
    pub fn check_resendable(&self) -> Result<(), Error> {
        match self.status {
            StoredStatus::Pending => Ok(()),
            StoredStatus::Reserved => Err(Error::InvitationInUse),
            StoredStatus::Redeemed => Err(Error::InvitationRedeemed),
            StoredStatus::Revoked => Err(Error::InvitationRevoked),
        }
    }

    pub fn check_revocable(&self) -> Result<(), Error> {
        self.check_resendable()
    }
}

/// Whether a reservation lease that runs until `until` still holds at `now`.
/// Every liveness check (both stores, both pools, the PreSignUp trigger) comes here.
pub fn lease_live(until: OffsetDateTime, now: OffsetDateTime) -> bool {
    now < until
}

/// Whether an invitation in this state keeps the email from getting another:
/// a pending one until it expires; a reserved one until it expires *and* its
/// sign-up's lease is over. Also decides for DynamoDB's email lock, which
/// copies these three fields from its invitation.
pub fn email_blocked(
    status: StoredStatus,
    expires_at: OffsetDateTime,
    reserved_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    match status {
        StoredStatus::Pending => now < expires_at,
        StoredStatus::Reserved => now < expires_at || reserved_until.is_some_and(|until| lease_live(until, now)),
        StoredStatus::Redeemed | StoredStatus::Revoked => false,
    }
}

/// The invitation, among one email's, whose code hash matches. Every candidate
/// is compared (in constant time), so timing does not tell which one matched.
pub fn matching_code(candidates: Vec<Invitation>, presented: &crate::PresentedCode) -> Option<Invitation> {
    let mut matched = None;
    for candidate in candidates {
        if presented.matches(&candidate.code_hash) && matched.is_none() {
            matched = Some(candidate);
        }
    }
    matched
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservable {
    Now,
    Lapsed,
}

/// What a sign-up holds between reserving an invitation and creating the user.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// Travels with this sign-up only (see `nonce`).
    pub nonce: ReservationNonce,
    pub invitation_id: InvitationId,
    pub email: Email,
    pub invitee_quota: Option<u32>,
    pub until: OffsetDateTime,
}

/// A new invitation, before storage assigns nothing more than what's here.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub id: InvitationId,
    pub email: Email,
    pub code_hash: CodeHash,
    pub inviter: Inviter,
    pub invitee_quota: Option<u32>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Invitation times are kept to the second (what both stores hold), so what a
/// store returns after a write equals what a later read gives.
pub fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// What storage holds right after inserting a new invitation: pending, untouched.
impl From<NewInvitation> for Invitation {
    fn from(new: NewInvitation) -> Self {
        Self {
            id: new.id,
            email: new.email,
            code_hash: new.code_hash,
            status: StoredStatus::Pending,
            inviter: new.inviter,
            invitee_quota: new.invitee_quota,
            created_at: new.created_at,
            expires_at: new.expires_at,
            reserved_until: None,
            redeemed_by: None,
            redeemed_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn invitation(status: StoredStatus) -> Invitation {
        Invitation {
            id: InvitationId::new("i".into()),
            email: Email::parse("a@example.com").unwrap(),
            code_hash: CodeHash::from_bytes(&[0; 32]).unwrap(),
            status,
            inviter: Inviter::Operator,
            invitee_quota: None,
            created_at: datetime!(2026-01-01 0:00 UTC),
            expires_at: datetime!(2026-01-08 0:00 UTC),
            reserved_until: None,
            redeemed_by: None,
            redeemed_at: None,
        }
    }

    #[test]
    fn expiry_is_derived_from_time() {
        let inv = invitation(StoredStatus::Pending);
        assert_eq!(inv.status_at(datetime!(2026-01-07 23:59 UTC)), InvitationStatus::Pending);
        assert_eq!(inv.status_at(datetime!(2026-01-08 0:00 UTC)), InvitationStatus::Expired);
        assert!(matches!(inv.check_redeemable(datetime!(2026-01-09 0:00 UTC)), Err(Error::InvitationExpired)));
    }

    #[test]
    fn terminal_states_refuse_redemption() {
        let now = datetime!(2026-01-02 0:00 UTC);
        assert!(matches!(invitation(StoredStatus::Redeemed).check_redeemable(now), Err(Error::InvitationRedeemed)));
        assert!(matches!(invitation(StoredStatus::Revoked).check_redeemable(now), Err(Error::InvitationRevoked)));
        assert!(invitation(StoredStatus::Pending).check_redeemable(now).is_ok());
        assert!(matches!(invitation(StoredStatus::Reserved).check_redeemable(now), Err(Error::InvitationInUse)));
    }

    #[test]
    fn a_reservation_holds_until_its_lease_ends_and_only_for_its_holder() {
        let now = datetime!(2026-01-02 0:00 UTC);
        let mut inv = invitation(StoredStatus::Pending);
        let reservation = inv.reservation(now, ReservationNonce::generate(&mut rand::rng()));
        inv.status = StoredStatus::Reserved;
        inv.reserved_until = Some(reservation.until);
        assert!(inv.is_held_by(&reservation, now));
        assert!(!inv.reservation_lapsed(now));
        let at_end = reservation.until;
        assert!(!inv.is_held_by(&reservation, at_end), "the lease ends at `until`");
        assert!(inv.reservation_lapsed(at_end));
        let mut other = reservation.clone();
        other.until += Duration::seconds(1);
        assert!(!inv.is_held_by(&other, now), "another reservation of the same invitation");
    }

    #[test]
    fn an_invitation_blocks_its_email_while_usable_or_held() {
        let expiry = datetime!(2026-01-08 0:00 UTC);
        let before = expiry - Duration::seconds(1);
        let mut inv = invitation(StoredStatus::Pending);
        assert!(inv.blocks_email(before));
        assert!(!inv.blocks_email(expiry));
        inv.status = StoredStatus::Reserved;
        inv.reserved_until = Some(expiry + Duration::seconds(30));
        assert!(inv.blocks_email(expiry), "a sign-up still holds it past expiry");
        assert!(!inv.blocks_email(expiry + Duration::seconds(30)));
        for status in [StoredStatus::Redeemed, StoredStatus::Revoked] {
            assert!(!invitation(status).blocks_email(before));
        }
    }

    #[test]
    fn completion_is_idempotent_for_the_same_user_only() {
        let mut inv = invitation(StoredStatus::Redeemed);
        inv.redeemed_by = Some(UserSub::new("u1".into()));
        assert!(inv.check_already_completed_by(&UserSub::new("u1".into())).is_ok());
        assert!(inv.check_already_completed_by(&UserSub::new("u2".into())).is_err());
        assert!(invitation(StoredStatus::Pending).check_already_completed_by(&UserSub::new("u1".into())).is_err());
    }

    #[test]
    fn a_lapsed_reservation_is_reported_even_after_expiry() {
        let mut inv = invitation(StoredStatus::Reserved);
        inv.reserved_until = Some(datetime!(2026-01-07 23:59 UTC));
        let after_expiry = datetime!(2026-01-09 0:00 UTC);
        assert!(inv.reservation_lapsed(after_expiry));
        assert!(matches!(inv.check_redeemable(after_expiry), Err(Error::InvitationInUse)));
        assert_eq!(inv.check_reservable(after_expiry).unwrap(), Reservable::Lapsed);
    }
}
