//! Signed-in users inviting others, and `/me`.

use axum::Json;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use domain::{Email, Invitation, InvitationId, Inviter};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, required};
use crate::limits::Subject;
use crate::startup::AppState;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub fn invitation_json(invitation: &Invitation, now: OffsetDateTime) -> Value {
    json!({
        "id": invitation.id,
        "email": invitation.email.as_str(),
        "status": invitation.status_at(now).as_str(),
        "createdAt": rfc3339(invitation.created_at),
        "expiresAt": rfc3339(invitation.expires_at),
        "redeemedBy": invitation.redeemed_by,
    })
}

#[derive(Deserialize)]
pub struct CreateBody {
    email: Option<String>,
}

/// Counted like a guess when it hits an existing account, so invitations are
/// no cheap way to find out who has signed up.
pub async fn create(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let email = Email::parse(&required(body.email)?)?;
    let service = &state.service;
    let attempt = state.guard.begin(Subject::Inviter(&caller.sub), client.ip(), service.clock.now())?;
    let result = service.invite(Inviter::User(caller.sub.clone()), email, None).await;
    let invitation = state.guard.finish(attempt, result)?;
    Ok((StatusCode::CREATED, Json(invitation_json(&invitation, service.clock.now()))))
}

pub async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let service = &state.service;
    let invitations = service.store.list(Some(&Inviter::User(caller.sub))).await?;
    let now = service.clock.now();
    Ok(Json(json!({ "invitations": invitations.iter().map(|i| invitation_json(i, now)).collect::<Vec<_>>() })))
}

pub async fn revoke(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let service = &state.service;
    let invitation = service.revoke(&Inviter::User(caller.sub), &InvitationId::new(id)).await?;
    Ok(Json(invitation_json(&invitation, service.clock.now())))
}

pub async fn resend(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let service = &state.service;
    let invitation = service.resend(&Inviter::User(caller.sub), &InvitationId::new(id)).await?;
    Ok(Json(invitation_json(&invitation, service.clock.now())))
}

pub async fn me(State(state): State<AppState>, Authenticated(caller): Authenticated) -> Result<Json<Value>, ApiError> {
    let profile = state.service.profile(&caller.sub).await?;
    let invited_by = match profile.invited_by {
        Some(Inviter::User(sub)) => json!(sub),
        Some(Inviter::Operator) => json!("operator"),
        None => Value::Null,
    };
    Ok(Json(json!({
        "sub": profile.user.sub,
        "email": profile.user.email.as_str(),
        "invitesRemaining": profile.invites_remaining,
        "invitedBy": invited_by,
    })))
}
