//! invitegate's service: HTTP API, configuration, CLI. `main.rs` only calls [`cli::run`].

pub mod cli;
pub mod client_address;
pub mod clock;
pub mod config;
pub mod error;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod migration;
pub mod openapi;
pub mod pages;
pub mod routes;
pub mod serve;
pub mod service;
pub mod startup;
pub mod telemetry;
pub mod wire;
