#!/usr/bin/env bash
# Runs the chaos scenarios against the peers, for docs/reliability.md: deadpool-postgres (in
# process) and psycopg_pool (scripts/chaos/psycopg_pool_worker.py), one scenario at a time, and
# wirepool's own (ignored ones included) for the same run. Needs PostgreSQL's server binaries
# (WIREPOOL_PG_BIN picks a directory) and Python 3 with psycopg, installed here from PyPI into a
# private virtualenv. About 12 minutes. The wirepool tests ignored for a bound the pool misses
# fail here, with their figures, as they should.
#
# Usage: scripts/chaos/peers.sh [TEST-NAME-FILTER]   e.g. `scripts/chaos/peers.sh psycopg::`
set -euo pipefail
cd "$(dirname "$0")/../.."

# Without it (the note says why), the psycopg_pool scenarios fail to open.
if [ -z "${WIREPOOL_CHAOS_PYTHON:-}" ] && py="$(scripts/psycopg_python.sh)" && [ -n "$py" ]; then
    export WIREPOOL_CHAOS_PYTHON="$py"
fi

filter="${1:-}"
cargo test --test chaos_peers -- --ignored --nocapture --test-threads=1 $filter 2>&1 |
    grep -E '^chaos |^test '
cargo test --test chaos -- --include-ignored --nocapture --test-threads=1 $filter 2>&1 |
    grep -E '^chaos |^test '
