// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The test clock starts at real time (Cognito stamps tokens with it) and then moves by hand.
#![allow(clippy::disallowed_methods)]
//! One integration-test binary (each test file would be a separate, slow link).
//! Every test starts the real app on port 0 with its own temporary data dir and,
//! on the AWS backend, its own freshly provisioned user pool (the table and the
//! two PreSignUp functions are made once per run and shared: see aws/fixture.rs).

mod aws;
mod browser;
mod conformance;
mod embedded;
mod helpers;
