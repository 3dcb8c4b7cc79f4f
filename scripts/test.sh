#!/bin/sh
# Runs every test:
#  0. installs headless Chromium, its driver and axe-core when missing
#     (scripts/browser-deps.sh): the pages are tested in a real browser;
#  1. unit tests and the API suite (with the pages in the browser) on the
#     embedded backend, the root-only fault tests, then schemathesis against
#     the OpenAPI document;
#  2. the CloudFormation template through cfn-lint (pinned, in .venv-cfn);
#  3. the Lambda built for Amazon Linux 2023, and its glibc needs checked;
#  4. on the AWS backend against the ministack emulator — which this script
#     installs (pinned, in .venv-aws), starts on 127.0.0.1 and stops by its
#     process group, also when a test fails — the same API conformance suite
#     (the pages in the browser included),
#     the AWS-only tests with that Lambda as the pool's trigger, and the
#     template deployed as a stack with a sign-up through it.
set -eu
cd "$(dirname "$0")/.."

./scripts/browser-deps.sh

# The fast loop's command: the AWS-only tests show as ignored here.
cargo test --workspace --locked
# Fault tests that need root (a full tmpfs mounted on the outbox); CI runs as root.
# (Every cargo call here selects the whole workspace, so all share one build.)
cargo test --workspace --locked -- --ignored embedded::faults
# Generated requests from the OpenAPI document against the embedded service.
./scripts/schemathesis.sh target/debug/invitegate

./deploy/lint.sh

zip=$(./scripts/lambda-zip.sh --al2023)
bootstrap=$(dirname "$zip")/bootstrap
# The checker must be able to fail: the same binary is too new for glibc 2.17.
if ./scripts/check-glibc.sh "$bootstrap" 2.17 >/dev/null 2>&1; then
    echo "check-glibc.sh accepted a binary for glibc 2.17; it checks nothing" >&2
    exit 1
fi

port=${INVITEGATE_EMULATOR_PORT:-4566}
state=$PWD/.aws-emu
export EMU_VENV="$PWD/.venv-aws" GATEWAY_PORT="$port"
# An emulator left by an interrupted run is stopped before its state is wiped,
# and the trap is set before starting, so an interrupt during start-up stops it too.
./scripts/emulator.sh stop "$state" >/dev/null 2>&1 || true
rm -rf "$state"
trap './scripts/emulator.sh stop "$state" >/dev/null' EXIT
trap 'exit 130' INT TERM
./scripts/emulator.sh start "$state"

unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    AWS_ENDPOINT_URL="http://127.0.0.1:$port"
INVITEGATE_TEST_BACKEND=aws INVITEGATE_TEST_LAMBDA_ZIP="$zip" \
    cargo test --workspace --locked -- --include-ignored conformance:: aws::

# Provisioning lives in the xtask tool, not in the shipped binary.
cargo build --workspace --locked --bins
sh deploy/test-stack.sh "$zip" "$PWD/target/debug/invitegate" "$PWD/target/debug/xtask"
