#!/usr/bin/env python3
"""psycopg_pool's AsyncConnectionPool, driven over stdin/stdout by the chaos scenarios.

tests/chaos_peers.rs starts this worker and runs the same scenarios as tests/chaos.rs through
it: the Rust side injects the faults and keeps the clock; this side only checks connections out,
runs queries and returns them, each request in an asyncio task of its own.

Protocol: one tab-separated line per request, `<id>\t<verb>\t<args...>`; one reply line per
request, `<id>\tok[\t<value>]` or `<id>\tfail\t<pool_timeout 0|1>\t<has_cause 0|1>\t<label>`.
  open <conninfo> <min_size> <max_size> <timeout_s>   open(wait=True, timeout=10)
  get                                                 getconn(); the connection is kept as <id>
  query <conn_id> <abandon_ms|-> <sql>                execute, given up after abandon_ms
  put <conn_id>                                       putconn (reply ok)
  close                                               close()
  size                                                get_stats()["pool_size"]

Connections run in autocommit, so a returned connection is idle (no rollback on return): the
simple-query behaviour of the Rust pools. Every other setting is psycopg_pool's default
(reconnect backoff 1 s doubling, ±10% jitter; reconnect_timeout 300 s; num_workers 3).
"""

import asyncio
import sys

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

pool = None
conns = {}


def reply(*fields):
    sys.stdout.write("\t".join(str(f) for f in fields) + "\n")
    sys.stdout.flush()


def short(text):
    return str(text).splitlines()[0][:70] if str(text) else type(text).__name__


def failure(rid, e):
    if isinstance(e, PoolTimeout):
        cause = e.__cause__
        label = f"pool timeout, cause: {short(cause)}" if cause else "pool timeout, no cause"
        return reply(rid, "fail", 1, int(cause is not None), label)
    if isinstance(e, PoolClosed):
        return reply(rid, "fail", 0, 0, "pool closed")
    if isinstance(e, asyncio.TimeoutError):
        return reply(rid, "fail", 0, 0, "abandoned (request timeout)")
    sqlstate = getattr(e, "sqlstate", None)
    if sqlstate:
        return reply(rid, "fail", 0, 0, f"server {sqlstate}")
    if isinstance(e, psycopg.OperationalError):
        return reply(rid, "fail", 0, 0, f"connection error: {short(e)}")
    return reply(rid, "fail", 0, 0, f"{type(e).__name__}: {short(e)}")


async def handle(rid, verb, args):
    global pool
    try:
        if verb == "open":
            conninfo, min_size, max_size, timeout = args
            pool = AsyncConnectionPool(
                conninfo,
                min_size=int(min_size),
                max_size=int(max_size),
                timeout=float(timeout),
                kwargs={"autocommit": True},
                open=False,
            )
            await pool.open(wait=True, timeout=10)
            reply(rid, "ok")
        elif verb == "get":
            conns[rid] = await pool.getconn()
            reply(rid, "ok")
        elif verb == "query":
            conn_id, abandon, sql = args
            work = conns[conn_id].execute(sql)
            if abandon == "-":
                await work
            else:
                await asyncio.wait_for(work, int(abandon) / 1000)
            reply(rid, "ok")
        elif verb == "put":
            conn = conns.pop(args[0], None)
            if conn is not None:
                await pool.putconn(conn)
            reply(rid, "ok")
        elif verb == "close":
            await pool.close()
            reply(rid, "ok")
        elif verb == "size":
            reply(rid, "ok", pool.get_stats().get("pool_size", 0))
        else:
            reply(rid, "fail", 0, 0, f"unknown verb {verb}")
    except Exception as e:  # every failure goes back to the scenario as a label
        failure(rid, e)


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks = set()
    while line := await reader.readline():
        rid, verb, *args = line.decode().rstrip("\n").split("\t")
        task = asyncio.create_task(handle(rid, verb, args))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


if __name__ == "__main__":
    asyncio.run(main())
