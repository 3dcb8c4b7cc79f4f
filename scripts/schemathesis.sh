#!/bin/sh
# Property-based API testing: schemathesis (pinned, in .venv-schemathesis)
# generates requests from the served OpenAPI document (GET /openapi.json) and
# checks every answer: no 5xx, and each status and body as documented.
# Runs against the embedded service started here on 127.0.0.1, with a signed-in
# user's token so that the authenticated operations are exercised too.
#   scripts/schemathesis.sh [BINARY]   (default: target/debug/invitegate)
set -eu
cd "$(dirname "$0")/.."
bin=${1:-target/debug/invitegate}
venv=.venv-schemathesis
examples=${SCHEMATHESIS_EXAMPLES:-100}

if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'schemathesis==4.32.5'
fi

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" 2>"$data/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
base="http://127.0.0.1:$port"
tries=0
until curl -sf "$base/healthz" >/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ]; then echo "schemathesis.sh: the service did not start" >&2; cat "$data/serve.log" >&2; exit 1; fi
    sleep 0.1
done

# A user to act as: invited from the CLI, signed up with the emailed code.
"$bin" --data-dir "$data" invite create fuzz@example.com >/dev/null 2>&1
code=$(grep -h "^Your access code:" "$data"/outbox/*.eml | head -n 1 | sed 's/^Your access code: //' | tr -d '\r')
password='Fuzz-passw0rd!'
curl -sf -H 'content-type: application/json' \
    -d "{\"email\":\"fuzz@example.com\",\"password\":\"$password\",\"accessCode\":\"$code\"}" "$base/sign_up" >/dev/null
token=$(curl -sf -H 'content-type: application/json' \
    -d "{\"email\":\"fuzz@example.com\",\"password\":\"$password\"}" "$base/sign_in" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])')

# 14 operations × $examples examples each (and the phases' extra cases): well over 1,000 requests.
"$venv/bin/schemathesis" run "$base/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "$examples" \
    --seed 42 \
    --workers 1 \
    --header "Authorization: Bearer $token" \
    --suppress-health-check all
