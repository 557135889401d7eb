#!/usr/bin/env bash
# The cost of one call from a workload into a capability, native plugin vs
# component plugin, side by side in one run: the kv-bench fixture times N
# wasi:keyvalue calls inside one request (`exists`, near a no-op, and `get`
# of a 100-byte value), served once by wash's built-in in-memory key-value
# plugin and once by components/kv-plugin loaded with --host-plugin.
# Then a true no-op (`example:noop/api.noop`, no parameters, no results),
# which wash has no built-in plugin for: the plugin_calls bench of
# wash-runtime serves it from a native plugin of its own (a host function
# linked sync, and one linked async) and from components/noop-plugin, and
# also times wasmtime alone calling the plugin's export (the floor).
# Release builds; prints ns per call and the ratio (component / native).
# Ports 18721 (native) and 18722 (component); the no-op bench takes free
# ones.
#
# Usage: bench/plugins.sh [calls per request=100000] [pairs=150]
# (150 pairs take about three minutes here; two runs of 150 pairs can
# still differ by 0.2 in a ratio, so compare changes over several runs.)
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS=${1:-100000}
REQUESTS=${2:-150}
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
    -p kv-bench -p kv-plugin -p noop-bench -p noop-plugin
cargo bench --no-run -p wash-runtime --bench plugin_calls

NATIVE_PORT=$PORT
COMPONENT_PORT=$((PORT + 1))
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

start() { # port flags...
    local port=$1; shift
    ${PIN:-} target/release/wash dev --no-watch --address "127.0.0.1:$port" "$@" "$BENCH" >/dev/null 2>&1 &
    PIDS+=($!)
    wait_for_url "http://127.0.0.1:$port/exists/1"
}

# Both hosts run at once and take turns, a request each: this shared VM's
# speed drifts by tens of percent within a minute, and alternating puts
# both sides of each pair under the same conditions.
say "starting the native and the component plugin hosts"
start "$NATIVE_PORT"
start "$COMPONENT_PORT" --host-plugin "id=kv,file=$PLUGIN"
for port in "$NATIVE_PORT" "$COMPONENT_PORT"; do  # warm-up
    curl -fs "http://127.0.0.1:$port/exists/$CALLS" >/dev/null
    curl -fs "http://127.0.0.1:$port/get/$CALLS" >/dev/null
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# kv-bench answers "<mean ns per call> <ns per call of its fastest batch of
# 1,000>"; each is compared pair by pair.
printf '\n%-14s | %-31s | %-31s\n' "" "mean of $CALLS calls" "fastest batch of 1,000 calls"
printf '%-14s | %8s %9s %6s %6s | %8s %9s %6s %6s\n' call native component ratio range native component ratio range
for op in exists get; do
    say "timing $op ($REQUESTS pairs x $CALLS calls)"
    nm=() cm=() rm=() nf=() cf=() rf=()
    for _ in $(seq 1 "$REQUESTS"); do
        read -r n_mean n_fast <<<"$(curl -fs "http://127.0.0.1:$NATIVE_PORT/$op/$CALLS")"
        read -r c_mean c_fast <<<"$(curl -fs "http://127.0.0.1:$COMPONENT_PORT/$op/$CALLS")"
        nm+=("$n_mean") cm+=("$c_mean") rm+=("$(ratio "$c_mean" "$n_mean")")
        nf+=("$n_fast") cf+=("$c_fast") rf+=("$(ratio "$c_fast" "$n_fast")")
    done
    name=$op; [ "$op" = get ] && name=get-100-bytes
    summary() { # natives components ratios (newline-separated)
        local spread
        spread=$(sort -n <<<"$3" | sed -n '1p;$p' | paste -sd- -)
        printf '%8s %9s %5sx %s' "$(median <<<"$1")" "$(median <<<"$2")" "$(median <<<"$3")" "$spread"
    }
    lines() { printf '%s\n' "$@"; }
    printf '%-14s | %s | %s\n' "$name" \
        "$(summary "$(lines "${nm[@]}")" "$(lines "${cm[@]}")" "$(lines "${rm[@]}")")" \
        "$(summary "$(lines "${nf[@]}")" "$(lines "${cf[@]}")" "$(lines "${rf[@]}")")"
done
echo "ns per call, medians of $REQUESTS alternating pairs; ratio = median of the pairs' ratios (component / native), range = their spread; $(nproc) cores, $(date -u +%Y-%m-%d)"

cleanup  # the two wash hosts are done; the no-op bench runs its own
cargo bench -p wash-runtime --bench plugin_calls -- "$CALLS" "$REQUESTS"
