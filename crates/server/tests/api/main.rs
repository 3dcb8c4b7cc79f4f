#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
//! One integration-test binary (each test file would be a separate, slow link).
//! Every test starts the real app on port 0 with its own temporary data dir.

mod binary;
mod cli;
mod concurrency;
mod confirmation;
mod delivery;
mod errors;
mod flow;
mod helpers;
mod invitations;
mod secrets;
mod session;
