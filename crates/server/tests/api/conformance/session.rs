//! Sign-in, tokens verified against the served JWKS, refresh and sign-out.

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let app = spawn_app().await;
    app.invited_user("ivan@example.com").await;
    let wrong_password =
        app.post("/sign_in", json!({ "email": "ivan@example.com", "password": "Wr0ng-password" })).await;
    let wrong_password = expect_error(wrong_password, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let unknown = app.post("/sign_in", json!({ "email": "nobody@example.com", "password": PASSWORD })).await;
    let unknown = expect_error(unknown, StatusCode::UNAUTHORIZED, "not_authorized").await;
    assert_eq!(wrong_password, unknown);
    let missing = app.post("/sign_in", json!({ "email": "ivan@example.com" })).await;
    expect_error(missing, StatusCode::BAD_REQUEST, "missing_params").await;
}

fn unverified_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn tokens_verify_against_the_served_jwks_and_carry_cognito_claims() {
    let app = spawn_app().await;
    let sub = app.invited_user("judy@example.com").await;
    let tokens = app.sign_in("judy@example.com", PASSWORD).await;
    let jwks: JwkSet =
        app.client.get(format!("{}/.well-known/jwks.json", app.base)).send().await.unwrap().json().await.unwrap();

    let verify = |token: &str, audience: Option<&str>| -> Value {
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid in JWKS");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&app.issuer]);
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims
    };

    let id = verify(tokens["idToken"].as_str().unwrap(), Some(&app.client_id));
    assert_eq!(id["sub"], sub.as_str());
    assert_eq!(id["email"], "judy@example.com");
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["token_use"], "id");
    assert_eq!(id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap(), 3600);

    let access = verify(tokens["accessToken"].as_str().unwrap(), None);
    assert_eq!(access["sub"], sub.as_str());
    assert_eq!(access["token_use"], "access");
    assert_eq!(access["client_id"], app.client_id.as_str());
    assert_eq!(access["username"], sub.as_str());

    // An id token is not an access token, and a tampered token is nothing.
    let id_token = tokens["idToken"].as_str().unwrap();
    expect_error(app.get_auth("/me", id_token).await, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let access_token = tokens["accessToken"].as_str().unwrap();
    let mut parts: Vec<String> = access_token.split('.').map(String::from).collect();
    let mut claims = unverified_claims(access_token);
    claims["sub"] = json!("someone-else");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    expect_error(app.get_auth("/me", &parts.join(".")).await, StatusCode::UNAUTHORIZED, "not_authorized").await;

    // Access tokens stop working when they expire. The embedded pool stamps them
    // with the service's clock, which the test can move; Cognito with real time.
    if app.backend == TestBackend::Embedded {
        app.clock.advance(time::Duration::seconds(3601));
        expect_error(app.get_auth("/me", access_token).await, StatusCode::UNAUTHORIZED, "not_authorized").await;
    }
}

#[tokio::test]
async fn refresh_issues_new_tokens_until_sign_out() {
    let app = spawn_app().await;
    app.invited_user("ken@example.com").await;
    let tokens = app.sign_in("ken@example.com", PASSWORD).await;
    let refresh_token = tokens["refreshToken"].as_str().unwrap();

    app.clock.advance(time::Duration::hours(2));
    let refreshed =
        expect_json(app.post("/refresh", json!({ "refreshToken": refresh_token })).await, StatusCode::OK).await;
    assert!(refreshed.get("refreshToken").is_none(), "refresh keeps the same refresh token");
    let me = app.get_auth("/me", refreshed["accessToken"].as_str().unwrap()).await;
    assert_eq!(expect_json(me, StatusCode::OK).await["email"], "ken@example.com");

    expect_json(app.post("/sign_out", json!({ "refreshToken": refresh_token })).await, StatusCode::OK).await;
    let after = app.post("/refresh", json!({ "refreshToken": refresh_token })).await;
    expect_error(after, StatusCode::UNAUTHORIZED, "not_authorized").await;
    let bogus = app.post("/refresh", json!({ "refreshToken": "not-a-token" })).await;
    expect_error(bogus, StatusCode::UNAUTHORIZED, "not_authorized").await;
    expect_error(app.post("/refresh", json!({})).await, StatusCode::BAD_REQUEST, "missing_params").await;
}
