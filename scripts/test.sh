#!/bin/sh
# Runs every test of the workspace. This is the README's test command and what CI runs.
set -eu
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
