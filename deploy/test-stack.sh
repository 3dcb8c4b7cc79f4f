#!/bin/sh
# deploy/test-stack.sh LAMBDA_ZIP INVITEGATE_BIN XTASK_BIN — end-to-end test of
# deploy/template.yaml against a running AWS emulator (scripts/test.sh starts
# ministack and calls this with AWS_ENDPOINT_URL, test credentials and
# AWS_REGION exported).
#
# Deploys the template as a new stack (fresh names every run), reads the
# service's environment with deploy/env-from-stack.sh, compares the stack's
# pool, client, table and trigger with what `xtask provision` creates,
# checks that an uninvited direct Cognito SignUp is refused by the trigger, and
# runs invite -> sign-up -> sign-in -> /me through the service binary against
# the stack. Details and the reasons for every exclusion: deploy/test_stack.py.
#
#   CFN_LINT_VENV    venv dir, relative to the repo root unless absolute
#                    (default .venv-cfn, shared with deploy/lint.sh); created
#                    and filled from deploy/test-requirements.txt when missing
#   CFN_LINT_PYTHON  python used to create it (default python3)
#
# Refuses to run without AWS_ENDPOINT_URL: it is meant for an emulator (it
# creates resources and never deletes them). Exits non-zero on any failure.
set -eu
die() { echo "test-stack.sh: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: $0 LAMBDA_ZIP INVITEGATE_BIN XTASK_BIN"
root=$(cd "$(dirname "$0")/.." && pwd)
abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
zip=$(abs "$1")
bin=$(abs "$2")
xtask=$(abs "$3")
[ -f "$zip" ] || die "no Lambda zip at $zip"
[ -x "$bin" ] || die "no executable invitegate at $bin"
[ -x "$xtask" ] || die "no executable xtask at $xtask"
[ -n "${AWS_ENDPOINT_URL:-}" ] || die "AWS_ENDPOINT_URL is not set (this test targets an emulator)"
[ -n "${AWS_REGION:-${AWS_DEFAULT_REGION:-}}" ] || die "AWS_REGION is not set"

venv=${CFN_LINT_VENV:-.venv-cfn}
case $venv in /*) ;; *) venv=$root/$venv ;; esac
if [ ! -x "$venv/bin/python" ]; then
    echo "test-stack.sh: creating $venv" >&2
    "${CFN_LINT_PYTHON:-python3}" -m venv "$venv" || die "venv creation failed"
fi
# Idempotent and offline once satisfied; picks up a bumped pin.
"$venv/bin/pip" install -q --disable-pip-version-check -r "$root/deploy/test-requirements.txt" \
    || die "pip install -r deploy/test-requirements.txt failed"
[ -x "$venv/bin/aws" ] || die "no aws CLI in $venv"

# The v1 CLI and boto3 read the region from AWS_DEFAULT_REGION, not AWS_REGION.
AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-$AWS_REGION}
AWS_REGION=${AWS_REGION:-$AWS_DEFAULT_REGION}
# Only the emulator's environment: no profile may redirect the CLI elsewhere.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN
# env-from-stack.sh runs `aws`: the pinned one.
PATH=$venv/bin:$PATH
export AWS_DEFAULT_REGION AWS_REGION PATH
exec "$venv/bin/python" "$root/deploy/test_stack.py" "$zip" "$bin" "$xtask"
