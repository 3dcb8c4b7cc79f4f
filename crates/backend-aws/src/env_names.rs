//! The environment variables the AWS side reads: the service (through its
//! command line) and the PreSignUp Lambda name them from here, so the two
//! cannot drift. This module needs no SDK, so the Lambda builds without the
//! `service` feature.

pub const ENV_POOL: &str = "AWS_COGNITO_USER_POOL_ID";
pub const ENV_CLIENT: &str = "AWS_COGNITO_APP_CLIENT_ID";
pub const ENV_SECRET: &str = "AWS_COGNITO_APP_CLIENT_SECRET";
pub const ENV_TABLE: &str = "INVITEGATE_TABLE";
pub const ENV_MAIL_FROM: &str = "INVITEGATE_MAIL_FROM";
pub const ENV_CODE_KEY: &str = "INVITEGATE_CODE_KEY";
pub const ENV_ISSUER: &str = "INVITEGATE_COGNITO_ISSUER";
pub const ENV_JWKS_URL: &str = "INVITEGATE_COGNITO_JWKS_URL";
/// The sign-up policy; the service and the trigger must agree on it.
pub const ENV_POLICY: &str = "INVITEGATE_POLICY";

/// The custom user attribute that carries a sign-up's reservation nonce to the
/// PreSignUp trigger. The app client may write it but not read it back.
pub const RESERVATION_ATTRIBUTE: &str = "custom:reservation";
/// The Cognito attribute holding a user's last global sign-out (Unix
/// seconds): access tokens issued at or before it are refused. Written only
/// by the service (admin API), never by the app client.
pub const SIGNED_OUT_ATTRIBUTE: &str = "custom:signed_out_at";
/// `"1"` while an operator has disabled the user. Why not AdminDisableUser:
/// Cognito refuses a disabled user before it looks at the password, so
/// anyone knowing the address would learn the account's state; with this
/// attribute a wrong password still gets the usual answer. Service-written only.
pub const DISABLED_ATTRIBUTE: &str = "custom:disabled";
/// The Firebase `localId` of a user brought over from Firebase. Service-written only.
pub const FIREBASE_UID_ATTRIBUTE: &str = "custom:firebase_uid";
/// When an imported user's account was made in Firebase (Unix seconds):
/// Cognito's own creation date is the import's. Service-written only.
pub const CREATED_AT_ATTRIBUTE: &str = "custom:created_at";
