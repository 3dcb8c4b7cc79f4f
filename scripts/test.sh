#!/bin/sh
# Runs every test: unit tests and the API suite on the embedded backend, then the
# API conformance suite and the AWS-only tests on the AWS backend against the
# ministack emulator, which this script installs (pinned, in .venv-aws), starts
# on 127.0.0.1 and stops by its process group, also when a test fails.
set -eu
cd "$(dirname "$0")/.."

cargo test --workspace --locked -- --skip aws::

zip=$(./scripts/lambda-zip.sh)
port=${INVITEGATE_EMULATOR_PORT:-4566}
state=$PWD/.aws-emu
rm -rf "$state"
export EMU_VENV="$PWD/.venv-aws" GATEWAY_PORT="$port"
./scripts/emulator.sh start "$state"
trap './scripts/emulator.sh stop "$state" >/dev/null' EXIT INT TERM

unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
AWS_ENDPOINT_URL="http://127.0.0.1:$port" \
INVITEGATE_TEST_BACKEND=aws INVITEGATE_TEST_LAMBDA_ZIP="$zip" \
    cargo test --locked -p server --test api -- conformance:: aws::
