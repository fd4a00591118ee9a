"""API benchmark: tasks/s accepted by `POST /tasks` (template planner, 4 subtasks each) with one
uvicorn process, and the latency percentiles, from an httpx load generator with bounded concurrency.

Starts its own private Valkey and its own uvicorn process on free ports; prints numbers and ratios.
Run: .venv/bin/python bench/api.py [--tasks 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hiveq.server import ServerProcess, find_server_binary, free_port

ROOT = Path(__file__).resolve().parents[1]
BODY = {"description": "Build a user authentication system", "priority": 1}


def start_api(redis_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "HIVEQ_APP": "bench" + secrets.token_hex(3),
        "HIVEQ_ENV": "bench",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "hiveq.api.app:create_app_from_env",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as c:
        for _ in range(300):
            try:
                if (await c.get(url + "/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("the API did not start")


async def load(url: str, n: int, concurrency: int) -> tuple[float, list[float]]:
    """`concurrency` loops, each with its own keep-alive connection (one shared httpx pool for many
    concurrent requests costs more client CPU than the server spends, and would measure httpx)."""
    latencies: list[float] = []
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for _ in range(concurrency)]

    async def loop(c: httpx.AsyncClient, k: int) -> None:
        for _ in range(k):
            t = time.perf_counter()
            r = await c.post("/tasks", json=BODY)
            latencies.append(time.perf_counter() - t)
            if r.status_code != 201:
                raise SystemExit(f"unexpected answer {r.status_code}: {r.text}")

    try:
        await asyncio.gather(*[loop(c, 5) for c in clients])  # warm up: connections, scripts
        latencies.clear()
        start = time.perf_counter()
        await asyncio.gather(*[loop(c, n // concurrency) for c in clients])
        return time.perf_counter() - start, latencies
    finally:
        for c in clients:
            await c.aclose()


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=1000)[int(p * 10) - 1] * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    srv = ServerProcess(find_server_binary("valkey")).start()
    port = free_port()
    api = start_api(srv.url, port)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url)
        for conc in sorted({1, args.concurrency}):
            elapsed, lat = await load(url, args.tasks if conc > 1 else max(200, args.tasks // 10), conc)
            rate = len(lat) / elapsed
            print(
                f"POST /tasks (4 subtasks, template) concurrency={conc:3d}: {rate:8.0f} tasks/s "
                f"= {rate * 4:8.0f} jobs/s   p50 {pct(lat, 50):6.2f} ms   p99 {pct(lat, 99):6.2f} ms"
            )
        print("one uvicorn process, one event loop; the load generator shares the machine")
    finally:
        api.terminate()
        api.wait(30)
        srv.stop()


if __name__ == "__main__":
    asyncio.run(main())
