#!/usr/bin/env bash
# Runs the end-to-end benchmarks (SELECT 1 through each pool, pgbench ceiling, connect rates,
# memory per idle connection) and the psycopg_pool anchor against one throwaway cluster, and
# prints markdown tables. Needs PostgreSQL's server binaries and pgbench (WIREPOOL_PG_BIN picks
# a directory); Python 3 for the anchor (skipped, with a note, if psycopg cannot be installed).
#
# Usage: scripts/bench/end_to_end.sh            (about 4 minutes on 2 cores)
#        WIREPOOL_BENCH_QUICK=1 scripts/bench/end_to_end.sh   (smoke run, about 30 s)
# Other knobs are documented at the top of benches/end_to_end.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."

# psycopg from PyPI in a private virtualenv, so the system Python is left alone.
# Without it (the note says why), the psycopg_pool anchor is skipped.
if [ -z "${WIREPOOL_BENCH_PYTHON:-}" ] && py="$(scripts/psycopg_python.sh)" && [ -n "$py" ]; then
    export WIREPOOL_BENCH_PYTHON="$py"
fi

exec cargo bench --bench end_to_end
