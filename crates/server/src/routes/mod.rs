pub mod admin;
pub mod auth;
pub mod invitations;
pub mod meta;
