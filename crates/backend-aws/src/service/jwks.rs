//! Verifying Cognito access tokens against the pool's JWKS: keys cached, and
//! fetched again when a token names a key we have not seen (key rotation).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::{AccessClaims, Error, SecretString};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::unexpected;

/// At most one refetch in this interval, so junk `kid`s cannot hammer Cognito.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

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
    /// Held for the whole of a JWKS fetch, so at most one runs at a time.
    fetching: Mutex<()>,
    min_refetch_interval: Duration,
    /// Tokens whose signature was already checked (see `VerifiedTokens`).
    verified: domain::VerifiedTokens,
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
            fetching: Mutex::new(()),
            min_refetch_interval: MIN_REFETCH_INTERVAL,
            verified: domain::VerifiedTokens::new(16_384),
        })
    }

    #[cfg(test)]
    fn with_min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// Fetches the keys again, unless a fetch succeeded within the quiet
    /// interval. The cache is not locked across the HTTP call: tokens whose
    /// keys are cached never wait behind a slow fetch; only one fetch runs at
    /// a time, and callers needing it wait for that one.
    async fn refresh(&self) -> Result<(), Error> {
        let _one_fetch = self.fetching.lock().await;
        if self.cache.lock().await.fetched_at.is_some_and(|at| at.elapsed() < self.min_refetch_interval) {
            return Ok(());
        }
        // Without keys no token can be checked: the client should retry, not sign in again.
        let unavailable = |e: reqwest::Error| {
            tracing::error!(error = %e, url = %self.jwks_url, "could not fetch the pool's JWKS");
            Error::Unavailable { retry_after: Duration::from_secs(2) }
        };
        let response = self.http.get(&self.jwks_url).send().await.map_err(unavailable)?;
        let body = response.error_for_status().map_err(unavailable)?.text().await.map_err(unavailable)?;
        let set: JwkSet = serde_json::from_str(&body).map_err(|e| unexpected(e, "parsing the JWKS"))?;
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        let mut cache = self.cache.lock().await;
        cache.keys = keys;
        cache.document = Some(body);
        // Only a successful fetch starts the quiet interval: after a failure the next token retries.
        cache.fetched_at = Some(Instant::now());
        Ok(())
    }

    pub async fn jwks_document(&self) -> Result<Option<String>, Error> {
        if self.cache.lock().await.document.is_none() {
            self.refresh().await?;
        }
        Ok(self.cache.lock().await.document.clone())
    }

    fn cached_key(cache: &Cache, kid: &str) -> Option<DecodingKey> {
        cache.keys.get(kid).cloned()
    }

    /// Checks signature and issuer here, then the claims as the domain says. Expiry is
    /// checked against the wall clock, not the service's: Cognito stamps `exp`
    /// with its own (real) time, and the two must be compared on one clock.
    pub async fn verify_access(&self, token: &SecretString) -> Result<AccessClaims, Error> {
        #[allow(clippy::disallowed_methods)] // see above: Cognito's clock is the real one
        let now = OffsetDateTime::now_utc();
        if let Some(claims) = self.verified.get(token.expose()) {
            return claims.verify(&self.client_id, now);
        }
        let header = jsonwebtoken::decode_header(token.expose()).map_err(|_| Error::InvalidToken)?;
        let kid = header.kid.ok_or(Error::InvalidToken)?;
        let cached = Self::cached_key(&*self.cache.lock().await, &kid);
        let key = match cached {
            Some(key) => key,
            None => {
                self.refresh().await?;
                Self::cached_key(&*self.cache.lock().await, &kid).ok_or(Error::InvalidToken)?
            }
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_exp = false; // checked below, without leeway
        validation.validate_aud = false; // access tokens carry client_id, not aud
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<domain::AccessTokenClaims>(token.expose(), &key, &validation)
            .map_err(|_| Error::InvalidToken)?
            .claims;
        self.verified.insert(token.expose(), claims.clone());
        claims.verify(&self.client_id, now)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tokens stamped with real time, as Cognito does
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test";

    fn key(name: &str) -> EncodingKey {
        let pem = std::fs::read(format!("{}/tests/fixtures/test-key-{name}.pem", env!("CARGO_MANIFEST_DIR"))).unwrap();
        EncodingKey::from_rsa_pem(&pem).unwrap()
    }

    fn jwk(name: &str) -> serde_json::Value {
        let mut jwk = Jwk::from_encoding_key(&key(name), Algorithm::RS256).unwrap();
        jwk.common.key_id = Some(name.to_owned());
        serde_json::to_value(jwk).unwrap()
    }

    fn token(kid: &str, claims: serde_json::Value) -> SecretString {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        SecretString::new(jsonwebtoken::encode(&header, &claims, &key(kid)).unwrap())
    }

    fn claims() -> serde_json::Value {
        json!({
            "sub": "s-1", "iss": ISSUER, "token_use": "access", "client_id": "client-1",
            "username": "s-1", "exp": OffsetDateTime::now_utc().unix_timestamp() + 600,
            "iat": OffsetDateTime::now_utc().unix_timestamp(),
        })
    }

    /// Serves whatever JWKS `keys` holds at the moment, counting fetches.
    async fn jwks_server(keys: Arc<std::sync::Mutex<Vec<serde_json::Value>>>, fetches: Arc<AtomicUsize>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 2048];
                let _ = socket.read(&mut request).await;
                fetches.fetch_add(1, Ordering::SeqCst);
                let body = json!({ "keys": *keys.lock().unwrap() }).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn keys_are_cached_and_refetched_when_an_unknown_kid_appears() {
        let keys = Arc::new(std::sync::Mutex::new(vec![jwk("a")]));
        let fetches = Arc::new(AtomicUsize::new(0));
        let url = jwks_server(Arc::clone(&keys), Arc::clone(&fetches)).await;
        let verifier = CognitoTokenVerifier::new(ISSUER.into(), url, "client-1".into())
            .unwrap()
            .with_min_refetch_interval(Duration::ZERO);

        let claims_a = verifier.verify_access(&token("a", claims())).await.unwrap();
        assert_eq!(claims_a.sub.as_str(), "s-1");
        verifier.verify_access(&token("a", claims())).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "the second verification used the cache");

        // The pool rotates in key b: the first token naming it triggers one refetch.
        keys.lock().unwrap().push(jwk("b"));
        verifier.verify_access(&token("b", claims())).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn token_use_client_expiry_issuer_and_signature_are_checked() {
        let keys = Arc::new(std::sync::Mutex::new(vec![jwk("a")]));
        let url = jwks_server(keys, Arc::new(AtomicUsize::new(0))).await;
        let verifier = CognitoTokenVerifier::new(ISSUER.into(), url, "client-1".into()).unwrap();
        let with = |field: &str, value: serde_json::Value| {
            let mut c = claims();
            c[field] = value;
            token("a", c)
        };
        for bad in [
            with("token_use", json!("id")),
            with("client_id", json!("someone-else")),
            with("exp", json!(OffsetDateTime::now_utc().unix_timestamp() - 1)),
            with("iss", json!("https://cognito-idp.us-east-1.amazonaws.com/other")),
            token("b", claims()), // signed by a key the pool does not have
        ] {
            assert!(matches!(verifier.verify_access(&bad).await, Err(Error::InvalidToken)));
        }
        assert!(verifier.verify_access(&token("a", claims())).await.is_ok());
    }
}
