//! RS256 id and access tokens shaped like Cognito's, and the JWKS that verifies them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{AccessClaims, Email, Error, SecretString, UserSub, VerifiedTokens};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

pub const CLIENT_ID: &str = "invitegate";
pub const TOKEN_TTL: Duration = Duration::hours(1);

#[derive(Debug, Serialize)]
struct AccessTokenClaims {
    pub sub: String,
    pub iss: String,
    pub token_use: String,
    pub client_id: String,
    pub username: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

#[derive(Debug, Serialize)]
struct IdTokenClaims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub token_use: String,
    pub email: String,
    pub email_verified: bool,
    #[serde(rename = "cognito:username")]
    pub username: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

pub struct TokenIssuer {
    issuer: String,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwks_json: String,
    verified: VerifiedTokens,
}

/// Tokens remembered as verified: a session each, for the busiest hour.
const VERIFIED_TOKENS: usize = 16_384;

impl TokenIssuer {
    pub fn new(pkcs1_der: &[u8], issuer: String) -> anyhow::Result<Self> {
        let encoding = EncodingKey::from_rsa_der(pkcs1_der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)?;
        // kid: a digest of the public key, so it changes exactly when the key does.
        let public = serde_json::to_vec(&jwk.algorithm)?;
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&public)[..16]);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk)?;
        let jwks_json = serde_json::to_string(&JwkSet { keys: vec![jwk] })?;
        Ok(Self { issuer, kid, encoding, decoding, jwks_json, verified: VerifiedTokens::new(VERIFIED_TOKENS) })
    }

    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    pub fn issue(
        &self,
        sub: &UserSub,
        email: &Email,
        email_verified: bool,
        now: OffsetDateTime,
    ) -> Result<(SecretString, SecretString), Error> {
        let iat = now.unix_timestamp();
        let exp = (now + TOKEN_TTL).unix_timestamp();
        let access = AccessTokenClaims {
            sub: sub.to_string(),
            iss: self.issuer.clone(),
            token_use: "access".into(),
            client_id: CLIENT_ID.into(),
            username: sub.to_string(),
            iat,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let id = IdTokenClaims {
            sub: sub.to_string(),
            iss: self.issuer.clone(),
            aud: CLIENT_ID.into(),
            token_use: "id".into(),
            email: email.to_string(),
            email_verified,
            username: sub.to_string(),
            iat,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        Ok((self.sign(&id)?, self.sign(&access)?))
    }

    fn sign<T: Serialize>(&self, claims: &T) -> Result<SecretString, Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map(SecretString::new)
            .map_err(|e| Error::Unexpected(anyhow::Error::new(e).context("signing a token")))
    }

    /// Checks signature and issuer here, then the claims as the domain says
    /// (expiry against `now`, not the wall clock).
    pub fn verify_access(&self, token: &SecretString, now: OffsetDateTime) -> Result<AccessClaims, Error> {
        if let Some(claims) = self.verified.get(token.expose()) {
            return claims.verify(CLIENT_ID, now);
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_exp = false; // checked below against the injected clock
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<domain::AccessTokenClaims>(token.expose(), &self.decoding, &validation)
            .map_err(|_| Error::InvalidToken)?
            .claims;
        self.verified.insert(token.expose(), claims.clone());
        claims.verify(CLIENT_ID, now)
    }
}
