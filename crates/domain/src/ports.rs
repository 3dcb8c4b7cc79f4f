//! The traits each backend implements. They speak only this crate's types.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::access_request::AccessRequest;
use crate::firebase::{AccountImport, FirebaseHashParams, ImportedUser, LegacyPassword, LegacyState};
use crate::{
    AccessClaims, CodeHash, Email, Error, Invitation, InvitationId, Inviter, NewInvitation, Password, PresentedCode,
    Reservation, ReservationNonce, SecretString, SignUpOutcome, SignUpRequest, Tokens, UserRecord, UserSub,
};

/// Who pays for a new invitation.
#[derive(Debug, Clone)]
pub enum QuotaCharge {
    /// The operator: unlimited.
    None,
    /// A user: one invite from their quota, which starts at `initial` the first time.
    User { sub: UserSub, initial: u32 },
}

#[derive(Debug)]
pub enum ReserveOutcome {
    Reserved(Reservation),
    /// The code matched an invitation whose earlier reservation ran out without
    /// finishing; the caller must find out whether that sign-up created a user
    /// ([`InvitationStore::settle_lapsed`]) before it can be reserved again.
    Lapsed(Invitation),
}

#[async_trait]
pub trait InvitationStore: Send + Sync {
    /// Inserts the invitation, refusing a second active one for the email and
    /// charging the quota in the same atomic step.
    async fn create(&self, new: NewInvitation, charge: QuotaCharge, now: OffsetDateTime) -> Result<Invitation, Error>;
    async fn get(&self, id: &InvitationId) -> Result<Option<Invitation>, Error>;
    /// The most recent invitation for this email, whatever its state.
    async fn latest_for_email(&self, email: &Email) -> Result<Option<Invitation>, Error>;
    /// Newest first; `inviter: None` lists all.
    async fn list(&self, inviter: Option<&Inviter>) -> Result<Vec<Invitation>, Error>;
    /// Pending → revoked; a user's quota gets the invite back.
    async fn revoke(&self, id: &InvitationId, now: OffsetDateTime) -> Result<Invitation, Error>;
    /// Pending → pending with a new code and a new expiry; the old code stops working.
    async fn rotate_code(
        &self,
        id: &InvitationId,
        code_hash: CodeHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Invitation, Error>;
    /// Finds the email's invitation whose code hash matches and moves it
    /// pending → reserved. Wrong email or code: `InvalidAccessCode`; right
    /// ones but unusable: the matching invitation error.
    async fn reserve(
        &self,
        email: &Email,
        presented: &PresentedCode,
        nonce: ReservationNonce,
        now: OffsetDateTime,
    ) -> Result<ReserveOutcome, Error>;
    /// Reserved → pending, after a sign-up that definitely created no user.
    async fn release(&self, reservation: &Reservation) -> Result<(), Error>;
    /// Reserved → redeemed by `sub`. Idempotent for the same sub.
    async fn complete(&self, reservation: &Reservation, sub: &UserSub, now: OffsetDateTime) -> Result<(), Error>;
    /// A lapsed reservation: redeemed by `created` if that sign-up made a user, else pending.
    async fn settle_lapsed(
        &self,
        id: &InvitationId,
        created: Option<&UserSub>,
        now: OffsetDateTime,
    ) -> Result<(), Error>;
    /// Whether the store can take a write now (for `/readyz`).
    async fn check_ready(&self) -> Result<(), Error>;
    /// Records a request for an invitation; `false` (and nothing written) if
    /// the email already has an open one.
    async fn open_access_request(&self, id: &str, email: &Email, now: OffsetDateTime) -> Result<bool, Error>;
    /// Every access request, newest first.
    async fn access_requests(&self) -> Result<Vec<AccessRequest>, Error>;
    async fn access_request(&self, id: &str) -> Result<Option<AccessRequest>, Error>;
    /// Open → approved or rejected (`NotFound`, or `AccessRequestDecided` if not open).
    async fn decide_access_request(
        &self,
        id: &str,
        approved: bool,
        now: OffsetDateTime,
    ) -> Result<AccessRequest, Error>;
    /// Up to `limit` invitations after `cursor`, for the operator's listing
    /// of any size (embedded: newest first; DynamoDB: in table order).
    async fn invitations_page(&self, limit: usize, cursor: Option<&str>) -> Result<Page<Invitation>, Error>;
    /// Revokes the invitations `inviter` sent that are still usable (their
    /// account is gone); how many.
    async fn revoke_pending_from(&self, inviter: &UserSub, now: OffsetDateTime) -> Result<u32, Error>;
    /// The user's place in the invitation tree, in one read.
    async fn standing(&self, sub: &UserSub, initial_quota: u32) -> Result<Standing, Error>;
}

/// One page of a listing; `next` continues it (an opaque cursor), `None` at the end.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// What the invitations say about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Invites they may still send (the initial quota if they never sent one).
    pub invites_remaining: u32,
    /// Who invited them, if they came in by invitation.
    pub invited_by: Option<Inviter>,
}

#[async_trait]
pub trait UserPool: Send + Sync {
    /// Whether the pool answers now (for `/readyz`).
    async fn check_ready(&self) -> Result<(), Error>;
    /// Deletes what can no longer be used (expired refresh tokens); how many.
    /// Pools that expire their own records (Cognito) do nothing.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, Error>;
    /// Removes an account that [`UserRecord::gives_way_to_invitation`], so an
    /// invited sign-up can take the address. Only unconfirmed accounts are
    /// removed, whatever the caller read before.
    async fn delete_unconfirmed(&self, user: &UserRecord) -> Result<(), Error>;
    /// Creates the user. The pool runs [`crate::presignup::decide`]: a user
    /// holding a reservation is confirmed with a verified email. An existing
    /// account with the email, of any status, answers `UserExists`.
    async fn sign_up(&self, request: SignUpRequest, now: OffsetDateTime) -> Result<SignUpOutcome, Error>;
    async fn confirm_sign_up(&self, email: &Email, code: &str, now: OffsetDateTime) -> Result<(), Error>;
    async fn resend_confirmation(&self, email: &Email, now: OffsetDateTime) -> Result<(), Error>;
    async fn sign_in(&self, email: &Email, password: &SecretString, now: OffsetDateTime) -> Result<Tokens, Error>;
    async fn refresh(&self, refresh_token: &SecretString, now: OffsetDateTime) -> Result<Tokens, Error>;
    async fn sign_out(&self, refresh_token: &SecretString, now: OffsetDateTime) -> Result<(), Error>;
    /// Sends a recovery code if a confirmed account has this email, and does
    /// nothing otherwise: the caller answers the same either way.
    async fn forgot_password(&self, email: &Email, now: OffsetDateTime) -> Result<(), Error>;
    /// Sets `password` if `code` is the email's live recovery code
    /// (`InvalidConfirmationCode` otherwise: wrong, expired, used or unknown),
    /// and signs the user out everywhere, as [`UserPool::global_sign_out`].
    async fn confirm_forgot_password(
        &self,
        email: &Email,
        code: &str,
        password: &Password,
        now: OffsetDateTime,
    ) -> Result<(), Error>;
    /// `NotAuthorized` unless `previous` is the current password.
    async fn change_password(
        &self,
        user: &UserRecord,
        access_token: &SecretString,
        previous: &SecretString,
        proposed: &Password,
        now: OffsetDateTime,
    ) -> Result<(), Error>;
    /// Revokes every refresh token of the user and records the time in
    /// `UserRecord::signed_out_at`, so `UserRecord::accepts` refuses the access
    /// tokens issued until then. A token issued afterwards must carry a later
    /// `iat` second: the pool stamps it so, or returns only once that second began.
    async fn global_sign_out(&self, user: &UserRecord, now: OffsetDateTime) -> Result<(), Error>;
    /// Disables (or enables again) the account. A disabled account's refresh
    /// tokens stop working; sign-in with its right password answers
    /// `UserDisabled`, with a wrong one `NotAuthorized` as always.
    async fn set_disabled(&self, user: &UserRecord, disabled: bool, now: OffsetDateTime) -> Result<(), Error>;
    /// `NotAuthorized` unless `password` is the account's password.
    async fn check_password(&self, user: &UserRecord, password: &SecretString) -> Result<(), Error>;
    /// Deletes the account and its sessions.
    async fn delete_user(&self, user: &UserRecord) -> Result<(), Error>;
    async fn verify_access_token(&self, token: &SecretString, now: OffsetDateTime) -> Result<AccessClaims, Error>;
    async fn find_by_email(&self, email: &Email) -> Result<Option<UserRecord>, Error>;
    async fn find_by_sub(&self, sub: &UserSub) -> Result<Option<UserRecord>, Error>;
    async fn list_users(&self) -> Result<Vec<UserRecord>, Error>;
    /// Up to `limit` accounts after `cursor` (a `Page::next` from before;
    /// `InvalidRequest` if it is not one), for listings of any size.
    async fn users_page(&self, limit: usize, cursor: Option<&str>) -> Result<Page<UserRecord>, Error>;
    /// The public keys that verify this pool's tokens, as a JWKS document.
    async fn jwks_json(&self) -> Result<Option<String>, Error>;
    /// Creates confirmed accounts for imported users, with no password that
    /// works (the service sets theirs at their first sign-in), their email's
    /// verification, creation time, disabled flag and Firebase uid. Answers
    /// one outcome per user, in order; an address already in use is left as it is.
    async fn import_users(&self, users: &[ImportedUser]) -> Result<Vec<AccountImport>, Error>;
    /// Sets the account's password without the old one (an imported user
    /// whose Firebase password was just checked); sessions are kept.
    async fn set_password(&self, user: &UserRecord, password: &Password, now: OffsetDateTime) -> Result<(), Error>;
}

/// Firebase passwords of imported users, kept until each one's first
/// sign-in (see `crate::firebase`). Keys are emails, compared without case.
#[async_trait]
pub trait LegacyPasswords: Send + Sync {
    /// The state of each of these emails that has a record.
    async fn legacy_states(&self, emails: &[Email]) -> Result<Vec<(Email, LegacyState)>, Error>;
    /// Records these users as `Pending`, with `params` for their hashes.
    /// Only called for emails without a record.
    async fn record_pending(&self, params: &FirebaseHashParams, users: &[ImportedUser]) -> Result<(), Error>;
    /// `Pending` → `Active`, once their accounts exist.
    async fn activate(&self, emails: &[Email]) -> Result<(), Error>;
    /// Drops a `Pending` record whose address turned out to be another account's.
    async fn forget_pending(&self, email: &Email) -> Result<(), Error>;
    /// The Firebase password to check for `email`, if its record is `Active` and has one.
    async fn active_password(&self, email: &Email) -> Result<Option<LegacyPassword>, Error>;
    /// `Active` → `Retired`, dropping the hash; does nothing for other states.
    async fn retire(&self, email: &Email) -> Result<(), Error>;
}

/// One email, as the outbox or SMTP/SES sends it.
#[derive(Clone)]
pub struct OutgoingEmail {
    pub to: Email,
    pub subject: String,
    /// Holds codes; redacted from `Debug`.
    pub text_body: String,
    /// The same message as HTML, sent beside the text as an alternative; holds codes too.
    pub html_body: Option<String>,
}

impl std::fmt::Debug for OutgoingEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text_body", &"<redacted>")
            .field("html_body", &self.html_body.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, message: &OutgoingEmail) -> Result<(), Error>;
}

/// A key attempts are counted against, and how many it may hold per window.
#[derive(Debug, Clone)]
pub struct AttemptKey {
    pub key: String,
    pub max: u32,
}

/// Counts attempts at secrets in fixed windows (`crate::limiter::next_step`),
/// where every instance of the service sees the same counts.
#[async_trait]
pub trait AttemptCounter: Send + Sync {
    /// Counts one attempt against every key, unless one of them is full:
    /// then `TooManyAttempts` (wait until the longest-full window ends), counting none.
    async fn begin(&self, keys: &[AttemptKey], window: time::Duration, now: OffsetDateTime) -> Result<(), Error>;
    /// Takes back an attempt counted at `at` (it was not a wrong guess), if its window is still current.
    async fn forgive(&self, keys: &[String], window: time::Duration, at: OffsetDateTime) -> Result<(), Error>;
}

/// What a backend hands the service: the ports and the key codes are hashed under.
#[derive(Clone)]
pub struct Adapters {
    pub store: std::sync::Arc<dyn InvitationStore>,
    pub legacy: std::sync::Arc<dyn LegacyPasswords>,
    pub pool: std::sync::Arc<dyn UserPool>,
    pub mailer: std::sync::Arc<dyn Mailer>,
    pub attempts: std::sync::Arc<dyn AttemptCounter>,
    pub codes: crate::CodeHasher,
    /// How busy local password hashing is; `None` where the pool hashes elsewhere (Cognito).
    pub hashing_load: Option<std::sync::Arc<HashingLoad>>,
}

/// Counters of the local password-hashing queue, read by `/metrics`.
#[derive(Debug, Default)]
pub struct HashingLoad {
    /// Hashes waiting for a worker.
    pub queued: std::sync::atomic::AtomicUsize,
    /// Hashes being computed.
    pub running: std::sync::atomic::AtomicUsize,
    /// Hashes refused because the queue was full (503 `unavailable`).
    pub refused: std::sync::atomic::AtomicU64,
}
