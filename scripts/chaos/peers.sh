#!/usr/bin/env bash
# Runs the chaos scenarios against the peers, for docs/reliability.md: deadpool-postgres (in
# process) and psycopg_pool (scripts/chaos/psycopg_pool_worker.py), one scenario at a time, and
# wirepool's own (ignored ones included) for the same run. Needs PostgreSQL's server binaries
# (WIREPOOL_PG_BIN picks a directory) and Python 3 with psycopg, installed here from PyPI into a
# private virtualenv. About 6 minutes.
#
# Usage: scripts/chaos/peers.sh [TEST-NAME-FILTER]   e.g. `scripts/chaos/peers.sh psycopg::`
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${WIREPOOL_BENCH_VENV:-${TMPDIR:-/tmp}/wirepool-bench-venv}"
if [ -z "${WIREPOOL_CHAOS_PYTHON:-}" ]; then
    if { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } &&
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            'psycopg[binary]' psycopg_pool; then
        export WIREPOOL_CHAOS_PYTHON="$venv/bin/python"
    else
        echo "note: could not install psycopg; the psycopg_pool scenarios will fail to open" >&2
    fi
fi

filter="${1:-}"
cargo test --test chaos_peers -- --ignored --nocapture --test-threads=1 $filter 2>&1 |
    grep -E '^chaos |^test '
cargo test --test chaos -- --include-ignored --nocapture --test-threads=1 $filter 2>&1 |
    grep -E '^chaos |^test '
