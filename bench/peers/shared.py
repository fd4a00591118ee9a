"""What every adapter and worker process shares, with no dependency beyond the standard library.

Each no-op job calls `stamp()` first thing: it appends its start time (8 bytes, `time.time()`) to
one file. The driver counts the file's records to see a drain finish and reads them for the
latency figures, so the measured systems' Redis sees nothing but their own commands.
"""

from __future__ import annotations

import os
import struct
import time

URL_ENV = "PEERS_REDIS_URL"  # the private server; never a default: no shared Redis by accident
STAMPS_ENV = "PEERS_STAMPS"
RECORD = struct.Struct("<d")
_fd: int | None = None


def redis_url() -> str:
    url = os.environ.get(URL_ENV)
    if not url:
        raise SystemExit(f"{URL_ENV} is not set: run the adapters through bench/peers/run.py")
    return url


def stamp() -> None:
    """Record that a job started now (O_APPEND: one atomic write per job, from any process)."""
    global _fd
    if _fd is None:
        _fd = os.open(os.environ[STAMPS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, RECORD.pack(time.time()))


def count(path: str) -> int:
    try:
        return os.stat(path).st_size // RECORD.size
    except FileNotFoundError:
        return 0


def read(path: str) -> list[float]:
    with open(path, "rb") as f:
        data = f.read()
    return [t for (t,) in RECORD.iter_unpack(data[: len(data) // RECORD.size * RECORD.size])]
