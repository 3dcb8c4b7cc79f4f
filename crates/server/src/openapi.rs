//! The OpenAPI 3.1 document, generated from the wire types (`wire.rs`) and the
//! route annotations, served at `GET /openapi.json` and kept in
//! `docs/openapi.json` (a test checks the copy is current).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin, auth, invitations, meta};
use crate::wire;

#[derive(OpenApi)]
#[openapi(
    info(title = "invitegate", description = "Invite-only sign-up: invitations by email, sign-up with an access code, sign-in."),
    paths(
        meta::healthz,
        meta::readyz,
        meta::metrics,
        meta::jwks,
        meta::openapi_json,
        auth::sign_up,
        auth::confirm_sign_up,
        auth::resend_confirmation,
        auth::sign_in,
        auth::refresh,
        auth::sign_out,
        auth::forgot_password,
        auth::confirm_forgot_password,
        auth::change_password,
        auth::global_sign_out,
        auth::delete_me,
        invitations::me,
        invitations::create,
        invitations::list,
        invitations::revoke,
        invitations::resend,
        admin::create_invitation,
        admin::list_invitations,
        admin::revoke_invitation,
        admin::resend_invitation,
        admin::list_users,
        admin::show_user,
        admin::disable_user,
        admin::enable_user,
        admin::sign_out_user,
        admin::reset_password,
        admin::delete_user,
        admin::list_access_requests,
        admin::approve_access_request,
        admin::reject_access_request,
        auth::request_access,
    ),
    components(schemas(wire::ErrorBody, wire::ErrorCode)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
            // The admin token, not a user's access token (see the README's admin API).
            components.add_security_scheme("admin", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        }
    }
}

/// The document as served.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".to_owned())
}
