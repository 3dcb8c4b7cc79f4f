//! The service side: Cognito, SES and token verification (provisioning is the `xtask` crate's).

mod cognito;
mod jwks;
mod legacy;
mod secret_hash;
mod ses;

use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use domain::{Adapters, CodeHasher, SecretString};

pub use cognito::CognitoUserPool;
pub use jwks::CognitoTokenVerifier;
pub use secret_hash::secret_hash;
pub use ses::SesMailer;

use crate::{DynamoAttemptCounter, DynamoInvitationStore, ENV_CODE_KEY};

/// The AWS backend's settings (the service's command line fills them; see
/// `env_names` for their variables). Names follow the original write-up.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    pub user_pool_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub table: String,
    pub mail_from: String,
    /// 32 bytes, base64: the key access codes are hashed under. Every instance
    /// of the service must share it, so it comes from the configuration
    /// (a secret store, through the environment), not from a file on one machine.
    pub code_key: SecretString,
    /// Defaults to `https://cognito-idp.<region>.amazonaws.com/<pool>`.
    pub issuer: Option<String>,
    /// Defaults to `<issuer>/.well-known/jwks.json`, or under `AWS_ENDPOINT_URL` for an emulator.
    pub jwks_url: Option<String>,
    /// Where to reach AWS instead of the SDK's default (`AWS_ENDPOINT_URL`):
    /// an emulator, or a proxy in front of one.
    pub endpoint_url: Option<String>,
}

/// A new random code key, base64, for `INVITEGATE_CODE_KEY`.
pub fn generate_code_key() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
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

pub fn open(config: &AwsConfig, sdk: &aws_config::SdkConfig) -> anyhow::Result<Adapters> {
    let region = sdk.region().map(ToString::to_string).context("no AWS region: set AWS_REGION")?;
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| format!("https://cognito-idp.{region}.amazonaws.com/{}", config.user_pool_id));
    let endpoint = config.endpoint_url.as_deref().or(sdk.endpoint_url());
    let jwks_url = config.jwks_url.clone().unwrap_or_else(|| match endpoint {
        // Emulators serve the keys under their own endpoint.
        Some(endpoint) => format!("{}/{}/.well-known/jwks.json", endpoint.trim_end_matches('/'), config.user_pool_id),
        None => format!("{issuer}/.well-known/jwks.json"),
    });
    let verifier = CognitoTokenVerifier::new(issuer, jwks_url, config.client_id.clone())?;
    // Each client's own configuration: an endpoint set there wins over the
    // environment's AWS_ENDPOINT_URL, which service clients otherwise re-read.
    let cognito = {
        let builder = aws_sdk_cognitoidentityprovider::config::Builder::from(sdk);
        aws_sdk_cognitoidentityprovider::Client::from_conf(
            endpoint.map_or(builder.clone(), |url| builder.endpoint_url(url)).build(),
        )
    };
    let dynamo = {
        let builder = aws_sdk_dynamodb::config::Builder::from(sdk);
        aws_sdk_dynamodb::Client::from_conf(endpoint.map_or(builder.clone(), |url| builder.endpoint_url(url)).build())
    };
    let ses = {
        let builder = aws_sdk_sesv2::config::Builder::from(sdk);
        aws_sdk_sesv2::Client::from_conf(endpoint.map_or(builder.clone(), |url| builder.endpoint_url(url)).build())
    };
    let pool = CognitoUserPool::new(
        cognito,
        config.user_pool_id.clone(),
        config.client_id.clone(),
        config.client_secret.clone(),
        verifier,
    );
    Ok(Adapters {
        store: Arc::new(DynamoInvitationStore::new(dynamo.clone(), config.table.clone())),
        legacy: Arc::new(legacy::DynamoLegacyPasswords::new(dynamo.clone(), config.table.clone())),
        // In the table, so that every instance of the service counts together.
        attempts: Arc::new(DynamoAttemptCounter::new(dynamo, config.table.clone(), config.user_pool_id.clone())),
        pool: Arc::new(pool),
        mailer: Arc::new(SesMailer::new(ses, config.mail_from.clone())),
        codes: parse_code_key(&config.code_key)?,
        hashing_load: None,
    })
}
