#!/usr/bin/env bash
# Builds the Python fixture with componentize-py (installed from PyPI when
# missing) into components/target/python/python_hello.wasm. The wasi:http WIT
# comes from the wasmtime-wasi-http crate the host itself is built against.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
version=0.25.1
out="$repo/components/target/python"

if ! componentize-py --version 2>/dev/null | grep -q "$version"; then
    python3 -m pip install --quiet --disable-pip-version-check "componentize-py==$version"
fi

wit="$(cd "$repo" && cargo metadata --format-version 1 --locked | python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
pkg = next(p for p in meta["packages"] if p["name"] == "wasmtime-wasi-http")
print(os.path.join(os.path.dirname(pkg["manifest_path"]), "wit"))
')"

if [ -f "$out/python_hello.wasm" ] && [ "$out/python_hello.wasm" -nt "$here/app.py" ]; then
    exit 0
fi
mkdir -p "$out/work"
cp "$here/app.py" "$out/work/"
cd "$out/work"
rm -rf wit_world componentize_py_types.py componentize_py_async_support componentize_py_runtime.pyi poll_loop.py
componentize-py -d "$wit" -w wasi:http/proxy bindings . >/dev/null
componentize-py -d "$wit" -w wasi:http/proxy componentize app -o "$out/python_hello.wasm" >/dev/null
echo "built $out/python_hello.wasm"
