//! The use cases, one method each, independent of HTTP and of the backend.
//! Routes and CLI commands parse their input, call one of these methods and
//! render what it returns; the parts behind it (store, pool, mailer, limits)
//! are private, so every front end gets the same rules by calling it.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use domain::access_code::{WEAK_CODE_BITS, estimated_bits};
use domain::access_request::{AccessRequest, AccessRequestStatus};
use domain::firebase::{AccountImport, FirebaseHashParams, ImportedUser, LegacyState};
use domain::invitation::whole_seconds;
use domain::messages::Branding;
use domain::{
    AccessCode, Adapters, CodeHasher, Email, Error, Invitation, InvitationId, InvitationStatus, InvitationStore,
    Inviter, LegacyPasswords, Mailer, NewInvitation, Page, Password, PasswordPolicy, PresentedCode, QuotaCharge,
    Reservation, ReservationNonce, ReserveOutcome, SecretString, SignUpOutcome, SignUpPolicy, SignUpRequest, Standing,
    Tokens, UserPool, UserRecord, UserStatus, UserSub, messages,
};
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::limits::{AttemptLimits, FailureGuard, Subject};
use crate::metrics::{InvitationOutcome, Metrics};

/// Runs `work` in a task of its own and waits for it: if the caller is
/// dropped (a client hung up, a timeout fired), the work still runs to its
/// end, so a use case is never cut between two of its steps. It runs in the
/// caller's span, so its log lines keep the request's id.
async fn to_completion<T, F>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
{
    use tracing::Instrument as _;
    tokio::spawn(work.in_current_span())
        .await
        .unwrap_or_else(|e| Err(Error::Unexpected(anyhow::Error::new(e).context("use-case task"))))
}

/// How far the pool's clock (Cognito's) and ours may disagree when comparing creation times.
const CLOCK_SKEW: Duration = Duration::seconds(5);

/// The rules the service applies; `AppConfig` carries them as they are.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub policy: SignUpPolicy,
    pub default_invite_quota: u32,
    pub invitation_ttl: Duration,
    pub password_policy: PasswordPolicy,
}

/// Who acts: the operator (the CLI), or a signed-in user from a client address.
#[derive(Debug, Clone)]
pub enum Actor {
    Operator,
    User { sub: UserSub, client: IpAddr },
}

impl Actor {
    fn inviter(&self) -> Inviter {
        match self {
            Self::Operator => Inviter::Operator,
            Self::User { sub, .. } => Inviter::User(sub.clone()),
        }
    }
}

/// Which invitation an action is about.
#[derive(Debug, Clone)]
pub enum InvitationRef {
    Id(InvitationId),
    /// The newest invitation sent to this address (how operators name one).
    LatestFor(Email),
}

/// Which access request an operator means: by id (the admin API) or the open one for an email (the CLI).
#[derive(Debug, Clone)]
pub enum AccessRequestRef {
    Id(String),
    OpenFor(Email),
}

/// How an operator's invitation is made.
#[derive(Debug, Clone, Default)]
pub struct OperatorInvite {
    /// Invitations the invitee may send in turn (default: the service's quota).
    pub quota: Option<u32>,
    /// How long it stays usable (default: the service's invitation lifetime).
    pub expires_in: Option<Duration>,
    /// `false`: no email; the caller gets the sign-up link to deliver.
    pub send_email: bool,
}

struct Delivery {
    ttl: Duration,
    email: bool,
    /// Whether a user inviter's quota pays for it (not for invitations they sent in another system).
    charged: bool,
}

/// Which account an operator means: by sub (the admin API) or by email (the CLI).
#[derive(Debug, Clone)]
pub enum UserRef {
    Sub(UserSub),
    Email(Email),
}

/// What an operator sees of one account.
#[derive(Debug, Clone)]
pub struct UserDetails {
    pub user: UserRecord,
    pub invites_remaining: u32,
    pub invited_by: Option<Inviter>,
    /// The invitations they sent, newest first.
    pub invitations: Vec<InvitationSummary>,
    /// Who signed up with those invitations.
    pub invitees: Vec<UserSub>,
}

/// An invitation as people see it: its status as of now, no code hash.
#[derive(Debug, Clone)]
pub struct InvitationSummary {
    pub id: InvitationId,
    pub email: Email,
    pub status: InvitationStatus,
    pub inviter: Inviter,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub redeemed_by: Option<UserSub>,
}

/// What one batch of an import did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Accounts made, or finished after an interrupted run.
    pub imported: u64,
    /// Already imported by an earlier run.
    pub skipped: u64,
    /// Addresses that belong to an account which did not come from this export.
    pub taken: Vec<Email>,
}

/// An invitation issued by another system, as `invite import` reads it.
#[derive(Debug, Clone)]
pub struct ImportedInvitation {
    pub email: Email,
    /// As issued, in whatever alphabet and length.
    pub code: SecretString,
    /// Default: the service's invitation lifetime from now.
    pub expires_at: Option<OffsetDateTime>,
    /// Default: the operator.
    pub inviter: Option<Email>,
}

/// What became of one imported invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitationImport {
    /// Its code works; `weak` if under `WEAK_CODE_BITS`.
    Imported { weak: bool },
    /// Its code was weak: the invitee was sent a new one instead.
    Rotated,
    /// Left as it is, and why.
    AlreadyThere(&'static str),
    /// Not imported, and why.
    Refused(String),
}

/// What `/me` shows.
pub struct Profile {
    pub user: UserRecord,
    pub invites_remaining: u32,
    pub invited_by: Option<Inviter>,
}

/// A sign-up as submitted: the password is checked against the policy here.
pub struct SignUpForm {
    pub email: Email,
    pub password: SecretString,
    /// Blank counts as absent.
    pub access_code: Option<String>,
}

/// Firebase hashes checked at once (each takes 16 MiB and tens of ms at the usual cost).
const LEGACY_CHECKS: usize = 2;

/// How long `/readyz` waits for the backend.
const READINESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// What a load balancer is told to wait before asking again.
const READINESS_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Clone)]
pub struct Invitegate {
    store: Arc<dyn InvitationStore>,
    /// Firebase passwords of imported users, until their first sign-in.
    legacy: Arc<dyn LegacyPasswords>,
    /// Bounds the Firebase hashes checked at once (16 MiB each at mem_cost 14).
    legacy_checks: Arc<tokio::sync::Semaphore>,
    pool: Arc<dyn UserPool>,
    mailer: Arc<dyn Mailer>,
    codes: CodeHasher,
    clock: Arc<dyn Clock>,
    settings: ServiceSettings,
    /// The app's name and the links in its emails; known only once the listener is bound.
    branding: Arc<Branding>,
    guard: Arc<FailureGuard>,
    metrics: Arc<Metrics>,
}

impl Invitegate {
    pub fn new(
        adapters: Adapters,
        clock: Arc<dyn Clock>,
        settings: ServiceSettings,
        branding: Branding,
        limits: AttemptLimits,
    ) -> Self {
        let Adapters { store, legacy, pool, mailer, attempts, codes, hashing_load } = adapters;
        let guard = Arc::new(FailureGuard::new(limits, attempts));
        let metrics = Arc::new(Metrics::new(hashing_load));
        let legacy_checks = Arc::new(tokio::sync::Semaphore::new(LEGACY_CHECKS));
        Self {
            store,
            legacy,
            legacy_checks,
            pool,
            mailer,
            codes,
            clock,
            settings,
            branding: Arc::new(branding),
            guard,
            metrics,
        }
    }

    /// The rules in force, for pages that show them before a form is sent.
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// The app's name and the addresses its emails link to.
    pub fn branding(&self) -> &Branding {
        &self.branding
    }

    /// The anti-forgery token for the forms shown to the browser holding `browser_secret`.
    pub fn form_token(&self, browser_secret: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.codes.form_token(browser_secret).as_bytes())
    }

    /// Whether a submitted form carries that browser's token (compared in constant time).
    pub fn form_token_matches(&self, browser_secret: &str, presented: &str) -> bool {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(presented)
            .ok()
            .and_then(|bytes| domain::CodeHash::from_bytes(&bytes))
            .is_some_and(|token| token.matches(&self.codes.form_token(browser_secret)))
    }

    /// The counters `/metrics` shows; requests are recorded by the HTTP layer.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Deletes records nothing can use any more (expired refresh tokens), as
    /// the server's schedule asks; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, Error> {
        let purged = self.pool.purge_expired(self.clock.now()).await?;
        if purged > 0 {
            tracing::info!(purged, "expired refresh tokens deleted");
        }
        Ok(purged)
    }

    /// Whether the backend can serve now: the store takes a write and the pool
    /// answers, within `READINESS_TIMEOUT`. The cause is logged, never shown.
    pub async fn ready(&self) -> Result<(), Error> {
        let checks = async { tokio::try_join!(self.store.check_ready(), self.pool.check_ready()) };
        let not_ready = Error::Unavailable { retry_after: READINESS_RETRY };
        match tokio::time::timeout(READINESS_TIMEOUT, checks).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = ?e, "not ready");
                Err(not_ready)
            }
            Err(_) => {
                tracing::warn!(timeout = ?READINESS_TIMEOUT, "not ready: the backend did not answer in time");
                Err(not_ready)
            }
        }
    }

    /// Runs an attempt at a secret, counted against `subject` and `client`
    /// (see `limits`), in a task of its own: a client that hangs up can
    /// neither cut a saga between its steps nor leave the attempt counted.
    async fn attempt<T, F>(&self, subject: Subject, client: IpAddr, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let attempt = self.guard.begin(subject, client, self.clock.now()).await?;
        let guard = Arc::clone(&self.guard);
        to_completion(async move { guard.finish(attempt, work.await).await }).await
    }

    // ----- Sign-up, confirmation, sessions -----

    /// Sign-up: with an access code (required in invite-only mode), or in open
    /// mode without one, then confirmed by an emailed code.
    #[tracing::instrument(skip_all)]
    pub async fn sign_up(&self, form: SignUpForm, client: IpAddr) -> Result<SignUpOutcome, Error> {
        let code = form.access_code.filter(|c| !c.trim().is_empty());
        if code.is_none() && self.settings.policy == SignUpPolicy::InviteOnly {
            return Err(Error::MissingParams);
        }
        let password = self.settings.password_policy.check(form.password.expose())?;
        // Hashed every way a stored code can be: ours, or one imported as issued elsewhere.
        let code = code.map(|c| self.codes.present(&c));
        let service = self.clone();
        let email = form.email;
        let outcome = self
            .attempt(Subject::SignUp(email.clone()), client, async move {
                match code {
                    Some(code) => service.invited_sign_up(email, password, code).await,
                    None => service.open_sign_up(email, password).await,
                }
            })
            .await?;
        self.metrics.sign_up();
        Ok(outcome)
    }

    /// Without a code the account is left unconfirmed, even while an invitee's
    /// sign-up holds the email's invitation: only the sign-up carrying that
    /// reservation's nonce is confirmed by it, and the invitee's later
    /// sign-up replaces the unconfirmed account.
    async fn open_sign_up(&self, email: Email, password: Password) -> Result<SignUpOutcome, Error> {
        self.pool.sign_up(SignUpRequest { email, password, reservation: None }, self.clock.now()).await
    }

    /// The invited sign-up is a saga that never loses or double-spends the
    /// invitation: reserve it, create the user (the pool confirms holders of a
    /// reservation), mark it redeemed; give it back on a definite failure. An
    /// indefinite failure leaves the reservation to lapse and be settled by
    /// the next attempt (`settle_lapsed`).
    async fn invited_sign_up(
        &self,
        email: Email,
        password: Password,
        code: PresentedCode,
    ) -> Result<SignUpOutcome, Error> {
        let now = self.clock.now();
        let reservation = self.reserve(&email, &code, now).await?;
        let request = SignUpRequest { email, password, reservation: Some(reservation.clone()) };
        let created = self.create_invited_user(request, now).await;
        self.finish_reservation(&reservation, created, now).await
    }

    /// Step 1: the invitation matching the email and code, reserved for this sign-up.
    async fn reserve(&self, email: &Email, code: &PresentedCode, now: OffsetDateTime) -> Result<Reservation, Error> {
        let nonce = || ReservationNonce::generate(&mut rand::rng());
        match self.store.reserve(email, code, nonce(), now).await? {
            ReserveOutcome::Reserved(reservation) => Ok(reservation),
            ReserveOutcome::Lapsed(invitation) => {
                if self.settle_lapsed(&invitation).await? {
                    return Err(Error::InvitationRedeemed);
                }
                match self.store.reserve(email, code, nonce(), now).await? {
                    ReserveOutcome::Reserved(reservation) => Ok(reservation),
                    ReserveOutcome::Lapsed(_) => Err(Error::InvitationInUse),
                }
            }
        }
    }

    /// Step 2: the user, created by the pool. An account that gives way to an
    /// invitation (see `UserRecord::gives_way_to_invitation`) is removed and
    /// the sign-up tried once more.
    async fn create_invited_user(&self, request: SignUpRequest, now: OffsetDateTime) -> Result<SignUpOutcome, Error> {
        match self.pool.sign_up(request.clone(), now).await {
            Err(Error::UserExists) => match self.pool.find_by_email(&request.email).await? {
                Some(existing) if existing.gives_way_to_invitation() => {
                    self.pool.delete_unconfirmed(&existing).await?;
                    tracing::info!(replaced = %existing.sub, "an invited sign-up replaces an unconfirmed account");
                    self.pool.sign_up(request, now).await
                }
                Some(_) => Err(Error::UserExists),
                // Gone since: the address is free again.
                None => self.pool.sign_up(request, now).await,
            },
            other => other,
        }
    }

    /// Step 3: the invitation redeemed by the new user, or given back.
    async fn finish_reservation(
        &self,
        reservation: &Reservation,
        created: Result<SignUpOutcome, Error>,
        now: OffsetDateTime,
    ) -> Result<SignUpOutcome, Error> {
        match created {
            // The pool created the user but did not confirm it (its lease ran out under
            // it): the invitation was not what let them in, so it goes back.
            Ok(outcome) if !outcome.confirmed => {
                self.store.release(reservation).await?;
                Ok(outcome)
            }
            Ok(outcome) => {
                self.store.complete(reservation, &outcome.sub, now).await?;
                self.metrics.invitation(InvitationOutcome::Redeemed);
                tracing::info!(sub = %outcome.sub, invitation = %reservation.invitation_id, "invited user signed up");
                Ok(outcome)
            }
            // Definite failures: no user was created, so the invitation goes back.
            Err(
                e @ (Error::UserExists
                | Error::InvalidPassword(_)
                | Error::SignUpNotAllowed
                | Error::InvitationInUse
                | Error::InvalidAccessCode
                // Throttled after the SDK's retries: the request was refused, not half-done.
                | Error::Unavailable { .. }),
            ) => {
                self.store.release(reservation).await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// A reservation outlived its lease: did that sign-up create a user? Only a
    /// confirmed user created after the reservation was taken counts; anyone
    /// older with the same email got there some other way. `Ok(true)`: redeemed.
    async fn settle_lapsed(&self, invitation: &Invitation) -> Result<bool, Error> {
        let now = self.clock.now();
        let user = self.pool.find_by_email(&invitation.email).await?;
        let reserved_at = invitation.reserved_at();
        match user {
            Some(user)
                if user.status == UserStatus::Confirmed
                    && reserved_at.is_some_and(|at| user.created_at >= at - CLOCK_SKEW) =>
            {
                self.store.settle_lapsed(&invitation.id, Some(&user.sub), now).await?;
                tracing::warn!(invitation = %invitation.id, sub = %user.sub, "lapsed reservation settled as redeemed");
                Ok(true)
            }
            _ => {
                self.store.settle_lapsed(&invitation.id, None, now).await?;
                tracing::warn!(invitation = %invitation.id, "lapsed reservation returned to pending");
                Ok(false)
            }
        }
    }

    /// Open mode: the emailed confirmation code for an unconfirmed account.
    pub async fn confirm_sign_up(&self, email: Email, code: String, client: IpAddr) -> Result<(), Error> {
        let pool = Arc::clone(&self.pool);
        let now = self.clock.now();
        self.attempt(
            Subject::Email(email.clone()),
            client,
            async move { pool.confirm_sign_up(&email, &code, now).await },
        )
        .await
    }

    /// Answers the same whether or not the address has an unconfirmed account.
    /// Every resend counts against the limits (it sends mail, and a new code
    /// means new guesses), success or not.
    pub async fn resend_confirmation(&self, email: Email, client: IpAddr) -> Result<(), Error> {
        let now = self.clock.now();
        self.guard.begin(Subject::Resend(email.clone()), client, now).await?;
        self.pool.resend_confirmation(&email, now).await
    }

    /// `email` is taken as typed: an address that cannot exist gets the same
    /// answer as a wrong password, so the answer tells nothing about accounts.
    pub async fn sign_in(&self, email: &str, password: SecretString, client: IpAddr) -> Result<Tokens, Error> {
        let email = Email::parse(email).map_err(|_| Error::NotAuthorized)?;
        let service = self.clone();
        let now = self.clock.now();
        let tokens = self
            .attempt(Subject::Email(email.clone()), client, async move {
                match service.pool.sign_in(&email, &password, now).await {
                    Err(Error::NotAuthorized) => service.first_sign_in_after_import(&email, password, now).await,
                    other => other,
                }
            })
            .await;
        self.metrics.sign_in(tokens.is_ok());
        tokens
    }

    /// An imported user's first sign-in: the pool does not know the password
    /// yet, so Firebase's hash is checked, once. If it matches, the pool
    /// takes the password (hashed its own way), the Firebase hash is dropped,
    /// and the sign-in goes on as any other. A Firebase password that this
    /// service's policy refuses (Firebase asked only for 6 characters) is not
    /// carried over: the user gets a recovery code to choose a new one.
    async fn first_sign_in_after_import(
        &self,
        email: &Email,
        password: SecretString,
        now: OffsetDateTime,
    ) -> Result<Tokens, Error> {
        let Some(legacy) = self.legacy.active_password(email).await? else {
            return Err(Error::NotAuthorized);
        };
        let matches = {
            let _permit = self.legacy_checks.acquire().await.map_err(|e| Error::unexpected(e.to_string()))?;
            let candidate = password.clone();
            tokio::task::spawn_blocking(move || legacy.params.verify(candidate.expose(), &legacy.password))
                .await
                .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("checking a Firebase password")))?
        };
        if !matches {
            return Err(Error::NotAuthorized);
        }
        let user = self.pool.find_by_email(email).await?.ok_or(Error::NotAuthorized)?;
        let carried = match self.settings.password_policy.check(password.expose()) {
            Ok(accepted) => match self.pool.set_password(&user, &accepted, now).await {
                Err(Error::InvalidPassword(_)) => false,
                other => other.map(|()| true)?,
            },
            Err(_) => false,
        };
        if !carried {
            self.pool.forgot_password(email, now).await?;
            tracing::info!(sub = %user.sub, "an imported user's password is below the policy: recovery code sent");
            return Err(Error::PasswordResetRequired);
        }
        self.legacy.retire(email).await?;
        tracing::info!(sub = %user.sub, "an imported user's Firebase password now lives in the pool");
        self.pool.sign_in(email, &password, now).await
    }

    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<Tokens, Error> {
        self.pool.refresh(refresh_token, self.clock.now()).await
    }

    pub async fn sign_out(&self, refresh_token: &SecretString) -> Result<(), Error> {
        self.pool.sign_out(refresh_token, self.clock.now()).await
    }

    /// The bearer of a valid access token who still has an account (a
    /// validly signed token outlives its user until it expires), as read now.
    pub async fn authenticate(&self, access_token: &SecretString) -> Result<UserRecord, Error> {
        let claims = self.pool.verify_access_token(access_token, self.clock.now()).await?;
        let user = self.pool.find_by_sub(&claims.sub).await?.ok_or(Error::InvalidToken)?;
        // Issued before the user's last global sign-out (or password reset): void.
        if !user.accepts(&claims) {
            return Err(Error::InvalidToken);
        }
        Ok(user)
    }

    // ----- Account lifecycle -----

    /// Sends a recovery code if the address has a confirmed account. The
    /// answer is the same either way and comes before the work (a write and a
    /// mail for a known address, nothing for an unknown one), so neither its
    /// content nor its timing tells whether an account exists. Every request
    /// counts against the limits (each may send mail).
    pub async fn forgot_password(&self, email: Email, client: IpAddr) -> Result<(), Error> {
        let now = self.clock.now();
        self.guard.begin(Subject::Recovery(email.clone()), client, now).await?;
        let pool = Arc::clone(&self.pool);
        let work = async move {
            if let Err(e) = pool.forgot_password(&email, now).await {
                tracing::error!(error = ?e, "sending a recovery code failed");
            }
        };
        tokio::spawn(tracing::Instrument::in_current_span(work));
        Ok(())
    }

    /// A new password with the emailed recovery code; every session ends.
    pub async fn confirm_forgot_password(
        &self,
        email: Email,
        code: String,
        password: SecretString,
        client: IpAddr,
    ) -> Result<(), Error> {
        let password = self.settings.password_policy.check(password.expose())?;
        let (pool, legacy) = (Arc::clone(&self.pool), Arc::clone(&self.legacy));
        let now = self.clock.now();
        self.attempt(Subject::Email(email.clone()), client, async move {
            pool.confirm_forgot_password(&email, &code, &password, now).await?;
            // An imported user's Firebase password is void once they chose another.
            legacy.retire(&email).await
        })
        .await?;
        tracing::info!("password reset with a recovery code");
        Ok(())
    }

    /// A wrong previous password counts like a wrong sign-in.
    pub async fn change_password(
        &self,
        user: UserRecord,
        access_token: SecretString,
        previous: SecretString,
        proposed: SecretString,
        client: IpAddr,
    ) -> Result<(), Error> {
        let proposed = self.settings.password_policy.check(proposed.expose())?;
        let (pool, legacy) = (Arc::clone(&self.pool), Arc::clone(&self.legacy));
        let now = self.clock.now();
        self.attempt(Subject::Email(user.email.clone()), client, async move {
            pool.change_password(&user, &access_token, &previous, &proposed, now).await?;
            legacy.retire(&user.email).await
        })
        .await
    }

    /// Every refresh token of the user is revoked, and access tokens issued
    /// until now are refused by this service.
    pub async fn global_sign_out(&self, user: UserRecord) -> Result<(), Error> {
        let pool = Arc::clone(&self.pool);
        let now = self.clock.now();
        to_completion(async move { pool.global_sign_out(&user, now).await }).await?;
        tracing::info!("signed out everywhere");
        Ok(())
    }

    /// Deletes the caller's account (the password must be right), then
    /// revokes the invitations they sent that nobody used yet. Who invited
    /// whom stays on record, by sub; the address can be invited again.
    pub async fn delete_account(&self, user: UserRecord, password: SecretString, client: IpAddr) -> Result<(), Error> {
        let service = self.clone();
        self.attempt(Subject::Email(user.email.clone()), client, async move {
            service.pool.check_password(&user, &password).await?;
            service.remove_user(user).await
        })
        .await
    }

    /// The account goes, then the invitations it sent that nobody used yet.
    async fn remove_user(&self, user: UserRecord) -> Result<(), Error> {
        self.pool.delete_user(&user).await?;
        // Kept retired, so that importing the same export again does not bring the account back.
        self.legacy.retire(&user.email).await?;
        let revoked = self.store.revoke_pending_from(&user.sub, self.clock.now()).await?;
        tracing::info!(sub = %user.sub, revoked, "account deleted");
        Ok(())
    }

    /// The public keys that verify the pool's tokens, as a JWKS document (if the pool publishes one).
    pub async fn jwks(&self) -> Result<Option<String>, Error> {
        self.pool.jwks_json().await
    }

    // ----- Moving from Firebase -----

    /// Imports one batch of users from a Firebase export (the CLI reads the
    /// file and calls this per batch). Safe to repeat and to resume after an
    /// interruption:
    /// 1. users whose Firebase password is already on record (active or
    ///    retired) are skipped;
    /// 2. the others' Firebase passwords are recorded as pending first, so an
    ///    account never exists without its password;
    /// 3. their accounts are made; an address another account already holds
    ///    is refused and its record dropped;
    /// 4. the records become active: from now on the Firebase password signs in.
    ///
    /// With `dry_run` nothing is written; the report says what would happen.
    pub async fn import_firebase_users(
        &self,
        params: &FirebaseHashParams,
        users: &[ImportedUser],
        dry_run: bool,
    ) -> Result<ImportReport, Error> {
        let emails: Vec<Email> = users.iter().map(|user| user.email.clone()).collect();
        // Emails are normalised (lower case) when parsed, so they compare as keys.
        let known: std::collections::HashMap<Email, LegacyState> =
            self.legacy.legacy_states(&emails).await?.into_iter().collect();
        let mut report = ImportReport::default();
        let (mut fresh, mut todo) = (Vec::new(), Vec::new());
        for user in users {
            match known.get(&user.email) {
                Some(LegacyState::Active | LegacyState::Retired) => report.skipped += 1,
                Some(LegacyState::Pending) => todo.push(user.clone()),
                None => {
                    fresh.push(user.clone());
                    todo.push(user.clone());
                }
            }
        }
        if dry_run {
            // Resumed ones are counted as imported: their accounts are this export's.
            report.imported += (todo.len() - fresh.len()) as u64;
            for user in &fresh {
                if self.pool.find_by_email(&user.email).await?.is_some() {
                    report.taken.push(user.email.clone());
                } else {
                    report.imported += 1;
                }
            }
            return Ok(report);
        }
        self.legacy.record_pending(params, &fresh).await?;
        let outcomes = self.pool.import_users(&todo).await?;
        let mut made = Vec::new();
        for (user, outcome) in todo.iter().zip(outcomes) {
            match outcome {
                AccountImport::Created | AccountImport::AlreadyImported => made.push(user.email.clone()),
                AccountImport::Taken => {
                    self.legacy.forget_pending(&user.email).await?;
                    report.taken.push(user.email.clone());
                }
            }
        }
        self.legacy.activate(&made).await?;
        report.imported += made.len() as u64;
        Ok(report)
    }

    /// Imports one invitation issued by another system (`invite import`): its
    /// code keeps working for its email, stored only as an HMAC, compared as
    /// issued. Nothing is mailed: the invitee has the code already. A code
    /// under `WEAK_CODE_BITS` is imported all the same, unless `rotate_weak`:
    /// then the invitee is sent a new code of ours instead. Repeating an
    /// import finds what it did and leaves it.
    pub async fn import_invitation(
        &self,
        record: &ImportedInvitation,
        rotate_weak: bool,
        dry_run: bool,
    ) -> Result<InvitationImport, Error> {
        let now = self.clock.now();
        let code = record.code.expose().trim();
        if code.is_empty() {
            return Ok(InvitationImport::Refused("no code".into()));
        }
        let expires_at = record.expires_at.unwrap_or(now + self.settings.invitation_ttl);
        if expires_at <= now {
            return Ok(InvitationImport::Refused("expired before the import".into()));
        }
        let code_hash = self.codes.hash_imported_code(code);
        if let Some(latest) = self.store.latest_for_email(&record.email).await? {
            if latest.code_hash.matches(&code_hash) {
                return Ok(InvitationImport::AlreadyThere("imported before"));
            }
            if matches!(latest.status_at(now), InvitationStatus::Pending) {
                return Ok(InvitationImport::AlreadyThere("the address has a pending invitation"));
            }
        }
        if self.pool.find_by_email(&record.email).await?.is_some_and(|user| !user.gives_way_to_invitation()) {
            return Ok(InvitationImport::AlreadyThere("the address has an account"));
        }
        let inviter = match &record.inviter {
            None => Inviter::Operator,
            Some(email) => match self.pool.find_by_email(email).await? {
                Some(user) => Inviter::User(user.sub),
                None => {
                    return Ok(InvitationImport::Refused(format!(
                        "the inviter {email} has no account here (import the users first)"
                    )));
                }
            },
        };
        let weak = estimated_bits(code) < WEAK_CODE_BITS;
        if weak && rotate_weak {
            if !dry_run {
                let delivery = Delivery { ttl: expires_at - now, email: true, charged: false };
                self.create_invitation(inviter, record.email.clone(), None, delivery).await?;
            }
            return Ok(InvitationImport::Rotated);
        }
        if !dry_run {
            let new = NewInvitation {
                id: InvitationId::new(uuid::Uuid::new_v4().to_string()),
                email: record.email.clone(),
                code_hash,
                inviter,
                invitee_quota: None,
                created_at: whole_seconds(now),
                expires_at: whole_seconds(expires_at),
            };
            match self.store.create(new, QuotaCharge::None, now).await {
                Ok(_) => {}
                Err(Error::AlreadyInvited) => {
                    return Ok(InvitationImport::AlreadyThere("the address has a pending invitation"));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(InvitationImport::Imported { weak })
    }

    // ----- Invitations -----

    /// Creates an invitation and emails its code. If the email cannot be sent
    /// the invitation is revoked again (and the quota refunded): nothing is lost.
    /// A user's invitations count like guesses when they hit an existing
    /// account, so inviting is no cheap way to find out who has signed up;
    /// only operators set the invitee's own quota.
    #[tracing::instrument(skip_all)]
    pub async fn invite(
        &self,
        actor: &Actor,
        email: Email,
        invitee_quota: Option<u32>,
    ) -> Result<InvitationSummary, Error> {
        match actor {
            Actor::Operator => {
                let service = self.clone();
                to_completion(async move { service.send_invitation(Inviter::Operator, email, invitee_quota).await })
                    .await
            }
            Actor::User { .. } if invitee_quota.is_some() => {
                Err(Error::InvalidRequest("Only operators set an invitee's quota".into()))
            }
            Actor::User { sub, client } => {
                let service = self.clone();
                let inviter = actor.inviter();
                self.attempt(Subject::Inviter(sub.clone()), *client, async move {
                    service.send_invitation(inviter, email, None).await
                })
                .await
            }
        }
    }

    async fn send_invitation(
        &self,
        inviter: Inviter,
        email: Email,
        invitee_quota: Option<u32>,
    ) -> Result<InvitationSummary, Error> {
        let delivery = Delivery { ttl: self.settings.invitation_ttl, email: true, charged: true };
        self.create_invitation(inviter, email, invitee_quota, delivery).await.map(|(summary, _)| summary)
    }

    /// An operator's invitation, with a lifetime of its own if given; with
    /// `send_email: false` nothing is mailed and the sign-up link (holding the
    /// code) is returned, once, for the operator to deliver.
    pub async fn invite_as_operator(
        &self,
        email: Email,
        options: OperatorInvite,
    ) -> Result<(InvitationSummary, Option<SecretString>), Error> {
        let service = self.clone();
        let delivery = Delivery {
            ttl: options.expires_in.unwrap_or(self.settings.invitation_ttl),
            email: options.send_email,
            charged: true,
        };
        to_completion(async move { service.create_invitation(Inviter::Operator, email, options.quota, delivery).await })
            .await
    }

    async fn create_invitation(
        &self,
        inviter: Inviter,
        email: Email,
        invitee_quota: Option<u32>,
        delivery: Delivery,
    ) -> Result<(InvitationSummary, Option<SecretString>), Error> {
        if self.pool.find_by_email(&email).await?.is_some_and(|user| !user.gives_way_to_invitation()) {
            return Err(Error::UserExists);
        }
        let now = self.clock.now();
        if let Some(previous) = self.store.latest_for_email(&email).await?
            && previous.reservation_lapsed(now)
        {
            self.settle_lapsed(&previous).await?;
        }
        let code = AccessCode::generate(&mut rand::rng());
        let charge = match &inviter {
            Inviter::User(sub) if delivery.charged => {
                QuotaCharge::User { sub: sub.clone(), initial: self.settings.default_invite_quota }
            }
            _ => QuotaCharge::None,
        };
        let new = NewInvitation {
            id: InvitationId::new(uuid::Uuid::new_v4().to_string()),
            email: email.clone(),
            code_hash: self.codes.hash_access_code(&code),
            inviter,
            invitee_quota,
            created_at: whole_seconds(now),
            expires_at: whole_seconds(now + delivery.ttl),
        };
        let invitation = self.store.create(new, charge, now).await?;
        if !delivery.email {
            tracing::info!(invitation = %invitation.id, "invitation created for the operator to deliver");
            self.metrics.invitation(InvitationOutcome::Created);
            let link = SecretString::new(messages::sign_up_link(&self.branding, &email, &code));
            return Ok((self.summary(&invitation), Some(link)));
        }
        let message = messages::invitation(&self.branding, &email, &code, invitation.expires_at);
        if let Err(e) = self.mailer.send(&message).await {
            if let Err(revoke_error) = self.store.revoke(&invitation.id, now).await {
                tracing::error!(error = ?revoke_error, "could not revoke an invitation whose email failed");
            }
            return Err(e);
        }
        tracing::info!(invitation = %invitation.id, "invitation sent");
        self.metrics.invitation(InvitationOutcome::Created);
        Ok((self.summary(&invitation), None))
    }

    /// A user's own invitations, or every invitation for the operator; newest first.
    pub async fn list_invitations(
        &self,
        actor: &Actor,
        status: Option<InvitationStatus>,
    ) -> Result<Vec<InvitationSummary>, Error> {
        let invitations = match actor {
            Actor::Operator => self.store.list(None).await?,
            Actor::User { .. } => self.store.list(Some(&actor.inviter())).await?,
        };
        Ok(invitations.iter().map(|i| self.summary(i)).filter(|i| status.is_none_or(|s| i.status == s)).collect())
    }

    pub async fn revoke(&self, actor: &Actor, target: &InvitationRef) -> Result<InvitationSummary, Error> {
        let invitation = self.owned(actor, target).await?;
        let revoked = self.store.revoke(&invitation.id, self.clock.now()).await?;
        self.metrics.invitation(InvitationOutcome::Revoked);
        Ok(self.summary(&revoked))
    }

    /// Rotates the code (the old one stops working), restarts the expiry and
    /// emails it. If the email cannot be sent, the old code and expiry come
    /// back: a failed resend changes nothing.
    pub async fn resend(&self, actor: &Actor, target: &InvitationRef) -> Result<InvitationSummary, Error> {
        let invitation = self.owned(actor, target).await?;
        let service = self.clone();
        to_completion(async move { service.rotate_and_send(invitation).await }).await
    }

    async fn rotate_and_send(&self, invitation: Invitation) -> Result<InvitationSummary, Error> {
        let now = self.clock.now();
        let code = AccessCode::generate(&mut rand::rng());
        let new_hash = self.codes.hash_access_code(&code);
        let new_expiry = whole_seconds(now + self.settings.invitation_ttl);
        let rotated = self.store.rotate_code(&invitation.id, new_hash, new_expiry, now).await?;
        let message = messages::invitation(&self.branding, &rotated.email, &code, rotated.expires_at);
        if let Err(e) = self.mailer.send(&message).await {
            let restored =
                self.store.rotate_code(&invitation.id, invitation.code_hash, invitation.expires_at, now).await;
            if let Err(restore_error) = restored {
                tracing::error!(error = ?restore_error, "could not restore the code of an invitation whose resend failed");
            }
            return Err(e);
        }
        tracing::info!(invitation = %rotated.id, "invitation re-sent with a new code");
        self.metrics.invitation(InvitationOutcome::Resent);
        Ok(self.summary(&rotated))
    }

    /// The invitation, if `actor` may manage it (operators may manage all),
    /// with a lapsed reservation settled first.
    async fn owned(&self, actor: &Actor, target: &InvitationRef) -> Result<Invitation, Error> {
        let invitation = match target {
            InvitationRef::Id(id) => self.store.get(id).await?,
            InvitationRef::LatestFor(email) => self.store.latest_for_email(email).await?,
        }
        .ok_or(Error::NotFound)?;
        match actor {
            Actor::Operator => {}
            user if user.inviter() == invitation.inviter => {}
            // Someone else's invitation is indistinguishable from none.
            Actor::User { .. } => return Err(Error::NotFound),
        }
        if invitation.reservation_lapsed(self.clock.now()) {
            self.settle_lapsed(&invitation).await?;
            return self.store.get(&invitation.id).await?.ok_or(Error::NotFound);
        }
        Ok(invitation)
    }

    fn summary(&self, invitation: &Invitation) -> InvitationSummary {
        InvitationSummary {
            id: invitation.id.clone(),
            email: invitation.email.clone(),
            status: invitation.status_at(self.clock.now()),
            inviter: invitation.inviter.clone(),
            created_at: invitation.created_at,
            expires_at: invitation.expires_at,
            redeemed_by: invitation.redeemed_by.clone(),
        }
    }

    // ----- Users -----

    /// Every user, oldest first.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, Error> {
        self.pool.list_users().await
    }

    // ----- Access requests -----

    /// Invite-only mode: someone without an invitation asks for one. The
    /// answer is the same for any address and comes before the work (nothing
    /// is recorded for an address that has an account, or already an open
    /// request), so it tells nothing about accounts. Every request counts
    /// against the limits.
    pub async fn request_access(&self, email: Email, client: IpAddr) -> Result<(), Error> {
        if self.settings.policy != SignUpPolicy::InviteOnly {
            return Err(Error::NotFound);
        }
        let now = self.clock.now();
        self.guard.begin(Subject::AccessRequest(email.clone()), client, now).await?;
        let service = self.clone();
        let work = async move {
            match service.pool.find_by_email(&email).await {
                Ok(None) => {}
                Ok(Some(_)) => return,
                Err(e) => {
                    tracing::error!(error = ?e, "recording an access request failed");
                    return;
                }
            }
            let id = uuid::Uuid::new_v4().to_string();
            match service.store.open_access_request(&id, &email, now).await {
                Ok(true) => tracing::info!(request = %id, "access requested"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = ?e, "recording an access request failed"),
            }
        };
        tokio::spawn(tracing::Instrument::in_current_span(work));
        Ok(())
    }

    /// Access requests, newest first, optionally of one status.
    pub async fn access_requests(&self, status: Option<AccessRequestStatus>) -> Result<Vec<AccessRequest>, Error> {
        let requests = self.store.access_requests().await?;
        Ok(requests.into_iter().filter(|r| status.is_none_or(|s| r.status == s)).collect())
    }

    async fn find_access_request(&self, target: &AccessRequestRef) -> Result<AccessRequest, Error> {
        match target {
            AccessRequestRef::Id(id) => self.store.access_request(id).await?.ok_or(Error::NotFound),
            AccessRequestRef::OpenFor(email) => self
                .access_requests(Some(AccessRequestStatus::Open))
                .await?
                .into_iter()
                .find(|r| &r.email == email)
                .ok_or(Error::NotFound),
        }
    }

    /// Sends the requester an invitation (as `invite create` does), then marks
    /// the request approved. If the invitation cannot be made (an account or a
    /// pending invitation exists), the request stays open and the error says why.
    pub async fn approve_access_request(
        &self,
        target: &AccessRequestRef,
    ) -> Result<(AccessRequest, InvitationSummary), Error> {
        let request = self.find_access_request(target).await?;
        request.check_open()?;
        let options = OperatorInvite { send_email: true, ..OperatorInvite::default() };
        let (invitation, _) = self.invite_as_operator(request.email.clone(), options).await?;
        let approved = self.store.decide_access_request(&request.id, true, self.clock.now()).await?;
        Ok((approved, invitation))
    }

    pub async fn reject_access_request(&self, target: &AccessRequestRef) -> Result<AccessRequest, Error> {
        let request = self.find_access_request(target).await?;
        self.store.decide_access_request(&request.id, false, self.clock.now()).await
    }

    /// A page of accounts (oldest first on the embedded backend), for listings of any size.
    pub async fn users_page(&self, limit: usize, cursor: Option<&str>) -> Result<Page<UserRecord>, Error> {
        self.pool.users_page(limit, cursor).await
    }

    /// A page of every invitation, optionally of one status (filtered within
    /// the page, so a page may hold fewer than `limit`).
    pub async fn invitations_page(
        &self,
        status: Option<InvitationStatus>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<InvitationSummary>, Error> {
        let page = self.store.invitations_page(limit, cursor).await?;
        let items =
            page.items.iter().map(|i| self.summary(i)).filter(|i| status.is_none_or(|s| i.status == s)).collect();
        Ok(Page { items, next: page.next })
    }

    // ----- Operator actions on accounts (the CLI and the admin API) -----

    /// The account `target` names, or `NotFound`.
    pub async fn find_user(&self, target: &UserRef) -> Result<UserRecord, Error> {
        let user = match target {
            UserRef::Sub(sub) => self.pool.find_by_sub(sub).await?,
            UserRef::Email(email) => self.pool.find_by_email(email).await?,
        };
        user.ok_or(Error::NotFound)
    }

    /// The account with its place in the invitation tree.
    pub async fn user_details(&self, target: &UserRef) -> Result<UserDetails, Error> {
        let user = self.find_user(target).await?;
        let Standing { invites_remaining, invited_by } =
            self.store.standing(&user.sub, self.settings.default_invite_quota).await?;
        let sent = self.store.list(Some(&Inviter::User(user.sub.clone()))).await?;
        let invitations: Vec<InvitationSummary> = sent.iter().map(|i| self.summary(i)).collect();
        let invitees = invitations.iter().filter_map(|i| i.redeemed_by.clone()).collect();
        Ok(UserDetails { user, invites_remaining, invited_by, invitations, invitees })
    }

    /// A disabled account cannot sign in (its right password gets
    /// `user_disabled`), refresh, or use an access token here.
    pub async fn set_user_disabled(&self, target: &UserRef, disabled: bool) -> Result<UserRecord, Error> {
        let user = self.find_user(target).await?;
        let pool = Arc::clone(&self.pool);
        let now = self.clock.now();
        let changed = user.clone();
        to_completion(async move { pool.set_disabled(&changed, disabled, now).await }).await?;
        tracing::info!(sub = %user.sub, disabled, "account disabled flag set by the operator");
        Ok(UserRecord { disabled, ..user })
    }

    /// Ends every session of the account, as its own global sign-out does.
    pub async fn sign_out_user(&self, target: &UserRef) -> Result<UserRecord, Error> {
        let user = self.find_user(target).await?;
        self.global_sign_out(user.clone()).await?;
        Ok(user)
    }

    /// Deletes the account as `DELETE /me` does, without its password.
    pub async fn delete_user(&self, target: &UserRef) -> Result<UserRecord, Error> {
        let user = self.find_user(target).await?;
        let service = self.clone();
        let removed = user.clone();
        to_completion(async move { service.remove_user(removed).await }).await?;
        Ok(user)
    }

    /// Sends the account a recovery code (its password stays until they use it).
    pub async fn reset_password(&self, target: &UserRef) -> Result<UserRecord, Error> {
        let user = self.find_user(target).await?;
        self.pool.forgot_password(&user.email, self.clock.now()).await?;
        tracing::info!(sub = %user.sub, "recovery code sent at the operator's request");
        Ok(user)
    }

    /// `user` as `authenticate` read it: no second lookup.
    pub async fn profile(&self, user: UserRecord) -> Result<Profile, Error> {
        let Standing { invites_remaining, invited_by } =
            self.store.standing(&user.sub, self.settings.default_invite_quota).await?;
        Ok(Profile { user, invites_remaining, invited_by })
    }
}
