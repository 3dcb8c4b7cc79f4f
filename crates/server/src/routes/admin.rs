//! The admin API: every operator action the CLI offers, over HTTP, for the
//! app's own backend. Authorized by the admin token (`extract::Operator`).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use domain::{Email, InvitationId, InvitationStatus, UserSub};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Operator, required};
use crate::service::{AccessRequestRef, Actor, InvitationRef, OperatorInvite, UserRef};
use crate::startup::AppState;
use crate::wire::{
    AccessRequestListResponse, AccessRequestResponse, AdminInvitationListResponse, AdminInvitationRequest,
    AdminInvitationResponse, AdminUserDetailsResponse, AdminUserResponse, ApprovedResponse, DeletedResponse,
    InvitationResponse, ListQuery, SentResponse, SignedOutResponse, UserListResponse,
};

const ERRORS: &str = "An error; `code` says which";
const DEFAULT_PAGE: u32 = 100;

/// The page size asked for: 1 to 1000, 100 if not given.
fn page_size(limit: Option<u32>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        limit @ 1..=1000 => Ok(limit as usize),
        _ => Err(ApiError(domain::Error::InvalidRequest("limit must be 1 to 1000".into()))),
    }
}

fn user_ref(sub: String) -> UserRef {
    UserRef::Sub(UserSub::new(sub))
}

#[utoipa::path(
    post,
    path = "/admin/invitations",
    security(("admin" = [])),
    request_body = crate::wire::AdminInvitationRequest,
    responses((status = 201, description = "Created; emailed unless `sendEmail` is false, when `signUpLink` holds the code (shown once)", body = crate::wire::AdminInvitationResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn create_invitation(
    State(state): State<AppState>,
    _: Operator,
    ApiJson(body): ApiJson<AdminInvitationRequest>,
) -> Result<(StatusCode, Json<AdminInvitationResponse>), ApiError> {
    let email = Email::parse(&required(body.email)?)?;
    let expires_in = match body.expires_in_hours {
        Some(hours @ 1..=8760) => Some(time::Duration::hours(i64::from(hours))),
        Some(_) => return Err(ApiError(domain::Error::InvalidRequest("expiresInHours must be 1 to 8760".into()))),
        None => None,
    };
    let options = OperatorInvite { quota: body.quota, expires_in, send_email: body.send_email.unwrap_or(true) };
    let (invitation, link) = state.service.invite_as_operator(email, options).await?;
    let body = AdminInvitationResponse {
        invitation: InvitationResponse::from(&invitation),
        sign_up_link: link.map(|link| link.expose().to_owned()),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get,
    path = "/admin/invitations",
    security(("admin" = [])),
    params(ListQuery),
    responses((status = 200, description = "A page of every invitation (embedded: newest first)", body = crate::wire::AdminInvitationListResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn list_invitations(
    State(state): State<AppState>,
    _: Operator,
    Query(filter): Query<ListQuery>,
) -> Result<Json<AdminInvitationListResponse>, ApiError> {
    let status = match filter.status.as_deref() {
        Some(raw) => Some(InvitationStatus::parse(raw).ok_or_else(|| {
            ApiError(domain::Error::InvalidRequest("status must be pending, redeemed, revoked or expired".into()))
        })?),
        None => None,
    };
    let limit = page_size(filter.limit)?;
    let page = state.service.invitations_page(status, limit, filter.cursor.as_deref()).await?;
    Ok(Json(AdminInvitationListResponse {
        invitations: page.items.iter().map(InvitationResponse::from).collect(),
        next_cursor: page.next,
    }))
}

#[utoipa::path(
    post,
    path = "/admin/invitations/{id}/revoke",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The invitation")),
    responses((status = 200, description = "Revoked", body = crate::wire::InvitationResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InvitationResponse>, ApiError> {
    let invitation = state.service.revoke(&Actor::Operator, &InvitationRef::Id(InvitationId::new(id))).await?;
    Ok(Json(InvitationResponse::from(&invitation)))
}

#[utoipa::path(
    post,
    path = "/admin/invitations/{id}/resend",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The invitation")),
    responses((status = 200, description = "A new code was emailed; the old one no longer works", body = crate::wire::InvitationResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn resend_invitation(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InvitationResponse>, ApiError> {
    let invitation = state.service.resend(&Actor::Operator, &InvitationRef::Id(InvitationId::new(id))).await?;
    Ok(Json(InvitationResponse::from(&invitation)))
}

#[utoipa::path(
    get,
    path = "/admin/users",
    security(("admin" = [])),
    params(("limit" = Option<u32>, Query, description = "Accounts per page, 1 to 1000 (default 100)"), ("cursor" = Option<String>, Query, description = "`nextCursor` from the previous page")),
    responses((status = 200, description = "A page of accounts (embedded: oldest first)", body = crate::wire::UserListResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn list_users(
    State(state): State<AppState>,
    _: Operator,
    Query(query): Query<ListQuery>,
) -> Result<Json<UserListResponse>, ApiError> {
    let page = state.service.users_page(page_size(query.limit)?, query.cursor.as_deref()).await?;
    Ok(Json(UserListResponse {
        users: page.items.iter().map(AdminUserResponse::from).collect(),
        next_cursor: page.next,
    }))
}

#[utoipa::path(
    get,
    path = "/admin/users/{sub}",
    security(("admin" = [])),
    params(("sub" = String, Path, description = "The account's sub")),
    responses((status = 200, description = "The account, who invited it, the invitations it sent and who used them", body = crate::wire::AdminUserDetailsResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn show_user(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(sub): ApiPath<String>,
) -> Result<Json<AdminUserDetailsResponse>, ApiError> {
    let details = state.service.user_details(&user_ref(sub)).await?;
    Ok(Json(AdminUserDetailsResponse::from(&details)))
}

#[utoipa::path(
    post,
    path = "/admin/users/{sub}/disable",
    security(("admin" = [])),
    params(("sub" = String, Path, description = "The account's sub")),
    responses((status = 200, description = "Disabled: no sign-in, refresh or token use", body = crate::wire::AdminUserResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn disable_user(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(sub): ApiPath<String>,
) -> Result<Json<AdminUserResponse>, ApiError> {
    let user = state.service.set_user_disabled(&user_ref(sub), true).await?;
    Ok(Json(AdminUserResponse::from(&user)))
}

#[utoipa::path(
    post,
    path = "/admin/users/{sub}/enable",
    security(("admin" = [])),
    params(("sub" = String, Path, description = "The account's sub")),
    responses((status = 200, description = "Enabled again", body = crate::wire::AdminUserResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn enable_user(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(sub): ApiPath<String>,
) -> Result<Json<AdminUserResponse>, ApiError> {
    let user = state.service.set_user_disabled(&user_ref(sub), false).await?;
    Ok(Json(AdminUserResponse::from(&user)))
}

#[utoipa::path(
    post,
    path = "/admin/users/{sub}/sign_out",
    security(("admin" = [])),
    params(("sub" = String, Path, description = "The account's sub")),
    responses((status = 200, description = "Every session ended", body = crate::wire::SignedOutResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn sign_out_user(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(sub): ApiPath<String>,
) -> Result<Json<SignedOutResponse>, ApiError> {
    state.service.sign_out_user(&user_ref(sub)).await?;
    Ok(Json(SignedOutResponse { signed_out: true }))
}

#[utoipa::path(
    post,
    path = "/admin/users/{sub}/reset_password",
    security(("admin" = [])),
    params(("sub" = String, Path, description = "The account's sub")),
    responses((status = 200, description = "A recovery code was emailed to the account", body = crate::wire::SentResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn reset_password(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(sub): ApiPath<String>,
) -> Result<Json<SentResponse>, ApiError> {
    state.service.reset_password(&user_ref(sub)).await?;
    Ok(Json(SentResponse { sent: true }))
}

#[utoipa::path(
    delete,
    path = "/admin/users/{sub}",
    security(("admin" = [])),
    params(("sub" = String, Path, description = "The account's sub")),
    responses((status = 200, description = "Deleted; its unused invitations are revoked (also `POST /admin/users/{sub}/delete`)", body = crate::wire::DeletedResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn delete_user(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(sub): ApiPath<String>,
) -> Result<Json<DeletedResponse>, ApiError> {
    state.service.delete_user(&user_ref(sub)).await?;
    Ok(Json(DeletedResponse { deleted: true }))
}

#[utoipa::path(
    get,
    path = "/admin/access_requests",
    security(("admin" = [])),
    params(("status" = Option<String>, Query, description = "open, approved or rejected")),
    responses((status = 200, description = "Requests for an invitation, newest first", body = crate::wire::AccessRequestListResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn list_access_requests(
    State(state): State<AppState>,
    _: Operator,
    Query(filter): Query<ListQuery>,
) -> Result<Json<AccessRequestListResponse>, ApiError> {
    let status = match filter.status.as_deref() {
        Some(raw) => Some(domain::access_request::AccessRequestStatus::parse(raw).ok_or_else(|| {
            ApiError(domain::Error::InvalidRequest("status must be open, approved or rejected".into()))
        })?),
        None => None,
    };
    let requests = state.service.access_requests(status).await?;
    Ok(Json(AccessRequestListResponse { access_requests: requests.iter().map(AccessRequestResponse::from).collect() }))
}

#[utoipa::path(
    post,
    path = "/admin/access_requests/{id}/approve",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The access request")),
    responses((status = 200, description = "An invitation was emailed to the requester", body = crate::wire::ApprovedResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn approve_access_request(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ApprovedResponse>, ApiError> {
    let (request, invitation) = state.service.approve_access_request(&AccessRequestRef::Id(id)).await?;
    Ok(Json(ApprovedResponse {
        access_request: AccessRequestResponse::from(&request),
        invitation: InvitationResponse::from(&invitation),
    }))
}

#[utoipa::path(
    post,
    path = "/admin/access_requests/{id}/reject",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The access request")),
    responses((status = 200, description = "Rejected (the requester is not told)", body = crate::wire::AccessRequestResponse), (status = "default", description = ERRORS, body = crate::wire::ErrorBody))
)]
pub async fn reject_access_request(
    State(state): State<AppState>,
    _: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AccessRequestResponse>, ApiError> {
    let request = state.service.reject_access_request(&AccessRequestRef::Id(id)).await?;
    Ok(Json(AccessRequestResponse::from(&request)))
}
