//! Sign-up, confirmation and session endpoints. Field names follow the
//! original write-up's `/sign_up` (camelCase).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use domain::{AccessCode, Email, Error, SecretString, Tokens};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{ApiJson, required};
use crate::limits::Subject;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignUpBody {
    email: Option<String>,
    password: Option<String>,
    access_code: Option<String>,
}

pub async fn sign_up(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<SignUpBody>,
) -> Result<Json<Value>, ApiError> {
    let service = &state.service;
    let email = required(body.email)?;
    let password = required(body.password)?;
    let code = match service.settings.policy {
        domain::SignUpPolicy::InviteOnly => Some(required(body.access_code)?),
        domain::SignUpPolicy::Open => body.access_code.filter(|c| !c.trim().is_empty()),
    };
    let email = Email::parse(&email)?;
    let password = service.check_password(&password)?;
    let attempt = state.guard.begin(Subject::Email(&email), client.ip(), service.clock.now())?;
    // A code that cannot be one is just a wrong code.
    let code = code.map(|c| AccessCode::parse(&c).map_err(|_| Error::InvalidAccessCode)).transpose();
    let outcome = match code {
        // Its own task: a client hanging up must not cut the saga between its steps.
        Ok(code) => {
            let service = service.clone();
            tokio::spawn(async move { service.sign_up(email, password, code).await })
                .await
                .unwrap_or_else(|e| Err(Error::Unexpected(anyhow::Error::new(e).context("sign-up task"))))
        }
        Err(e) => Err(e),
    };
    let outcome = state.guard.finish(attempt, outcome)?;
    Ok(Json(json!({ "userConfirmed": outcome.confirmed, "userSub": outcome.sub })))
}

#[derive(Deserialize)]
pub struct ConfirmBody {
    email: Option<String>,
    code: Option<String>,
}

pub async fn confirm_sign_up(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Json<Value>, ApiError> {
    let service = &state.service;
    let email = Email::parse(&required(body.email)?)?;
    let code = required(body.code)?;
    let now = service.clock.now();
    let attempt = state.guard.begin(Subject::Email(&email), client.ip(), now)?;
    let result = service.pool.confirm_sign_up(&email, &code, now).await;
    state.guard.finish(attempt, result)?;
    Ok(Json(json!({ "userConfirmed": true })))
}

#[derive(Deserialize)]
pub struct EmailBody {
    email: Option<String>,
}

/// Answers the same whether or not the address has an unconfirmed account.
pub async fn resend_confirmation(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<Json<Value>, ApiError> {
    let email = Email::parse(&required(body.email)?)?;
    let service = &state.service;
    service.pool.resend_confirmation(&email, service.clock.now()).await?;
    Ok(Json(json!({ "sent": true })))
}

#[derive(Deserialize)]
pub struct SignInBody {
    email: Option<String>,
    password: Option<String>,
}

pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Json<Value>, ApiError> {
    let service = &state.service;
    let email = required(body.email)?;
    let password = SecretString::new(required(body.password)?);
    // An address that cannot exist gets the same answer as a wrong password.
    let email = Email::parse(&email).map_err(|_| Error::NotAuthorized)?;
    let now = service.clock.now();
    let attempt = state.guard.begin(Subject::Email(&email), client.ip(), now)?;
    let result = service.pool.sign_in(&email, &password, now).await;
    let tokens = state.guard.finish(attempt, result)?;
    Ok(Json(tokens_json(&tokens)))
}

fn tokens_json(tokens: &Tokens) -> Value {
    let mut body = json!({
        "idToken": tokens.id_token.expose(),
        "accessToken": tokens.access_token.expose(),
        "expiresIn": tokens.expires_in_secs,
        "tokenType": "Bearer",
    });
    if let (Some(refresh), Some(map)) = (&tokens.refresh_token, body.as_object_mut()) {
        map.insert("refreshToken".into(), Value::String(refresh.expose().to_owned()));
    }
    body
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshBody {
    refresh_token: Option<String>,
}

pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<Value>, ApiError> {
    let token = SecretString::new(required(body.refresh_token)?);
    let service = &state.service;
    let tokens = service.pool.refresh(&token, service.clock.now()).await?;
    Ok(Json(tokens_json(&tokens)))
}

pub async fn sign_out(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<Value>, ApiError> {
    let token = SecretString::new(required(body.refresh_token)?);
    let service = &state.service;
    service.pool.sign_out(&token, service.clock.now()).await?;
    Ok(Json(json!({ "signedOut": true })))
}
