#!/bin/sh
# emulator.sh — start/stop the ministack AWS emulator for tests.
#
#   emulator.sh start [STATE_DIR]   install venv if missing, start, wait for health
#   emulator.sh stop  [STATE_DIR]   kill the emulator's process group, wait
#   emulator.sh status [STATE_DIR]
#
# Env:
#   EMU_VENV      venv dir (default: $STATE_DIR/venv)
#   EMU_STATE_DIR state dir if not given as $2 (default: ./.aws-emu)
#   GATEWAY_PORT  port (default 4566); bound on 127.0.0.1 only
#   (installs the pinned scripts/emulator-requirements.txt: ministack 1.5.33 and its dependencies)
#   EMU_PYTHON    python used to create the venv (default: python3)
#   EMU_START_TIMEOUT  seconds to wait for health (default 30)
#   EMU_LOG_LEVEL ministack LOG_LEVEL (default INFO)
set -eu

cmd=${1:-}
STATE=${2:-${EMU_STATE_DIR:-$PWD/.aws-emu}}
PORT=${GATEWAY_PORT:-4566}
VENV=${EMU_VENV:-$STATE/venv}
REQUIREMENTS=$(cd "$(dirname "$0")" && pwd)/emulator-requirements.txt
PY=${EMU_PYTHON:-python3}
TIMEOUT=${EMU_START_TIMEOUT:-30}
PIDFILE=$STATE/ministack.pgid
LOG=$STATE/ministack.log
HEALTH=http://127.0.0.1:$PORT/_ministack/health

die() { echo "emulator.sh: $*" >&2; exit 1; }

# No "--" and no "-s SIG": dash's kill rejects both before a negative pid.
group_alive() { kill -0 "-$1" 2>/dev/null; }

healthy() { curl -sf -m 2 -o /dev/null "$HEALTH"; }

install_venv() {
    [ -x "$VENV/bin/ministack" ] && return 0
    echo "emulator.sh: installing $REQUIREMENTS into $VENV" >&2
    "$PY" -m venv "$VENV" || die "venv creation failed"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" \
        || die "pip install failed"
    [ -x "$VENV/bin/ministack" ] || die "no ministack entry point in $VENV"
}

start() {
    for tool in curl setsid "$PY"; do
        command -v "$tool" >/dev/null || die "needs $tool on PATH"
    done
    mkdir -p "$STATE/tmp" || die "cannot create $STATE"
    STATE=$(cd "$STATE" && pwd)          # absolute; ministack chdir-safe
    PIDFILE=$STATE/ministack.pgid LOG=$STATE/ministack.log
    if [ -f "$PIDFILE" ]; then
        old=$(cat "$PIDFILE")
        if [ -n "$old" ] && group_alive "$old"; then
            die "already running (pgid $old, $PIDFILE); run: $0 stop $STATE"
        fi
        rm -f "$PIDFILE"
    fi
    healthy && die "something already answers on $HEALTH (port $PORT in use)"
    install_venv
    VENV=$(cd "$VENV" && pwd)

    # setsid gives ministack its own session/process group; the inner sh
    # records its own pid (= the new PGID, whether or not setsid forked)
    # and then execs ministack so the group leader is ministack itself.
    tmp_pid=$PIDFILE.new
    rm -f "$tmp_pid"
    # env -i: Lambda bootstraps inherit ministack's whole environment, so
    # start it clean (no caller AWS_* / cargo vars leak into functions).
    # AWS_ENDPOINT_URL: ministack copies it into every Lambda's environment
    # (it sets nothing pointing back at itself otherwise).
    # IOT_MTLS_ENABLED/SFTP_ENABLED=0: the IoT MQTT listener otherwise binds
    # 0.0.0.0:8883 whatever BIND_HOST says (and clashes between instances).
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" LANG=C.UTF-8 \
        BIND_HOST=127.0.0.1 GATEWAY_PORT="$PORT" AUTH=true \
        AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" \
        IOT_MTLS_ENABLED=0 SFTP_ENABLED=0 LOG_LEVEL="${EMU_LOG_LEVEL:-INFO}" \
        STATE_DIR="$STATE" TMPDIR="$STATE/tmp" \
        EMU_PIDFILE="$tmp_pid" EMU_BIN="$VENV/bin/ministack" \
        setsid sh -c 'echo $$ >"$EMU_PIDFILE.t" && mv "$EMU_PIDFILE.t" "$EMU_PIDFILE" &&
            b=$EMU_BIN && unset EMU_BIN EMU_PIDFILE && exec "$b"' \
        >"$LOG" 2>&1 </dev/null &

    i=0
    while [ ! -s "$tmp_pid" ]; do
        i=$((i + 1)); [ $i -gt 50 ] && die "setsid did not start (see $LOG)"
        sleep 0.1
    done
    pgid=$(cat "$tmp_pid"); mv "$tmp_pid" "$PIDFILE"

    # Wait for health, TIMEOUT seconds (polled every 0.1 s).
    n=$((TIMEOUT * 10)); i=0
    until healthy; do
        if ! group_alive "$pgid"; then
            echo "emulator.sh: ministack exited during startup; log tail:" >&2
            tail -n 30 "$LOG" >&2
            rm -f "$PIDFILE"; exit 1
        fi
        i=$((i + 1))
        if [ $i -ge $n ]; then
            echo "emulator.sh: ministack not healthy after ${TIMEOUT}s; log tail:" >&2
            tail -n 30 "$LOG" >&2
            stop; exit 1
        fi
        sleep 0.1
    done
    echo "emulator.sh: ministack up on http://127.0.0.1:$PORT (pgid $pgid, log $LOG)"
}

stop() {
    [ -f "$PIDFILE" ] || { echo "emulator.sh: not running (no $PIDFILE)"; return 0; }
    pgid=$(cat "$PIDFILE")
    [ -n "$pgid" ] || { rm -f "$PIDFILE"; return 0; }
    kill -TERM "-$pgid" 2>/dev/null || true
    i=0
    while group_alive "$pgid"; do        # up to 10 s for a clean exit
        i=$((i + 1))
        if [ $i -ge 100 ]; then
            echo "emulator.sh: group $pgid ignored SIGTERM; sending SIGKILL" >&2
            kill -KILL "-$pgid" 2>/dev/null || true
            j=0
            while group_alive "$pgid"; do
                j=$((j + 1)); [ $j -ge 50 ] && die "group $pgid survived SIGKILL"
                sleep 0.1
            done
            break
        fi
        sleep 0.1
    done
    rm -f "$PIDFILE"
    echo "emulator.sh: stopped (pgid $pgid)"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    status)
        if [ -f "$PIDFILE" ] && group_alive "$(cat "$PIDFILE")" && healthy; then
            echo "running (pgid $(cat "$PIDFILE"))"
        else
            echo "not running"; exit 1
        fi ;;
    *) echo "usage: $0 start|stop|status [STATE_DIR]" >&2; exit 2 ;;
esac
