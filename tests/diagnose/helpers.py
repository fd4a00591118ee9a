"""Helpers for the doctor tests: poll with a deadline, and rogue Redis clients as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

# A plain redis-py loop on a generic list name: the seed incident's Celery-like consumer.
GENERIC_CONSUMER = """
import sys, redis
r = redis.Redis.from_url(sys.argv[1], decode_responses=True)
r.client_setname(sys.argv[2])
print(r.client_info()["addr"], flush=True)
while True:
    r.brpop(["work_queue"], timeout=0.2)
"""

# A rogue process that knows hiveq's layout: BRPOP fails (WRONGTYPE), so it ZPOPMINs instead.
THIEF = """
import sys, time, redis
r = redis.Redis.from_url(sys.argv[1], decode_responses=True)
r.client_setname(sys.argv[2])
key = sys.argv[3]
print(r.client_info()["addr"], flush=True)
try:
    r.brpop([key], timeout=1)
    print("brpop: no error", flush=True)
except redis.ResponseError as exc:
    print("brpop:", exc, flush=True)
while True:
    for member, _score in r.zpopmin(key, 1):
        print("stole", member, flush=True)
    time.sleep(0.05)
"""


@contextlib.contextmanager
def script(source: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """Run `source` in a Python subprocess; always killed (by its own handle) on the way out."""
    proc = subprocess.Popen(
        [sys.executable, "-c", source, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


async def read_line(proc: subprocess.Popen[str], timeout_s: float = 20.0) -> str:
    """The next stdout line of `proc`, or a clear failure with its stderr."""
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout_s)
    except TimeoutError:
        raise AssertionError(f"no output from subprocess within {timeout_s}s") from None
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"subprocess exited early: {err}")
    return line.strip()
