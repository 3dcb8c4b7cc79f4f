//! The local user pool: what Cognito does for the AWS backend, in SQLite.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::access_code::generate_confirmation_code;
use domain::firebase::{AccountImport, ImportedUser};
use domain::messages::Branding;
use domain::presignup::{PreSignUpDecision, PreSignUpFacts, Trigger, decide};
use domain::{
    AccessClaims, CodeHash, CodeHasher, Email, Error, Mailer, Page, Password, Reservation, SecretString, SignUpOutcome,
    SignUpPolicy, SignUpRequest, Tokens, UserPool, UserRecord, UserStatus, UserSub, messages,
};
use rand::Rng;
use rusqlite::{OptionalExtension as _, Row, Transaction, params};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::db::{Db, db_err, decode_cursor, is_unique_violation, keyset_page, optional_row};
use crate::hashing::PasswordHashing;
use crate::store::{from_ts, get_in, redeem_in, ts};
use crate::tokens::{TOKEN_TTL, TokenIssuer};

const CONFIRMATION_CODE_TTL: Duration = Duration::hours(24);
/// Wrong confirmation codes allowed before a new code must be requested.
const CONFIRMATION_ATTEMPTS: u32 = 5;
const RECOVERY_CODE_TTL: Duration = Duration::hours(1);
/// Wrong recovery codes allowed before a new code must be requested.
const RECOVERY_ATTEMPTS: u32 = 5;

/// Expired refresh tokens deleted per write transaction.
const PURGE_BATCH: i64 = 1000;

pub struct LocalUserPool {
    db: Db,
    hashing: PasswordHashing,
    tokens: Arc<TokenIssuer>,
    codes: CodeHasher,
    mailer: Arc<dyn Mailer>,
    branding: Branding,
    policy: SignUpPolicy,
}

impl LocalUserPool {
    pub fn new(
        db: Db,
        hashing: PasswordHashing,
        tokens: TokenIssuer,
        codes: CodeHasher,
        mailer: Arc<dyn Mailer>,
        branding: Branding,
        policy: SignUpPolicy,
    ) -> Self {
        Self { db, hashing, tokens: Arc::new(tokens), codes, mailer, branding, policy }
    }

    /// Signs the ID and access tokens on a blocking thread: two RS256
    /// signatures are about a millisecond and a half of CPU, too long for an
    /// async worker.
    async fn sign_tokens(&self, user: &UserRecord, now: OffsetDateTime) -> Result<(SecretString, SecretString), Error> {
        let tokens = Arc::clone(&self.tokens);
        let (sub, email, verified) = (user.sub.clone(), user.email.clone(), user.email_verified);
        // A token issued in the second of a global sign-out would be refused
        // as issued "at" it: such a token says the next second instead.
        let issued_at = match user.signed_out_at {
            Some(at) if at.unix_timestamp() >= now.unix_timestamp() => at + Duration::seconds(1),
            _ => now,
        };
        tokio::task::spawn_blocking(move || tokens.issue(&sub, &email, verified, issued_at))
            .await
            .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("signing task failed")))?
    }

    /// The stored password hash of an account, by sub.
    async fn password_hash_of(&self, sub: &UserSub) -> Result<Option<String>, Error> {
        let sub = sub.clone();
        self.db
            .read(move |conn| {
                optional_row(conn, "SELECT password_hash FROM users WHERE sub = ?1", [sub.as_str()], |row| row.get(0))
            })
            .await
    }

    async fn send_confirmation_code(&self, email: &Email, code: &str) {
        if let Err(e) = self.mailer.send(&messages::confirmation_code(&self.branding, email, code)).await {
            // The account exists either way; the user can ask for the code again.
            tracing::error!(error = ?e, "could not send a confirmation code");
        }
    }

    /// `column` is one of our own column names, never input.
    async fn find_user(&self, column: &'static str, value: &str) -> Result<Option<UserRecord>, Error> {
        let value = value.to_owned();
        self.db
            .read(move |conn| {
                optional_row(
                    conn,
                    &format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = ?1"),
                    [value],
                    user_from_row,
                )
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
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO refresh_tokens (token_hash, sub, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![hash.as_slice(), sub.as_str(), ts(now), ts(now + domain::REFRESH_TOKEN_LIFETIME)],
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

const USER_COLUMNS: &str = "sub, email, status, email_verified, created_at, signed_out_at, disabled";

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
        signed_out_at: row.get::<_, Option<i64>>(5)?.map(from_ts).transpose()?,
        disabled: row.get(6)?,
    })
}

/// What the pre-sign-up decision made of a new account: its status, and whether its email counts as verified.
struct Admission {
    status: UserStatus,
    email_verified: bool,
}

/// The same decision the Cognito PreSignUp trigger makes, on the same facts:
/// is this email's invitation reserved by the sign-up that presented its code?
fn admit(
    tx: &Transaction<'_>,
    reservation: Option<&Reservation>,
    policy: SignUpPolicy,
    now: OffsetDateTime,
) -> Result<Admission, Error> {
    let invitation_reserved = match reservation {
        Some(r) => {
            let held = get_in(tx, r.invitation_id.as_str())?.is_some_and(|i| i.is_held_by(r, now));
            if !held {
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
    match decision {
        PreSignUpDecision::Reject { .. } => Err(Error::SignUpNotAllowed),
        PreSignUpDecision::Confirm { verify_email, .. } => {
            Ok(Admission { status: UserStatus::Confirmed, email_verified: verify_email })
        }
        PreSignUpDecision::RequireEmailConfirmation => {
            Ok(Admission { status: UserStatus::Unconfirmed, email_verified: false })
        }
    }
}

/// The new row; an unconfirmed one carries its confirmation code's hash.
fn insert_user(
    tx: &Transaction<'_>,
    user: &UserRecord,
    password_hash: &str,
    confirmation: Option<&CodeHash>,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let inserted = tx.execute(
        "INSERT INTO users (sub, email, password_hash, status, email_verified, created_at, \
         confirm_code_hash, confirm_expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            user.sub.as_str(),
            user.email.as_str(),
            password_hash,
            user.status.as_str(),
            user.email_verified,
            ts(user.created_at),
            confirmation.map(|hash| hash.as_bytes().to_vec()),
            confirmation.map(|_| ts(now + CONFIRMATION_CODE_TTL)),
        ],
    );
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::UserExists),
        Err(e) => Err(db_err(e)),
    }
}

/// The two kinds of code the pool emails and stores per account.
#[derive(Clone, Copy)]
enum EmailedCode {
    /// Confirms an open-mode sign-up (`UNCONFIRMED` accounts).
    Confirmation,
    /// Resets a forgotten password (`CONFIRMED` accounts).
    Recovery,
}

impl EmailedCode {
    /// Its columns and the account status it applies to; our own literals, never input.
    fn columns(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Self::Confirmation => ("confirm_code_hash", "confirm_expires_at", "confirm_attempts", "UNCONFIRMED"),
            Self::Recovery => ("recovery_code_hash", "recovery_expires_at", "recovery_attempts", "CONFIRMED"),
        }
    }

    fn lifetime(self) -> Duration {
        match self {
            Self::Confirmation => CONFIRMATION_CODE_TTL,
            Self::Recovery => RECOVERY_CODE_TTL,
        }
    }

    fn max_attempts(self) -> u32 {
        match self {
            Self::Confirmation => CONFIRMATION_ATTEMPTS,
            Self::Recovery => RECOVERY_ATTEMPTS,
        }
    }
}

/// Stores a new code of this kind for the account with this email and status,
/// replacing any earlier one and its wrong tries; whether there was one.
fn store_emailed_code(
    tx: &Transaction<'_>,
    kind: EmailedCode,
    email: &Email,
    code_hash: &CodeHash,
    now: OffsetDateTime,
) -> Result<bool, Error> {
    let (hash_column, expiry_column, attempts_column, status) = kind.columns();
    let updated = tx
        .execute(
            &format!(
                "UPDATE users SET {hash_column} = ?2, {expiry_column} = ?3, {attempts_column} = 0 \
                 WHERE email = ?1 AND status = '{status}'"
            ),
            params![email.as_str(), code_hash.as_bytes().as_slice(), ts(now + kind.lifetime())],
        )
        .map_err(db_err)?;
    Ok(updated == 1)
}

/// An account's sub, code hash, expiry and wrong tries, as stored.
type StoredCode = (String, Option<Vec<u8>>, Option<i64>, u32);

/// The account whose live code of this kind `presented` matches, if any.
/// Unknown accounts, and used, expired, used-up and wrong codes all give
/// `None`; a wrong try is counted (and committed with the failed request).
fn check_emailed_code(
    tx: &Transaction<'_>,
    kind: EmailedCode,
    email: &Email,
    presented: &CodeHash,
    now: OffsetDateTime,
) -> Result<Option<String>, Error> {
    let (hash_column, expiry_column, attempts_column, status) = kind.columns();
    let row: Option<StoredCode> = optional_row(
        tx,
        &format!(
            "SELECT sub, {hash_column}, {expiry_column}, {attempts_column} FROM users \
             WHERE email = ?1 AND status = '{status}'"
        ),
        [email.as_str()],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    let Some((sub, Some(stored), Some(expires_at), attempts)) = row else {
        return Ok(None);
    };
    let stored = CodeHash::from_bytes(&stored).ok_or_else(|| Error::unexpected("stored code hash invalid"))?;
    if attempts >= kind.max_attempts() || expires_at <= ts(now) {
        return Ok(None);
    }
    if !stored.matches(presented) {
        tx.execute(&format!("UPDATE users SET {attempts_column} = {attempts_column} + 1 WHERE sub = ?1"), [&sub])
            .map_err(db_err)?;
        return Ok(None);
    }
    Ok(Some(sub))
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
        let status = self
            .db
            .write(move |tx| {
                let admission = admit(tx, reservation.as_ref(), policy, now)?;
                let confirmed = admission.status == UserStatus::Confirmed;
                let user = UserRecord {
                    sub: new_sub,
                    email,
                    status: admission.status,
                    email_verified: admission.email_verified,
                    created_at: now,
                    signed_out_at: None,
                    disabled: false,
                };
                insert_user(tx, &user, &password_hash, (!confirmed).then_some(&code_hash), now)?;
                if let (Some(r), true) = (&reservation, confirmed) {
                    // Consumed in the very transaction that creates the user.
                    redeem_in(tx, r, &user.sub, now)?;
                }
                Ok(user.status)
            })
            .await?;
        let confirmed = status == UserStatus::Confirmed;
        if !confirmed {
            self.send_confirmation_code(&request.email, &code).await;
        }
        Ok(SignUpOutcome { sub, confirmed })
    }

    async fn check_ready(&self) -> Result<(), Error> {
        self.db.check_writable().await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, Error> {
        let mut purged = 0;
        // In batches, each its own short write: sign-ups never wait long behind a purge.
        loop {
            let deleted = self
                .db
                .write(move |tx| {
                    tx.execute(
                        "DELETE FROM refresh_tokens WHERE rowid IN \
                         (SELECT rowid FROM refresh_tokens WHERE expires_at <= ?1 LIMIT ?2)",
                        params![ts(now), PURGE_BATCH],
                    )
                    .map_err(db_err)
                })
                .await?;
            purged += deleted as u64;
            if (deleted as i64) < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }

    async fn forgot_password(&self, email: &Email, now: OffsetDateTime) -> Result<(), Error> {
        let code = generate_confirmation_code(&mut rand::rng());
        let code_hash = self.codes.hash_recovery_code(email, &code);
        let target = email.clone();
        let stored =
            self.db.write(move |tx| store_emailed_code(tx, EmailedCode::Recovery, &target, &code_hash, now)).await?;
        if stored {
            self.mailer.send(&messages::recovery_code(&self.branding, email, &code)).await?;
        }
        Ok(())
    }

    async fn confirm_forgot_password(
        &self,
        email: &Email,
        code: &str,
        password: &Password,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let presented = self.codes.hash_recovery_code(email, code.trim());
        // Hashed first, so the code is consumed in the same transaction that sets the password.
        let password_hash = self.hashing.hash(password.expose()).await?;
        let email = email.clone();
        let reset = self
            .db
            .write(move |tx| {
                let Some(sub) = check_emailed_code(tx, EmailedCode::Recovery, &email, &presented, now)? else {
                    return Ok(false);
                };
                // A reset ends every session: refresh tokens go, older access tokens are refused.
                tx.execute(
                    "UPDATE users SET password_hash = ?2, recovery_code_hash = NULL, recovery_expires_at = NULL, \
                     recovery_attempts = 0, signed_out_at = ?3 WHERE sub = ?1",
                    params![sub, password_hash, ts(now)],
                )
                .map_err(db_err)?;
                tx.execute("DELETE FROM refresh_tokens WHERE sub = ?1", [&sub]).map_err(db_err)?;
                Ok(true)
            })
            .await?;
        if reset { Ok(()) } else { Err(Error::InvalidConfirmationCode) }
    }

    async fn change_password(
        &self,
        user: &UserRecord,
        _access_token: &SecretString,
        previous: &SecretString,
        proposed: &Password,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.check_password(user, previous).await?;
        self.set_password(user, proposed, now).await
    }

    async fn global_sign_out(&self, user: &UserRecord, now: OffsetDateTime) -> Result<(), Error> {
        let sub = user.sub.clone();
        // Tokens issued later in this same second say the next one (`sign_tokens`).
        self.db
            .write(move |tx| {
                tx.execute("UPDATE users SET signed_out_at = ?2 WHERE sub = ?1", params![sub.as_str(), ts(now)])
                    .map_err(db_err)?;
                tx.execute("DELETE FROM refresh_tokens WHERE sub = ?1", [sub.as_str()]).map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn set_disabled(&self, user: &UserRecord, disabled: bool, now: OffsetDateTime) -> Result<(), Error> {
        let sub = user.sub.clone();
        self.db
            .write(move |tx| {
                tx.execute("UPDATE users SET disabled = ?2 WHERE sub = ?1", params![sub.as_str(), disabled])
                    .map_err(db_err)?;
                if disabled {
                    // Its sessions end for good, as a global sign-out: enabling it
                    // again does not bring back the tokens issued before.
                    tx.execute("UPDATE users SET signed_out_at = ?2 WHERE sub = ?1", params![sub.as_str(), ts(now)])
                        .map_err(db_err)?;
                    tx.execute("DELETE FROM refresh_tokens WHERE sub = ?1", [sub.as_str()]).map_err(db_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn check_password(&self, user: &UserRecord, password: &SecretString) -> Result<(), Error> {
        let stored = usable(self.password_hash_of(&user.sub).await?);
        let known = stored.is_some();
        if self.hashing.verify(password.expose(), stored).await? && known { Ok(()) } else { Err(Error::NotAuthorized) }
    }

    async fn delete_user(&self, user: &UserRecord) -> Result<(), Error> {
        let sub = user.sub.clone();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM refresh_tokens WHERE sub = ?1", [sub.as_str()]).map_err(db_err)?;
                tx.execute("DELETE FROM users WHERE sub = ?1", [sub.as_str()]).map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn delete_unconfirmed(&self, user: &UserRecord) -> Result<(), Error> {
        let sub = user.sub.clone();
        self.db
            .write(move |tx| {
                let deleted = tx
                    .execute("DELETE FROM users WHERE sub = ?1 AND status = 'UNCONFIRMED'", [sub.as_str()])
                    .map_err(db_err)?;
                if deleted == 1 {
                    tx.execute("DELETE FROM refresh_tokens WHERE sub = ?1", [sub.as_str()]).map_err(db_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn confirm_sign_up(&self, email: &Email, code: &str, now: OffsetDateTime) -> Result<(), Error> {
        let presented = self.codes.hash_confirmation_code(email, code.trim());
        let email = email.clone();
        let confirmed = self
            .db
            .write(move |tx| {
                let Some(sub) = check_emailed_code(tx, EmailedCode::Confirmation, &email, &presented, now)? else {
                    return Ok(false);
                };
                tx.execute(
                    "UPDATE users SET status = 'CONFIRMED', email_verified = 1, confirm_code_hash = NULL, \
                     confirm_expires_at = NULL, confirm_attempts = 0 WHERE sub = ?1 AND status = 'UNCONFIRMED'",
                    [&sub],
                )
                .map_err(db_err)?;
                Ok(true)
            })
            .await?;
        if confirmed { Ok(()) } else { Err(Error::InvalidConfirmationCode) }
    }

    async fn resend_confirmation(&self, email: &Email, now: OffsetDateTime) -> Result<(), Error> {
        let code = generate_confirmation_code(&mut rand::rng());
        let code_hash = self.codes.hash_confirmation_code(email, &code);
        let target = email.clone();
        let stored = self
            .db
            .write(move |tx| store_emailed_code(tx, EmailedCode::Confirmation, &target, &code_hash, now))
            .await?;
        // Unknown or confirmed address: answer the same, send nothing.
        if stored {
            self.send_confirmation_code(email, &code).await;
        }
        Ok(())
    }

    async fn sign_in(&self, email: &Email, password: &SecretString, now: OffsetDateTime) -> Result<Tokens, Error> {
        let target = email.clone();
        let user: Option<(UserRecord, String)> = self
            .db
            .read(move |conn| {
                optional_row(
                    conn,
                    &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?1"),
                    [target.as_str()],
                    |row| Ok((user_from_row(row)?, row.get(7)?)),
                )
            })
            .await?;
        let (user, hash) = match user {
            Some((user, hash)) => (Some(user), usable(Some(hash))),
            None => (None, None),
        };
        // Unknown users verify against a dummy hash: same work, same answer.
        let password_ok = self.hashing.verify(password.expose(), hash).await?;
        let user = match user {
            Some(user) if password_ok => user,
            _ => return Err(Error::NotAuthorized),
        };
        if user.disabled {
            return Err(Error::UserDisabled);
        }
        if user.status != UserStatus::Confirmed {
            return Err(Error::UserNotConfirmed);
        }
        // The signatures and the refresh token's commit overlap.
        let ((id_token, access_token), refresh_token) =
            tokio::try_join!(self.sign_tokens(&user, now), self.issue_refresh_token(&user.sub, now))?;
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
            .read(move |conn| {
                optional_row(
                    conn,
                    "SELECT u.sub, u.email, u.status, u.email_verified, u.created_at, u.signed_out_at, u.disabled \
                     FROM refresh_tokens t \
                     JOIN users u ON u.sub = t.sub \
                     WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND t.expires_at > ?2 AND u.disabled = 0",
                    params![hash.as_slice(), ts(now)],
                    user_from_row,
                )
            })
            .await?
            .ok_or(Error::NotAuthorized)?;
        let (id_token, access_token) = self.sign_tokens(&user, now).await?;
        Ok(Tokens {
            id_token,
            access_token,
            refresh_token: None,
            expires_in_secs: TOKEN_TTL.whole_seconds().unsigned_abs(),
        })
    }

    async fn sign_out(&self, refresh_token: &SecretString, _now: OffsetDateTime) -> Result<(), Error> {
        let hash = refresh_token_hash(refresh_token.expose());
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM refresh_tokens WHERE token_hash = ?1", params![hash.as_slice()])
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
            .read(|conn| {
                let mut stmt = conn
                    .prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, rowid"))
                    .map_err(db_err)?;
                let rows = stmt.query_map([], user_from_row).map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
            .await
    }

    async fn users_page(&self, limit: usize, cursor: Option<&str>) -> Result<Page<UserRecord>, Error> {
        let after = cursor.map(decode_cursor).transpose()?;
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.db
            .read(move |conn| {
                // Oldest first, through users_by_created; one row more tells whether a page follows.
                let (created_at, rowid) = after.unwrap_or((i64::MIN, i64::MIN));
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS}, rowid FROM users \
                         WHERE (created_at, rowid) > (?1, ?2) \
                         ORDER BY created_at, rowid LIMIT ?3"
                    ))
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map(params![created_at, rowid, limit + 1], |row| {
                        Ok((user_from_row(row)?, row.get::<_, i64>(4)?, row.get::<_, i64>(7)?))
                    })
                    .map_err(db_err)?;
                let rows = rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?;
                Ok(keyset_page(rows, limit))
            })
            .await
    }

    async fn jwks_json(&self) -> Result<Option<String>, Error> {
        Ok(Some(self.tokens.jwks_json().to_owned()))
    }

    async fn import_users(&self, users: &[ImportedUser]) -> Result<Vec<AccountImport>, Error> {
        let users = users.to_vec();
        // One transaction for the batch: an import cut short leaves whole batches.
        self.db
            .write(move |tx| {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO users (sub, email, password_hash, status, email_verified, created_at, \
                         disabled, firebase_uid) VALUES (?1, ?2, ?3, 'CONFIRMED', ?4, ?5, ?6, ?7) \
                         ON CONFLICT DO NOTHING",
                    )
                    .map_err(db_err)?;
                let mut owner = tx.prepare_cached("SELECT firebase_uid FROM users WHERE email = ?1").map_err(db_err)?;
                let mut outcomes = Vec::with_capacity(users.len());
                for user in &users {
                    let sub = uuid::Uuid::new_v4().to_string();
                    let inserted = insert
                        .execute(params![
                            sub,
                            user.email.as_str(),
                            NO_PASSWORD,
                            user.email_verified,
                            ts(user.created_at),
                            user.disabled,
                            user.firebase_uid,
                        ])
                        .map_err(db_err)?;
                    let outcome = if inserted == 1 {
                        AccountImport::Created
                    } else {
                        let uid: Option<Option<String>> =
                            owner.query_row([user.email.as_str()], |row| row.get(0)).optional().map_err(db_err)?;
                        match uid {
                            Some(Some(uid)) if uid == user.firebase_uid => AccountImport::AlreadyImported,
                            _ => AccountImport::Taken,
                        }
                    };
                    outcomes.push(outcome);
                }
                Ok(outcomes)
            })
            .await
    }

    async fn set_password(&self, user: &UserRecord, password: &Password, _now: OffsetDateTime) -> Result<(), Error> {
        let password_hash = self.hashing.hash(password.expose()).await?;
        let sub = user.sub.clone();
        self.db
            .write(move |tx| {
                tx.execute("UPDATE users SET password_hash = ?2 WHERE sub = ?1", params![sub.as_str(), password_hash])
                    .map_err(db_err)?;
                Ok(())
            })
            .await
    }
}

/// What an imported account holds instead of a password hash until its
/// first sign-in: matches no password (`verify` is given the dummy instead).
const NO_PASSWORD: &str = "!";

fn usable(stored: Option<String>) -> Option<String> {
    stored.filter(|hash| hash != NO_PASSWORD)
}
