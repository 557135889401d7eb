#!/usr/bin/env bash
# Builds every WIT package in wit/ (wit/deps/* and the host's own worlds in
# wit/), which validates each one, and publishes it to an OCI registry as
# <registry>/<namespace>/interfaces/<name>:<version> with provenance in its
# metadata. Stable versions are immutable: a package already published with
# the same content is a no-op, with other content an error.
#
#   scripts/publish-wit.sh <registry> [extra `wash wit publish` flags]
#
#   scripts/publish-wit.sh ghcr.io/acme
#   scripts/publish-wit.sh http://127.0.0.1:5000        # a local registry
#   WASH=target/release/wash scripts/publish-wit.sh ghcr.io/acme --user me --password "$TOKEN"
#
# Credentials: --user/--password, WASH_REG_USER/WASH_REG_PASSWORD, or the
# docker config (`docker login`). The source URL recorded in each package
# is the git remote `origin` unless WIT_SOURCE says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: $0 <registry> [wash wit publish flags]" >&2
    echo "  e.g. $0 ghcr.io/acme, or $0 http://127.0.0.1:5000 for a local registry" >&2
    exit 2
fi
registry="$1"
shift

if [ -n "${WASH:-}" ]; then
    wash=("$WASH")
else
    cargo build --quiet -p wash
    wash=("${CARGO_TARGET_DIR:-target}/debug/wash")
fi

provenance=(--license "Apache-2.0")
if [ -n "${WIT_SOURCE:-}" ]; then
    provenance+=(--source "$WIT_SOURCE")
fi

failed=0
for dir in wit/deps/*/ wit/; do
    dir="${dir%/}"
    if ! out=$("${wash[@]}" wit publish "$dir" --registry "$registry" "${provenance[@]}" "$@" 2>&1); then
        echo "FAILED  $dir: $out" >&2
        failed=1
        continue
    fi
    echo "$out"
done
exit "$failed"
