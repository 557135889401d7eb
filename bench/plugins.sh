#!/usr/bin/env bash
# The cost of one call from a workload into a capability, native plugin vs
# component plugin, side by side in one run: the kv-bench fixture times N
# wasi:keyvalue calls inside one request (`exists`, near a no-op, and `get`
# of a 100-byte value), served once by wash's built-in in-memory key-value
# plugin and once by components/kv-plugin loaded with --host-plugin.
# Release builds; prints ns per call and the ratio (component / native).
#
# Usage: bench/plugins.sh [calls per request=100000] [requests=5]
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS=${1:-100000}
REQUESTS=${2:-5}
PORT=18721
BENCH=components/target/wasm32-wasip2/release/kv_bench.wasm
PLUGIN=components/target/wasm32-wasip2/release/kv_plugin.wasm

# shellcheck source=bench/lib.sh
. bench/lib.sh

say() { printf '==> %s\n' "$*" >&2; }

say "building wash and the components (release)"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
cargo build --release -p wash
cargo build --release --target wasm32-wasip2 --manifest-path components/Cargo.toml \
    -p kv-bench -p kv-plugin

# Prints the median ns per call of `op` over $REQUESTS requests.
measure() { # op
    for _ in $(seq 1 "$REQUESTS"); do
        curl -fs "http://127.0.0.1:$PORT/$1/$CALLS"
    done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

run() { # name flags...
    local name=$1; shift
    target/release/wash dev --no-watch --address "127.0.0.1:$PORT" "$@" "$BENCH" >/dev/null 2>&1 &
    local pid=$!
    wait_for_url "http://127.0.0.1:$PORT/exists/1"
    say "timing $name ($REQUESTS x $CALLS calls)"
    echo "$(measure exists) $(measure get)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

read -r n_exists n_get <<<"$(run "native plugin")"
read -r c_exists c_get <<<"$(run "component plugin" --host-plugin "id=kv,file=$PLUGIN")"

printf '\n%-22s %10s %10s %8s\n' call "native ns" "component" ratio
for row in "exists $n_exists $c_exists" "get-100-bytes $n_get $c_get"; do
    read -r name native component <<<"$row"
    printf '%-22s %10s %10s %8s\n' "$name" "$native" "$component" \
        "$(awk -v a="$component" -v b="$native" 'BEGIN { printf "%.2fx", a / b }')"
done
echo "median of $REQUESTS requests x $CALLS calls, $(nproc) cores, $(date -u +%Y-%m-%d)"
