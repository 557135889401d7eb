#!/usr/bin/env bash
# The operator at scale: 5 `wash host` processes, one nats-server and the
# operator against the test API server on this machine; 10
# WorkloadDeployments x 200 replicas (2,000 Workloads) applied at once.
# Prints the time until all are Ready, the p99 start round trip, the
# operator's CPU time and peak memory, then the time until a kill -9'd
# host's workloads are Ready elsewhere. Release builds.
#
# Usage: bench/operator.sh [deployments=10] [replicas=200]
set -euo pipefail
cd "$(dirname "$0")/.."

DEPLOYMENTS=${1:-10}
REPLICAS=${2:-200}

command -v nats-server >/dev/null || { echo "nats-server is needed: ./scripts/test.sh installs it" >&2; exit 1; }
command -v docker-registry >/dev/null || { echo "docker-registry is needed: apt-get install docker-registry" >&2; exit 1; }
# Five hosts and thousands of workloads need more than the default limits.
ulimit -n 65536 2>/dev/null || true

cargo build --release --target wasm32-wasip2 --manifest-path components/Cargo.toml -p http-hello-world
cargo build --release -p wash -p runtime-operator --bins
cargo run --release -p runtime-operator --example operator_bench -- \
    target/release/wash target/release/runtime-operator "$DEPLOYMENTS" "$REPLICAS"
