//! invitegate's domain: the rules, with no I/O. Time is always a parameter.

pub mod access_code;
pub mod access_request;
pub mod admin;
pub mod email;
pub mod error;
pub mod firebase;
pub mod invitation;
pub mod limiter;
pub mod messages;
pub mod nonce;
pub mod password;
pub mod ports;
pub mod presignup;
pub mod user;

pub use access_code::{AccessCode, CodeHash, CodeHasher, MalformedAccessCode, PresentedCode};
pub use email::Email;
pub use error::Error;
pub use invitation::{Invitation, InvitationId, InvitationStatus, Inviter, NewInvitation, Reservation, StoredStatus};
pub use nonce::ReservationNonce;
pub use password::{Password, PasswordPolicy, PasswordPolicyViolation};
pub use ports::{
    Adapters, AttemptCounter, AttemptKey, HashingLoad, InvitationStore, LegacyPasswords, Mailer, OutgoingEmail, Page,
    QuotaCharge, ReserveOutcome, Standing, UserPool,
};
pub use presignup::{PreSignUpDecision, PreSignUpFacts, SignUpPolicy, Trigger};
pub use user::{
    AccessClaims, AccessTokenClaims, REFRESH_TOKEN_LIFETIME, SecretString, SignUpOutcome, SignUpRequest, Tokens,
    UserRecord, UserStatus, UserSub, VerifiedTokens,
};
