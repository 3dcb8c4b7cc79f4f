//! The local user pool: what Cognito does for the AWS backend, in SQLite.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::access_code::generate_confirmation_code;
use domain::presignup::{PreSignUpDecision, PreSignUpFacts, Trigger, decide};
use domain::{
    AccessClaims, CodeHash, CodeHasher, Email, Error, Mailer, SecretString, SignUpOutcome, SignUpPolicy, SignUpRequest,
    Tokens, UserPool, UserRecord, UserStatus, UserSub, messages,
};
use rand::RngCore;
use rusqlite::{OptionalExtension, Row, params};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::db::{Db, db_err, is_unique_violation};
use crate::hashing::PasswordHashing;
use crate::store::{from_ts, redeem_in, ts};
use crate::tokens::{TOKEN_TTL, TokenIssuer};

const REFRESH_TOKEN_TTL: Duration = Duration::days(30);
const CONFIRMATION_CODE_TTL: Duration = Duration::hours(24);
/// Wrong confirmation codes allowed before a new code must be requested.
const CONFIRMATION_ATTEMPTS: u32 = 5;

pub struct LocalUserPool {
    db: Db,
    hashing: PasswordHashing,
    tokens: TokenIssuer,
    codes: CodeHasher,
    mailer: Arc<dyn Mailer>,
    policy: SignUpPolicy,
}

impl LocalUserPool {
    pub fn new(
        db: Db,
        hashing: PasswordHashing,
        tokens: TokenIssuer,
        codes: CodeHasher,
        mailer: Arc<dyn Mailer>,
        policy: SignUpPolicy,
    ) -> Self {
        Self { db, hashing, tokens, codes, mailer, policy }
    }

    async fn send_confirmation_code(&self, email: &Email, code: &str) {
        if let Err(e) = self.mailer.send(&messages::confirmation_code(email, code)).await {
            // The account exists either way; the user can ask for the code again.
            tracing::error!(error = ?e, "could not send a confirmation code");
        }
    }

    /// `column` is one of our own column names, never input.
    async fn find_user(&self, column: &'static str, value: &str) -> Result<Option<UserRecord>, Error> {
        let value = value.to_owned();
        self.db
            .call(move |conn| {
                conn.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = ?1"), [value], user_from_row)
                    .optional()
                    .map_err(db_err)
            })
            .await
    }

    async fn issue_refresh_token(&self, sub: &UserSub, now: OffsetDateTime) -> Result<SecretString, Error> {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = URL_SAFE_NO_PAD.encode(raw);
        let hash = refresh_token_hash(&token);
        let sub = sub.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO refresh_tokens (token_hash, sub, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![hash.as_slice(), sub.as_str(), ts(now), ts(now + REFRESH_TOKEN_TTL)],
                )
                .map_err(db_err)
            })
            .await?;
        Ok(SecretString::new(token))
    }
}

/// Refresh tokens are 256 random bits, so a plain digest is enough to store them safely.
fn refresh_token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

const USER_COLUMNS: &str = "sub, email, status, email_verified, created_at";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let email: String = row.get(1)?;
    let status: String = row.get(2)?;
    let bad =
        |what: &'static str| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, what.into());
    Ok(UserRecord {
        sub: UserSub::new(row.get(0)?),
        email: Email::parse(&email).map_err(|_| bad("stored email invalid"))?,
        status: UserStatus::parse(&status).ok_or_else(|| bad("stored status invalid"))?,
        email_verified: row.get(3)?,
        created_at: from_ts(row.get(4)?)?,
    })
}

#[async_trait]
impl UserPool for LocalUserPool {
    async fn sign_up(&self, request: SignUpRequest, now: OffsetDateTime) -> Result<SignUpOutcome, Error> {
        let password_hash = self.hashing.hash(request.password.expose()).await?;
        let sub = UserSub::new(uuid::Uuid::new_v4().to_string());
        let code = generate_confirmation_code(&mut rand::rng());
        let code_hash = self.codes.hash_confirmation_code(&request.email, &code);
        let policy = self.policy;
        let (email, reservation) = (request.email.clone(), request.reservation);
        let new_sub = sub.clone();
        let confirmed = self
            .db
            .call(move |conn| {
                let tx = conn.transaction().map_err(db_err)?;
                // The same check the Cognito PreSignUp trigger makes: is this email's
                // invitation reserved by the sign-up that presented its code?
                let invitation_reserved = match &reservation {
                    Some(r) => {
                        let held: Option<i64> = tx
                            .query_row(
                                "SELECT 1 FROM invitations WHERE id = ?1 AND email = ?2 AND status = 'reserved' \
                                 AND reserved_until = ?3 AND reserved_until > ?4",
                                params![r.invitation_id.as_str(), email.as_str(), ts(r.until), ts(now)],
                                |row| row.get(0),
                            )
                            .optional()
                            .map_err(db_err)?;
                        if held.is_none() {
                            return Err(Error::InvitationInUse);
                        }
                        true
                    }
                    None => false,
                };
                let decision = decide(&PreSignUpFacts {
                    trigger: Trigger::SignUp,
                    has_email: true,
                    has_phone: false,
                    phone_proven: false,
                    invitation_reserved,
                    policy,
                });
                let confirmed = match decision {
                    PreSignUpDecision::Reject { .. } => return Err(Error::SignUpNotAllowed),
                    PreSignUpDecision::Confirm { verify_email, .. } => (true, verify_email),
                    PreSignUpDecision::RequireEmailConfirmation => (false, false),
                };
                if invitation_reserved {
                    // The invitation proves the address; an unconfirmed account someone
                    // opened for it (open mode) proved nothing and gives way.
                    tx.execute(
                        "DELETE FROM refresh_tokens WHERE sub IN \
                         (SELECT sub FROM users WHERE email = ?1 AND status = 'UNCONFIRMED')",
                        [email.as_str()],
                    )
                    .map_err(db_err)?;
                    tx.execute("DELETE FROM users WHERE email = ?1 AND status = 'UNCONFIRMED'", [email.as_str()])
                        .map_err(db_err)?;
                }
                let status = if confirmed.0 { UserStatus::Confirmed } else { UserStatus::Unconfirmed };
                let pending_code: Option<Vec<u8>> = (!confirmed.0).then(|| code_hash.as_bytes().to_vec());
                let inserted = tx.execute(
                    "INSERT INTO users (sub, email, password_hash, status, email_verified, created_at, \
                     confirm_code_hash, confirm_expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        new_sub.as_str(),
                        email.as_str(),
                        password_hash,
                        status.as_str(),
                        confirmed.1,
                        ts(now),
                        pending_code,
                        (!confirmed.0).then(|| ts(now + CONFIRMATION_CODE_TTL)),
                    ],
                );
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Err(Error::UserExists),
                    Err(e) => return Err(db_err(e)),
                }
                if let (Some(r), true) = (&reservation, confirmed.0) {
                    // Consumed in the very transaction that creates the user.
                    redeem_in(&tx, r, &new_sub, now)?;
                }
                tx.commit().map_err(db_err)?;
                Ok(confirmed.0)
            })
            .await?;
        if !confirmed {
            self.send_confirmation_code(&request.email, &code).await;
        }
        Ok(SignUpOutcome { sub, confirmed })
    }

    async fn confirm_sign_up(&self, email: &Email, code: &str, now: OffsetDateTime) -> Result<(), Error> {
        let presented = self.codes.hash_confirmation_code(email, code.trim());
        let email = email.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction().map_err(db_err)?;
                let row: Option<(String, Option<Vec<u8>>, Option<i64>, u32)> = tx
                    .query_row(
                        "SELECT sub, confirm_code_hash, confirm_expires_at, confirm_attempts FROM users \
                         WHERE email = ?1 AND status = 'UNCONFIRMED'",
                        [email.as_str()],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                    )
                    .optional()
                    .map_err(db_err)?;
                // Unknown, already confirmed, used-up and wrong codes all look the same.
                let Some((sub, Some(stored), Some(expires_at), attempts)) = row else {
                    return Err(Error::InvalidConfirmationCode);
                };
                let stored =
                    CodeHash::from_bytes(&stored).ok_or_else(|| Error::unexpected("stored code hash invalid"))?;
                if attempts >= CONFIRMATION_ATTEMPTS || expires_at <= ts(now) {
                    return Err(Error::InvalidConfirmationCode);
                }
                if !stored.matches(&presented) {
                    tx.execute("UPDATE users SET confirm_attempts = confirm_attempts + 1 WHERE sub = ?1", [&sub])
                        .map_err(db_err)?;
                    tx.commit().map_err(db_err)?;
                    return Err(Error::InvalidConfirmationCode);
                }
                tx.execute(
                    "UPDATE users SET status = 'CONFIRMED', email_verified = 1, confirm_code_hash = NULL, \
                     confirm_expires_at = NULL, confirm_attempts = 0 WHERE sub = ?1 AND status = 'UNCONFIRMED'",
                    [&sub],
                )
                .map_err(db_err)?;
                tx.commit().map_err(db_err)
            })
            .await
    }

    async fn resend_confirmation(&self, email: &Email, now: OffsetDateTime) -> Result<(), Error> {
        let code = generate_confirmation_code(&mut rand::rng());
        let code_hash = self.codes.hash_confirmation_code(email, &code);
        let target = email.clone();
        let updated = self
            .db
            .call(move |conn| {
                conn.execute(
                    "UPDATE users SET confirm_code_hash = ?2, confirm_expires_at = ?3, confirm_attempts = 0 \
                     WHERE email = ?1 AND status = 'UNCONFIRMED'",
                    params![target.as_str(), code_hash.as_bytes().as_slice(), ts(now + CONFIRMATION_CODE_TTL)],
                )
                .map_err(db_err)
            })
            .await?;
        // Unknown or confirmed address: answer the same, send nothing.
        if updated == 1 {
            self.send_confirmation_code(email, &code).await;
        }
        Ok(())
    }

    async fn sign_in(&self, email: &Email, password: &SecretString, now: OffsetDateTime) -> Result<Tokens, Error> {
        let target = email.clone();
        let user: Option<(UserRecord, String)> = self
            .db
            .call(move |conn| {
                conn.query_row(
                    &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?1"),
                    [target.as_str()],
                    |row| Ok((user_from_row(row)?, row.get(5)?)),
                )
                .optional()
                .map_err(db_err)
            })
            .await?;
        let (user, hash) = match user {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        // Unknown users verify against a dummy hash: same work, same answer.
        let password_ok = self.hashing.verify(password.expose(), hash).await?;
        let user = match user {
            Some(user) if password_ok => user,
            _ => return Err(Error::NotAuthorized),
        };
        if user.status != UserStatus::Confirmed {
            return Err(Error::UserNotConfirmed);
        }
        let (id_token, access_token) = self.tokens.issue(&user.sub, &user.email, user.email_verified, now)?;
        let refresh_token = self.issue_refresh_token(&user.sub, now).await?;
        Ok(Tokens {
            id_token,
            access_token,
            refresh_token: Some(refresh_token),
            expires_in_secs: TOKEN_TTL.whole_seconds().unsigned_abs(),
        })
    }

    async fn refresh(&self, refresh_token: &SecretString, now: OffsetDateTime) -> Result<Tokens, Error> {
        let hash = refresh_token_hash(refresh_token.expose());
        let user = self
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT u.sub, u.email, u.status, u.email_verified, u.created_at FROM refresh_tokens t \
                     JOIN users u ON u.sub = t.sub \
                     WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND t.expires_at > ?2",
                    params![hash.as_slice(), ts(now)],
                    user_from_row,
                )
                .optional()
                .map_err(db_err)
            })
            .await?
            .ok_or(Error::NotAuthorized)?;
        let (id_token, access_token) = self.tokens.issue(&user.sub, &user.email, user.email_verified, now)?;
        Ok(Tokens {
            id_token,
            access_token,
            refresh_token: None,
            expires_in_secs: TOKEN_TTL.whole_seconds().unsigned_abs(),
        })
    }

    async fn sign_out(&self, refresh_token: &SecretString, now: OffsetDateTime) -> Result<(), Error> {
        let hash = refresh_token_hash(refresh_token.expose());
        self.db
            .call(move |conn| {
                conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
                    params![hash.as_slice(), ts(now)],
                )
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn verify_access_token(&self, token: &SecretString, now: OffsetDateTime) -> Result<AccessClaims, Error> {
        self.tokens.verify_access(token, now)
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<UserRecord>, Error> {
        self.find_user("email", email.as_str()).await
    }

    async fn find_by_sub(&self, sub: &UserSub) -> Result<Option<UserRecord>, Error> {
        self.find_user("sub", sub.as_str()).await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, Error> {
        self.db
            .call(|conn| {
                let mut stmt = conn
                    .prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, rowid"))
                    .map_err(db_err)?;
                let rows = stmt.query_map([], user_from_row).map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
            .await
    }

    async fn jwks_json(&self) -> Result<Option<String>, Error> {
        Ok(Some(self.tokens.jwks_json().to_owned()))
    }
}
