#!/usr/bin/env bash
# `GET /todos/<id>` against a real Postgres, three ways side by side in one
# run, loaded in turn by the same wrk settings:
#
#   fresh   wash dev, a fresh instance per request: every request opens its
#           own connection (TCP, startup, prepare) and drops it
#   warm    wash dev --pool-size 4 --max-concurrency 16 (or $WARM): each
#           warm instance keeps its connection and prepared statements
#   native  the ceiling: the same query from hyper + tokio-postgres
#           (bench/postgres-native), 4 connections, statement prepared once
#
# Release builds, a Postgres cluster made for the run (Debian's
# postgresql, as the `postgres` user) holding 1,000 rows. Prints req/s, p99
# and each ratio to native.
#
# Usage: bench/postgres.sh [duration=15s] [connections=16] [threads=1]
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-15s}
CONNECTIONS=${2:-16}
THREADS=${3:-1}
PG_PORT=18711
PORT=18712
# Built without the `tls` feature (plain TCP here), apart from the test
# fixture, which has it.
COMPONENT=target/bench-guests/wasm32-wasip2/release/http_postgres_p3.wasm
NATIVE=target/release/postgres-native
# How the warm run keeps instances (wash dev flags).
WARM=${WARM:---pool-size 4 --max-concurrency 16}

# shellcheck source=bench/lib.sh
. bench/lib.sh

say() { printf '==> %s\n' "$*" >&2; }
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

missing=""
command -v wrk >/dev/null || missing="$missing wrk"
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$missing postgresql"
if [ -n "$missing" ]; then
    say "installing$missing (Debian packages)"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
    $sudo pg_ctlcluster --mode fast "$(ls /usr/lib/postgresql | sort -V | tail -1)" main stop >/dev/null 2>&1 || true
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

say "building wash, the component and the native server (release)"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
cargo build --release -p wash
cargo build --release --target wasm32-wasip2 --manifest-path components/Cargo.toml \
    -p http-postgres-p3 --no-default-features --target-dir target/bench-guests
cargo build --release --manifest-path bench/postgres-native/Cargo.toml --target-dir target

work=$(mktemp -d)
chmod 755 "$work"
mkdir "$work/data"
chown postgres: "$work/data" 2>/dev/null || sudo chown postgres: "$work/data"
cleanup() {
    as_postgres "$PG_BIN/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$work" 2>/dev/null || sudo rm -rf "$work"
}
trap cleanup EXIT

say "starting Postgres on 127.0.0.1:$PG_PORT"
as_postgres "$PG_BIN/initdb" -D "$work/data" -A trust -U postgres >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/data/server.log" -w start \
    -o "-p $PG_PORT -k $work/data -c listen_addresses=127.0.0.1 -c max_connections=300" >/dev/null
psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "
    CREATE TABLE todos (id BIGSERIAL PRIMARY KEY, title TEXT NOT NULL, done BOOLEAN NOT NULL DEFAULT false);
    INSERT INTO todos (title) SELECT 'todo ' || n FROM generate_series(1, 1000) n;"
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"

mkdir -p "$work/project/.wash"
cat >"$work/project/.wash/config.yaml" <<YAML
workload:
  config:
    database_url: "$DATABASE_URL"
  allowedHostLoopbackPorts: [$PG_PORT]
YAML

wait_ready() { wait_for_url "http://127.0.0.1:$PORT/todos/1"; }

# Prints "<req/s> <p99 in ms> <non-2xx>" for what serves on $PORT.
load() { wrk_stats "$THREADS" "$CONNECTIONS" "$DURATION" "http://127.0.0.1:$PORT/todos/42"; }

run_server() { # name command...
    local name=$1; shift
    if curl -s "http://127.0.0.1:$PORT/" >/dev/null 2>&1; then
        echo "port $PORT is already taken; stop what listens there" >&2
        return 1
    fi
    "$@" >"$work/server.log" 2>&1 &
    local pid=$!
    wait_ready
    say "loading $name for $DURATION ($CONNECTIONS connections)"
    load
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

wash_dev() { # flags...
    exec target/release/wash dev --no-watch --address "127.0.0.1:$PORT" -C "$work/project" \
        "$@" "$COMPONENT"
}

fresh=$(run_server "wash dev (fresh instances)" wash_dev)
# shellcheck disable=SC2086 # flags, one word each
warm=$(run_server "wash dev (warm instances: $WARM)" wash_dev $WARM)
native=$(run_server "native (hyper + tokio-postgres)" \
    "$NATIVE" "127.0.0.1:$PORT" "$DATABASE_URL" 4)

read -r n_rps _ _ <<<"$native"
printf '\n%-8s %12s %9s %9s %s\n' mode "req/s" "p99 ms" "/native" non-2xx
for row in "fresh $fresh" "warm $warm" "native $native"; do
    read -r name rps p99 bad <<<"$row"
    ratio=$(awk -v a="$rps" -v b="$n_rps" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-8s %12s %9s %9s %s\n' "$name" "$rps" "$p99" "$ratio" "$bad"
done
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION GET /todos/42, $(nproc) cores, $("$PG_BIN/postgres" --version), $(date -u +%Y-%m-%d)"
