//! Signed-in users inviting others, and `/me`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use domain::{Email, InvitationId};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Authenticated, required};
use crate::service::{Actor, InvitationRef};
use crate::startup::AppState;
use crate::wire::{EmailRequest, InvitationListResponse, InvitationResponse, ProfileResponse};

fn user(caller: Authenticated, client: SocketAddr) -> Actor {
    Actor::User { sub: caller.0.sub, client: client.ip() }
}

#[utoipa::path(
    post,
    path = "/invitations",
    request_body = crate::wire::EmailRequest,
    security(("bearer" = [])),
    responses((status = 201, description = "Invited; the code went to the invitee by email only", body = crate::wire::InvitationResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn create(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    caller: Authenticated,
    ApiJson(body): ApiJson<EmailRequest>,
) -> Result<(StatusCode, Json<InvitationResponse>), ApiError> {
    let email = Email::parse(&required(body.email)?)?;
    let invitation = state.service.invite(&user(caller, client), email, None).await?;
    Ok((StatusCode::CREATED, Json(InvitationResponse::from(&invitation))))
}

#[utoipa::path(
    get,
    path = "/invitations",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's invitations, newest first", body = crate::wire::InvitationListResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    caller: Authenticated,
) -> Result<Json<InvitationListResponse>, ApiError> {
    let invitations = state.service.list_invitations(&user(caller, client), None).await?;
    Ok(Json(InvitationListResponse { invitations: invitations.iter().map(InvitationResponse::from).collect() }))
}

#[utoipa::path(
    delete,
    path = "/invitations/{id}",
    params(("id" = String, Path, description = "The invitation")),
    security(("bearer" = [])),
    responses((status = 200, description = "Revoked", body = crate::wire::InvitationResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    caller: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InvitationResponse>, ApiError> {
    let target = InvitationRef::Id(InvitationId::new(id));
    let invitation = state.service.revoke(&user(caller, client), &target).await?;
    Ok(Json(InvitationResponse::from(&invitation)))
}

#[utoipa::path(
    post,
    path = "/invitations/{id}/resend",
    params(("id" = String, Path, description = "The invitation")),
    security(("bearer" = [])),
    responses((status = 200, description = "A new code was sent; the old one no longer works", body = crate::wire::InvitationResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn resend(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    caller: Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InvitationResponse>, ApiError> {
    let target = InvitationRef::Id(InvitationId::new(id));
    let invitation = state.service.resend(&user(caller, client), &target).await?;
    Ok(Json(InvitationResponse::from(&invitation)))
}

#[utoipa::path(
    get,
    path = "/me",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = crate::wire::ProfileResponse), (status = "default", description = "An error; `code` says which", body = crate::wire::ErrorBody))
)]
pub async fn me(State(state): State<AppState>, caller: Authenticated) -> Result<Json<ProfileResponse>, ApiError> {
    let profile = state.service.profile(caller.0).await?;
    Ok(Json(ProfileResponse::from(&profile)))
}
