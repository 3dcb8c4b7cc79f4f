//! The service side: Cognito, SES, token verification, provisioning.

mod cognito;
mod jwks;
pub mod provision;
mod secret_hash;
mod ses;

use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use domain::{CodeHasher, InvitationStore, Mailer, SecretString, UserPool};

pub use cognito::CognitoUserPool;
pub use jwks::CognitoTokenVerifier;
pub use secret_hash::secret_hash;
pub use ses::SesMailer;

use crate::DynamoInvitationStore;

/// The AWS backend's settings. Names follow the original write-up where it had them.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    pub user_pool_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub table: String,
    pub mail_from: String,
    /// 32 bytes, base64: the key access codes are hashed under. Every instance
    /// of the service must share it, so it comes from the environment (a
    /// secret store), not from a file on one machine.
    pub code_key: SecretString,
    /// Defaults to `https://cognito-idp.<region>.amazonaws.com/<pool>`.
    pub issuer: Option<String>,
    /// Defaults to `<issuer>/.well-known/jwks.json`, or under `AWS_ENDPOINT_URL` for an emulator.
    pub jwks_url: Option<String>,
}

pub const ENV_POOL: &str = "AWS_COGNITO_USER_POOL_ID";
pub const ENV_CLIENT: &str = "AWS_COGNITO_APP_CLIENT_ID";
pub const ENV_SECRET: &str = "AWS_COGNITO_APP_CLIENT_SECRET";
pub const ENV_TABLE: &str = "INVITEGATE_TABLE";
pub const ENV_MAIL_FROM: &str = "INVITEGATE_MAIL_FROM";
pub const ENV_CODE_KEY: &str = "INVITEGATE_CODE_KEY";
pub const ENV_ISSUER: &str = "INVITEGATE_COGNITO_ISSUER";
pub const ENV_JWKS_URL: &str = "INVITEGATE_COGNITO_JWKS_URL";

impl AwsConfig {
    /// Reads the settings from the environment; a missing one is an error naming it.
    pub fn from_env() -> anyhow::Result<Self> {
        let required = |name: &str| -> anyhow::Result<String> {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .with_context(|| format!("the AWS backend needs {name} to be set"))
        };
        Ok(Self {
            user_pool_id: required(ENV_POOL)?,
            client_id: required(ENV_CLIENT)?,
            client_secret: SecretString::new(required(ENV_SECRET)?),
            table: required(ENV_TABLE)?,
            mail_from: required(ENV_MAIL_FROM)?,
            code_key: SecretString::new(required(ENV_CODE_KEY)?),
            issuer: std::env::var(ENV_ISSUER).ok().filter(|v| !v.is_empty()),
            jwks_url: std::env::var(ENV_JWKS_URL).ok().filter(|v| !v.is_empty()),
        })
    }
}

pub struct AwsBackend {
    pub store: Arc<dyn InvitationStore>,
    pub pool: Arc<dyn UserPool>,
    pub mailer: Arc<dyn Mailer>,
    pub code_hasher: CodeHasher,
}

/// A new random code key, base64, for `INVITEGATE_CODE_KEY`.
pub fn generate_code_key() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn parse_code_key(key: &SecretString) -> anyhow::Result<CodeHasher> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.expose().trim())
        .map_err(|_| anyhow::anyhow!("{ENV_CODE_KEY} must be base64"))?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| anyhow::anyhow!("{ENV_CODE_KEY} must hold exactly 32 bytes"))?;
    Ok(CodeHasher::new(key))
}

/// Loads the standard SDK configuration chain (region, credentials, `AWS_ENDPOINT_URL`).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

pub fn open(config: &AwsConfig, sdk: &aws_config::SdkConfig) -> anyhow::Result<AwsBackend> {
    let region = sdk.region().map(ToString::to_string).context("no AWS region: set AWS_REGION")?;
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| format!("https://cognito-idp.{region}.amazonaws.com/{}", config.user_pool_id));
    let jwks_url = config.jwks_url.clone().unwrap_or_else(|| match sdk.endpoint_url() {
        // Emulators serve the keys under their own endpoint.
        Some(endpoint) => format!("{}/{}/.well-known/jwks.json", endpoint.trim_end_matches('/'), config.user_pool_id),
        None => format!("{issuer}/.well-known/jwks.json"),
    });
    let verifier = CognitoTokenVerifier::new(issuer, jwks_url, config.client_id.clone())?;
    let pool = CognitoUserPool::new(
        aws_sdk_cognitoidentityprovider::Client::new(sdk),
        config.user_pool_id.clone(),
        config.client_id.clone(),
        config.client_secret.clone(),
        verifier,
    );
    Ok(AwsBackend {
        store: Arc::new(DynamoInvitationStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table.clone())),
        pool: Arc::new(pool),
        mailer: Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(sdk), config.mail_from.clone())),
        code_hasher: parse_code_key(&config.code_key)?,
    })
}
