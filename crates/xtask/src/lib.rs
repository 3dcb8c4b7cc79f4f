//! invitegate's development tasks. They live outside the `invitegate` binary
//! so the shipped service links none of what only provisioning needs (the IAM
//! and Lambda SDKs).

pub mod bench;
pub mod firebase;
pub mod provision;
