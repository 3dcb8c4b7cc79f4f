//! Tests of the embedded backend and the binary that no other backend shares.

mod backup;
mod binary;
mod cli;
mod crash;
mod delivery;
mod faults;
mod import;
mod local;
mod operations;
