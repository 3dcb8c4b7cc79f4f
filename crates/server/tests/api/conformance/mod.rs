//! The API's contract, run unchanged against every backend:
//! `INVITEGATE_TEST_BACKEND=aws` runs it on the AWS backend against the emulator.

mod access_requests;
mod account;
mod admin;
mod concurrency;
mod confirmation;
mod errors;
mod flow;
mod invitations;
pub mod migration;
mod model;
mod operations;
mod pages;
mod proxies;
mod secrets;
mod session;
