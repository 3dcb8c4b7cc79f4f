//! Verifying Cognito access tokens against the pool's JWKS: keys cached, and
//! fetched again when a token names a key we have not seen (key rotation).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::{AccessClaims, Error, SecretString, UserSub};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::unexpected;

/// At most one refetch in this interval, so junk `kid`s cannot hammer Cognito.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct CognitoAccessClaims {
    sub: String,
    token_use: String,
    client_id: String,
    username: String,
    exp: i64,
}

struct Cache {
    keys: HashMap<String, DecodingKey>,
    document: Option<String>,
    fetched_at: Option<Instant>,
}

pub struct CognitoTokenVerifier {
    issuer: String,
    jwks_url: String,
    client_id: String,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

impl CognitoTokenVerifier {
    pub fn new(issuer: String, jwks_url: String, client_id: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        Ok(Self {
            issuer,
            jwks_url,
            client_id,
            http,
            cache: Mutex::new(Cache { keys: HashMap::new(), document: None, fetched_at: None }),
        })
    }

    async fn refresh(&self, cache: &mut Cache) -> Result<(), Error> {
        if cache.fetched_at.is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL) {
            return Ok(());
        }
        cache.fetched_at = Some(Instant::now());
        let response = self.http.get(&self.jwks_url).send().await.map_err(|e| unexpected(e, "fetching the JWKS"))?;
        let body = response
            .error_for_status()
            .map_err(|e| unexpected(e, "fetching the JWKS"))?
            .text()
            .await
            .map_err(|e| unexpected(e, "reading the JWKS"))?;
        let set: JwkSet = serde_json::from_str(&body).map_err(|e| unexpected(e, "parsing the JWKS"))?;
        cache.keys = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        cache.document = Some(body);
        Ok(())
    }

    pub async fn jwks_document(&self) -> Result<Option<String>, Error> {
        let mut cache = self.cache.lock().await;
        if cache.document.is_none() {
            self.refresh(&mut cache).await?;
        }
        Ok(cache.document.clone())
    }

    /// Checks signature, issuer, expiry, `token_use` and `client_id`. Expiry is
    /// checked against the wall clock, not the service's: Cognito stamps `exp`
    /// with its own (real) time, and the two must be compared on one clock.
    pub async fn verify_access(&self, token: &SecretString) -> Result<AccessClaims, Error> {
        let now = OffsetDateTime::now_utc();
        let header = jsonwebtoken::decode_header(token.expose()).map_err(|_| Error::InvalidToken)?;
        let kid = header.kid.ok_or(Error::InvalidToken)?;
        let key = {
            let mut cache = self.cache.lock().await;
            if !cache.keys.contains_key(&kid) {
                self.refresh(&mut cache).await?;
            }
            cache.keys.get(&kid).cloned().ok_or(Error::InvalidToken)?
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_exp = false; // checked below, without leeway
        validation.validate_aud = false; // access tokens carry client_id, not aud
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<CognitoAccessClaims>(token.expose(), &key, &validation)
            .map_err(|_| Error::InvalidToken)?
            .claims;
        if claims.exp <= now.unix_timestamp() || claims.token_use != "access" || claims.client_id != self.client_id {
            return Err(Error::InvalidToken);
        }
        Ok(AccessClaims { sub: UserSub::new(claims.sub), username: claims.username })
    }
}
