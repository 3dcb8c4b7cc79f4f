#!/usr/bin/env bash
# Measures the release build on this machine, in one run, against the
# physical bound of sign-up and sign-in (argon2id through the service's own
# hashing code), and prints each figure with its ratio. Not part of the test
# command; docs/performance.md records what it printed and how to read it.
#
#   ./scripts/bench.sh              # 3 runs, medians (about 12 minutes)
#   RUNS=1 BENCH_SECONDS=5 ./scripts/bench.sh     # a quick look
#   BENCH_LARGE_USERS=100000 ./scripts/bench.sh   # a smaller "large" data set
#
# Load: wrk (installed from Debian's packages if missing) for the cheap
# endpoints; for the hashing ones the repository's own generator
# (`xtask bench-load`), which times admitted and refused answers apart. wrk
# cannot choose its source address and every loopback connection comes from
# 127.0.0.1, so the service trusts loopback as a proxy and each generator
# worker names itself with X-Forwarded-For: per-client limits do not shape
# the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
secs=${BENCH_SECONDS:-10}
overload_secs=${BENCH_OVERLOAD_SECONDS:-30}
large_users=${BENCH_LARGE_USERS:-1000000}
small_users=1000
port_small=${BENCH_PORT:-18481}
port_large=$((port_small + 1))
port_over=$((port_small + 2))

if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi
cargo build --release --locked --bin invitegate --bin xtask >&2
bin=$PWD/target/release/invitegate
xtask=$PWD/target/release/xtask

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# start_server DATA_DIR PORT: starts the service, waits until it answers, sets $server_pid.
start_server() {
    RUST_LOG=warn "$bin" serve --data-dir "$1" --listen "127.0.0.1:$2" \
        --trusted-proxies 127.0.0.1/32 --max-connections-per-client 100000 \
        >"$work/server-$2.log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return 0
        sleep 0.1
    done
    echo "the service on port $2 did not start:" >&2
    cat "$work/server-$2.log" >&2
    exit 1
}
stop_server() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
rss_mib() { awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

# wrk_rate URL CONNECTIONS [wrk args…]: "requests/s p99_ms"
wrk_rate() {
    local url=$1 connections=$2
    shift 2
    wrk -t2 -c"$connections" -d"${secs}s" --latency "$@" "$url" | python3 -c '
import re, sys
out = sys.stdin.read()
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
p99 = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
if errors:
    sys.exit("wrk saw %s error answers:\n%s" % (errors.group(1), out))
print(rate, p99)'
}

echo "seeding: $small_users and $large_users users (each with a refresh token) by SQL" >&2
invitations_per_run=$((secs * 400))
needed=$((runs * invitations_per_run))
"$xtask" bench-seed --data-dir "$work/small" --users "$small_users" --refresh-tokens "$small_users" \
    --invitations "$needed" --invitations-out "$work/small.invitations" >&2
"$xtask" bench-seed --data-dir "$work/large" --users "$large_users" --refresh-tokens "$large_users" \
    --invitations "$needed" --invitations-out "$work/large.invitations" >&2

results=$work/results
: >"$results"
for run in $(seq "$runs"); do
    echo "run $run of $runs" >&2
    first=$(((run - 1) * invitations_per_run + 1))
    last=$((run * invitations_per_run))
    sed -n "${first},${last}p" "$work/small.invitations" >"$work/small.run"
    sed -n "${first},${last}p" "$work/large.invitations" >"$work/large.run"

    bound=$("$xtask" bench-bound --threads 2 --concurrency 8 --seconds "$secs" | json hashes_per_sec)

    start_server "$work/small" "$port_small"
    small_pid=$server_pid
    url=http://127.0.0.1:$port_small
    signup_small=$("$xtask" bench-load --url "$url" --scenario sign-up --concurrency 8 --seconds "$secs" \
        --invitations "$work/small.run" | json admitted_per_sec)
    signin=$("$xtask" bench-load --url "$url" --scenario sign-in --concurrency 8 --seconds "$secs" \
        --users "$small_users" | json admitted_per_sec)
    tokens=$(curl -sf "$url/sign_in" -H 'content-type: application/json' \
        -d '{"email":"user0@bench.test","password":"Bench-Password-1"}')
    access=$(echo "$tokens" | json accessToken)
    refresh=$(echo "$tokens" | json refreshToken)
    read -r me me_p99 < <(wrk_rate "$url/me" 64 -H "Authorization: Bearer $access")
    read -r list list_p99 < <(wrk_rate "$url/invitations" 64 -H "Authorization: Bearer $access")
    cat >"$work/refresh.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"refreshToken":"$refresh"}'
LUA
    read -r refreshes refresh_p99 < <(wrk_rate "$url/refresh" 64 -s "$work/refresh.lua")
    stop_server "$small_pid"

    start_server "$work/large" "$port_large"
    large_pid=$server_pid
    signup_large=$("$xtask" bench-load --url "http://127.0.0.1:$port_large" --scenario sign-up --concurrency 8 \
        --seconds "$secs" --invitations "$work/large.run" | json admitted_per_sec)
    stop_server "$large_pid"

    # Overload: 256 sign-ins at once against a fresh process, for its peak memory.
    start_server "$work/small" "$port_over"
    over_pid=$server_pid
    overload=$("$xtask" bench-load --url "http://127.0.0.1:$port_over" --scenario sign-in --concurrency 256 \
        --seconds "$overload_secs" --users "$small_users")
    peak=$(rss_mib "$over_pid" VmHWM)
    sleep 10
    idle=$(rss_mib "$over_pid" VmRSS)
    stop_server "$over_pid"

    python3 - "$results" <<PY
import json, sys
row = dict(bound=$bound, signup_small=$signup_small, signup_large=$signup_large, signin=$signin,
           me=$me, me_p99=$me_p99, list=$list, list_p99=$list_p99, refresh=$refreshes, refresh_p99=$refresh_p99,
           overload=json.loads('''$overload'''), peak_rss=$peak, idle_rss=$idle)
open(sys.argv[1], "a").write(json.dumps(row) + "\n")
print(json.dumps(row), file=sys.stderr)
PY
done

# The operator's CLI: one `invite create`, start to finish (no hashing on start).
cli_ms=$(python3 - "$bin" "$work/small" <<'PY'
import statistics, subprocess, sys, time
times = []
for i in range(15):
    started = time.perf_counter()
    subprocess.run([sys.argv[1], "--data-dir", sys.argv[2], "invite", "create", f"cli{i}@bench.test"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times.append((time.perf_counter() - started) * 1000)
print(round(statistics.median(times), 1))
PY
)

python3 - "$results" "$cli_ms" "$large_users" "$small_users" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
cli_ms, large, small = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
med = lambda f: statistics.median(f(r) for r in rows)
bound = med(lambda r: r["bound"])
o = lambda key: med(lambda r: r["overload"][key])
lines = [
    ("argon2id bound (2 threads, 8 callers)", f"{bound:.1f} hashes/s", ""),
    ("sign-up, 8 concurrent", f"{med(lambda r: r['signup_small']):.1f}/s",
     f"{med(lambda r: r['signup_small'] / r['bound']):.3f} of the bound (goal >= 0.95)"),
    ("sign-in, 8 concurrent", f"{med(lambda r: r['signin']):.1f}/s",
     f"{med(lambda r: r['signin'] / r['bound']):.3f} of the bound (goal >= 0.90)"),
    (f"sign-up with {large:,} users / with {small:,}", f"{med(lambda r: r['signup_large']):.1f}/s",
     f"{med(lambda r: r['signup_large'] / r['signup_small']):.3f} (goal >= 0.95)"),
    ("GET /me, 64 connections", f"{med(lambda r: r['me']):.0f}/s, p99 {med(lambda r: r['me_p99']):.2f} ms",
     "goal >= 15k/s, p99 <= 10 ms"),
    ("GET /invitations, 64 connections", f"{med(lambda r: r['list']):.0f}/s, p99 {med(lambda r: r['list_p99']):.2f} ms",
     "goal >= 15k/s, p99 <= 10 ms"),
    ("POST /refresh, 64 connections", f"{med(lambda r: r['refresh']):.0f}/s, p99 {med(lambda r: r['refresh_p99']):.2f} ms", ""),
    ("overload: 256 concurrent sign-ins", f"admitted {o('admitted_per_sec'):.1f}/s, p99 {o('admitted_p99_ms'):.0f} ms",
     f"{o('admitted_per_sec') / bound:.3f} of the bound; goal p99 <= 1000 ms"),
    ("overload: refused", f"{o('refused'):.0f} answers 503, p99 {o('refused_p99_ms'):.1f} ms", "at once"),
    ("peak RSS under overload", f"{med(lambda r: r['peak_rss']):.1f} MiB", "goal <= 150 MiB"),
    ("RSS 10 s after", f"{med(lambda r: r['idle_rss']):.1f} MiB", "goal <= 30 MiB"),
    ("CLI invite create", f"{cli_ms:.1f} ms", "median of 15"),
]
print(f"\ninvitegate bench: {len(rows)} run(s), medians\n")
for name, value, note in lines:
    print(f"{name:<42} {value:<32} {note}")
PY
