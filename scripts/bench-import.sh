#!/bin/sh
# Times `invitegate users import firebase` of USERS (default 100,000) generated
# users into a fresh embedded data dir, with the release build: the first run
# (everything imported), then the same file again (everything skipped). The
# goal is under a minute for 100,000. Prints one JSON object.
set -eu
cd "$(dirname "$0")/.."
users=${USERS:-100000}
cargo build --release --locked -p server -p xtask --bins >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/xtask firebase-export --users "$users" --out "$work/users.json"
key='jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=='
run() {
    start=$(date +%s.%N)
    target/release/invitegate --data-dir "$work/data" users import firebase "$work/users.json" \
        --hash-key "$key" --salt-separator Bw== --rounds 8 --mem-cost 14 >"$work/out.txt" 2>/dev/null
    end=$(date +%s.%N)
    cat "$work/out.txt" >&2
    awk "BEGIN { printf \"%.2f\", $end - $start }"
}
first=$(run)
again=$(run)
size=$(stat -c %s "$work/users.json")
echo "{\"users\": $users, \"export_bytes\": $size, \"import_seconds\": $first, \"repeat_seconds\": $again, \"goal_seconds\": 60}"
