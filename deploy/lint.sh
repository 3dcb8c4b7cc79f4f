#!/bin/sh
# deploy/lint.sh — lint deploy/template.yaml with the pinned cfn-lint.
#
#   CFN_LINT_VENV  venv dir, relative to the repo root unless absolute
#                  (default .venv-cfn); created and filled from
#                  deploy/requirements.txt when missing
#   CFN_LINT_PYTHON  python used to create it (default python3)
#
# Exits non-zero on any finding (cfn-lint: 2 error, 4 warning, 8 informational,
# or'ed), including informational ones, and on a broken install.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${CFN_LINT_VENV:-.venv-cfn}
case $venv in /*) ;; *) venv=$root/$venv ;; esac
requirements=$root/deploy/requirements.txt

if [ ! -x "$venv/bin/python" ]; then
    echo "lint.sh: creating $venv" >&2
    "${CFN_LINT_PYTHON:-python3}" -m venv "$venv"
fi
# Idempotent and offline once satisfied; picks up a bumped pin.
"$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"

"$venv/bin/cfn-lint" --version >&2
exec "$venv/bin/cfn-lint" --include-checks I -- "$root/deploy/template.yaml"
