"""Run the real `hiveq` command in subprocesses against a real server, in a fresh namespace."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from hiveq.queue.keys import Keyspace
from hiveq.queue.purge import purge_namespace
from hiveq.server import ServerProcess
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
# The installed console script, run as a user runs it: unlike `python -m hiveq`, it does not put
# the current directory on sys.path by itself.
SCRIPT = Path(sys.executable).with_name("hiveq")


@dataclass
class Hiveq:
    """The `hiveq` command bound to one server and namespace."""

    env: dict[str, str]

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hiveq", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str) -> Any:
        res = self(*args, "--json")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def wait_agent(self, name: str, timeout: float = 30.0) -> None:
        """Until a worker has registered `name` (submit refuses agents nobody ever served)."""
        wait_for(
            lambda: any(name in w["agents"] for w in self.json("workers")["workers"]),
            timeout,
            f"a worker serving {name!r}",
        )

    def spawn(
        self, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVEQ_", "REDIS_URL"))}
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env.update({"PYTHONPATH": path, "COLUMNS": "200", "HIVEQ_DEMO_DELAY": "0.05", **extra})
    return env


@pytest.fixture
async def hiveq(server: ServerProcess) -> AsyncIterator[Hiveq]:
    app = "c" + secrets.token_hex(4)
    yield Hiveq(base_env(REDIS_URL=server.url, HIVEQ_APP=app, HIVEQ_ENV="test"))
    r = Redis.from_url(server.url, decode_responses=True)
    await purge_namespace(r, Keyspace(app, "test"))
    await r.aclose()


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30.0) -> str:
    """Signal a process, wait for it, return its output."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


WorkerFactory = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def worker(hiveq: Hiveq) -> Iterator[WorkerFactory]:
    """Start worker subprocesses for the test's namespace; stopped at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(
        *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, script: bool = False
    ) -> subprocess.Popen[str]:
        """`script`: run the console script (`hiveq worker …`) instead of `python -m hiveq`."""
        command = [str(SCRIPT)] if script else [sys.executable, "-m", "hiveq"]
        assert not script or SCRIPT.exists(), f"{SCRIPT} is missing: install hiveq (pip install -e .)"
        p = hiveq.spawn([*command, "worker", "--log-level", "warning", *args], env, cwd)
        procs.append(p)
        return p

    yield start
    for p in procs:
        stop(p)


class Collected:
    """A process's stdout and stderr, read by threads so neither pipe fills."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        self.threads = [
            threading.Thread(target=lambda: self.out.extend(proc.stdout or []), daemon=True),
            threading.Thread(target=lambda: self.err.extend(proc.stderr or []), daemon=True),
        ]
        for t in self.threads:
            t.start()

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self.close()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for t in self.threads:
            t.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
