//! One integration-test binary (each test file would be a separate, slow link).
//! Every test starts the real app on port 0 with its own temporary data dir.

mod cli;
mod confirmation;
mod concurrency;
mod errors;
mod flow;
mod helpers;
mod invitations;
mod secrets;
mod session;
