#!/usr/bin/env bash
# Prints the path of a Python 3 that has psycopg and psycopg_pool, installing them from PyPI into
# a private virtualenv (WIREPOOL_BENCH_VENV, default $TMPDIR/wirepool-bench-venv) so the system
# Python is left alone. Prints nothing, with a note on stderr, if that fails.
set -uo pipefail
venv="${WIREPOOL_BENCH_VENV:-${TMPDIR:-/tmp}/wirepool-bench-venv}"
if { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        'psycopg[binary]' psycopg_pool; then
    echo "$venv/bin/python"
else
    echo "note: could not install psycopg into $venv" >&2
fi
