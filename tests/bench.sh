#!/usr/bin/env bash
# mxdesk benchmark: SMTP acceptance throughput and latency on 127.0.0.1.
#
#   bash tests/bench.sh                 full run (100k + 5k messages, ~minutes)
#   BENCH_MESSAGES=2000 BENCH_SINGLE_MESSAGES=500 BENCH_LAT_SECONDS=2 bash tests/bench.sh
#                                       quick smoke run
#
# Throughput is measured with Postfix's smtp-source, first against mxdesk
# (every 250 means the message is durably stored), then against Postfix's
# smtp-sink (which throws mail away) as the ceiling of the client and the
# loopback network on this machine. Latency (end of DATA -> 250) comes from
# tests/bench_latency.py at a fixed offered rate. The event feed's wake
# latency (250 -> answer of an agent's waiting long-poll, target 50 ms) comes
# from tests/bench_feed.py, on the fresh server before the load runs.
#
# Environment (defaults in brackets):
#   BENCH_SESSIONS [20]          parallel sessions of the first throughput run
#   BENCH_MESSAGES [100000]      messages in total of the first run
#   BENCH_SINGLE_MESSAGES [5000] messages of the one-session run
#   BENCH_SIZE [2048]            message payload bytes (smtp-source -l)
#   BENCH_LAT_SESSIONS [10]      latency run: sessions
#   BENCH_LAT_RATE [1000]        latency run: target msg/s, all sessions
#   BENCH_LAT_SECONDS [5]        latency run: seconds of offered load
#   BENCH_FEED_ROUNDS [50]       event feed run: mails, one waiting poll each
#   BENCH_TIMEOUT [600]          limit in seconds for each client run
#   BENCH_START_TIMEOUT [60]     limit in seconds for mxdesk to start listening
#   BENCH_DIR [target/bench.XXXX] work directory (config, data). Keep it on a
#                                real disk: on tmpfs fsync is free.
#   BENCH_KEEP [0]               1 = keep the work directory afterwards
#   BENCH_SKIP_BUILD [0]         1 = use the existing target/release/mxdesk
#   BENCH_BIN [target/release/mxdesk] server binary (setting it skips the build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="$PATH:/usr/sbin:/sbin"   # smtp-source and smtp-sink live in /usr/sbin

SESSIONS=${BENCH_SESSIONS:-20}
MESSAGES=${BENCH_MESSAGES:-100000}
SINGLE_MESSAGES=${BENCH_SINGLE_MESSAGES:-5000}
SIZE=${BENCH_SIZE:-2048}
LAT_SESSIONS=${BENCH_LAT_SESSIONS:-10}
LAT_RATE=${BENCH_LAT_RATE:-1000}
LAT_SECONDS=${BENCH_LAT_SECONDS:-5}
FEED_ROUNDS=${BENCH_FEED_ROUNDS:-50}
RUN_TIMEOUT=${BENCH_TIMEOUT:-600}
START_TIMEOUT=${BENCH_START_TIMEOUT:-60}
TOKEN=bench-admin-token
SENDER=sender@example.org
RCPT=bench@desk.test
HELO=bench.example.org
BIN=${BENCH_BIN:-target/release/mxdesk}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (not root and no sudo)"
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install manually: $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@" >/dev/null
}

ensure_tools() {
    if ! command -v smtp-source >/dev/null 2>&1 || ! command -v smtp-sink >/dev/null 2>&1; then
        # "No configuration": installs the binaries, starts no mail service.
        echo "postfix postfix/main_mailer_type select No configuration" \
            | as_root debconf-set-selections
        apt_install postfix
    fi
    command -v smtp-source >/dev/null 2>&1 || die "smtp-source missing after installing postfix"
    command -v curl >/dev/null 2>&1 || apt_install curl
    command -v python3 >/dev/null 2>&1 || die "python3 not found"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (bounded) until something accepts TCP connections on 127.0.0.1:$1.
wait_port() {
    local port=$1 deadline=$((SECONDS + 10))
    until (exec 9<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || die "nothing listening on 127.0.0.1:$port"
        sleep 0.05
    done
}

SERVER_PID="" DRAIN_PID="" SINK_PID="" WORK=""
cleanup() {
    local rc=$?
    for pid in "$SINK_PID" "$SERVER_PID"; do
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    done
    for pid in "$SINK_PID" "$SERVER_PID"; do
        [ -n "$pid" ] || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ -n "$DRAIN_PID" ]; then kill "$DRAIN_PID" 2>/dev/null || true; fi
    if [ "$rc" -ne 0 ] && [ -n "$WORK" ] && [ -s "$WORK/server.err" ]; then
        say "last lines of mxdesk stderr:"
        tail -n 20 "$WORK/server.err" >&2 || true
    fi
    if [ -n "$WORK" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
            say "work directory kept: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# rate MESSAGES START END -> msg/s
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }
# ratio A B -> A/B in percent
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", 100 * a / b; else print "n/a" }'; }

# smtp_source LABEL PORT SESSIONS MESSAGES -> prints msg/s on stdout
smtp_source() {
    local label=$1 port=$2 sessions=$3 messages=$4 t0 t1
    say "$label: smtp-source -s $sessions -m $messages -l $SIZE -d 127.0.0.1:$port"
    t0=$(date +%s.%N)
    timeout "$RUN_TIMEOUT" smtp-source -s "$sessions" -m "$messages" -l "$SIZE" -d \
        -M "$HELO" -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" >&2 \
        || die "$label: smtp-source failed or timed out (exit $?)"
    t1=$(date +%s.%N)
    local r
    r=$(rate "$messages" "$t0" "$t1")
    say "$label: $messages messages in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s = $r msg/s"
    echo "$r"
}

# latency LABEL PORT -> prints the RESULT line of bench_latency.py
latency() {
    local label=$1 port=$2 out
    say "$label: latency, $LAT_SESSIONS sessions, $LAT_RATE msg/s for $LAT_SECONDS s"
    out=$(timeout "$RUN_TIMEOUT" python3 tests/bench_latency.py --port "$port" \
        --sessions "$LAT_SESSIONS" --rate "$LAT_RATE" --duration "$LAT_SECONDS" \
        --size "$SIZE" --from "$SENDER" --to "$RCPT" --helo "$HELO") || {
        printf '%s\n' "$out" >&2
        die "$label: latency run failed"
    }
    printf '%s\n' "$out" | grep -v '^RESULT' >&2
    printf '%s\n' "$out" | grep '^RESULT'
}
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# ---------------------------------------------------------------- setup
ensure_tools

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ] && [ -z "${BENCH_BIN:-}" ]; then
    say "cargo build --release"
    cargo build --release
fi
[ -x "$BIN" ] || die "$BIN not found"

if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"
    WORK=$(mktemp -d "$BENCH_DIR/bench.XXXXXX")
else
    mkdir -p target
    WORK=$(mktemp -d "$ROOT/target/bench.XXXXXX")
fi
FSTYPE=$(stat -f -c %T "$WORK" 2>/dev/null || echo unknown)
say "work directory $WORK ($FSTYPE)"
[ "$FSTYPE" = tmpfs ] && say "warning: data on tmpfs, fsync costs nothing; numbers are optimistic"

cat >"$WORK/mxdesk.toml" <<EOF
data_dir = "$WORK/data"
domains = ["desk.test"]
[smtp]
listen = ["127.0.0.1:0"]
hostname = "mx.desk.test"
[api]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
EOF

# ---------------------------------------------------------------- mxdesk
# stdout goes through a FIFO so the listening lines can be read as they
# come, with a time limit; afterwards a drain copies the rest to a file so
# the server never blocks on a full pipe.
mkfifo "$WORK/stdout.fifo"
MXDESK_BOOTSTRAP_TOKEN=$TOKEN "$BIN" serve --config "$WORK/mxdesk.toml" \
    >"$WORK/stdout.fifo" 2>"$WORK/server.err" &
SERVER_PID=$!
exec 3<"$WORK/stdout.fifo"

SMTP_ADDR="" API_ADDR=""
deadline=$((SECONDS + START_TIMEOUT))
while [ -z "$SMTP_ADDR" ] || [ -z "$API_ADDR" ]; do
    left=$((deadline - SECONDS))
    [ "$left" -gt 0 ] || die "mxdesk did not report its listeners within ${START_TIMEOUT}s"
    if IFS= read -r -t "$left" line <&3; then
        line=${line%$'\r'}
        printf '%s\n' "$line" >>"$WORK/server.out"
        if [ -z "$SMTP_ADDR" ] && [[ $line =~ smtp\ listening\ on\ ([^[:space:]]+) ]]; then
            SMTP_ADDR=${BASH_REMATCH[1]}
        elif [ -z "$API_ADDR" ] && [[ $line =~ api\ listening\ on\ http://([^[:space:]/]+) ]]; then
            API_ADDR=${BASH_REMATCH[1]}
        fi
    else
        [ $? -gt 128 ] || die "mxdesk closed its stdout (exited?) before reporting its listeners"
        die "mxdesk did not report its listeners within ${START_TIMEOUT}s"
    fi
done
cat <&3 >>"$WORK/server.out" &
DRAIN_PID=$!
exec 3<&-
SMTP_PORT=${SMTP_ADDR##*:}
say "mxdesk: smtp $SMTP_ADDR, api http://$API_ADDR"

status=$(curl -s -o "$WORK/project.json" -w '%{http_code}' --max-time 10 -X POST \
    -H "PRIVATE-TOKEN: $TOKEN" -d name=Bench -d path=bench "http://$API_ADDR/api/v4/projects") || true
case "$status" in
    2??) say "project created: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("path_with_namespace", d.get("path")), d.get("service_desk_address", ""))' "$WORK/project.json" 2>/dev/null || echo bench)" ;;
    *) die "creating the project failed: HTTP $status $(head -c 300 "$WORK/project.json" 2>/dev/null)" ;;
esac

say "mxdesk: event feed wake latency, $FEED_ROUNDS rounds"
FEED=$(timeout "$RUN_TIMEOUT" python3 tests/bench_feed.py --api "http://$API_ADDR" \
    --smtp-port "$SMTP_PORT" --token "$TOKEN" --to "$RCPT" --rounds "$FEED_ROUNDS") || {
    printf '%s\n' "$FEED" >&2
    die "event feed run failed"
}
FEED=$(printf '%s\n' "$FEED" | grep '^RESULT')
say "mxdesk: event feed $FEED"

MX_PAR=$(smtp_source "mxdesk" "$SMTP_PORT" "$SESSIONS" "$MESSAGES")
MX_ONE=$(smtp_source "mxdesk" "$SMTP_PORT" 1 "$SINGLE_MESSAGES")

# ---------------------------------------------------------------- ceiling
SINK_PORT=$(free_port)
SINK_ARGS=()
[ "$(id -u)" -eq 0 ] && SINK_ARGS+=(-u nobody)   # smtp-sink refuses to run as root
smtp-sink "${SINK_ARGS[@]}" -m 1000 "127.0.0.1:$SINK_PORT" 1000 >"$WORK/sink.out" 2>&1 &
SINK_PID=$!
wait_port "$SINK_PORT"
say "smtp-sink on 127.0.0.1:$SINK_PORT"

SINK_PAR=$(smtp_source "smtp-sink" "$SINK_PORT" "$SESSIONS" "$MESSAGES")
SINK_ONE=$(smtp_source "smtp-sink" "$SINK_PORT" 1 "$SINGLE_MESSAGES")

# ---------------------------------------------------------------- latency
MX_LAT=$(latency "mxdesk" "$SMTP_PORT")
SINK_LAT=$(latency "smtp-sink" "$SINK_PORT")

# ---------------------------------------------------------------- summary
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
[ -n "$CPU" ] || CPU=$(uname -m)
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

cat <<EOF

==================== mxdesk benchmark ====================
date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)   commit: $REV
machine:  $(nproc) CPUs, $CPU
kernel:   $(uname -sr)   data on: $FSTYPE
messages: ${SIZE}-byte payload, smtp-source -d (one connection per session)

| run | mxdesk | smtp-sink (ceiling) | ratio |
|---|---:|---:|---:|
| throughput, $SESSIONS sessions, $MESSAGES messages | $MX_PAR msg/s | $SINK_PAR msg/s | $(ratio "$MX_PAR" "$SINK_PAR") % |
| throughput, 1 session, $SINGLE_MESSAGES messages | $MX_ONE msg/s | $SINK_ONE msg/s | $(ratio "$MX_ONE" "$SINK_ONE") % |
| latency p50, end of DATA to 250 | $(field "$MX_LAT" p50_ms) ms | $(field "$SINK_LAT" p50_ms) ms | |
| latency p99, end of DATA to 250 | $(field "$MX_LAT" p99_ms) ms | $(field "$SINK_LAT" p99_ms) ms | |
| latency run: achieved of $LAT_RATE msg/s target, $LAT_SESSIONS sessions, ${LAT_SECONDS} s | $(field "$MX_LAT" achieved) msg/s | $(field "$SINK_LAT" achieved) msg/s | |
| event feed, 250 to waiting long-poll, p50 / p99 / max ($FEED_ROUNDS mails, target 50 ms) | $(field "$FEED" p50_ms) / $(field "$FEED" p99_ms) / $(field "$FEED" max_ms) ms | | |
===========================================================
EOF
