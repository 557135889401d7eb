#!/usr/bin/env bash
# Install the `wash` CLI: download a prebuilt release archive (default) or
# build it from source with cargo (--from-source). Run with --help for usage.
#
#   curl -fsSL <url-of-this-script> | bash
#   bash scripts/install.sh --version v1.2.3 --install-dir /usr/local/bin
#
# Test hooks (for scripts/test-install.sh and debugging; not needed otherwise):
#   WASH_INSTALL_UNAME_S      use this instead of `uname -s` (e.g. Linux, Darwin)
#   WASH_INSTALL_UNAME_M      use this instead of `uname -m` (e.g. x86_64, arm64)
#   WASH_INSTALL_ROOT         filesystem root for the libc probe: the ELF
#                             interpreter of $WASH_INSTALL_ROOT/bin/sh (then
#                             .../usr/bin/env) decides glibc vs musl. When set,
#                             the host's `ldd` is not consulted as a fallback
#                             unless WASH_INSTALL_LDD is also set.
#   WASH_INSTALL_LDD          command used for the `ldd --version` fallback probe
#   WASH_INSTALL_DOWNLOADER   force `curl` or `wget` (default: curl if present)
#
# Works with bash 3.2 (macOS) and later.
set -euo pipefail

DEFAULT_BASE_URL="https://github.com/wash-rs/wash/releases/download"
RUSTUP_HINT="install Rust with rustup: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh (see https://rustup.rs), open a new shell, then re-run"

tmp_dir=""

usage() {
    cat <<EOF
Install the wash CLI.

Usage: install.sh [options]

By default downloads <base-url>/<version>/wash-<target>.tar.gz, verifies it
against <base-url>/<version>/wash-<target>.tar.gz.sha256 and installs the
\`wash\` binary it contains.

Options:
  --version V          Release to install (env WASH_VERSION; default: latest).
                       Release tags look like v1.2.3.
  --base-url URL       Where releases are downloaded from (env WASH_RELEASE_URL;
                       default: $DEFAULT_BASE_URL).
  --install-dir DIR    Where to put the binary (env WASH_INSTALL_DIR;
                       default: \$HOME/.local/bin). Created if missing.
  --target TRIPLE      Install the build for TRIPLE instead of the detected one
                       (env WASH_TARGET), e.g. x86_64-unknown-linux-musl.
  --from-source [DIR]  Build with cargo instead of downloading:
                         cargo install --locked --path DIR/crates/wash
                       DIR defaults to the checkout this script lives in.
                       Needs Rust (https://rustup.rs).
  --print-target       Print the detected target triple and exit.
  -h, --help           Show this help and exit.

Supported targets:
  x86_64-unknown-linux-gnu    aarch64-unknown-linux-gnu    x86_64-apple-darwin
  x86_64-unknown-linux-musl   aarch64-unknown-linux-musl   aarch64-apple-darwin

On Linux, glibc vs musl is decided by the C library the system actually runs
(the ELF interpreter of /bin/sh, falling back to \`ldd --version\`), so a
glibc system that merely has musl installed gets the -gnu build.

Needs: curl or wget, tar, and sha256sum or shasum (not needed with --from-source).

Environment (test hooks): WASH_INSTALL_UNAME_S, WASH_INSTALL_UNAME_M,
WASH_INSTALL_ROOT, WASH_INSTALL_LDD, WASH_INSTALL_DOWNLOADER; see the comment
at the top of this script.
EOF
}

say() {
    printf '%s\n' "$*" >&2
}

# die WHAT HINT [DETAIL...]: print `error: WHAT`, any detail lines, then
# `hint: HINT`, and exit 1.
die() {
    local what=$1 hint=$2 line
    shift 2
    printf 'error: %s\n' "$what" >&2
    for line in "$@"; do
        [ -n "$line" ] && printf '  %s\n' "$line" >&2
    done
    printf 'hint: %s\n' "$hint" >&2
    exit 1
}

usage_error() {
    printf 'error: %s\n' "$1" >&2
    printf 'hint: run with --help to see the options\n' >&2
    exit 2
}

have() {
    command -v "$1" >/dev/null 2>&1
}

cleanup() {
    if [ -n "$tmp_dir" ] && [ -d "$tmp_dir" ]; then
        rm -rf "$tmp_dir"
    fi
}

make_tmp_dir() {
    tmp_dir=$(mktemp -d 2>/dev/null || mktemp -d -t wash-install) ||
        die "could not create a temporary directory" \
            "check that \$TMPDIR (${TMPDIR:-/tmp}) exists, is writable and has free space"
}

# --- target detection --------------------------------------------------------

# elf_uint FILE OFFSET SIZE ENDIAN: print the unsigned integer of SIZE bytes at
# OFFSET in FILE (ENDIAN 1 = little, 2 = big). Fails on short reads.
elf_uint() {
    local file=$1 offset=$2 size=$3 endian=$4 raw i value=0
    local -a bytes=()
    raw=$(od -An -tu1 -j "$offset" -N "$size" "$file" 2>/dev/null) || return 1
    read -r -d '' -a bytes <<<"$raw" || true
    [ "${#bytes[@]}" -eq "$size" ] || return 1
    if [ "$endian" -eq 1 ]; then
        i=$((size - 1))
        while [ "$i" -ge 0 ]; do
            value=$((value * 256 + bytes[i]))
            i=$((i - 1))
        done
    else
        i=0
        while [ "$i" -lt "$size" ]; do
            value=$((value * 256 + bytes[i]))
            i=$((i + 1))
        done
    fi
    printf '%s\n' "$value"
}

# elf_interpreter FILE: print the PT_INTERP path of an ELF executable, using
# only od/dd/tr (no readelf or file). Fails for non-ELF or static binaries.
elf_interpreter() {
    local file=$1 magic class endian phoff phentsize phnum i entry ptype off len
    [ -f "$file" ] && [ -r "$file" ] || return 1
    magic=$(od -An -tx1 -N 4 "$file" 2>/dev/null | tr -d ' \n') || return 1
    [ "$magic" = "7f454c46" ] || return 1
    class=$(elf_uint "$file" 4 1 1) || return 1
    endian=$(elf_uint "$file" 5 1 1) || return 1
    case "$endian" in 1 | 2) ;; *) return 1 ;; esac
    case "$class" in
        1) # ELF32
            phoff=$(elf_uint "$file" 28 4 "$endian") || return 1
            phentsize=$(elf_uint "$file" 42 2 "$endian") || return 1
            phnum=$(elf_uint "$file" 44 2 "$endian") || return 1
            ;;
        2) # ELF64
            phoff=$(elf_uint "$file" 32 8 "$endian") || return 1
            phentsize=$(elf_uint "$file" 54 2 "$endian") || return 1
            phnum=$(elf_uint "$file" 56 2 "$endian") || return 1
            ;;
        *) return 1 ;;
    esac
    # Sanity limits: real binaries have a few dozen headers near the start.
    [ "$phoff" -gt 0 ] && [ "$phoff" -lt 1048576 ] || return 1
    [ "$phentsize" -ge 32 ] && [ "$phentsize" -le 256 ] || return 1
    [ "$phnum" -ge 1 ] && [ "$phnum" -le 128 ] || return 1
    i=0
    while [ "$i" -lt "$phnum" ]; do
        entry=$((phoff + i * phentsize))
        ptype=$(elf_uint "$file" "$entry" 4 "$endian") || return 1
        if [ "$ptype" -eq 3 ]; then # PT_INTERP
            if [ "$class" -eq 1 ]; then
                off=$(elf_uint "$file" $((entry + 4)) 4 "$endian") || return 1
                len=$(elf_uint "$file" $((entry + 16)) 4 "$endian") || return 1
            else
                off=$(elf_uint "$file" $((entry + 8)) 8 "$endian") || return 1
                len=$(elf_uint "$file" $((entry + 32)) 8 "$endian") || return 1
            fi
            [ "$off" -gt 0 ] && [ "$len" -gt 0 ] && [ "$len" -le 4096 ] || return 1
            dd if="$file" bs=1 skip="$off" count="$len" 2>/dev/null | tr -d '\000'
            return 0
        fi
        i=$((i + 1))
    done
    return 1
}

# detect_libc: print `musl` or `gnu` for the C library the system runs. The
# presence of musl files (e.g. /lib/ld-musl-*.so.1 from musl-tools on a glibc
# system) is deliberately NOT used as evidence.
detect_libc() {
    local root=${WASH_INSTALL_ROOT:-} probe interp ldd_cmd out
    for probe in "$root/bin/sh" "$root/usr/bin/env"; do
        if interp=$(elf_interpreter "$probe"); then
            case "$interp" in
                *ld-musl*)
                    echo musl
                    return 0
                    ;;
                *ld-linux* | */ld.so* | *ld64.so*)
                    echo gnu
                    return 0
                    ;;
            esac
        fi
    done
    # Fallback: what ldd says about itself (musl's ldd prints "musl libc").
    ldd_cmd=${WASH_INSTALL_LDD:-}
    if [ -z "$ldd_cmd" ] && [ -z "$root" ]; then
        ldd_cmd=ldd
    fi
    if [ -n "$ldd_cmd" ] && have "$ldd_cmd"; then
        out=$("$ldd_cmd" --version 2>&1 || true)
        case "$out" in
            *musl*)
                echo musl
                return 0
                ;;
            *GLIBC* | *GNU* | *glibc*)
                echo gnu
                return 0
                ;;
        esac
    fi
    if [ -z "$root" ] && have getconf && getconf GNU_LIBC_VERSION >/dev/null 2>&1; then
        echo gnu
        return 0
    fi
    # Nothing conclusive: glibc is by far the most common.
    echo gnu
}

detect_target() {
    local os arch translated
    os=${WASH_INSTALL_UNAME_S:-$(uname -s 2>/dev/null || echo unknown)}
    arch=${WASH_INSTALL_UNAME_M:-$(uname -m 2>/dev/null || echo unknown)}
    case "$arch" in
        x86_64 | amd64 | x64) arch=x86_64 ;;
        aarch64 | arm64) arch=aarch64 ;;
        *)
            die "unsupported CPU architecture: $arch (on $os)" \
                "prebuilt wash binaries exist for x86_64 and aarch64 only; build it yourself with --from-source (needs Rust, https://rustup.rs)"
            ;;
    esac
    case "$os" in
        Linux)
            echo "$arch-unknown-linux-$(detect_libc)"
            ;;
        Darwin)
            # An x86_64 shell under Rosetta 2 on Apple silicon: prefer native.
            if [ "$arch" = x86_64 ] && [ -z "${WASH_INSTALL_UNAME_M:-}" ]; then
                translated=$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)
                [ "$translated" = 1 ] && arch=aarch64
            fi
            echo "$arch-apple-darwin"
            ;;
        *)
            die "unsupported operating system: $os ($arch)" \
                "prebuilt wash binaries exist for Linux and macOS only; build it yourself with --from-source (needs Rust, https://rustup.rs)"
            ;;
    esac
}

# --- downloads ---------------------------------------------------------------

url_host() {
    local rest=${1#*://}
    printf '%s\n' "${rest%%/*}"
}

# network_error URL KIND DETAIL: exit with an actionable network error.
network_error() {
    local url=$1 kind=$2 detail=$3 host reason
    host=$(url_host "$url")
    case "$kind" in
        dns) reason="could not resolve host name" ;;
        refused) reason="connection refused or host unreachable" ;;
        timeout) reason="connection timed out" ;;
        tls) reason="secure (TLS) connection failed" ;;
        *) reason="$kind" ;;
    esac
    local hint="check your network connection and proxy settings (https_proxy/http_proxy), or set WASH_RELEASE_URL (or --base-url) to a reachable mirror"
    if [ "$kind" = tls ]; then
        hint="check the system CA certificates and any TLS-intercepting proxy, or set WASH_RELEASE_URL (or --base-url) to a reachable mirror"
    fi
    die "could not reach $host: $reason" "$hint" "url: $url" "detail: $detail"
}

# http_error URL STATUS WHAT: exit with an actionable HTTP error.
http_error() {
    local url=$1 status=$2 what=$3 releases hint
    if [ "$status" = 404 ]; then
        releases="$base_url/"
        case "$base_url" in
            */releases/download) releases="${base_url%/download}" ;;
        esac
        hint="no release $version of wash for $target exists; pick a version listed at $releases with --version vX.Y.Z (or WASH_VERSION), or build it with --from-source"
        case "$version" in
            v* | latest) ;;
            *) hint="$hint (release tags usually start with v, e.g. v$version)" ;;
        esac
        if [ "$what" = checksum ]; then
            die "release $version has no checksum file for $target (HTTP 404)" \
                "the release looks incomplete; pick another version with --version, or build it with --from-source" \
                "url: $url"
        fi
        die "release $version has no wash build for $target (HTTP 404)" "$hint" "url: $url"
    fi
    die "download failed with HTTP status $status" \
        "the download host returned an error; retry later, or set WASH_RELEASE_URL (or --base-url) to a mirror" \
        "url: $url"
}

pick_downloader() {
    local forced=${WASH_INSTALL_DOWNLOADER:-}
    if [ -n "$forced" ]; then
        case "$forced" in
            curl | wget) ;;
            *) usage_error "WASH_INSTALL_DOWNLOADER must be curl or wget, not '$forced'" ;;
        esac
        have "$forced" || die "$forced was not found on PATH (WASH_INSTALL_DOWNLOADER=$forced)" \
            "install $forced or unset WASH_INSTALL_DOWNLOADER"
        echo "$forced"
    elif have curl; then
        echo curl
    elif have wget; then
        echo wget
    else
        die "neither curl nor wget was found on PATH" \
            "install one of them (e.g. apt-get install curl, apk add curl, brew install curl), or use --from-source"
    fi
}

# download URL DEST WHAT: fetch URL into DEST; on failure exit with a message.
download() {
    local url=$1 dest=$2 what=$3 err="$tmp_dir/download.err" rc=0 status="" detail
    local -a extra=()
    if [ "$downloader" = curl ]; then
        case "$url" in
            https://*) extra=(--proto '=https' --tlsv1.2) ;;
        esac
        status=$(curl -fsSL ${extra[@]+"${extra[@]}"} --connect-timeout 20 \
            --speed-time 60 --speed-limit 1 --retry 2 \
            --write-out '%{http_code}' -o "$dest" "$url" 2>"$err") || rc=$?
        [ "$rc" -eq 0 ] && return 0
        detail=$(tail -n 1 "$err" 2>/dev/null || true)
        case "$status" in
            [1-9][0-9][0-9])
                [ "$status" -ge 400 ] && http_error "$url" "$status" "$what"
                ;;
        esac
        case "$rc" in
            5 | 6) network_error "$url" dns "$detail" ;;
            7) network_error "$url" refused "$detail" ;;
            28) network_error "$url" timeout "$detail" ;;
            35 | 51 | 53 | 54 | 58 | 59 | 60 | 64 | 66 | 77 | 80 | 82 | 83 | 90 | 91)
                network_error "$url" tls "$detail"
                ;;
            22)
                status=$(sed -n 's/.*returned error: \([0-9][0-9][0-9]\).*/\1/p' "$err" | tail -n 1)
                [ -n "$status" ] && http_error "$url" "$status" "$what"
                ;;
            23)
                die "could not write the download to $dest" \
                    "check free space and permissions of \$TMPDIR (${TMPDIR:-/tmp})" "detail: $detail"
                ;;
        esac
        network_error "$url" "download failed (curl exit code $rc)" "$detail"
    else
        # GNU wget or BusyBox wget. No -q: the status lines are parsed below.
        if wget --version 2>/dev/null | grep -q 'GNU Wget'; then
            extra=(-t 2)
        fi
        wget ${extra[@]+"${extra[@]}"} -T 30 -O "$dest" "$url" 2>"$err" || rc=$?
        [ "$rc" -eq 0 ] && return 0
        status=$(sed -n \
            -e 's/.*ERROR \([0-9][0-9][0-9]\).*/\1/p' \
            -e 's/.*HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' \
            -e 's/.*awaiting response\.\.\. \([0-9][0-9][0-9]\).*/\1/p' \
            "$err" | tail -n 1)
        if [ -n "$status" ] && [ "$status" -ge 400 ]; then
            http_error "$url" "$status" "$what"
        fi
        detail=$(grep -iE 'error|fail|unable|refused|timed out|bad address|resolv|unreachable' "$err" | tail -n 1 || true)
        case "$detail" in
            *[Uu]nable\ to\ resolve* | *[Bb]ad\ address* | *[Nn]ame\ or\ service* | *resolv*)
                network_error "$url" dns "$detail"
                ;;
            *[Rr]efused* | *[Uu]nreachable*) network_error "$url" refused "$detail" ;;
            *[Tt]imed\ out*) network_error "$url" timeout "$detail" ;;
            *SSL* | *TLS* | *certificate*) network_error "$url" tls "$detail" ;;
        esac
        network_error "$url" "download failed (wget exit code $rc)" "$detail"
    fi
}

sha256_of() {
    if have sha256sum; then
        sha256sum "$1" | cut -d ' ' -f 1
    else
        shasum -a 256 "$1" | cut -d ' ' -f 1
    fi
}

# --- install -----------------------------------------------------------------

install_dir_error() {
    die "cannot write to install directory $install_dir: $1" \
        "choose a directory you can write to with --install-dir DIR (or WASH_INSTALL_DIR), or re-run with sudo to install into $install_dir" \
        ${2+"$2"}
}

prepare_install_dir() {
    local err
    if [ -e "$install_dir" ] && [ ! -d "$install_dir" ]; then
        install_dir_error "it exists and is not a directory"
    fi
    if [ ! -d "$install_dir" ]; then
        if ! err=$(mkdir -p "$install_dir" 2>&1); then
            install_dir_error "it could not be created" "detail: ${err#mkdir: }"
        fi
    fi
    if [ ! -w "$install_dir" ] || [ ! -x "$install_dir" ]; then
        install_dir_error "permission denied (no write permission)"
    fi
}

# install_binary SRC: copy SRC to $install_dir/wash (atomically replacing any
# existing one), run `wash --version` and tell the user about PATH.
install_binary() {
    local src=$1 dest="$install_dir/wash" staged="$install_dir/.wash.new.$$" err out
    if ! err=$(cp "$src" "$staged" 2>&1); then
        rm -f "$staged" 2>/dev/null || true
        install_dir_error "copying the binary failed" "detail: ${err#cp: }"
    fi
    chmod 755 "$staged" 2>/dev/null || true
    if ! err=$(mv -f "$staged" "$dest" 2>&1); then
        rm -f "$staged" 2>/dev/null || true
        install_dir_error "replacing $dest failed" "detail: ${err#mv: }"
    fi
    if ! out=$("$dest" --version 2>&1); then
        die "installed $dest, but \`$dest --version\` failed" \
            "the binary may not suit this system (target $target); try another build with --target TRIPLE (e.g. a -musl one) or build it with --from-source" \
            "output: $(printf '%s' "$out" | head -n 3)"
    fi
    printf 'installed %s\n' "$dest"
    printf '%s\n' "$out"
    case ":${PATH:-}:" in
        *":$install_dir:"* | *":$install_dir/:"*) ;;
        *)
            printf '\n%s is not on your PATH. To use wash, add it, e.g.:\n' "$install_dir"
            # shellcheck disable=SC2016 # print a literal $PATH for the user
            printf '  export PATH="%s:$PATH"\n' "$install_dir"
            printf 'and put that line in your shell profile (~/.profile, ~/.bashrc or ~/.zshrc) to keep it.\n'
            ;;
    esac
}

install_release() {
    local archive_name url sum_url archive sums expected actual err
    target=${target:-$(detect_target)}
    case "$target" in
        x86_64-unknown-linux-gnu | x86_64-unknown-linux-musl | aarch64-unknown-linux-gnu | \
            aarch64-unknown-linux-musl | x86_64-apple-darwin | aarch64-apple-darwin) ;;
        *)
            die "unsupported target: $target" \
                "use one of the targets listed in --help, or build it with --from-source"
            ;;
    esac

    downloader=$(pick_downloader)
    have tar || die "tar was not found on PATH" \
        "install tar (e.g. apt-get install tar, apk add tar), or use --from-source"
    have sha256sum || have shasum || die "neither sha256sum nor shasum was found on PATH (needed to verify the download)" \
        "install coreutils (sha256sum) or perl (shasum), e.g. apt-get install coreutils, or use --from-source"

    prepare_install_dir
    make_tmp_dir

    archive_name="wash-$target.tar.gz"
    url="$base_url/$version/$archive_name"
    sum_url="$url.sha256"
    archive="$tmp_dir/$archive_name"
    sums="$tmp_dir/$archive_name.sha256"

    say "downloading wash $version for $target"
    say "  from $url"
    download "$url" "$archive" archive
    download "$sum_url" "$sums" checksum

    expected=$(sed -n '1s/^[[:space:]]*\([^[:space:]]*\).*/\1/p' "$sums" | tr 'A-F' 'a-f')
    case "$expected" in
        "" | *[!0-9a-f]*)
            die "checksum file is malformed (expected a hex sha256 as its first field)" \
                "the release may be broken or the download was intercepted (e.g. a captive portal); retry, or pick another version with --version" \
                "url: $sum_url"
            ;;
    esac
    [ "${#expected}" -eq 64 ] || die "checksum file is malformed (first field is not a 64-digit sha256)" \
        "the release may be broken; retry, or pick another version with --version" "url: $sum_url"
    actual=$(sha256_of "$archive")
    if [ "$actual" != "$expected" ]; then
        die "checksum mismatch for $archive_name" \
            "the download may be corrupt or incomplete; retry the install, and if it keeps failing report it (the release may be broken)" \
            "expected: $expected" "actual:   $actual" "url: $url"
    fi
    say "checksum ok (sha256 $actual)"

    mkdir "$tmp_dir/unpack"
    if ! err=$(tar -xzf "$archive" -C "$tmp_dir/unpack" 2>&1); then
        die "could not unpack $archive_name" \
            "the archive may be corrupt; retry, pick another version with --version, or use --from-source" \
            "detail: $(printf '%s' "$err" | head -n 1)"
    fi
    if [ ! -f "$tmp_dir/unpack/wash" ]; then
        die "$archive_name does not contain a top-level \`wash\` binary" \
            "the release is packaged wrongly; pick another version with --version, or use --from-source"
    fi
    install_binary "$tmp_dir/unpack/wash"
}

install_from_source() {
    local src=$source_dir script_dir cargo_log
    have cargo || die "cargo was not found on PATH (needed for --from-source)" "$RUSTUP_HINT"
    if [ -z "$src" ]; then
        script_dir=""
        if [ -f "${BASH_SOURCE[0]:-}" ]; then
            script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
        fi
        if [ -n "$script_dir" ] && [ -d "$script_dir/../crates/wash" ]; then
            src=$(cd "$script_dir/.." && pwd)
        else
            die "no source directory given and this script is not inside a wash checkout" \
                "clone the wash repository and run: install.sh --from-source /path/to/checkout"
        fi
    fi
    if [ ! -f "$src/crates/wash/Cargo.toml" ]; then
        die "$src is not a wash source checkout (no crates/wash/Cargo.toml)" \
            "pass the top directory of a wash checkout: --from-source /path/to/checkout"
    fi
    prepare_install_dir
    make_tmp_dir
    target="(built from source)"
    say "building wash from $src with cargo (this can take a few minutes)"
    cargo_log="$tmp_dir/cargo.log"
    if ! cargo install --locked --path "$src/crates/wash" --root "$tmp_dir/cargo-root" 2>&1 | tee "$cargo_log" >&2; then
        die "cargo install failed (see the output above)" \
            "make sure your Rust toolchain is current (rustup update) and that $src builds with \`cargo build -p wash\`" \
            "detail: $(grep -m 1 '^error' "$cargo_log" || tail -n 1 "$cargo_log")"
    fi
    [ -f "$tmp_dir/cargo-root/bin/wash" ] || die "cargo install finished but produced no wash binary" \
        "check that $src/crates/wash builds a binary named wash"
    install_binary "$tmp_dir/cargo-root/bin/wash"
}

# --- main --------------------------------------------------------------------

base_url=${WASH_RELEASE_URL:-$DEFAULT_BASE_URL}
version=${WASH_VERSION:-latest}
install_dir=${WASH_INSTALL_DIR:-}
target=${WASH_TARGET:-}
source_dir=""
from_source=0
print_target=0
downloader=""

need_value() {
    if [ "$2" -lt 2 ] || [ -z "$3" ]; then
        usage_error "$1 needs a value"
    fi
}

while [ "$#" -gt 0 ]; do
    case "$1" in
        -h | --help)
            usage
            exit 0
            ;;
        --version)
            need_value "$1" "$#" "${2:-}"
            version=$2
            shift 2
            ;;
        --version=*) version=${1#*=} && shift ;;
        --base-url)
            need_value "$1" "$#" "${2:-}"
            base_url=$2
            shift 2
            ;;
        --base-url=*) base_url=${1#*=} && shift ;;
        --install-dir)
            need_value "$1" "$#" "${2:-}"
            install_dir=$2
            shift 2
            ;;
        --install-dir=*) install_dir=${1#*=} && shift ;;
        --target)
            need_value "$1" "$#" "${2:-}"
            target=$2
            shift 2
            ;;
        --target=*) target=${1#*=} && shift ;;
        --from-source)
            from_source=1
            shift
            if [ "$#" -gt 0 ] && [ -n "$1" ] && [ "${1#-}" = "$1" ]; then
                source_dir=$1
                shift
            fi
            ;;
        --from-source=*)
            from_source=1
            source_dir=${1#*=}
            shift
            ;;
        --print-target)
            print_target=1
            shift
            ;;
        *) usage_error "unknown option: $1" ;;
    esac
done

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$print_target" -eq 1 ]; then
    detect_target
    exit 0
fi

[ -n "$version" ] || usage_error "the version must not be empty"
[ -n "$base_url" ] || usage_error "the base URL must not be empty"
base_url=${base_url%/}

if [ -z "$install_dir" ]; then
    [ -n "${HOME:-}" ] || die "HOME is not set, so the default install directory is unknown" \
        "pass --install-dir DIR (or set WASH_INSTALL_DIR)"
    install_dir="$HOME/.local/bin"
fi
case "$install_dir" in
    \~) install_dir=${HOME:-/} ;;
    \~/*) install_dir="${HOME:-}/${install_dir#\~/}" ;;
esac
case "$install_dir" in
    /*) ;;
    *) install_dir="$PWD/$install_dir" ;;
esac
install_dir=${install_dir%/}
[ -n "$install_dir" ] || install_dir=/

if [ "$from_source" -eq 1 ]; then
    install_from_source
else
    install_release
fi
