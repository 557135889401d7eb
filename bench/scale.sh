#!/usr/bin/env bash
# Scale: 1, 100 and 1,000 hello-world workloads on one host, started one
# after another and then in batches of 100 at once (as a control plane
# placing a replica set does). For each, the resident memory an idle
# workload costs, how long the starts took, and the throughput of one hot
# workload (wrk on w0.test) while the others sit idle; the last column is
# that throughput relative to the host with one workload.
#
# Usage: bench/scale.sh [duration=10s] [connections=32] [counts...]
# MODES="sequential concurrent" (the default) picks the start modes.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10s}
CONNECTIONS=${2:-32}
shift $(( $# < 2 ? $# : 2 ))
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(1 100 1000)
PORT=18703

say() { printf '==> %s\n' "$*" >&2; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

say "building the scale bench (release) and the component"
cargo build --release --target wasm32-wasip2 --manifest-path components/Cargo.toml -p http-hello-world
exe=$(cargo bench -p wash-runtime --bench scale --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "scale" and m.get("executable"):
        print(m["executable"])')
[ -x "$exe" ] || { echo "could not build the scale bench" >&2; exit 1; }

rows=()
base=""
for mode in ${MODES:-sequential concurrent}; do
for n in "${COUNTS[@]}"; do
    log=$(mktemp)
    "$exe" "$n" "$PORT" "$mode" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 1200); do grep -q '^ready' "$log" && break; sleep 0.1; done
    grep -q '^ready' "$log" || { cat "$log" >&2; kill "$pid"; exit 1; }
    stats=$(grep '^workloads=' "$log")
    say "$stats; loading w0.test for $DURATION"
    wrk -t1 -c"$CONNECTIONS" -d2s -H 'Host: w0.test' "http://127.0.0.1:$PORT/" >/dev/null
    rps=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H 'Host: w0.test' "http://127.0.0.1:$PORT/" |
        awk '/Requests\/sec/ { print $2 }')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -f "$log"
    [ -n "$base" ] || base=$rps
    rss=$(sed -E 's/.*rss_kib=([0-9]+).*/\1/' <<<"$stats")
    per=$(sed -E 's/.*idle_workload_kib=([0-9.]+).*/\1/' <<<"$stats")
    ms=$(sed -E 's/.*start_ms=([0-9]+).*/\1/' <<<"$stats")
    loads=$(sed -E 's/.*loads=([0-9]+).*/\1/' <<<"$stats")
    rows+=("$mode $n $rss $per $ms $loads $rps $(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.3f", a / b }')")
done
done

printf '\n%10s %10s %12s %16s %12s %6s %12s %8s\n' mode workloads "RSS (MiB)" "per idle (KiB)" "starts (ms)" loads "hot req/s" "vs 1"
for row in "${rows[@]}"; do
    read -r mode n rss per ms loads rps rel <<<"$row"
    printf '%10s %10s %12.1f %16s %12s %6s %12s %8s\n' "$mode" "$n" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$per" "$ms" "$loads" "$rps" "$rel"
done
echo
echo "wrk -t1 -c$CONNECTIONS -d$DURATION -H 'Host: w0.test', $(nproc) cores, $(date -u +%Y-%m-%d)"
