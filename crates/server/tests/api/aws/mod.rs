//! The AWS backend on the emulator: what only it has (the Lambda, SECRET_HASH,
//! the saga against Cognito). Runs when `INVITEGATE_TEST_BACKEND=aws`.

pub mod fixture;
mod trigger;
