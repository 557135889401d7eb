#!/usr/bin/env bash
# Tests scripts/install.sh against a throwaway release served by a local
# `python3 -m http.server` on 127.0.0.1. Needs bash, python3, tar, gzip,
# sha256sum or shasum, and curl (wget is exercised too when present).
# No internet needed; safe to run as root.
#
#   bash scripts/test-install.sh
set -euo pipefail

script_dir=$(cd "$(dirname "$0")" && pwd)
INSTALL="$script_dir/install.sh"
BASH_BIN=$(command -v bash)

# Keep the caller's settings out of the way: the tests set what they need.
unset WASH_RELEASE_URL WASH_VERSION WASH_INSTALL_DIR WASH_TARGET \
    WASH_INSTALL_UNAME_S WASH_INSTALL_UNAME_M WASH_INSTALL_ROOT \
    WASH_INSTALL_LDD WASH_INSTALL_DOWNLOADER
# A configured proxy must not intercept the loopback test server.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

for tool in python3 tar gzip; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test-install: $tool is required to run these tests" >&2
        exit 1
    fi
done

tmp=$(mktemp -d)
server_pid=""
extra_dirs=()
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    chmod -R u+w "$tmp" 2>/dev/null || true
    rm -rf "$tmp"
    local d
    for d in ${extra_dirs[@]+"${extra_dirs[@]}"}; do
        chmod -R u+w "$d" 2>/dev/null || true
        rm -rf "$d"
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sha256_line() { # FILE -> "<hex>  <basename>"
    local hex
    if command -v sha256sum >/dev/null 2>&1; then
        hex=$(sha256sum "$1" | cut -d ' ' -f 1)
    else
        hex=$(shasum -a 256 "$1" | cut -d ' ' -f 1)
    fi
    printf '%s  %s\n' "$hex" "$(basename "$1")"
}

# make_elf OUT BITS(32|64) ENDIAN(le|be) INTERP: write a minimal ELF file whose
# program headers carry PT_INTERP=INTERP (INTERP "-" = static, no PT_INTERP).
make_elf() {
    python3 - "$@" <<'PY'
import struct, sys
out, bits, endian, interp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
e = "<" if endian == "le" else ">"
ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if endian == "le" else 2, 1, 0]) + bytes(8)
interp_b = b"" if interp == "-" else interp.encode() + b"\0"
nph = 1 if interp == "-" else 2
if bits == 64:
    ehsize, phentsize, machine = 64, 56, 62
    phoff = ehsize
    ioff = phoff + nph * phentsize
    hdr = ident + struct.pack(e + "HHIQQQIHHHHHH", 2, machine, 1, 0, phoff, 0, 0,
                              ehsize, phentsize, nph, 64, 0, 0)
    ph = struct.pack(e + "IIQQQQQQ", 6, 4, phoff, phoff, phoff,
                     nph * phentsize, nph * phentsize, 8)
    if interp_b:
        ph += struct.pack(e + "IIQQQQQQ", 3, 4, ioff, ioff, ioff,
                          len(interp_b), len(interp_b), 1)
else:
    ehsize, phentsize, machine = 52, 32, 3
    phoff = ehsize
    ioff = phoff + nph * phentsize
    hdr = ident + struct.pack(e + "HHIIIIIHHHHHH", 2, machine, 1, 0, phoff, 0, 0,
                              ehsize, phentsize, nph, 40, 0, 0)
    ph = struct.pack(e + "IIIIIIII", 6, phoff, phoff, phoff,
                     nph * phentsize, nph * phentsize, 4, 4)
    if interp_b:
        ph += struct.pack(e + "IIIIIIII", 3, ioff, ioff, ioff,
                          len(interp_b), len(interp_b), 4, 1)
with open(out, "wb") as f:
    f.write(hdr + ph + interp_b + bytes(256))
PY
}

# shim_path DIR EXCLUDED...: fill DIR with links to the tools install.sh (and
# the test stubs) use, minus EXCLUDED, and print DIR for use as the only PATH.
shim_path() {
    local dir=$1 tool path
    shift
    mkdir -p "$dir"
    for tool in bash sh env uname mktemp rm mkdir cp mv chmod cat od dd tr sed \
        tail head grep cut tee dirname basename tar gzip curl wget sha256sum \
        shasum getconf ldd; do
        case " $* " in *" $tool "*) continue ;; esac
        if path=$(command -v "$tool" 2>/dev/null) && [ -x "$path" ]; then
            ln -sf "$path" "$dir/$tool"
        fi
    done
    printf '%s\n' "$dir"
}

# --- test release and server -------------------------------------------------

if ! target=$("$BASH_BIN" "$INSTALL" --print-target 2>&1); then
    echo "test-install: install.sh --print-target failed on this machine:" >&2
    printf '%s\n' "$target" >&2
    exit 1
fi
echo "# detected target: $target"

root="$tmp/www"
archive_name="wash-$target.tar.gz"
mkdir -p "$tmp/stage" "$tmp/empty" "$root/v9.9.9" "$root/v-bad" "$root/v-nosum" \
    "$root/v-corrupt" "$root/v-nowash" "$root/latest"
cat >"$tmp/stage/wash" <<'EOF'
#!/bin/sh
if [ "${1:-}" = "--version" ]; then
    echo "wash 9.9.9-test"
    exit 0
fi
echo "wash stub: $*"
EOF
chmod 755 "$tmp/stage/wash"
tar -czf "$root/v9.9.9/$archive_name" -C "$tmp/stage" wash
sha256_line "$root/v9.9.9/$archive_name" >"$root/v9.9.9/$archive_name.sha256"
cp "$root/v9.9.9/$archive_name" "$root/v9.9.9/$archive_name.sha256" "$root/latest/"
# v-bad: a checksum that belongs to something else.
cp "$root/v9.9.9/$archive_name" "$root/v-bad/"
echo "not the archive" >"$tmp/other"
bad_sum=$(sha256_line "$tmp/other" | cut -d ' ' -f 1)
printf '%s  %s\n' "$bad_sum" "$archive_name" >"$root/v-bad/$archive_name.sha256"
# v-nosum: archive without its .sha256.
cp "$root/v9.9.9/$archive_name" "$root/v-nosum/"
# v-corrupt: not a gzip archive, but the checksum matches it.
echo "this is not a tarball" >"$root/v-corrupt/$archive_name"
sha256_line "$root/v-corrupt/$archive_name" >"$root/v-corrupt/$archive_name.sha256"
# v-nowash: a valid archive without a top-level wash.
echo "readme" >"$tmp/empty/README"
tar -czf "$root/v-nowash/$archive_name" -C "$tmp/empty" README
sha256_line "$root/v-nowash/$archive_name" >"$root/v-nowash/$archive_name.sha256"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
(cd "$root" && exec python3 -m http.server --bind 127.0.0.1 "$port") >"$tmp/server.log" 2>&1 &
server_pid=$!
up=0
for _ in $(seq 1 100); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        break
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        up=1
        break
    fi
    sleep 0.1
done
if [ "$up" -ne 1 ]; then
    echo "test-install: the local HTTP server did not start on 127.0.0.1:$port" >&2
    cat "$tmp/server.log" >&2
    exit 1
fi
BASE="http://127.0.0.1:$port"
echo "# serving $root at $BASE"

# --- test helpers --------------------------------------------------------------

passed=0
failed=0
skipped=0
case_name=""
why=""
OUT=""
RC=0

begin() {
    case_name=$1
    why=""
}

# run CMD...: run with a time limit, capture combined output in OUT, status in RC.
run() {
    local -a limit=()
    if command -v timeout >/dev/null 2>&1; then
        limit=(timeout 120)
    fi
    RC=0
    OUT=$(${limit[@]+"${limit[@]}"} "$@" 2>&1) || RC=$?
}

problem() {
    why="${why}    - $1"$'\n'
}

expect_status() { # 0 | fail
    if [ "$1" = 0 ] && [ "$RC" -ne 0 ]; then
        problem "exit status $RC, expected 0"
    elif [ "$1" = fail ] && [ "$RC" -eq 0 ]; then
        problem "exit status 0, expected a failure"
    fi
}

expect_out() {
    local text
    for text in "$@"; do
        if ! grep -qF -- "$text" <<<"$OUT"; then
            problem "output lacks: $text"
        fi
    done
}

expect_no_out() {
    if grep -qF -- "$1" <<<"$OUT"; then
        problem "output unexpectedly contains: $1"
    fi
}

# Every failure must be explained: an error line and a hint line, and no raw
# downloader or shell error (curl/wget stderr may only appear as a detail line).
expect_error() {
    expect_status fail
    expect_out "error: " "hint: "
    expect_no_out "command not found"
    if grep -qE '^(curl|wget|bash|tar|mkdir|cp|mv): ' <<<"$OUT"; then
        problem "output has a raw tool error line: $(grep -E '^(curl|wget|bash|tar|mkdir|cp|mv): ' <<<"$OUT" | head -n 1)"
    fi
    expect_out "$@"
}

end() {
    if [ -z "$why" ]; then
        printf 'ok   - %s\n' "$case_name"
        passed=$((passed + 1))
    else
        printf 'FAIL - %s\n' "$case_name"
        printf '%s' "$why"
        printf '    output (exit %s):\n' "$RC"
        printf '%s\n' "$OUT" | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
}

skip() {
    printf 'skip - %s (%s)\n' "$1" "$2"
    skipped=$((skipped + 1))
}

install_wash() {
    run "$BASH_BIN" "$INSTALL" "$@"
}

# --- cases: downloads ------------------------------------------------------------

begin "success: installs v9.9.9 and prints its --version"
install_wash --base-url "$BASE" --version v9.9.9 --install-dir "$tmp/inst"
expect_status 0
expect_out "wash 9.9.9-test" "installed $tmp/inst/wash" "checksum ok"
if [ ! -f "$tmp/inst/wash" ] || [ ! -x "$tmp/inst/wash" ]; then
    problem "$tmp/inst/wash is not an executable file"
fi
[ "$("$tmp/inst/wash" --version 2>&1)" = "wash 9.9.9-test" ] || problem "installed binary does not answer --version"
expect_out "is not on your PATH" "export PATH=\"$tmp/inst:"
end

begin "success: reinstall over an existing binary, dir already on PATH"
PATH="$tmp/inst:$PATH" install_wash --base-url "$BASE" --version=v9.9.9 --install-dir "$tmp/inst"
expect_status 0
expect_out "wash 9.9.9-test"
expect_no_out "is not on your PATH"
for leftover in "$tmp/inst"/.wash.new.*; do
    if [ -e "$leftover" ]; then problem "staging file left behind: $leftover"; fi
done
end

begin "defaults: WASH_RELEASE_URL env, version latest, \$HOME/.local/bin created"
mkdir -p "$tmp/home"
run env HOME="$tmp/home" WASH_RELEASE_URL="$BASE/" "$BASH_BIN" "$INSTALL"
expect_status 0
expect_out "$BASE/latest/$archive_name" "wash 9.9.9-test"
[ -x "$tmp/home/.local/bin/wash" ] || problem "no $tmp/home/.local/bin/wash"
end

begin "env: WASH_VERSION and WASH_INSTALL_DIR"
run env WASH_RELEASE_URL="$BASE" WASH_VERSION=v9.9.9 WASH_INSTALL_DIR="$tmp/inst-env" "$BASH_BIN" "$INSTALL"
expect_status 0
expect_out "/v9.9.9/$archive_name" "wash 9.9.9-test"
[ -x "$tmp/inst-env/wash" ] || problem "no $tmp/inst-env/wash"
end

begin "404: unknown version says there is no such release"
install_wash --base-url "$BASE" --version v0.0.404 --install-dir "$tmp/inst-404"
expect_error "release v0.0.404 has no wash build for $target (HTTP 404)" "--version" "--from-source" \
    "$BASE/v0.0.404/$archive_name"
expect_no_out "curl: (22)"
[ ! -e "$tmp/inst-404/wash" ] || problem "a binary was installed anyway"
end

begin "404: version without a leading v gets a tag hint"
install_wash --base-url "$BASE" --version 9.9.9 --install-dir "$tmp/inst-404"
expect_error "(HTTP 404)" "e.g. v9.9.9"
end

begin "404: release without a checksum file"
install_wash --base-url "$BASE" --version v-nosum --install-dir "$tmp/inst-nosum"
expect_error "has no checksum file" "(HTTP 404)"
[ ! -e "$tmp/inst-nosum/wash" ] || problem "an unverified binary was installed"
end

begin "bad checksum: refuses to install, shows expected and actual"
install_wash --base-url "$BASE" --version v-bad --install-dir "$tmp/inst-bad"
expect_error "checksum mismatch for $archive_name" "expected: $bad_sum" "actual: " "corrupt" "retry"
[ ! -e "$tmp/inst-bad/wash" ] || problem "a binary was installed despite the mismatch"
end

begin "corrupt archive (checksum ok): cannot unpack"
install_wash --base-url "$BASE" --version v-corrupt --install-dir "$tmp/inst-corrupt"
expect_error "could not unpack $archive_name"
end

begin "archive without a top-level wash"
install_wash --base-url "$BASE" --version v-nowash --install-dir "$tmp/inst-nowash"
expect_error "does not contain a top-level"
end

begin "unreachable host: closed port 127.0.0.1:1"
install_wash --base-url "http://127.0.0.1:1" --version v9.9.9 --install-dir "$tmp/inst-down"
expect_error "could not reach 127.0.0.1:1" "connection refused" "WASH_RELEASE_URL" "proxy"
expect_out "detail: curl: (7)"
end

begin "unreachable host via WASH_RELEASE_URL env"
run env WASH_RELEASE_URL="http://127.0.0.1:1/releases" "$BASH_BIN" "$INSTALL" --install-dir "$tmp/inst-down"
expect_error "could not reach 127.0.0.1:1" "http://127.0.0.1:1/releases/latest/$archive_name"
end

if command -v wget >/dev/null 2>&1; then
    begin "wget: success"
    run env WASH_INSTALL_DOWNLOADER=wget "$BASH_BIN" "$INSTALL" --base-url "$BASE" --version v9.9.9 --install-dir "$tmp/inst-wget"
    expect_status 0
    expect_out "wash 9.9.9-test"
    [ -x "$tmp/inst-wget/wash" ] || problem "no $tmp/inst-wget/wash"
    end

    begin "wget: 404"
    run env WASH_INSTALL_DOWNLOADER=wget "$BASH_BIN" "$INSTALL" --base-url "$BASE" --version v0.0.404 --install-dir "$tmp/inst-wget"
    expect_error "has no wash build for $target (HTTP 404)"
    end

    begin "wget: unreachable host"
    run env WASH_INSTALL_DOWNLOADER=wget "$BASH_BIN" "$INSTALL" --base-url "http://127.0.0.1:1" --version v9.9.9 --install-dir "$tmp/inst-wget"
    expect_error "could not reach 127.0.0.1:1" "WASH_RELEASE_URL"
    end
else
    skip "wget cases" "wget is not installed"
fi

# --- cases: install directory ------------------------------------------------------

# A path below a regular file cannot be created, even by root.
begin "unwritable target: install dir below a regular file"
echo "just a file" >"$tmp/afile"
install_wash --base-url "$BASE" --version v9.9.9 --install-dir "$tmp/afile/bin"
expect_error "cannot write to install directory $tmp/afile/bin" "--install-dir" "sudo"
expect_no_out "downloading"
end

begin "unwritable target: install dir is a regular file"
install_wash --base-url "$BASE" --version v9.9.9 --install-dir "$tmp/afile"
expect_error "cannot write to install directory $tmp/afile: it exists and is not a directory"
[ "$(cat "$tmp/afile")" = "just a file" ] || problem "the file was overwritten"
end

# A read-only (555) directory: only meaningful for a non-root user, since root
# ignores permission bits. As root, run that case as `nobody` via setpriv.
if [ "$(id -u)" -ne 0 ]; then
    begin "unwritable target: chmod 555 directory"
    mkdir -p "$tmp/ro"
    chmod 555 "$tmp/ro"
    install_wash --base-url "$BASE" --version v9.9.9 --install-dir "$tmp/ro"
    expect_error "cannot write to install directory $tmp/ro: permission denied" "--install-dir" "sudo"
    [ ! -e "$tmp/ro/wash" ] || problem "a binary was written into the read-only dir"
    end
elif command -v setpriv >/dev/null 2>&1 && setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
    begin "unwritable target: chmod 555 directory (as uid 65534 via setpriv)"
    nb=$(mktemp -d)
    extra_dirs+=("$nb")
    chmod 755 "$nb"
    cp "$INSTALL" "$nb/install.sh"
    chmod 644 "$nb/install.sh"
    mkdir "$nb/ro"
    chown 65534 "$nb/ro"
    chmod 555 "$nb/ro"
    run setpriv --reuid=65534 --regid=65534 --clear-groups -- \
        env HOME="$nb" TMPDIR=/tmp "$BASH_BIN" "$nb/install.sh" --base-url "$BASE" --version v9.9.9 --install-dir "$nb/ro"
    expect_error "cannot write to install directory $nb/ro: permission denied" "--install-dir" "sudo"
    [ ! -e "$nb/ro/wash" ] || problem "a binary was written into the read-only dir"
    end
else
    skip "unwritable target: chmod 555 directory" \
        "running as root without a usable setpriv; root ignores mode 555 (the regular-file cases above cover this)"
fi

# --- cases: platform and target detection ---------------------------------------------

begin "unsupported OS: FreeBSD"
run env WASH_INSTALL_UNAME_S=FreeBSD WASH_INSTALL_UNAME_M=amd64 "$BASH_BIN" "$INSTALL" --base-url "$BASE" --install-dir "$tmp/inst-bsd"
expect_error "unsupported operating system: FreeBSD" "--from-source"
[ ! -e "$tmp/inst-bsd" ] || problem "install dir was created for an unsupported platform"
end

begin "unsupported arch: riscv64 (via --print-target)"
run env WASH_INSTALL_UNAME_S=Linux WASH_INSTALL_UNAME_M=riscv64 "$BASH_BIN" "$INSTALL" --print-target
expect_error "unsupported CPU architecture: riscv64" "--from-source"
end

# print_target NAME EXPECTED ENV...: --print-target under ENV must print EXPECTED.
print_target_case() {
    local name=$1 expected=$2
    shift 2
    begin "$name"
    run env "$@" "$BASH_BIN" "$INSTALL" --print-target
    expect_status 0
    if [ "$OUT" != "$expected" ]; then
        problem "printed '$OUT', expected '$expected'"
    fi
    end
}

print_target_case "target: Darwin arm64" aarch64-apple-darwin \
    WASH_INSTALL_UNAME_S=Darwin WASH_INSTALL_UNAME_M=arm64
print_target_case "target: Darwin x86_64" x86_64-apple-darwin \
    WASH_INSTALL_UNAME_S=Darwin WASH_INSTALL_UNAME_M=x86_64

fakes="$tmp/roots"
# glibc system that also has musl installed (musl-tools): loader and libs exist.
mkdir -p "$fakes/glibc-with-musl/bin" "$fakes/glibc-with-musl/lib" "$fakes/glibc-with-musl/usr/lib/musl/lib"
make_elf "$fakes/glibc-with-musl/bin/sh" 64 le /lib64/ld-linux-x86-64.so.2
touch "$fakes/glibc-with-musl/lib/ld-musl-x86_64.so.1" "$fakes/glibc-with-musl/lib/ld-musl-aarch64.so.1" \
    "$fakes/glibc-with-musl/usr/lib/musl/lib/libc.so"
# Real musl system (Alpine-like).
mkdir -p "$fakes/musl/bin" "$fakes/musl/lib"
make_elf "$fakes/musl/bin/sh" 64 le /lib/ld-musl-x86_64.so.1
touch "$fakes/musl/lib/ld-musl-x86_64.so.1"
mkdir -p "$fakes/musl-arm/bin"
make_elf "$fakes/musl-arm/bin/sh" 64 le /lib/ld-musl-aarch64.so.1
mkdir -p "$fakes/glibc-arm/bin" "$fakes/glibc-arm/lib"
make_elf "$fakes/glibc-arm/bin/sh" 64 le /lib/ld-linux-aarch64.so.1
touch "$fakes/glibc-arm/lib/ld-musl-aarch64.so.1"
# ELF32 big-endian, to exercise the other parser paths.
mkdir -p "$fakes/elf32be-musl/bin"
make_elf "$fakes/elf32be-musl/bin/sh" 32 be /lib/ld-musl-x86_64.so.1
# Static /bin/sh (no PT_INTERP): decided by the ldd fallback.
mkdir -p "$fakes/static/bin" "$fakes/static/lib"
make_elf "$fakes/static/bin/sh" 64 le -
touch "$fakes/static/lib/ld-musl-x86_64.so.1"
printf '#!/bin/sh\necho "musl libc (x86_64)" >&2\necho "Version 1.2.4" >&2\nexit 1\n' >"$tmp/ldd-musl"
printf '#!/bin/sh\necho "ldd (Debian GLIBC 2.36-9+deb12u4) 2.36"\n' >"$tmp/ldd-glibc"
chmod 755 "$tmp/ldd-musl" "$tmp/ldd-glibc"

print_target_case "libc: glibc system with musl files present -> gnu" x86_64-unknown-linux-gnu \
    WASH_INSTALL_UNAME_S=Linux WASH_INSTALL_UNAME_M=x86_64 WASH_INSTALL_ROOT="$fakes/glibc-with-musl"
print_target_case "libc: musl system -> musl" x86_64-unknown-linux-musl \
    WASH_INSTALL_UNAME_S=Linux WASH_INSTALL_UNAME_M=x86_64 WASH_INSTALL_ROOT="$fakes/musl"
print_target_case "libc: aarch64 musl system -> aarch64 musl" aarch64-unknown-linux-musl \
    WASH_INSTALL_UNAME_S=Linux WASH_INSTALL_UNAME_M=aarch64 WASH_INSTALL_ROOT="$fakes/musl-arm"
print_target_case "libc: arm64 glibc system with musl loader present -> gnu" aarch64-unknown-linux-gnu \
    WASH_INSTALL_UNAME_S=Linux WASH_INSTALL_UNAME_M=arm64 WASH_INSTALL_ROOT="$fakes/glibc-arm"
print_target_case "libc: ELF32 big-endian musl interpreter -> musl" x86_64-unknown-linux-musl \
    WASH_INSTALL_UNAME_S=Linux WASH_INSTALL_UNAME_M=amd64 WASH_INSTALL_ROOT="$fakes/elf32be-musl"
print_target_case "libc: static /bin/sh, ldd says musl -> musl" x86_64-unknown-linux-musl \
    WASH_INSTALL_UNAME_S=Linux WASH_INSTALL_UNAME_M=x86_64 WASH_INSTALL_ROOT="$fakes/static" \
    WASH_INSTALL_LDD="$tmp/ldd-musl"
print_target_case "libc: static /bin/sh with musl files, ldd says GLIBC -> gnu" x86_64-unknown-linux-gnu \
    WASH_INSTALL_UNAME_S=Linux WASH_INSTALL_UNAME_M=x86_64 WASH_INSTALL_ROOT="$fakes/static" \
    WASH_INSTALL_LDD="$tmp/ldd-glibc"

# This machine's real /bin/sh, next to fake musl files, must give the same
# answer as the host's own ldd.
host_ldd=$(ldd --version 2>&1 || true)
if [ "$(uname -s)" = Linux ] && [ -f /bin/sh ]; then
    case "$host_ldd" in
        *musl*) host_libc=musl ;;
        *GLIBC* | *GNU* | *glibc*) host_libc=gnu ;;
        *) host_libc="" ;;
    esac
    if [ -n "$host_libc" ]; then
        mkdir -p "$fakes/host/bin" "$fakes/host/lib"
        cp -L /bin/sh "$fakes/host/bin/sh"
        touch "$fakes/host/lib/ld-musl-x86_64.so.1" "$fakes/host/lib/ld-musl-aarch64.so.1"
        print_target_case "libc: this machine's real /bin/sh plus musl files -> $host_libc" \
            "x86_64-unknown-linux-$host_libc" \
            WASH_INSTALL_UNAME_S=Linux WASH_INSTALL_UNAME_M=x86_64 WASH_INSTALL_ROOT="$fakes/host"
    else
        skip "libc: real /bin/sh" "cannot tell this machine's libc from ldd --version"
    fi
else
    skip "libc: real /bin/sh" "not a Linux machine"
fi

# --- cases: missing tools ---------------------------------------------------------------

begin "missing tools: neither curl nor wget"
shim=$(shim_path "$tmp/shim-nodl" curl wget)
run env PATH="$shim" "$BASH_BIN" "$INSTALL" --base-url "$BASE" --version v9.9.9 --install-dir "$tmp/inst-nodl"
expect_error "neither curl nor wget was found" "install one of them"
end

begin "missing tools: neither sha256sum nor shasum"
shim=$(shim_path "$tmp/shim-nosha" sha256sum shasum)
run env PATH="$shim" "$BASH_BIN" "$INSTALL" --base-url "$BASE" --version v9.9.9 --install-dir "$tmp/inst-nosha"
expect_error "neither sha256sum nor shasum was found"
end

begin "missing tools: tar"
shim=$(shim_path "$tmp/shim-notar" tar)
run env PATH="$shim" "$BASH_BIN" "$INSTALL" --base-url "$BASE" --version v9.9.9 --install-dir "$tmp/inst-notar"
expect_error "tar was not found"
end

# --- cases: --from-source -------------------------------------------------------------------

begin "--from-source without cargo on PATH says to install Rust via rustup"
shim=$(shim_path "$tmp/shim-nocargo")
if [ -e "$shim/cargo" ]; then problem "test setup: cargo is in the shim PATH"; fi
run env PATH="$shim" "$BASH_BIN" "$INSTALL" --from-source --install-dir "$tmp/inst-src"
expect_error "cargo was not found on PATH" "rustup" "https://rustup.rs"
[ ! -e "$tmp/inst-src/wash" ] || problem "a binary was installed"
end

# A stand-in cargo that records its arguments and "builds" the stub binary, to
# check the from-source plumbing without a real (slow) build.
shim=$(shim_path "$tmp/shim-fakecargo")
cat >"$shim/cargo" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >"$tmp/cargo-args"
root=""
while [ "\$#" -gt 0 ]; do
    if [ "\$1" = "--root" ]; then root=\$2; fi
    shift
done
[ -n "\$root" ] || exit 3
mkdir -p "\$root/bin"
cp "$tmp/stage/wash" "\$root/bin/wash"
echo "   Installed package wash (fake cargo)" >&2
EOF
chmod 755 "$shim/cargo"

begin "--from-source DIR (stand-in cargo): builds DIR/crates/wash and installs"
mkdir -p "$tmp/checkout/crates/wash"
echo '[package]' >"$tmp/checkout/crates/wash/Cargo.toml"
rm -f "$tmp/cargo-args"
run env PATH="$shim" "$BASH_BIN" "$INSTALL" --from-source "$tmp/checkout" --install-dir "$tmp/inst-src"
expect_status 0
expect_out "wash 9.9.9-test" "installed $tmp/inst-src/wash"
args=$(cat "$tmp/cargo-args" 2>/dev/null || true)
case "$args" in
    "install --locked --path $tmp/checkout/crates/wash --root "*) ;;
    *) problem "cargo was called with: '$args'" ;;
esac
[ -x "$tmp/inst-src/wash" ] || problem "no $tmp/inst-src/wash"
end

repo_root=$(cd "$script_dir/.." && pwd)
if [ -f "$repo_root/crates/wash/Cargo.toml" ]; then
    begin "--from-source without DIR (stand-in cargo): uses the checkout holding install.sh"
    rm -f "$tmp/cargo-args"
    run env PATH="$shim" "$BASH_BIN" "$INSTALL" --from-source --install-dir "$tmp/inst-src3"
    expect_status 0
    expect_out "wash 9.9.9-test" "installed $tmp/inst-src3/wash"
    args=$(cat "$tmp/cargo-args" 2>/dev/null || true)
    case "$args" in
        "install --locked --path $repo_root/crates/wash --root "*) ;;
        *) problem "cargo was called with: '$args'" ;;
    esac
    end
else
    skip "--from-source without DIR" "install.sh is not inside a wash checkout"
fi

begin "--from-source DIR that is not a wash checkout"
run env PATH="$shim" "$BASH_BIN" "$INSTALL" --from-source "$tmp/empty" --install-dir "$tmp/inst-src2"
expect_error "is not a wash source checkout" "--from-source /path/to/checkout"
end

# --- cases: usage -------------------------------------------------------------------------------

begin "--help documents the options"
install_wash --help
expect_status 0
expect_out "--version V" "--base-url URL" "--install-dir DIR" "--from-source [DIR]" "--print-target" \
    "WASH_RELEASE_URL" "WASH_VERSION" "WASH_INSTALL_DIR"
end

begin "unknown option"
install_wash --frobnicate
expect_error "unknown option: --frobnicate" "--help"
end

begin "option missing its value"
install_wash --version
expect_error "--version needs a value"
end

echo
echo "# $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
