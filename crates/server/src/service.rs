//! The use cases, independent of HTTP and of the backend: the HTTP routes and
//! the CLI both call these.

use std::sync::Arc;

use domain::invitation::whole_seconds;
use domain::{
    AccessCode, CodeHasher, Email, Error, Invitation, InvitationId, InvitationStore, Inviter, Mailer, NewInvitation,
    Password, PasswordPolicy, QuotaCharge, ReserveOutcome, SignUpOutcome, SignUpPolicy, SignUpRequest, UserPool,
    UserRecord, UserStatus, UserSub, messages,
};
use time::Duration;

use crate::clock::Clock;

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

#[derive(Clone)]
pub struct Invitegate {
    pub store: Arc<dyn InvitationStore>,
    pub pool: Arc<dyn UserPool>,
    pub mailer: Arc<dyn Mailer>,
    pub codes: CodeHasher,
    pub clock: Arc<dyn Clock>,
    pub settings: ServiceSettings,
    /// Base of invitation links; known only once the listener is bound.
    pub public_url: String,
}

/// What `/me` shows.
pub struct Profile {
    pub user: UserRecord,
    pub invites_remaining: u32,
    pub invited_by: Option<Inviter>,
}

impl Invitegate {
    /// Sign-up with an access code, as a saga that never loses or double-spends
    /// the invitation: reserve it, create the user (the pool confirms holders
    /// of a reservation), mark it redeemed; give it back on a definite failure.
    /// An indefinite failure leaves the reservation to lapse and be settled
    /// by the next attempt (`settle_lapsed`).
    #[tracing::instrument(skip_all)]
    pub async fn sign_up(
        &self,
        email: Email,
        password: Password,
        code: Option<AccessCode>,
    ) -> Result<SignUpOutcome, Error> {
        let now = self.clock.now();
        let Some(code) = code else {
            return match self.settings.policy {
                SignUpPolicy::InviteOnly => Err(Error::MissingParams),
                SignUpPolicy::Open => {
                    // While an invitee's sign-up holds the email's invitation, a code-less
                    // sign-up for that email must not slip in: on AWS the trigger can only
                    // see that *a* reservation exists, not whose it is.
                    if let Some(invitation) = self.store.latest_for_email(&email).await?
                        && invitation.status == domain::StoredStatus::Reserved
                        && !invitation.reservation_lapsed(now)
                    {
                        return Err(Error::InvitationInUse);
                    }
                    self.pool.sign_up(SignUpRequest { email, password, reservation: None }, now).await
                }
            };
        };
        let code_hash = self.codes.hash_access_code(&code);
        let reservation = match self.store.reserve(&email, &code_hash, now).await? {
            ReserveOutcome::Reserved(reservation) => reservation,
            ReserveOutcome::Lapsed(invitation) => {
                if self.settle_lapsed(&invitation).await? {
                    return Err(Error::InvitationRedeemed);
                }
                match self.store.reserve(&email, &code_hash, now).await? {
                    ReserveOutcome::Reserved(reservation) => reservation,
                    ReserveOutcome::Lapsed(_) => return Err(Error::InvitationInUse),
                }
            }
        };
        let request = SignUpRequest { email, password, reservation: Some(reservation.clone()) };
        match self.pool.sign_up(request, now).await {
            // The pool created the user but did not confirm it (its lease ran out under
            // it): the invitation was not what let them in, so it goes back.
            Ok(outcome) if !outcome.confirmed => {
                self.store.release(&reservation).await?;
                Ok(outcome)
            }
            Ok(outcome) => {
                self.store.complete(&reservation, &outcome.sub, now).await?;
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
                self.store.release(&reservation).await?;
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

    pub fn check_password(&self, raw: &str) -> Result<Password, Error> {
        Ok(self.settings.password_policy.check(raw)?)
    }

    /// Creates an invitation and emails its code. If the email cannot be sent
    /// the invitation is revoked again (and the quota refunded): nothing is lost.
    #[tracing::instrument(skip_all, fields(inviter = ?inviter))]
    pub async fn invite(
        &self,
        inviter: Inviter,
        email: Email,
        invitee_quota: Option<u32>,
    ) -> Result<Invitation, Error> {
        // An unconfirmed (open-mode) account never proved the address: the invitation may replace it.
        if self.pool.find_by_email(&email).await?.is_some_and(|user| user.status == UserStatus::Confirmed) {
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
            Inviter::Operator => QuotaCharge::None,
            Inviter::User(sub) => QuotaCharge::User { sub: sub.clone(), initial: self.settings.default_invite_quota },
        };
        let new = NewInvitation {
            id: InvitationId::new(uuid::Uuid::new_v4().to_string()),
            email: email.clone(),
            code_hash: self.codes.hash_access_code(&code),
            inviter,
            invitee_quota,
            created_at: whole_seconds(now),
            expires_at: whole_seconds(now + self.settings.invitation_ttl),
        };
        let invitation = self.store.create(new, charge, now).await?;
        let message = messages::invitation(&self.public_url, &email, &code, invitation.expires_at);
        if let Err(e) = self.mailer.send(&message).await {
            if let Err(revoke_error) = self.store.revoke(&invitation.id, now).await {
                tracing::error!(error = ?revoke_error, "could not revoke an invitation whose email failed");
            }
            return Err(e);
        }
        tracing::info!(invitation = %invitation.id, "invitation sent");
        Ok(invitation)
    }

    /// The invitation, if `actor` may manage it (operators may manage all).
    async fn owned(&self, actor: &Inviter, id: &InvitationId) -> Result<Invitation, Error> {
        let invitation = self.store.get(id).await?.ok_or(Error::NotFound)?;
        match actor {
            Inviter::Operator => {}
            user if *user == invitation.inviter => {}
            // Someone else's invitation is indistinguishable from none.
            _ => return Err(Error::NotFound),
        }
        if invitation.reservation_lapsed(self.clock.now()) {
            self.settle_lapsed(&invitation).await?;
            return self.store.get(id).await?.ok_or(Error::NotFound);
        }
        Ok(invitation)
    }

    pub async fn revoke(&self, actor: &Inviter, id: &InvitationId) -> Result<Invitation, Error> {
        let invitation = self.owned(actor, id).await?;
        self.store.revoke(&invitation.id, self.clock.now()).await
    }

    /// Rotates the code (the old one stops working), restarts the expiry and emails it.
    pub async fn resend(&self, actor: &Inviter, id: &InvitationId) -> Result<Invitation, Error> {
        let invitation = self.owned(actor, id).await?;
        let now = self.clock.now();
        let code = AccessCode::generate(&mut rand::rng());
        let rotated = self
            .store
            .rotate_code(
                &invitation.id,
                self.codes.hash_access_code(&code),
                whole_seconds(now + self.settings.invitation_ttl),
                now,
            )
            .await?;
        let message = messages::invitation(&self.public_url, &rotated.email, &code, rotated.expires_at);
        self.mailer.send(&message).await?;
        tracing::info!(invitation = %rotated.id, "invitation re-sent with a new code");
        Ok(rotated)
    }

    pub async fn latest_for_email(&self, email: &Email) -> Result<Invitation, Error> {
        self.store.latest_for_email(email).await?.ok_or(Error::NotFound)
    }

    pub async fn profile(&self, sub: &UserSub) -> Result<Profile, Error> {
        let user = self.pool.find_by_sub(sub).await?.ok_or(Error::InvalidToken)?;
        let invites_remaining = self.store.invites_remaining(sub, self.settings.default_invite_quota).await?;
        let invited_by = self.store.invited_by(sub).await?;
        Ok(Profile { user, invites_remaining, invited_by })
    }
}
