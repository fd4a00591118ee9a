"""Archive benchmark: can the archiver keep up with a sustained 5,000 jobs/s, how far behind is it
(lag p99), how many bytes of Redis a finished task holds once the tail expired, and the p99 of
the dashboard's task-list query on 1,000,000 archived tasks. SQLite and PostgreSQL, same run.

Starts its own private Valkey; PostgreSQL is the machine's server on 127.0.0.1:5432, in a
database of its own (`hiveq_bench_<random>`, dropped at the end). Prints min-median-max over
--runs runs with the load average, and ratios to what the same run measured.
Run: .venv/bin/python bench/archive.py [--runs 3] [--seconds 8] [--rate 5000] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, text

from hiveq.archive import db, query
from hiveq.archive.archiver import Archiver
from hiveq.archive.query import TaskFilter
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue import archiving, maintain
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim
from hiveq.queue.purge import purge_namespace
from hiveq.server import ServerProcess, find_server_binary
from hiveq.settings import Settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TICK_S = 0.1


def one_job(i: int) -> TaskSubmission:
    return TaskSubmission(
        description=f"bench task {i}", subtasks=[SubtaskSpec(id="s", agent="noop", input={"i": i})]
    )


def spread(xs: Sequence[float], fmt: str = "{:,.0f}") -> str:
    s = sorted(xs)
    return f"{fmt.format(s[0])} / {fmt.format(statistics.median(s))} / {fmt.format(s[-1])}"


def ratio(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The median of the runs' ratios (each pair measured in the same run)."""
    return statistics.median(x / y for x, y in zip(xs, ys, strict=True))


def p99(xs: Sequence[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * 0.99))] if s else 0.0


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the load: real scripts, in bulk ---------------------------------------------------------------
async def run_jobs(b: Broker, first: int, count: int) -> int:
    """`count` one-job tasks through the real scripts, in bulk: enqueue (500 tasks per call), then
    claim and complete them 250 at a time, as a producer and workers would. Returns jobs done."""
    for at in range(first, first + count, 500):
        await enqueue(b, [one_job(i) for i in range(at, min(at + 500, first + count))])
    done = 0
    while got := await claim(b, "bench-worker", ["noop"], 250):
        await complete(b, [Completion(j.lease, {"ok": True}) for j in got])
        done += len(got)
    return done


def producer(redis_url: str, app: str, rate: int, seconds: float, out: Any) -> None:
    """In its own process (so the archiver's process is the archiver alone): jobs at `rate`/s in
    ticks of TICK_S, each tick's jobs in bulk (run_jobs), while sampling the archive's lag once
    per tick. Puts (jobs done, rate reached, lag samples, ticks that overran) on `out`."""
    out.put(asyncio.run(_produce(redis_url, app, rate, seconds)))


async def _produce(
    redis_url: str, app: str, rate: int, seconds: float
) -> tuple[int, float, list[float], int, int]:
    b = await Broker.connect(Settings(redis_url=redis_url, app=app, env="bench"), role="bench-load")
    b._cap_read_at = float("-inf")  # see the archive at once (a running producer does within 2 s)
    per_tick = max(1, int(rate * TICK_S))
    done, n, late, ticks, lags = 0, 0, 0, 0, []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        tick = time.perf_counter()
        done += await run_jobs(b, n, per_tick)
        n += per_tick
        lags.append((await archiving.lag(b)).seconds)
        ticks += 1
        ahead = tick + TICK_S - time.perf_counter()
        if ahead > 0:
            await asyncio.sleep(ahead)
        else:
            late += 1
    reached = done / (time.perf_counter() - t0)
    await b.close()
    return done, reached, lags, late, ticks


async def sustained(redis_url: str, archive_url: str, rate: int, seconds: float) -> dict[str, float]:
    """The archiver (this process, its own loop) following a producer (another process) at `rate`."""
    app = "bench" + secrets.token_hex(3)
    s = Settings(redis_url=redis_url, app=app, env="bench").with_(archive_url=archive_url)
    b = await Broker.connect(s, role="bench", max_connections=32)
    a = Archiver(s, block_ms=50)
    await a.connect()
    assert await a.take()
    stop = asyncio.Event()
    follower = asyncio.create_task(a.follow(stop))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=producer, args=(redis_url, app, rate, seconds, out))
    proc.start()
    jobs, reached, lags, late, ticks = await asyncio.to_thread(out.get)
    proc.join()
    t_end = time.perf_counter()
    await until_caught_up(b)
    catch_up = time.perf_counter() - t_end
    stop.set()
    await follower
    entries, batches = a.counters.entries, a.counters.batches
    await purge_namespace(b.redis, b.keys)
    await a.close()
    a.engine.dispose()
    await b.close()
    return {
        "jobs": jobs,
        "reached": reached,
        "late_ticks": late,
        "ticks": ticks,
        "catch_up_s": catch_up,
        "lag_p50": statistics.median(lags) if lags else 0.0,
        "lag_p99": p99(lags),
        "lag_max": max(lags, default=0.0),
        "entries": entries,
        "batches": batches,
    }


async def until_caught_up(b: Broker) -> None:
    """Polled: the archiver's progress is another loop's work, with no event to await."""
    for _ in range(100_000):
        lag = await archiving.lag(b)
        if lag.seconds == 0 and lag.pending == 0:
            return
        await asyncio.sleep(0.02)


async def xread_ceiling(b: Broker) -> float:
    """Entries/s that XREADGROUP alone delivers from the same stream (a second group, nothing done
    with them): the Redis side's ceiling for the archiver."""
    group = "bench-ceiling"
    await b.redis.xgroup_create(b.keys.events, group, id="0")
    n, t0 = 0, time.perf_counter()
    while res := await b.redis.xreadgroup(group, "c", {b.keys.events: ">"}, count=10_000):
        n += len(res[0][1])
    took = time.perf_counter() - t0
    await b.redis.xgroup_destroy(b.keys.events, group)
    return n / took


def sql_ceiling(engine: Engine, ns: str, batches: int) -> float:
    """Seconds for store.write to write the same rows the archiver wrote (read back, under another
    namespace, in as many transactions as it used): the SQL side without any hiveq logic."""
    from hiveq.archive import schema, store

    other = ns + "~raw"
    got: dict[str, list[Any]] = {}
    with engine.connect() as c:
        for name, table in (
            ("events", schema.events),
            ("tasks", schema.tasks),
            ("jobs", schema.jobs),
            ("meta", schema.task_meta),
        ):
            rows = c.execute(table.select().where(table.c.ns == ns).order_by(*table.primary_key.columns))
            got[name] = [(other, *r[1:]) for r in rows]
    took = 0.0
    for i in range(batches):
        part = {k: v[len(v) * i // batches : len(v) * (i + 1) // batches] for k, v in got.items()}
        t0 = time.perf_counter()
        store.write(engine, store.Batch(**part))
        took += time.perf_counter() - t0
    return took


async def server_cpu(b: Broker) -> float:
    """CPU seconds the Valkey server has used (INFO cpu, user + system)."""
    info = await b.redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def sql_cpu(engine: Engine) -> float:
    """CPU seconds used by this database's PostgreSQL backends (/proc: the server is local);
    0 for SQLite (it runs inside the archiver's process, counted there)."""
    if engine.dialect.name != "postgresql":
        return 0.0
    with engine.connect() as c:
        pids = list(c.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")))
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def capacity(redis_url: str, archive_url: str, jobs: int, ceilings: bool = True) -> dict[str, float]:
    """The archiver's capacity: jobs/s while its own loop (Archiver.follow) drains a backlog of
    `jobs` finished one-job tasks made through the real scripts; with `ceilings`, the same run's
    XREADGROUP rate and SQL write rate for the same entries and rows."""
    s = Settings(redis_url=redis_url, app="bench" + secrets.token_hex(3), env="bench").with_(
        archive_url=archive_url
    )
    b = await Broker.connect(s, role="bench", max_connections=32)
    await archiving.lease(b, "bench", "take", 600_000, "bench")  # attached: nothing trimmed meanwhile
    b._cap_read_at = float("-inf")
    await archiving.ensure_group(b)
    t0 = time.perf_counter()
    for at in range(0, jobs, 5000):
        await run_jobs(b, at, min(5000, jobs - at))
    load_rate = jobs / (time.perf_counter() - t0)
    entries = int(await b.redis.xlen(b.keys.events))
    out: dict[str, float] = {"load": load_rate, "entries_per_job": entries / jobs}
    if ceilings:
        out["xread"] = await xread_ceiling(b) / (entries / jobs)
    await archiving.lease(b, "bench", "drop", 0)
    a = Archiver(s, block_ms=10)
    await a.connect()
    assert await a.take()
    cpu0 = (time.process_time(), await server_cpu(b), sql_cpu(a.engine))
    t0 = time.perf_counter()
    stop = asyncio.Event()
    loop = asyncio.create_task(a.follow(stop))
    await until_caught_up(b)
    stop.set()
    await loop
    out["rate"] = jobs / (time.perf_counter() - t0)
    cpu1 = (time.process_time(), await server_cpu(b), sql_cpu(a.engine))
    for key, before, after in zip(("cpu_archiver", "cpu_redis", "cpu_sql"), cpu0, cpu1, strict=True):
        out[key] = (after - before) / jobs * 1e6  # CPU microseconds per job
    out["batches"] = a.counters.batches
    if ceilings:
        out["sql"] = jobs / await asyncio.to_thread(sql_ceiling, a.engine, a.ns, a.counters.batches)
    await purge_namespace(b.redis, b.keys)
    await a.close()
    a.engine.dispose()
    await b.close()
    return out


# -- memory ------------------------------------------------------------------------------------------
async def memory_per_task(redis_url: str, archive_url: str | None, tasks: int = 5000) -> float:
    """used_memory delta per finished one-job task; with an archive, after the tail expired."""
    s = Settings(redis_url=redis_url, app="bench" + secrets.token_hex(3), env="bench")
    s = s.with_(archive_url=archive_url, redis_retention_s=1, events_maxlen=100)
    b = await Broker.connect(s, role="bench")
    a = None
    if archive_url:
        a = Archiver(s, block_ms=10)
        await a.connect()
        await a.take()
        b._cap_read_at = float("-inf")
        await archiving.ensure_group(b)
    before = int((await b.redis.info("memory"))["used_memory"])
    for at in range(0, tasks, 500):
        await enqueue(b, [one_job(at + i) for i in range(500)])
    while got := await claim(b, "bench-worker", ["noop"], 250):
        await complete(b, [Completion(j.lease, {"ok": True}) for j in got])
    if a is not None:
        while await a.step():
            pass
        await asyncio.sleep(1.1)  # the tail: HIVEQ_REDIS_RETENTION=1
        while await maintain.expire_finished(b, limit=1000):
            pass
        for _ in range(3):  # trim what was archived (the newest ~events_maxlen entries stay)
            a._due["trim"] = 0
            await a.housekeeping()
    after = int((await b.redis.info("memory"))["used_memory"])
    await purge_namespace(b.redis, b.keys)
    if a is not None:
        await a.close()
        a.engine.dispose()
    await b.close()
    return (after - before) / tasks


# -- the task list on 1,000,000 archived tasks -------------------------------------------------------
def generate(engine: Engine, ns: str, rows: int) -> float:
    """`rows` archived tasks (and one job each) made in SQL; returns seconds taken."""
    t0 = time.perf_counter()
    record = (
        '\'{"id":"t\' || printf(\'%016x\', n) || \'","description":"bench task \' || n || '
        '\'","priority":"5","planner":"template","status":"succeeded","total":"1",'
        '"succeeded":"1","created":"\' || (1700000000000 + n * 10) || \'","finished":"\' || '
        "(1700000000000 + n * 10 + 5) || '\"}'"
    )
    status = "CASE WHEN n % 10 = 0 THEN 'failed' ELSE 'succeeded' END"
    cols = (
        "ns, id, status, priority, planner, description, created_ms, seq, finished_ms, idem, record, snap_ms"
    )
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            src = f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows})"
            src += " SELECT n FROM g"
            hexid = "printf('%016x', n)"
        else:
            src = f"SELECT n FROM generate_series(1, {rows}) AS n"
            hexid = "lpad(to_hex(n), 16, '0')"
            record = record.replace("printf('%016x', n)", hexid)
        c.execute(
            text(
                f"INSERT INTO hiveq_tasks ({cols}) SELECT :ns, 't' || {hexid}, {status}, 5, 'template', "
                f"'bench task ' || n || CASE WHEN n % 1000 = 0 THEN ' needle' ELSE '' END, "
                f"1700000000000 + n * 10, n, 1700000000000 + n * 10 + 5, NULL, {record}, 0 FROM ({src}) AS s"
            ),
            {"ns": ns},
        )
        c.execute(
            text(
                "INSERT INTO hiveq_jobs (ns, id, task_id, agent, state, record, snap_ms) "
                f"SELECT :ns, 't' || {hexid} || '.s', 't' || {hexid}, CASE WHEN n % 100 = 0 THEN 'rare' ELSE "
                f"'demo' END, 'succeeded', '{{}}', 0 FROM ({src}) AS s"
            ),
            {"ns": ns},
        )
    with engine.begin() as c:
        c.execute(text("ANALYZE"))
    return time.perf_counter() - t0


def time_queries(engine: Engine, ns: str, f: TaskFilter, n: int, deep: bool = False) -> list[float]:
    out = []
    before = (1700000000000 + 500_000 * 10, 500_000) if deep else None
    for _ in range(n):
        t0 = time.perf_counter()
        _total, rows = query.list_tasks(engine, ns, f, before, 51)
        out.append((time.perf_counter() - t0) * 1000)
        assert rows
    return out


def list_queries(archive_url: str, rows: int, n: int) -> dict[str, list[float]]:
    engine = db.open_engine(archive_url)
    db.upgrade(engine)
    ns = "bench:list"
    took = generate(engine, ns, rows)
    print(f"  generated {rows:,} archived tasks (+ {rows:,} jobs) in SQL in {took:.1f} s")
    out = {
        "first page (50 newest + total)": time_queries(engine, ns, TaskFilter(), n),
        "page at 500,000 deep (cursor)": time_queries(engine, ns, TaskFilter(), n, deep=True),
        "status=failed (+ total)": time_queries(engine, ns, TaskFilter(status="failed"), n),
        "agent=rare (+ total)": time_queries(engine, ns, TaskFilter(agent="rare"), max(5, n // 10)),
        "q=needle, text search (+ total)": time_queries(engine, ns, TaskFilter(q="needle"), max(5, n // 10)),
    }
    engine.dispose()
    return out


# -- main --------------------------------------------------------------------------------------------
def create_pg() -> tuple[str, str]:
    name = "hiveq_bench_" + secrets.token_hex(4)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_pg(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each sustained run")
    ap.add_argument("--rate", type=int, default=5000, help="jobs/s the load aims at")
    ap.add_argument("--backlog", type=int, default=50_000, help="jobs in the capacity run")
    ap.add_argument("--no-ceilings", action="store_true", help="leave out the XREADGROUP and SQL ceilings")
    ap.add_argument("--rows", type=int, default=1_000_000, help="archived tasks for the list query")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    ap.add_argument("--skip-list", action="store_true", help="leave out the 1,000,000-row list query")
    ap.add_argument(
        "--parts",
        default="capacity,sustained,memory,list",
        help="comma-separated: capacity, sustained, memory, list",
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    srv = ServerProcess(find_server_binary("valkey")).start()
    pg_name, pg_url = create_pg()
    tmp = Path(tempfile.mkdtemp(prefix="hiveq-bench-"))
    try:
        print(
            f"server: {srv.binary} on port {srv.port}; {os.cpu_count()} cores, load average {load_average()}"
        )
        kinds = {"sqlite": lambda i: f"sqlite:///{tmp / f'a{i}.db'}", "postgresql": lambda i: pg_url}
        for kind, url_of in kinds.items():
            if args.only and kind != args.only:
                continue
            print(f"\n== {kind}")
            med = 0.0
            if "capacity" in parts:
                caps = [
                    asyncio.run(capacity(srv.url, url_of(100 + i), args.backlog, not args.no_ceilings))
                    for i in range(args.runs)
                ]
                rates = [c["rate"] for c in caps]
                med = statistics.median(rates)
                print(
                    f"  capacity: the archiver draining {args.backlog:,} finished jobs "
                    f"({statistics.median(c['entries_per_job'] for c in caps):.2f} stream entries/job), "
                    f"{args.runs} runs, load average {load_average()}"
                )
                print(f"    archiver               {spread(rates)} jobs/s = {med / 5000:.2f}x 5,000 jobs/s")
                print(f"    (backlog made at       {spread([c['load'] for c in caps])} jobs/s, in bulk)")
                cpu = {
                    k: statistics.median(c[k] for c in caps) for k in ("cpu_archiver", "cpu_redis", "cpu_sql")
                }
                total = sum(cpu.values())
                print(
                    f"    CPU per job (median)   archiver process {cpu['cpu_archiver']:.0f} us, Valkey "
                    f"{cpu['cpu_redis']:.0f} us, PostgreSQL backends {cpu['cpu_sql']:.0f} us = "
                    f"{total:.0f} us "
                    f"({1e6 / total:,.0f} jobs per CPU-second; the archiver process alone "
                    f"{1e6 / cpu['cpu_archiver']:,.0f})"
                )
                if not args.no_ceilings:
                    xr, sq = [c["xread"] for c in caps], [c["sql"] for c in caps]
                    print(
                        f"    XREADGROUP alone       {spread(xr)} jobs/s  "
                        f"(archiver = {ratio(rates, xr):.2f}x)"
                    )
                    print(
                        f"    SQL writes alone       {spread(sq)} jobs/s  "
                        f"(archiver = {ratio(rates, sq):.2f}x)"
                    )
            if "sustained" in parts:
                runs = [
                    asyncio.run(sustained(srv.url, url_of(i), args.rate, args.seconds))
                    for i in range(args.runs)
                ]
                print(
                    f"  sustained: a producer process at {args.rate:,} jobs/s for {args.seconds:g} s (real "
                    f"scripts, {int(args.rate * TICK_S)} jobs per {TICK_S:g} s tick), {args.runs} runs, "
                    f"load average {load_average()}"
                )
                print(f"    load reached           {spread([r['reached'] for r in runs])} jobs/s")
                print(
                    f"    ticks run / overran    {spread([r['ticks'] for r in runs])} / "
                    f"{spread([r['late_ticks'] for r in runs])}"
                )
                print(f"    archive lag p50        {spread([r['lag_p50'] for r in runs], '{:.2f}')} s")
                print(f"    archive lag p99        {spread([r['lag_p99'] for r in runs], '{:.2f}')} s")
                print(f"    archive lag max        {spread([r['lag_max'] for r in runs], '{:.2f}')} s")
                print(f"    catch-up after load    {spread([r['catch_up_s'] for r in runs], '{:.2f}')} s")
                print(
                    f"    jobs per batch         {spread([r['jobs'] / max(1, r['batches']) for r in runs])}"
                )
                if med:
                    reached = statistics.median(r["reached"] for r in runs)
                    print(f"    capacity / load reached {med / reached:.2f}x")
            if "memory" in parts:
                mem = [asyncio.run(memory_per_task(srv.url, url_of(200 + i))) for i in range(args.runs)]
                print(f"  Redis bytes per finished task after the tail expired: {spread(mem)}")
            if args.skip_list or "list" not in parts:
                continue
            lists = list_queries(url_of(300) if kind == "sqlite" else pg_url, args.rows, args.queries)
            for label, ms in lists.items():
                med = statistics.median(ms)
                print(f"  list {label:<34} p50 {med:7.1f} ms   p99 {p99(ms):7.1f} ms  (n={len(ms)})")
        if "memory" in parts:
            base = [asyncio.run(memory_per_task(srv.url, None)) for _ in range(args.runs)]
            print(f"\nwithout an archive: Redis bytes per finished task (all kept 7 days): {spread(base)}")
        print(f"load average at the end {load_average()}")
    finally:
        srv.stop()
        drop_pg(pg_name)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
