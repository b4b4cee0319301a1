#!/usr/bin/env bash
# The reference AS and node oidc-provider 9.13.3 (with CIMD) side by side; writes BENCHMARKS.md.
#
# Usage, from anywhere in the repository:
#   scripts/bench/side-by-side.sh [--no-criterion] [--out FILE] [-- DRIVER-FLAGS...]
#
#   --no-criterion   skip `cargo bench -p cimd-benches` (its estimates are then not reported)
#   --out FILE       where to write the report (default: BENCHMARKS.md at the repository root)
#   DRIVER-FLAGS     passed to the side-by-side driver, e.g. `-- --seconds 2 --runs 1` for a
#                    quick look (see `cargo run -p cimd-benches --bin side-by-side -- --help`)
#
# What it does:
#   1. builds reference-as and the cimd-benches bins in release mode;
#   2. runs the criterion benches (cache hit, miss over HTTPS, coalescing; about 1 minute);
#   3. installs oidc-provider@9.13.3 with npm into a temporary folder, and Node 22 from npm too
#      when the system node is older; if that fails, the report says why and still has the
#      reference AS's half;
#   4. runs the driver (target/release/side-by-side) pinned to the second core; it starts each
#      server pinned to the first core (the same budget for both, one server at a time), drives
#      the loads, runs the cache-memory bin, and writes the report.
# With the defaults (10 s of warm-up per scenario, then 5 runs of 5 s per measurement) step 4
# takes about 10 minutes. Loopback only.
# Too slow for CI, and not part of .ci/run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
INVOCATION="scripts/bench/side-by-side.sh"
if [ $# -gt 0 ]; then INVOCATION+="$(printf " %q" "$@")"; fi
OIDC_PROVIDER_VERSION=9.13.3
NODE_MAJOR_WANTED=22

criterion=1
out="$ROOT/BENCHMARKS.md"
driver_flags=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-criterion) criterion=0 ;;
        --out) out="$(realpath -m "$2")"; shift ;;
        --) shift; driver_flags=("$@"); break ;;
        *) echo "side-by-side.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
    shift
done

for tool in cargo npm taskset; do
    command -v "$tool" >/dev/null || { echo "side-by-side.sh: $tool is required" >&2; exit 2; }
done

# Servers on the first core, the driver on the second; on a one-core machine both share it.
if [ "$(nproc --all)" -ge 2 ]; then
    server_cpus=0
    driver_cpus=1
else
    server_cpus=0
    driver_cpus=0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/cimd-side-by-side.XXXXXX")"
trap 'rm -rf "$work"' EXIT

target="${CARGO_TARGET_DIR:-$ROOT/target}"

echo "== building release binaries"
cargo build --release -p reference-as -p cimd-benches --bins

criterion_flags=()
if [ "$criterion" = 1 ]; then
    echo "== criterion benches"
    timeout 900 cargo bench -p cimd-benches --bench metadata_cache
    criterion_flags=(--criterion "$target/criterion")
fi

echo "== installing oidc-provider@$OIDC_PROVIDER_VERSION into $work"
node_bin=""
# Each step reports failure instead of stopping the script: the reference AS is measured anyway.
setup_node() {
    (cd "$work" && npm init -y >/dev/null \
        && npm install --no-audit --no-fund --loglevel=error "oidc-provider@$OIDC_PROVIDER_VERSION") \
        || return 1
    local major=0
    if command -v node >/dev/null; then
        major="$(node -p 'process.versions.node.split(".")[0]')" || major=0
    fi
    if [ "$major" -ge "$NODE_MAJOR_WANTED" ]; then
        node_bin="$(command -v node)"
    else
        echo "system node is v$major; installing node@$NODE_MAJOR_WANTED from npm"
        (cd "$work" && npm install --no-audit --no-fund --loglevel=error "node@$NODE_MAJOR_WANTED") \
            || return 1
        node_bin="$work/node_modules/.bin/node"
    fi
    "$node_bin" --version || return 1
    # The server script must sit next to node_modules for `import 'oidc-provider'` to resolve.
    cp scripts/bench/oidc-provider-server.mjs "$work/" || return 1
}
node_flags=()
if setup_node >"$work/node-setup.log" 2>&1; then
    node_flags=(--node "$node_bin" --node-server "$work/oidc-provider-server.mjs")
    cat "$work/node-setup.log"
else
    cat "$work/node-setup.log" >&2
    node_flags=(--node-unavailable "installing oidc-provider@$OIDC_PROVIDER_VERSION or node@$NODE_MAJOR_WANTED failed:
$(tail -n 20 "$work/node-setup.log")")
fi

echo "== side by side (servers on cpu $server_cpus, driver on cpu $driver_cpus)"
timeout 3600 taskset -c "$driver_cpus" "$target/release/side-by-side" \
    --reference-as "$target/release/reference-as" \
    --server-cpus "$server_cpus" \
    --cache-memory "$target/release/cache-memory" \
    "${node_flags[@]}" \
    "${criterion_flags[@]}" \
    --command "$INVOCATION" \
    --out "$out" \
    "${driver_flags[@]}"
