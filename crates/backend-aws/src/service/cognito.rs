//! The user pool on Cognito, through a confidential app client: every call that
//! names a user carries a SECRET_HASH. Cognito types stay in here.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::operation::sign_up::{SignUpError, SignUpOutput};
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, AuthenticationResultType, MessageActionType, UserStatusType,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::firebase::{AccountImport, ImportedUser};
use domain::{
    AccessClaims, Email, Error, Page, Password, SecretString, SignUpOutcome, SignUpRequest, Tokens, UserPool,
    UserRecord, UserStatus, UserSub,
};
use time::OffsetDateTime;

use super::jwks::CognitoTokenVerifier;
use super::secret_hash::secret_hash;
use crate::{
    CREATED_AT_ATTRIBUTE, DISABLED_ATTRIBUTE, FIREBASE_UID_ATTRIBUTE, RESERVATION_ATTRIBUTE, SIGNED_OUT_ATTRIBUTE,
    unexpected,
};

/// SignUp throttled by Cognito is retried after 100 ms, 400 ms and 1.6 s.
const SIGN_UP_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
const SIGN_UP_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_millis(1600);

/// Cognito's own throttling survived the SDK's retries: ask the client to come back.
const THROTTLED_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

pub struct CognitoUserPool {
    client: Client,
    user_pool_id: String,
    client_id: String,
    client_secret: SecretString,
    verifier: CognitoTokenVerifier,
}

/// Our refresh token is `<Cognito username>~<Cognito refresh token>`: refreshing
/// with a client secret needs the SECRET_HASH of the *username* (the sub, in
/// email-username pools), which nothing else in the request carries.
fn pack_refresh_token(username: &str, token: &str) -> SecretString {
    SecretString::new(format!("{username}~{token}"))
}

fn unpack_refresh_token(packed: &SecretString) -> Result<(&str, &str), Error> {
    packed
        .expose()
        .split_once('~')
        .filter(|(user, token)| !user.is_empty() && !token.is_empty())
        .ok_or(Error::NotAuthorized)
}

/// The `username` claim of an access token Cognito just handed us (already trusted).
fn username_of(access_token: &str) -> Result<String, Error> {
    let payload = access_token.split('.').nth(1).ok_or_else(|| Error::unexpected("access token without payload"))?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|e| unexpected(e, "access token payload"))?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| unexpected(e, "access token claims"))?;
    claims["username"].as_str().map(str::to_owned).ok_or_else(|| Error::unexpected("access token without username"))
}

fn throttled<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    error.as_service_error().and_then(ProvideErrorMetadata::code) == Some("TooManyRequestsException")
}

fn service_code<E: ProvideErrorMetadata>(error: &SdkError<E>) -> Option<&str> {
    error.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// Cognito's answer to a password its policy refuses, with Cognito's wording.
fn refused_password<E: ProvideErrorMetadata>(error: &SdkError<E>) -> Option<Error> {
    let service = error.as_service_error()?;
    (service.code() == Some("InvalidPasswordException"))
        .then(|| Error::InvalidPassword(service.message().unwrap_or("Password does not conform to policy").to_owned()))
}

/// Cognito's own attempt limit (LimitExceededException): its window is not
/// published, so callers are told to come back after ours.
const COGNITO_LIMITED: Error = Error::TooManyAttempts { retry_after: std::time::Duration::from_secs(15 * 60) };

/// What every operation does with errors it has no specific meaning for.
fn other<E>(error: SdkError<E>, operation: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if throttled(&error) {
        tracing::warn!(operation, "Cognito throttled the request after retries");
        return Error::Unavailable { retry_after: THROTTLED_RETRY_AFTER };
    }
    unexpected(error, operation)
}

/// Only UNCONFIRMED (self sign-up, address not proven) counts as unconfirmed:
/// every other state (CONFIRMED, RESET_REQUIRED, FORCE_CHANGE_PASSWORD, …) is a
/// real account that an invitation must never replace.
fn status(cognito: Option<&UserStatusType>) -> UserStatus {
    match cognito {
        Some(UserStatusType::Unconfirmed) => UserStatus::Unconfirmed,
        _ => UserStatus::Confirmed,
    }
}

/// Our record of a Cognito user, from what AdminGetUser and ListUsers both return.
fn user_record(
    username: &str,
    attributes: &[AttributeType],
    cognito_status: Option<&UserStatusType>,
    created: Option<&aws_sdk_cognitoidentityprovider::primitives::DateTime>,
) -> Result<UserRecord, Error> {
    let attribute = |name: &str| attributes.iter().find(|a| a.name() == name).and_then(|a| a.value());
    let email = attribute("email").ok_or_else(|| Error::unexpected("Cognito user without email"))?;
    Ok(UserRecord {
        sub: UserSub::new(attribute("sub").unwrap_or(username).to_owned()),
        email: Email::parse(email).map_err(|_| Error::unexpected("Cognito user with invalid email"))?,
        status: status(cognito_status),
        email_verified: attribute("email_verified") == Some("true"),
        // An imported user's account was made when Firebase made it.
        created_at: attribute(CREATED_AT_ATTRIBUTE)
            .and_then(|v| v.parse::<i64>().ok())
            .or(created.map(|d| d.secs()))
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        signed_out_at: attribute(SIGNED_OUT_ATTRIBUTE)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok()),
        disabled: attribute(DISABLED_ATTRIBUTE) == Some("1"),
    })
}

fn tokens(result: Option<&AuthenticationResultType>, refresh: Option<SecretString>) -> Result<Tokens, Error> {
    let result = result.ok_or_else(|| Error::unexpected("Cognito answered without tokens (a challenge?)"))?;
    let id = result.id_token().ok_or_else(|| Error::unexpected("no id token"))?;
    let access = result.access_token().ok_or_else(|| Error::unexpected("no access token"))?;
    Ok(Tokens {
        id_token: SecretString::new(id.to_owned()),
        access_token: SecretString::new(access.to_owned()),
        refresh_token: refresh,
        expires_in_secs: u64::try_from(result.expires_in()).unwrap_or(3600),
    })
}

/// Imported users made at once.
const IMPORT_CONCURRENCY: usize = 8;

/// A password no one knows, meeting Cognito's default policy: an imported
/// account holds it until the service sets the user's own.
fn unknowable_password() -> String {
    use rand::RngExt as _;
    let random: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(40).map(char::from).collect();
    format!("Aa1!{random}")
}

/// What a refused SignUp means to the caller.
fn sign_up_error(e: SdkError<SignUpError>) -> Error {
    match e.as_service_error() {
        Some(s) if s.is_username_exists_exception() => Error::UserExists,
        Some(s) if s.is_invalid_password_exception() => {
            Error::InvalidPassword(s.message().unwrap_or("Password does not conform to policy").to_owned())
        }
        Some(s)
            if s.is_user_lambda_validation_exception()
                && s.message().is_some_and(|m| m.contains(domain::presignup::TRIGGER_UNAVAILABLE)) =>
        {
            tracing::error!("the PreSignUp trigger could not look the invitation up");
            Error::Unavailable { retry_after: THROTTLED_RETRY_AFTER }
        }
        Some(s) if s.is_user_lambda_validation_exception() => Error::InvalidAccessCode,
        // The trigger timed out or answered nonsense: no user was created.
        Some(s) if s.is_unexpected_lambda_exception() || s.is_invalid_lambda_response_exception() => {
            tracing::error!(error = %s, "the PreSignUp trigger failed");
            Error::Unavailable { retry_after: THROTTLED_RETRY_AFTER }
        }
        _ => other(e, "Cognito SignUp"),
    }
}

impl CognitoUserPool {
    /// One SignUp call, without the SDK's retries: a retry after a timeout
    /// whose first attempt did create the user would come back UsernameExists,
    /// and the invitation would be given back for a user who got in.
    async fn send_sign_up(&self, request: &SignUpRequest) -> Result<SignUpOutput, SdkError<SignUpError>> {
        let email = request.email.as_str();
        let attribute = |name: &str, value: &str| AttributeType::builder().name(name).value(value).build();
        let mut attributes = vec![attribute("email", email)];
        // The PreSignUp trigger confirms only the SignUp that carries the nonce
        // whose digest the email's lock in DynamoDB holds (a user attribute: the
        // one way a value reaches the trigger on the emulator too).
        if let Some(reservation) = &request.reservation {
            attributes.push(attribute(RESERVATION_ATTRIBUTE, reservation.nonce.expose()));
        }
        let attributes =
            attributes.into_iter().collect::<Result<Vec<_>, _>>().map_err(SdkError::construction_failure)?;
        self.client
            .sign_up()
            .client_id(&self.client_id)
            .secret_hash(self.hash(email))
            .username(email)
            .password(request.password.expose())
            .set_user_attributes(Some(attributes))
            .customize()
            .config_override(
                aws_sdk_cognitoidentityprovider::config::Builder::default()
                    .retry_config(aws_sdk_cognitoidentityprovider::config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
    }

    /// SignUp, retried here only when throttled (certain to have created
    /// nothing), with backoff; any other failure leaves the reservation to
    /// lapse and be settled.
    async fn cognito_sign_up(&self, request: &SignUpRequest) -> Result<SignUpOutcome, Error> {
        let mut backoff = SIGN_UP_BACKOFF;
        loop {
            match self.send_sign_up(request).await {
                Ok(output) => {
                    return Ok(SignUpOutcome {
                        sub: UserSub::new(output.user_sub().to_owned()),
                        confirmed: output.user_confirmed(),
                    });
                }
                Err(e) if throttled(&e) && backoff <= SIGN_UP_MAX_BACKOFF => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 4;
                }
                Err(e) => return Err(sign_up_error(e)),
            }
        }
    }

    pub fn new(
        client: Client,
        user_pool_id: String,
        client_id: String,
        client_secret: SecretString,
        verifier: CognitoTokenVerifier,
    ) -> Self {
        Self { client, user_pool_id, client_id, client_secret, verifier }
    }

    fn hash(&self, username: &str) -> String {
        secret_hash(username, &self.client_id, self.client_secret.expose())
    }

    async fn set_permanent_password(&self, username: &str, password: &str) -> Result<(), Error> {
        self.client
            .admin_set_user_password()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .password(password)
            .permanent(true)
            .send()
            .await
            .map_err(|e| refused_password(&e).unwrap_or_else(|| other(e, "Cognito AdminSetUserPassword")))?;
        Ok(())
    }

    /// One imported user: created without a message and given an unknowable
    /// permanent password, which makes the account CONFIRMED. An account that
    /// already has the address is this user's from an earlier run if it
    /// carries the same Firebase uid (then it is finished, in case that run
    /// stopped before the password), and someone else's otherwise.
    async fn import_user(&self, user: &ImportedUser) -> Result<AccountImport, Error> {
        let attribute = |name: &str, value: &str| AttributeType::builder().name(name).value(value).build();
        let created_at = user.created_at.unix_timestamp().to_string();
        let verified = if user.email_verified { "true" } else { "false" };
        let mut attributes = vec![
            attribute("email", user.email.as_str()),
            attribute("email_verified", verified),
            attribute(FIREBASE_UID_ATTRIBUTE, &user.firebase_uid),
            attribute(CREATED_AT_ATTRIBUTE, &created_at),
        ];
        if user.disabled {
            attributes.push(attribute(DISABLED_ATTRIBUTE, "1"));
        }
        let attributes =
            attributes.into_iter().collect::<Result<Vec<_>, _>>().map_err(|e| unexpected(e, "imported attributes"))?;
        let created = self
            .client
            .admin_create_user()
            .user_pool_id(&self.user_pool_id)
            .username(user.email.as_str())
            .set_user_attributes(Some(attributes))
            .message_action(MessageActionType::Suppress)
            .temporary_password(unknowable_password())
            .send()
            .await;
        let username = match created {
            Ok(output) => output
                .user()
                .and_then(|u| u.username())
                .map(str::to_owned)
                .ok_or_else(|| Error::unexpected("AdminCreateUser answered without a user"))?,
            Err(e) if service_code(&e) == Some("UsernameExistsException") => {
                let existing = self
                    .client
                    .admin_get_user()
                    .user_pool_id(&self.user_pool_id)
                    .username(user.email.as_str())
                    .send()
                    .await
                    .map_err(|e| other(e, "Cognito AdminGetUser (import)"))?;
                let uid = existing.user_attributes().iter().find(|a| a.name() == FIREBASE_UID_ATTRIBUTE);
                if uid.and_then(|a| a.value()) != Some(user.firebase_uid.as_str()) {
                    return Ok(AccountImport::Taken);
                }
                if existing.user_status() == Some(&UserStatusType::Confirmed) {
                    return Ok(AccountImport::AlreadyImported);
                }
                existing.username().to_owned()
            }
            Err(e) => return Err(other(e, "Cognito AdminCreateUser (import)")),
        };
        self.set_permanent_password(&username, &unknowable_password()).await?;
        Ok(AccountImport::Created)
    }

    /// AdminGetUser accepts the email (an alias of the username) or the sub.
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, Error> {
        let output = match self.client.admin_get_user().user_pool_id(&self.user_pool_id).username(username).send().await
        {
            Ok(output) => output,
            Err(e) if service_code(&e) == Some("UserNotFoundException") => return Ok(None),
            Err(e) => return Err(other(e, "Cognito AdminGetUser")),
        };
        user_record(output.username(), output.user_attributes(), output.user_status(), output.user_create_date())
            .map(Some)
    }
}

impl CognitoUserPool {
    /// Revokes the user's refresh tokens (AdminUserGlobalSignOut) and records
    /// the second in `custom:signed_out_at`, then waits for the next second:
    /// Cognito stamps `iat` in whole seconds, and a token issued in the second
    /// of the sign-out would be refused for its whole life.
    async fn sign_out_everywhere(&self, user: &UserRecord, now: OffsetDateTime) -> Result<(), Error> {
        self.client
            .admin_user_global_sign_out()
            .user_pool_id(&self.user_pool_id)
            .username(user.sub.as_str())
            .send()
            .await
            .map_err(|e| other(e, "Cognito AdminUserGlobalSignOut"))?;
        // Cognito's clock decides `iat`, so the wall clock (not the service's) is the one to use.
        #[allow(clippy::disallowed_methods)]
        let wall = OffsetDateTime::now_utc().max(now);
        self.client
            .admin_update_user_attributes()
            .user_pool_id(&self.user_pool_id)
            .username(user.sub.as_str())
            .user_attributes(
                AttributeType::builder()
                    .name(SIGNED_OUT_ATTRIBUTE)
                    .value(wall.unix_timestamp().to_string())
                    .build()
                    .map_err(|e| unexpected(e, "signed_out_at attribute"))?,
            )
            .send()
            .await
            .map_err(|e| other(e, "Cognito AdminUpdateUserAttributes (signed_out_at)"))?;
        let next_second = OffsetDateTime::from_unix_timestamp(wall.unix_timestamp() + 1)
            .map_err(|_| Error::unexpected("time out of range"))?;
        #[allow(clippy::disallowed_methods)]
        let wait = next_second - OffsetDateTime::now_utc();
        if wait.is_positive() {
            tokio::time::sleep(wait.unsigned_abs()).await;
        }
        Ok(())
    }
}

#[async_trait]
impl UserPool for CognitoUserPool {
    async fn sign_up(&self, request: SignUpRequest, _now: OffsetDateTime) -> Result<SignUpOutcome, Error> {
        self.cognito_sign_up(&request).await
    }

    async fn check_ready(&self) -> Result<(), Error> {
        self.client
            .describe_user_pool_client()
            .user_pool_id(&self.user_pool_id)
            .client_id(&self.client_id)
            .send()
            .await
            .map_err(|e| other(e, "Cognito DescribeUserPoolClient"))?;
        Ok(())
    }

    async fn purge_expired(&self, _now: OffsetDateTime) -> Result<u64, Error> {
        // Cognito expires its own refresh tokens.
        Ok(0)
    }

    async fn forgot_password(&self, email: &Email, _now: OffsetDateTime) -> Result<(), Error> {
        let result = self
            .client
            .forgot_password()
            .client_id(&self.client_id)
            .secret_hash(self.hash(email.as_str()))
            .username(email.as_str())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Unknown, unconfirmed or without a verified email: nothing is sent, and nobody is told.
            Err(e)
                if matches!(
                    service_code(&e),
                    Some("UserNotFoundException" | "InvalidParameterException" | "NotAuthorizedException")
                ) =>
            {
                Ok(())
            }
            Err(e) if matches!(service_code(&e), Some("LimitExceededException")) => Err(COGNITO_LIMITED),
            Err(e) => Err(other(e, "Cognito ForgotPassword")),
        }
    }

    async fn confirm_forgot_password(
        &self,
        email: &Email,
        code: &str,
        password: &Password,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let result = self
            .client
            .confirm_forgot_password()
            .client_id(&self.client_id)
            .secret_hash(self.hash(email.as_str()))
            .username(email.as_str())
            .confirmation_code(code.trim())
            .password(password.expose())
            .send()
            .await;
        if let Err(e) = result {
            return Err(refused_password(&e).unwrap_or_else(|| match service_code(&e) {
                Some(
                    "CodeMismatchException"
                    | "ExpiredCodeException"
                    | "UserNotFoundException"
                    | "NotAuthorizedException"
                    | "TooManyFailedAttemptsException",
                ) => Error::InvalidConfirmationCode,
                Some("LimitExceededException") => COGNITO_LIMITED,
                _ => other(e, "Cognito ConfirmForgotPassword"),
            }));
        }
        // Cognito keeps the refresh tokens across a reset; we end every session.
        let user = self.get_user(email.as_str()).await?.ok_or(Error::InvalidConfirmationCode)?;
        self.sign_out_everywhere(&user, now).await
    }

    async fn change_password(
        &self,
        _user: &UserRecord,
        access_token: &SecretString,
        previous: &SecretString,
        proposed: &Password,
        _now: OffsetDateTime,
    ) -> Result<(), Error> {
        let result = self
            .client
            .change_password()
            .access_token(access_token.expose())
            .previous_password(previous.expose())
            .proposed_password(proposed.expose())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(refused_password(&e).unwrap_or_else(|| match service_code(&e) {
                Some("NotAuthorizedException") => Error::NotAuthorized,
                Some("LimitExceededException" | "TooManyFailedAttemptsException") => COGNITO_LIMITED,
                _ => other(e, "Cognito ChangePassword"),
            })),
        }
    }

    async fn global_sign_out(&self, user: &UserRecord, now: OffsetDateTime) -> Result<(), Error> {
        self.sign_out_everywhere(user, now).await
    }

    async fn set_disabled(&self, user: &UserRecord, disabled: bool, now: OffsetDateTime) -> Result<(), Error> {
        self.client
            .admin_update_user_attributes()
            .user_pool_id(&self.user_pool_id)
            .username(user.sub.as_str())
            .user_attributes(
                AttributeType::builder()
                    .name(DISABLED_ATTRIBUTE)
                    .value(if disabled { "1" } else { "0" })
                    .build()
                    .map_err(|e| unexpected(e, "disabled attribute"))?,
            )
            .send()
            .await
            .map_err(|e| other(e, "Cognito AdminUpdateUserAttributes (disabled)"))?;
        if disabled {
            // Its refresh tokens stop working, and so do its access tokens here.
            self.sign_out_everywhere(user, now).await?;
        }
        Ok(())
    }

    async fn check_password(&self, user: &UserRecord, password: &SecretString) -> Result<(), Error> {
        // Cognito has no "is this the password": a sign-in proves it, and its
        // session is closed again at once.
        let result = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", user.email.as_str())
            .auth_parameters("PASSWORD", password.expose())
            .auth_parameters("SECRET_HASH", self.hash(user.email.as_str()))
            .send()
            .await;
        match result {
            Ok(output) => {
                if let Some(refresh) = output.authentication_result().and_then(|r| r.refresh_token()) {
                    let packed = pack_refresh_token(user.sub.as_str(), refresh);
                    self.sign_out(&packed, OffsetDateTime::UNIX_EPOCH).await?;
                }
                Ok(())
            }
            Err(e) => Err(match service_code(&e) {
                Some(
                    "NotAuthorizedException"
                    | "UserNotFoundException"
                    | "PasswordResetRequiredException"
                    | "UserNotConfirmedException",
                ) => Error::NotAuthorized,
                _ => other(e, "Cognito InitiateAuth (password check)"),
            }),
        }
    }

    async fn delete_user(&self, user: &UserRecord) -> Result<(), Error> {
        match self.client.admin_delete_user().user_pool_id(&self.user_pool_id).username(user.sub.as_str()).send().await
        {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some("UserNotFoundException") => Ok(()),
            Err(e) => Err(other(e, "Cognito AdminDeleteUser")),
        }
    }

    async fn delete_unconfirmed(&self, user: &UserRecord) -> Result<(), Error> {
        // Read again just before: AdminDeleteUser has no condition of its own.
        match self.get_user(user.sub.as_str()).await? {
            Some(current) if current.gives_way_to_invitation() => {}
            _ => return Ok(()),
        }
        match self.client.admin_delete_user().user_pool_id(&self.user_pool_id).username(user.sub.as_str()).send().await
        {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some("UserNotFoundException") => Ok(()),
            Err(e) => Err(other(e, "Cognito AdminDeleteUser (unconfirmed account)")),
        }
    }

    async fn confirm_sign_up(&self, email: &Email, code: &str, _now: OffsetDateTime) -> Result<(), Error> {
        let result = self
            .client
            .confirm_sign_up()
            .client_id(&self.client_id)
            .secret_hash(self.hash(email.as_str()))
            .username(email.as_str())
            .confirmation_code(code.trim())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(match service_code(&e) {
                // Wrong, expired, unknown user, already confirmed: one answer.
                Some(
                    "CodeMismatchException"
                    | "ExpiredCodeException"
                    | "UserNotFoundException"
                    | "NotAuthorizedException"
                    | "TooManyFailedAttemptsException",
                ) => Error::InvalidConfirmationCode,
                _ => other(e, "Cognito ConfirmSignUp"),
            }),
        }
    }

    async fn resend_confirmation(&self, email: &Email, _now: OffsetDateTime) -> Result<(), Error> {
        let result = self
            .client
            .resend_confirmation_code()
            .client_id(&self.client_id)
            .secret_hash(self.hash(email.as_str()))
            .username(email.as_str())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Unknown or already confirmed: answer as if sent.
            Err(e) if matches!(service_code(&e), Some("UserNotFoundException" | "InvalidParameterException")) => Ok(()),
            Err(e) => Err(other(e, "Cognito ResendConfirmationCode")),
        }
    }

    async fn sign_in(&self, email: &Email, password: &SecretString, now: OffsetDateTime) -> Result<Tokens, Error> {
        let result = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", email.as_str())
            .auth_parameters("PASSWORD", password.expose())
            .auth_parameters("SECRET_HASH", self.hash(email.as_str()))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) => {
                return Err(match service_code(&e) {
                    Some("NotAuthorizedException" | "UserNotFoundException" | "PasswordResetRequiredException") => {
                        Error::NotAuthorized
                    }
                    Some("UserNotConfirmedException") => Error::UserNotConfirmed,
                    _ => other(e, "Cognito InitiateAuth"),
                });
            }
        };
        let result = output.authentication_result();
        let access = result.and_then(|r| r.access_token()).ok_or_else(|| Error::unexpected("no access token"))?;
        let refresh = result.and_then(|r| r.refresh_token()).ok_or_else(|| Error::unexpected("no refresh token"))?;
        let username = username_of(access)?;
        // The password was right; a disabled account is told so, and the
        // session Cognito just opened is closed again.
        if self.get_user(&username).await?.is_some_and(|user| user.disabled) {
            let packed = pack_refresh_token(&username, refresh);
            self.sign_out(&packed, now).await?;
            return Err(Error::UserDisabled);
        }
        let packed = pack_refresh_token(&username, refresh);
        tokens(result, Some(packed))
    }

    async fn refresh(&self, refresh_token: &SecretString, _now: OffsetDateTime) -> Result<Tokens, Error> {
        let (username, token) = unpack_refresh_token(refresh_token)?;
        let result = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", token)
            .auth_parameters("SECRET_HASH", self.hash(username))
            .send()
            .await;
        match result {
            Ok(output) => tokens(output.authentication_result(), None),
            Err(e) if matches!(service_code(&e), Some("NotAuthorizedException" | "UserNotFoundException")) => {
                Err(Error::NotAuthorized)
            }
            Err(e) => Err(other(e, "Cognito InitiateAuth (refresh)")),
        }
    }

    async fn sign_out(&self, refresh_token: &SecretString, _now: OffsetDateTime) -> Result<(), Error> {
        let Ok((_, token)) = unpack_refresh_token(refresh_token) else { return Ok(()) };
        let result = self
            .client
            .revoke_token()
            .client_id(&self.client_id)
            .client_secret(self.client_secret.expose())
            .token(token)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Not a token we issued: nothing to revoke.
            Err(e)
                if matches!(service_code(&e), Some("UnsupportedTokenTypeException" | "InvalidParameterException")) =>
            {
                Ok(())
            }
            Err(e) => Err(other(e, "Cognito RevokeToken")),
        }
    }

    async fn verify_access_token(&self, token: &SecretString, _now: OffsetDateTime) -> Result<AccessClaims, Error> {
        self.verifier.verify_access(token).await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<UserRecord>, Error> {
        self.get_user(email.as_str()).await
    }

    async fn find_by_sub(&self, sub: &UserSub) -> Result<Option<UserRecord>, Error> {
        self.get_user(sub.as_str()).await
    }

    async fn users_page(&self, limit: usize, cursor: Option<&str>) -> Result<Page<UserRecord>, Error> {
        // ListUsers returns at most 60 per call; its pagination token is the cursor.
        let limit = i32::try_from(limit.clamp(1, 60)).unwrap_or(60);
        let token = cursor.map(crate::decode_cursor).transpose()?;
        let result = self
            .client
            .list_users()
            .user_pool_id(&self.user_pool_id)
            .limit(limit)
            .set_pagination_token(token)
            .send()
            .await;
        let page = match result {
            Ok(page) => page,
            Err(e) if service_code(&e) == Some("InvalidParameterException") && cursor.is_some() => {
                return Err(Error::InvalidRequest("Invalid cursor".into()));
            }
            Err(e) => return Err(other(e, "Cognito ListUsers")),
        };
        let mut items = Vec::new();
        for user in page.users() {
            match user_record(
                user.username().unwrap_or_default(),
                user.attributes(),
                user.user_status(),
                user.user_create_date(),
            ) {
                Ok(record) => items.push(record),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable Cognito user"),
            }
        }
        Ok(Page { items, next: page.pagination_token().map(crate::encode_cursor) })
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, Error> {
        let mut users = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_users()
                .user_pool_id(&self.user_pool_id)
                .set_pagination_token(token.take())
                .send()
                .await
                .map_err(|e| other(e, "Cognito ListUsers"))?;
            for user in page.users() {
                // A user whose record cannot be read is left out of the listing, not fatal to it.
                match user_record(
                    user.username().unwrap_or_default(),
                    user.attributes(),
                    user.user_status(),
                    user.user_create_date(),
                ) {
                    Ok(record) => users.push(record),
                    Err(e) => tracing::warn!(error = %e, "skipping an unreadable Cognito user"),
                }
            }
            match page.pagination_token() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        users.sort_by_key(|u| u.created_at);
        Ok(users)
    }

    async fn jwks_json(&self) -> Result<Option<String>, Error> {
        self.verifier.jwks_document().await
    }

    async fn import_users(&self, users: &[ImportedUser]) -> Result<Vec<AccountImport>, Error> {
        // AdminCreateUser counts against UserCreation (50/s per account): a
        // few at a time, and the SDK's retries back off when throttled.
        let mut outcomes = Vec::with_capacity(users.len());
        for chunk in users.chunks(IMPORT_CONCURRENCY) {
            outcomes.extend(futures::future::try_join_all(chunk.iter().map(|user| self.import_user(user))).await?);
        }
        Ok(outcomes)
    }

    async fn set_password(&self, user: &UserRecord, password: &Password, _now: OffsetDateTime) -> Result<(), Error> {
        self.set_permanent_password(user.sub.as_str(), password.expose()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_carry_the_username_needed_for_the_secret_hash() {
        let packed = pack_refresh_token("0f7c-sub", "eyJ.a.b~c");
        assert_eq!(unpack_refresh_token(&packed).ok(), Some(("0f7c-sub", "eyJ.a.b~c")));
        assert!(unpack_refresh_token(&SecretString::new("no-separator".into())).is_err());
        assert!(unpack_refresh_token(&SecretString::new("~token".into())).is_err());
    }
}
