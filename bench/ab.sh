#!/usr/bin/env bash
# Two wash binaries serving the P2 hello-world fixture (a fresh instance per
# request), loaded in turn, alternating A, B, A, B... so that drift in the
# machine's speed hits both alike. For changes too small for one run of
# bench/http.sh to tell apart from noise.
#
# Usage: bench/ab.sh <wash A> <wash B> [rounds=3] [duration=10s]
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 ROUNDS=${3:-3} DURATION=${4:-10s}
P2=components/target/wasm32-wasip2/release/http_hello_world.wasm
PORT=18710
[ -f "$P2" ] || cargo build --release --target wasm32-wasip2 --manifest-path components/Cargo.toml -p http-hello-world

rps() { # binary
    "$1" dev --no-watch --address "127.0.0.1:$PORT" "$P2" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
        sleep 0.1
    done
    wrk -t1 -c32 -d2s "http://127.0.0.1:$PORT/" >/dev/null
    wrk -t1 -c32 -d"$DURATION" "http://127.0.0.1:$PORT/" | awk '/Requests\/sec/ { print $2 }'
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

a_all=() b_all=()
for _ in $(seq 1 "$ROUNDS"); do
    a_all+=("$(rps "$A")")
    b_all+=("$(rps "$B")")
done
echo "A ($A): ${a_all[*]}"
echo "B ($B): ${b_all[*]}"
printf '%s\n' "${a_all[@]}" | awk -v b="${b_all[*]}" '
    { a += $1; n++ }
    END { split(b, bs, " "); for (i in bs) s += bs[i]; printf "mean A %.0f, mean B %.0f, B/A %.3fx\n", a / n, s / n, (s / n) / (a / n) }'
