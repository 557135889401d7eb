#!/usr/bin/env bash
# HTTP throughput and p99, wash against `wasmtime serve`, side by side in one
# run on the same machine with the same wrk settings. Three pairings:
#
#   p2-fresh  wash dev (fresh instance per request) vs wasmtime serve (P2)
#   p3-warm   wash dev --pool-size (128 requests x 16 concurrent per instance,
#             wasmtime's own P3 defaults) vs wasmtime serve -Sp3 (P3)
#   p2-warm   wash dev --pool-size (P2 instances reused in turn) vs
#             wasmtime serve (P2, which cannot reuse P2 instances)
#   telemetry wash dev P2 fresh with OpenTelemetry on (OTLP/HTTP to a local
#             receiver) vs off; with WASH_BEFORE=<a wash binary>, also that
#             binary (telemetry off) vs this one, to see what "off" costs
#
# Release builds. Prints a table with the ratio (ours / wasmtime) per pairing.
#
# Usage: bench/http.sh [duration=15s] [connections=32] [threads=1] [pairings...]
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-15s}
CONNECTIONS=${2:-32}
THREADS=${3:-1}
shift $(( $# < 3 ? $# : 3 ))
PAIRINGS=("$@")
[ ${#PAIRINGS[@]} -gt 0 ] || PAIRINGS=(p2-fresh p3-warm p2-warm)
WASMTIME_VERSION=48.0.8
OURS_PORT=18701
THEIRS_PORT=18702
P2=components/target/wasm32-wasip2/release/http_hello_world.wasm
P3=components/target/wasm32-wasip2/release/http_hello_p3.wasm

# shellcheck source=bench/lib.sh
. bench/lib.sh

say() { printf '==> %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
    say "installing wrk (Debian package)"
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi
WASMTIME=${WASMTIME:-$HOME/.cargo/bin/wasmtime}
needs_wasmtime=false
for pairing in "${PAIRINGS[@]}"; do
    [ "$pairing" = telemetry ] || needs_wasmtime=true
done
if $needs_wasmtime && ! "$WASMTIME" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
    say "installing wasmtime-cli $WASMTIME_VERSION (cargo install; takes a while once)"
    cargo install "wasmtime-cli@$WASMTIME_VERSION" --locked
fi

say "building wash (release) and the components"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
cargo build --release -p wash
cargo build --release --target wasm32-wasip2 --manifest-path components/Cargo.toml \
    -p http-hello-world -p http-hello-p3

wait_ready() { wait_for_url "http://127.0.0.1:$1/"; }

# Prints "<req/s> <p99 in ms> <non-2xx>" for the server on port $1.
load() { wrk_stats "$THREADS" "$CONNECTIONS" "$DURATION" "http://127.0.0.1:$1/"; }

run_server() { # name port command...
    local name=$1 port=$2; shift 2
    if curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1; then
        echo "port $port is already taken; stop what listens there" >&2
        return 1
    fi
    "$@" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$port"
    say "loading $name for $DURATION ($CONNECTIONS connections)"
    load "$port"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

ours_dev() { # port component [flags...]
    local port=$1 component=$2; shift 2
    exec target/release/wash dev --no-watch --address "127.0.0.1:$port" "$@" "$component"
}

# A local OTLP/HTTP receiver that accepts every export (and drops it).
OTLP_PORT=18703
otlp_receiver() {
    python3 - "$OTLP_PORT" >/dev/null 2>&1 <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
    echo $!
}

ours_traced() { # port component
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$OTLP_PORT" \
        OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
        exec target/release/wash dev --no-watch --address "127.0.0.1:$1" "$2"
}

before_dev() { # port component
    exec "$WASH_BEFORE" dev --no-watch --address "127.0.0.1:$1" "$2"
}

results=()
for pairing in "${PAIRINGS[@]}"; do
    case $pairing in
        p2-fresh)
            ours=$(run_server "wash dev (P2, fresh)" $OURS_PORT ours_dev $OURS_PORT "$P2")
            theirs=$(run_server "wasmtime serve (P2)" $THEIRS_PORT \
                "$WASMTIME" serve -Scli --addr 127.0.0.1:$THEIRS_PORT "$P2") ;;
        p3-warm)
            ours=$(run_server "wash dev (P3, warm)" $OURS_PORT ours_dev $OURS_PORT "$P3" \
                --pool-size 4 --max-invocations 128 --max-concurrency 16)
            theirs=$(run_server "wasmtime serve -Sp3" $THEIRS_PORT \
                "$WASMTIME" serve -Scli,p3 --addr 127.0.0.1:$THEIRS_PORT "$P3") ;;
        p2-warm)
            ours=$(run_server "wash dev (P2, warm)" $OURS_PORT ours_dev $OURS_PORT "$P2" \
                --pool-size "$CONNECTIONS")
            theirs=$(run_server "wasmtime serve (P2)" $THEIRS_PORT \
                "$WASMTIME" serve -Scli --addr 127.0.0.1:$THEIRS_PORT "$P2") ;;
        telemetry)
            receiver=$(otlp_receiver)
            ours=$(run_server "wash dev (P2, fresh, telemetry on)" $OURS_PORT \
                ours_traced $OURS_PORT "$P2")
            kill "$receiver"
            theirs=$(run_server "wash dev (P2, fresh, telemetry off)" $THEIRS_PORT \
                ours_dev $THEIRS_PORT "$P2")
            if [ -n "${WASH_BEFORE:-}" ]; then
                before=$(run_server "$WASH_BEFORE (P2, fresh)" $OURS_PORT before_dev $OURS_PORT "$P2")
                results+=("off/before $theirs $before")
            fi ;;
        *) echo "unknown pairing $pairing (p2-fresh, p3-warm, p2-warm, telemetry)" >&2; exit 2 ;;
    esac
    results+=("$pairing $ours $theirs")
done

printf '\n%-10s %12s %9s %12s %9s %7s %s\n' \
    pairing "wash req/s" "p99 ms" "other" "p99 ms" ratio "non-2xx (wash/other)"
for row in "${results[@]}"; do
    read -r name o_rps o_p99 o_bad t_rps t_p99 t_bad <<<"$row"
    ratio=$(awk -v a="$o_rps" -v b="$t_rps" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-10s %12s %9s %12s %9s %7s %s/%s\n' \
        "$name" "$o_rps" "$o_p99" "$t_rps" "$t_p99" "$ratio" "$o_bad" "$t_bad"
done
echo "(other: wasmtime serve; for telemetry: the same wash with telemetry off;"
echo " for off/before: \$WASH_BEFORE)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores, $(date -u +%Y-%m-%d)"
