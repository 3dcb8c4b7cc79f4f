//! Sign-up, confirmation and session endpoints.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use domain::{Email, SecretString};

use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::extract::{ApiJson, required};
use crate::service::SignUpForm;
use crate::startup::AppState;
use crate::wire::{
    ChangePasswordRequest, ConfirmForgotPasswordRequest, ConfirmSignUpRequest, ConfirmSignUpResponse, DeletedResponse,
    EmailRequest, PasswordChangedResponse, PasswordRequest, PasswordResetResponse, RefreshRequest, RequestedResponse,
    SentResponse, SignInRequest, SignUpRequest, SignUpResponse, SignedOutResponse, TokensResponse,
};

#[utoipa::path(
    post,
    path = "/sign_up",
    request_body = crate::wire::SignUpRequest,
    responses((status = 200, description = "The user was created; `userConfirmed` is true when an invitation confirmed them", body = crate::wire::SignUpResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn sign_up(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<SignUpRequest>,
) -> Result<Json<SignUpResponse>, ApiError> {
    let email = required(body.email)?;
    let password = SecretString::new(required(body.password)?);
    let form = SignUpForm { email: Email::parse(&email)?, password, access_code: body.access_code };
    let outcome = state.service.sign_up(form, client.ip()).await?;
    Ok(Json(SignUpResponse { user_confirmed: outcome.confirmed, user_sub: outcome.sub.to_string() }))
}

#[utoipa::path(
    post,
    path = "/confirm_sign_up",
    request_body = crate::wire::ConfirmSignUpRequest,
    responses((status = 200, description = "Confirmed", body = crate::wire::ConfirmSignUpResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn confirm_sign_up(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<ConfirmSignUpRequest>,
) -> Result<Json<ConfirmSignUpResponse>, ApiError> {
    let email = Email::parse(&required(body.email)?)?;
    let code = required(body.code)?;
    state.service.confirm_sign_up(email, code, client.ip()).await?;
    Ok(Json(ConfirmSignUpResponse { user_confirmed: true }))
}

#[utoipa::path(
    post,
    path = "/resend_confirmation",
    request_body = crate::wire::EmailRequest,
    responses((status = 200, description = "Sent if the address has an unconfirmed account; the same answer otherwise", body = crate::wire::SentResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn resend_confirmation(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<EmailRequest>,
) -> Result<Json<SentResponse>, ApiError> {
    let email = Email::parse(&required(body.email)?)?;
    state.service.resend_confirmation(email, client.ip()).await?;
    Ok(Json(SentResponse { sent: true }))
}

#[utoipa::path(
    post,
    path = "/sign_in",
    request_body = crate::wire::SignInRequest,
    responses((status = 200, description = "Signed in", body = crate::wire::TokensResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<SignInRequest>,
) -> Result<Json<TokensResponse>, ApiError> {
    let email = required(body.email)?;
    let password = SecretString::new(required(body.password)?);
    let tokens = state.service.sign_in(&email, password, client.ip()).await?;
    Ok(Json(TokensResponse::from(&tokens)))
}

#[utoipa::path(
    post,
    path = "/refresh",
    request_body = crate::wire::RefreshRequest,
    responses((status = 200, description = "New id and access tokens", body = crate::wire::TokensResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokensResponse>, ApiError> {
    let token = SecretString::new(required(body.refresh_token)?);
    let tokens = state.service.refresh(&token).await?;
    Ok(Json(TokensResponse::from(&tokens)))
}

#[utoipa::path(
    post,
    path = "/sign_out",
    request_body = crate::wire::RefreshRequest,
    responses((status = 200, description = "The refresh token no longer works", body = crate::wire::SignedOutResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn sign_out(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<SignedOutResponse>, ApiError> {
    let token = SecretString::new(required(body.refresh_token)?);
    state.service.sign_out(&token).await?;
    Ok(Json(SignedOutResponse { signed_out: true }))
}

#[utoipa::path(
    post,
    path = "/access_requests",
    request_body = crate::wire::EmailRequest,
    responses((status = 202, description = "Noted (the same answer for any address); invite-only mode only", body = crate::wire::RequestedResponse), (status = "default", description = "An error; `code` says which (404 `not_found` in open mode)", body = crate::wire::ErrorBody))
)]
pub async fn request_access(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<EmailRequest>,
) -> Result<(axum::http::StatusCode, Json<RequestedResponse>), ApiError> {
    let email = Email::parse(&required(body.email)?)?;
    state.service.request_access(email, client.ip()).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(RequestedResponse { requested: true })))
}

#[utoipa::path(
    post,
    path = "/forgot_password",
    request_body = crate::wire::EmailRequest,
    responses((status = 200, description = "A recovery code is emailed if the address has a confirmed account; the same answer otherwise", body = crate::wire::SentResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn forgot_password(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<EmailRequest>,
) -> Result<Json<SentResponse>, ApiError> {
    let email = Email::parse(&required(body.email)?)?;
    state.service.forgot_password(email, client.ip()).await?;
    Ok(Json(SentResponse { sent: true }))
}

#[utoipa::path(
    post,
    path = "/confirm_forgot_password",
    request_body = crate::wire::ConfirmForgotPasswordRequest,
    responses((status = 200, description = "The new password is set; every session of the user has ended", body = crate::wire::PasswordResetResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn confirm_forgot_password(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<ConfirmForgotPasswordRequest>,
) -> Result<Json<PasswordResetResponse>, ApiError> {
    let email = Email::parse(&required(body.email)?)?;
    let code = required(body.code)?;
    let password = SecretString::new(required(body.password)?);
    state.service.confirm_forgot_password(email, code, password, client.ip()).await?;
    Ok(Json(PasswordResetResponse { password_reset: true }))
}

#[utoipa::path(
    post,
    path = "/change_password",
    security(("bearer" = [])),
    request_body = crate::wire::ChangePasswordRequest,
    responses((status = 200, description = "Changed", body = crate::wire::PasswordChangedResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Authenticated(user, token): Authenticated,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<Json<PasswordChangedResponse>, ApiError> {
    let previous = SecretString::new(required(body.previous_password)?);
    let proposed = SecretString::new(required(body.proposed_password)?);
    state.service.change_password(user, token, previous, proposed, client.ip()).await?;
    Ok(Json(PasswordChangedResponse { password_changed: true }))
}

#[utoipa::path(
    post,
    path = "/global_sign_out",
    security(("bearer" = [])),
    responses((status = 200, description = "Every refresh token is revoked; access tokens issued until now are refused here", body = crate::wire::SignedOutResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn global_sign_out(
    State(state): State<AppState>,
    Authenticated(user, _): Authenticated,
) -> Result<Json<SignedOutResponse>, ApiError> {
    state.service.global_sign_out(user).await?;
    Ok(Json(SignedOutResponse { signed_out: true }))
}

#[utoipa::path(
    delete,
    path = "/me",
    security(("bearer" = [])),
    request_body = crate::wire::PasswordRequest,
    responses((status = 200, description = "The account is deleted; its unused invitations are revoked", body = crate::wire::DeletedResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn delete_me(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Authenticated(user, _): Authenticated,
    ApiJson(body): ApiJson<PasswordRequest>,
) -> Result<Json<DeletedResponse>, ApiError> {
    let password = SecretString::new(required(body.password)?);
    state.service.delete_account(user, password, client.ip()).await?;
    Ok(Json(DeletedResponse { deleted: true }))
}
