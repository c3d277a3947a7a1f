#!/usr/bin/env python3
"""The Python anchor for benches/end_to_end.rs: the same SELECT 1 workload through psycopg_pool.

`ConnectionPool` is driven by T threads and `AsyncConnectionPool` by T asyncio tasks, with the
shapes of the Rust bench (16 on a pool of 5, 64 on 16). Queries go through `ClientCursor`; a
query without parameters is sent with PQsendQuery, the simple-query protocol, as the Rust
contenders do. Client CPU
per query is this process's user+system time (all threads) over the timed window.

Prints one markdown table. Run by `scripts/bench/end_to_end.sh` (which installs psycopg) or by
hand: `psycopg_pool_bench.py --conninfo "host=127.0.0.1 port=5432 user=postgres dbname=postgres"`.
benches/blocking.rs runs it with `--shapes 16x5,1x1 --sync-only --tsv`: only `ConnectionPool`,
one `tasks size queries/s CPU-µs/query` line per run, for its own table.
"""

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time

import psycopg
import psycopg_pool
from psycopg_pool import AsyncConnectionPool, ConnectionPool

SHAPES = [(16, 5), (64, 16)]
SQL = "SELECT 1"


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def run_threads(conninfo, tasks, size, seconds):
    """T threads loop pool.connection() -> SELECT 1; returns (queries/s, CPU µs/query)."""
    with ConnectionPool(
        conninfo,
        min_size=size,
        max_size=size,
        kwargs={"cursor_factory": psycopg.ClientCursor},
        open=True,
    ) as pool:
        pool.wait(timeout=30)
        phase = {"measure": False, "stop": False}
        counts = [0] * tasks

        def worker(i):
            while not phase["stop"]:
                with pool.connection() as conn:
                    conn.execute(SQL).fetchall()
                if phase["measure"]:
                    counts[i] += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(tasks)]
        for t in threads:
            t.start()
        time.sleep(seconds / 5)
        cpu0, t0 = cpu_seconds(), time.monotonic()
        phase["measure"] = True
        time.sleep(seconds)
        phase["stop"] = True
        elapsed, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
        for t in threads:
            t.join()
    done = max(sum(counts), 1)
    return done / elapsed, cpu / done * 1e6


async def run_async(conninfo, tasks, size, seconds):
    """T asyncio tasks loop pool.connection() -> SELECT 1."""
    async with AsyncConnectionPool(
        conninfo,
        min_size=size,
        max_size=size,
        kwargs={"cursor_factory": psycopg.AsyncClientCursor},
        open=False,
    ) as pool:
        await pool.wait(timeout=30)
        phase = {"measure": False, "stop": False}
        counts = [0] * tasks

        async def worker(i):
            while not phase["stop"]:
                async with pool.connection() as conn:
                    await (await conn.execute(SQL)).fetchall()
                if phase["measure"]:
                    counts[i] += 1

        workers = [asyncio.create_task(worker(i)) for i in range(tasks)]
        await asyncio.sleep(seconds / 5)
        cpu0, t0 = cpu_seconds(), time.monotonic()
        phase["measure"] = True
        await asyncio.sleep(seconds)
        phase["stop"] = True
        elapsed, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
        await asyncio.gather(*workers)
    done = max(sum(counts), 1)
    return done / elapsed, cpu / done * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conninfo", required=True)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shapes", help="threads x pool size, e.g. 16x5,1x1 (default: 16x5,64x16)")
    ap.add_argument("--sync-only", action="store_true", help="ConnectionPool only")
    ap.add_argument("--tsv", action="store_true", help="one line per run, no table")
    args = ap.parse_args()
    shapes = SHAPES
    if args.shapes:
        shapes = [tuple(int(n) for n in s.split("x")) for s in args.shapes.split(",")]
    if args.sync_only:
        for _ in range(max(args.rounds, 1)):
            for tasks, size in shapes:
                qps, cpu = run_threads(args.conninfo, tasks, size, args.seconds)
                if args.tsv:
                    print(f"{tasks}\t{size}\t{qps:.1f}\t{cpu:.2f}", flush=True)
                else:
                    print(f"| {tasks} / {size} | {qps:.0f} | {cpu:.1f} |", flush=True)
        return
    rows = []
    for tasks, size in shapes:
        sync_runs, async_runs = [], []
        for _ in range(max(args.rounds, 1)):
            sync_runs.append(run_threads(args.conninfo, tasks, size, args.seconds))
            async_runs.append(asyncio.run(run_async(args.conninfo, tasks, size, args.seconds)))
        med = lambda runs, k: statistics.median(r[k] for r in runs)
        rows.append(
            f"| {tasks} / {size} | {med(sync_runs, 0):.0f} | {med(sync_runs, 1):.1f} "
            f"| {med(async_runs, 0):.0f} | {med(async_runs, 1):.1f} |"
        )
    print(
        f"## psycopg_pool {psycopg_pool.__version__} (psycopg {psycopg.__version__}), Python "
        f"{sys.version.split()[0]}: SELECT 1 (simple protocol), median of {args.rounds} rounds\n"
    )
    print("| T / pool | ConnectionPool (threads) q/s | CPU µs/q | AsyncConnectionPool q/s | CPU µs/q |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(r)
    print()


if __name__ == "__main__":
    main()
