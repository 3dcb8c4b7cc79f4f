//! The AWS backend on the emulator: what only it has (the Lambda, SECRET_HASH,
//! the saga against Cognito). `#[ignore]`d in a plain `cargo test`; scripts/test.sh
//! runs them with `--include-ignored` and `INVITEGATE_TEST_BACKEND=aws`.

pub mod fixture;
mod import;
mod outage;
mod trigger;
