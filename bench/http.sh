#!/usr/bin/env bash
# Serves components/http-hello-world with `wash dev` and with `wasmtime serve`
# in turn, loads each with the same wrk settings, and prints requests/s, p99
# latency and the ratio (ours / wasmtime). Release builds; one run, one machine.
#
# Usage: bench/http.sh [duration=15s] [connections=32] [threads=1]
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-15s}
CONNECTIONS=${2:-32}
THREADS=${3:-1}
WASMTIME_VERSION=48.0.8
OURS_PORT=18701
THEIRS_PORT=18702
COMPONENT=components/target/wasm32-wasip2/release/http_hello_world.wasm

say() { printf '==> %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
    say "installing wrk (Debian package)"
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi
WASMTIME=${WASMTIME:-$HOME/.cargo/bin/wasmtime}
if ! "$WASMTIME" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
    say "installing wasmtime-cli $WASMTIME_VERSION (cargo install; takes a while once)"
    cargo install "wasmtime-cli@$WASMTIME_VERSION" --locked
fi

say "building wash (release) and the component"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
cargo build --release -p wash
cargo build --release --target wasm32-wasip2 --manifest-path components/Cargo.toml -p http-hello-world

wait_ready() {
    for _ in $(seq 1 200); do
        curl -fs "http://127.0.0.1:$1/" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server on port $1 did not come up" >&2
    return 1
}

# Prints "<req/s> <p99 in ms>" for the server on port $1.
load() {
    wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$1/" >/dev/null # warm-up
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$1/" | awk '
        /Requests\/sec/ { rps = $2 }
        /^ +99%/ {
            v = $2; unit = v; gsub(/[0-9.]/, "", unit); gsub(/[a-z]/, "", v)
            if (unit == "us") v = v / 1000; else if (unit == "s") v = v * 1000
            p99 = v
        }
        END { printf "%s %.2f\n", rps, p99 }'
}

run_server() { # name port command...
    local name=$1 port=$2; shift 2
    "$@" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$port"
    say "loading $name for $DURATION ($CONNECTIONS connections)"
    load "$port"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

ours=$(run_server "wash dev" $OURS_PORT \
    target/release/wash dev --no-watch --address 127.0.0.1:$OURS_PORT "$COMPONENT")
theirs=$(run_server "wasmtime serve" $THEIRS_PORT \
    "$WASMTIME" serve -Scli --addr 127.0.0.1:$THEIRS_PORT "$COMPONENT")

read -r ours_rps ours_p99 <<<"$ours"
read -r theirs_rps theirs_p99 <<<"$theirs"
printf '\n%-16s %12s %10s\n' "server" "req/s" "p99 (ms)"
printf '%-16s %12s %10s\n' "wash dev" "$ours_rps" "$ours_p99"
printf '%-16s %12s %10s\n' "wasmtime serve" "$theirs_rps" "$theirs_p99"
awk -v a="$ours_rps" -v b="$theirs_rps" 'BEGIN { printf "\nratio (wash / wasmtime serve): %.2fx\n", a / b }'
