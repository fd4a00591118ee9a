"""Peer benchmark: hiveq beside Huey, Dramatiq, streaq, SAQ, RQ and Celery, on one private Redis.

    .venv/bin/python bench/peers/run.py [--jobs 10000] [--runs 3] [--systems hiveq,huey,...]

Starts Debian's redis-server on a free port (no persistence), builds each peer's virtualenv under
bench/peers/.venvs/ from its pinned requirements file, then measures phase by phase, one system
at a time (FLUSHALL of the private server before each), and prints a markdown table with
min–median–max over the runs and the ratio of hiveq to the best peer. README.md says what each
figure measures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import report
import shared
from procs import HERE, System, Workers, child_env, ensure_venv, side
from redis import Redis

from hiveq.server import ServerProcess

ALL = ("hiveq", "huey", "dramatiq", "streaq", "saq", "rq", "celery")
PHASES = ("enqueue", "bulk", "backlog", "drain1", "drain2", "latency")
SETTLE_S = 0.5  # after the last job started: its completion reaches Redis before the snapshot
OWN_COMMANDS = {"cmdstat_info", "cmdstat_flushall"}  # the driver's, not the measured system's


@dataclass(frozen=True)
class Snap:
    memory: int
    cpu_s: float
    calls: dict[str, int]  # per command, those run inside scripts included (Redis counts both)

    def per_job(self, before: Snap, n: int) -> dict[str, float]:
        """Commands per job, most frequent first (what the figure is made of)."""
        delta = {k: (v - before.calls.get(k, 0)) / n for k, v in self.calls.items()}
        return dict(sorted(((k, v) for k, v in delta.items() if v), key=lambda kv: -kv[1]))


def snap(r: Redis) -> Snap:
    stats = r.info("commandstats")
    cpu = r.info("cpu")
    return Snap(
        memory=int(r.info("memory")["used_memory"]),
        cpu_s=float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
        calls={
            k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if k not in OWN_COMMANDS
        },
    )


class Bench:
    def __init__(self, url: str, work: Path, args: argparse.Namespace) -> None:
        self.r = Redis.from_url(url)
        self.url = url
        self.work = work
        self.jobs: int = args.jobs
        self.backlog: int = args.backlog or 10 * args.jobs
        self.samples: int = args.samples
        self.count = 0

    def fresh(self, system: System) -> tuple[dict[str, str], Path]:
        """An empty server and a new stamps file; the environment for the system's processes."""
        self.r.flushall()
        self.count += 1
        stamps = self.work / f"{system.name}-{self.count}.stamps"
        return child_env(system, {shared.URL_ENV: self.url, shared.STAMPS_ENV: str(stamps)}), stamps

    def phase(self, name: str, system: System) -> dict[str, Any]:
        """One phase of one system; the keys it returns are report.FIGURES' (and details)."""
        n = self.jobs
        env, _ = self.fresh(system)
        if name == "enqueue":
            return {"enqueue": n / side(system, env, "enqueue", n)["seconds"]}
        if name == "bulk":
            seconds = side(system, env, "bulk", n)["seconds"]
            return {"bulk": n / seconds if seconds else None}
        if name == "backlog":
            before = snap(self.r)
            side(system, env, "fill", self.backlog)
            return {"waiting_bytes": (snap(self.r).memory - before.memory) / self.backlog}
        if name == "latency":
            return self.latency(system, env)
        p = int(name.removeprefix("drain"))
        argvs = system.info["argv"][str(p)]
        drained = self.drain(system, env, argvs) if argvs else {}
        out = {f"drain{p}": drained.pop("rate", None), f"steady{p}": drained.pop("steady", None)}
        # Redis cost, memory and start-up: from the one-process run
        return out | drained if p == 1 else out | {"drain2_detail": drained}

    def drain(self, system: System, env: dict[str, str], argvs: list[list[str]]) -> dict[str, Any]:
        """Pre-enqueue `jobs`, start the worker, wait until every job started, settle, snapshot.

        Rates end at the n-th job's own start stamp (a no-op: started is done); Redis figures cover
        the fill, the claims and the completions (SETTLE_S lets the last ones land)."""
        n = self.jobs
        stamps = Path(env[shared.STAMPS_ENV])
        s0 = snap(self.r)
        side(system, env, "fill", n)
        spawned = time.time()
        with Workers(system, env, argvs, self.work / f"{system.name}.log") as w:
            deadline = time.monotonic() + 120 + n / 20  # RQ forks per job: ~100-170 jobs/s here
            while shared.count(str(stamps)) < n:
                w.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{system.name}: {shared.count(str(stamps))} of {n} jobs ran in time")
                time.sleep(0.002)
            time.sleep(SETTLE_S)
            s2 = snap(self.r)
        s3 = snap(self.r)  # memory once the worker's connections are gone
        ts = sorted(shared.read(str(stamps)))
        first, last = ts[0], ts[n - 1]
        commands = s2.per_job(s0, n)
        return {
            "rate": n / (last - spawned),
            "steady": n / (last - first),
            "startup": first - spawned,
            "extra_runs": len(ts) - n,
            "cpu_us": (s2.cpu_s - s0.cpu_s) / n * 1e6,
            "cmds": sum(commands.values()),
            "commands": {k: round(v, 3) for k, v in commands.items()},
            "finished_bytes": (s3.memory - s0.memory) / n,
        }

    def latency(self, system: System, env: dict[str, str]) -> dict[str, Any]:
        """p50/p99 of enqueue -> start on an idle one-process worker (side.py's latency phase)."""
        with Workers(system, env, system.info["argv"]["1"], self.work / f"{system.name}.log"):
            ms = side(system, env, "latency", 0, self.samples)["ms"]
        q = statistics.quantiles(ms, n=100, method="inclusive")
        return {"p50": statistics.median(ms), "p99": q[98], "mean_ms": statistics.mean(ms)}


def systems(names: list[str], url: str) -> list[System]:
    out = []
    for name in names:
        if name == "hiveq":
            env = {"REDIS_URL": url, "HIVEQ_APP": "peers", "HIVEQ_ENV": "bench"}
            s = System(name, Path(sys.executable), env)
        else:
            s = System(name, ensure_venv(name))
        s.info = side(s, child_env(s, {shared.URL_ENV: url}), "describe", 0)
        out.append(s)
    return out


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=10_000, help="jobs per enqueue/bulk/drain phase")
    ap.add_argument("--backlog", type=int, default=0, help="waiting jobs for the memory figure (10 x jobs)")
    ap.add_argument("--samples", type=int, default=500, help="latency samples per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--systems", default=",".join(ALL), help="comma-separated, from " + ",".join(ALL))
    ap.add_argument("--json", type=Path, default=HERE / "last-run.json", help="where to save the results")
    ap.add_argument("--report", type=Path, help="only print the table of a saved JSON file again")
    a = ap.parse_args()
    a.names = [x.strip() for x in a.systems.split(",") if x.strip()]
    unknown = [x for x in a.names if x not in ALL]
    if unknown or a.jobs < 10 or a.runs < 1 or a.samples < 10:
        ap.error(
            f"--systems from {', '.join(ALL)} (got {unknown}); --jobs >= 10, --samples >= 10, --runs >= 1"
        )
    return a


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    args = parse()
    if args.report:
        doc = json.loads(args.report.read_text())
        print(header(doc))
        print(report.table(doc["summary"]))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run every `finally`: workers stop
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server not found: apt-get install redis-server (Debian's 7.0 is what was measured)")
    server = ServerProcess(binary).start()
    work = Path(tempfile.mkdtemp(prefix="hiveq-peers-"))
    try:
        chosen = systems(args.names, server.url)  # virtualenvs built here on first use
        started, load_start = time.monotonic(), load()
        date = datetime.now().astimezone().isoformat(timespec="seconds")
        bench = Bench(server.url, work, args)
        version = bench.r.info("server")["redis_version"]
        print(f"redis-server {version} on port {server.port}; {os.cpu_count()} cores; load {load_start}")
        runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in chosen}
        for k in range(args.runs):
            for s in chosen:
                runs[s.name].append({})
            for name in PHASES:  # every system's go at a phase within a minute or so: same load
                print(f"run {k + 1}/{args.runs}: {name}", flush=True)
                for s in chosen:
                    runs[s.name][-1] |= bench.phase(name, s)
        summary = {name: report.summarize(rs) for name, rs in runs.items()}
        doc = {
            "date": date,  # when the measurements started
            "redis": version,
            "cores": os.cpu_count(),
            "load_start": load_start,
            "load_end": load(),
            "seconds": round(time.monotonic() - started, 1),
            "jobs": args.jobs,
            "backlog": bench.backlog,
            "samples": args.samples,
            "runs": args.runs,
            "systems": {s.name: {**s.info, "results": runs[s.name]} for s in chosen},
            "summary": summary,
            "ratios": {f.key: report.ratio(f, summary) for f in report.FIGURES},
        }
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
        print(header(doc))
        print(report.table(summary))
        print(f"\nsaved {args.json}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def header(doc: dict[str, Any]) -> str:
    lines = [
        f"\nstarted {doc['date']}: redis-server {doc['redis']}, {doc['cores']} cores, {doc['jobs']:,} jobs, "
        f"backlog {doc['backlog']:,}, {doc['samples']} latency samples, {doc['runs']} run(s), "
        f"{doc['seconds']:.0f} s; load average at start {doc['load_start']}, at end {doc['load_end']}",
        "",
    ]
    for name, s in doc["systems"].items():
        bulk = "bulk API" if s["bulk"] else "no bulk API"
        lines.append(f"- {name} {s['version']}: {s['worker']}; {bulk}")
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: the workers and the private redis-server were stopped")
