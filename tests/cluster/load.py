"""Load for the fault tests: worker processes running `t.tally`, a producer that submits tasks
with idempotency keys and keeps every ACKNOWLEDGED task id, and the checks that follow a fault.

A task counts as acknowledged when enqueue returned it (with HIVEQ_MIN_REPLICAS: after WAIT).
A refused or unanswered submission is retried with the same key, as a client would.
Executions are counted in a file outside Redis (tests/support/agents.py `t.tally`).
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

from hiveq.contract.errors import HiveqError
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.settings import Settings
from tests.support.agents import TALLY_ENV
from tests.support.worker import spawn_worker, stop_proc

AGENT = "t.tally"


@dataclass
class Load:
    settings: Settings
    folder: Path
    workers: list[Popen[bytes]] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # idempotency key -> task id
    refusals: int = 0  # submissions answered with an error (then retried with the same key)
    slowest_ack_s: float = 0.0
    ack_gaps: list[float] = field(default_factory=list)  # seconds between consecutive acks

    @property
    def tally(self) -> Path:
        return self.folder / "tally.txt"

    def logs(self) -> list[Path]:
        return [self.folder / f"worker{i}.log" for i in range(len(self.workers))]

    def start_workers(self, n: int = 2, concurrency: int = 8) -> None:
        self.tally.touch()
        for i in range(n):
            log = self.folder / f"worker{i}.log"
            env = {TALLY_ENV: str(self.tally)}
            self.workers.append(spawn_worker(self.settings, AGENT, concurrency=concurrency, log=log, **env))  # type: ignore[arg-type]

    async def produce(self, b: Broker, count: int, pause_s: float = 0.004, deadline_s: float = 120.0) -> None:
        """Submit `count` one-job tasks, each until acknowledged (or the deadline passes)."""
        stop_at = time.monotonic() + deadline_s
        last = time.monotonic()
        for i in range(count):
            key = f"load-{i}"
            started = time.monotonic()
            while time.monotonic() < stop_at:
                sub = TaskSubmission(
                    description=f"load {i}",
                    idempotency_key=key,
                    subtasks=[SubtaskSpec(id="s", agent=AGENT, input={"sleep": 0.01})],
                )
                try:
                    (done,) = await enqueue(b, [sub])
                except HiveqError:
                    self.refusals += 1
                    await asyncio.sleep(0.05)
                    continue
                self.acked[key] = done.task_id
                break
            now = time.monotonic()
            self.slowest_ack_s = max(self.slowest_ack_s, now - started)
            self.ack_gaps.append(now - last)
            last = now
            await asyncio.sleep(pause_s)

    async def all_finished(self, b: Broker) -> bool:
        for tid in self.acked.values():
            try:
                if (await inspect.get_task(b, tid)).status != "succeeded":
                    return False
            except HiveqError:
                return False
        return True

    async def lost(self, b: Broker) -> list[str]:
        """Acknowledged tasks the current primary does not have."""
        out = []
        for tid in self.acked.values():
            try:
                await inspect.get_task(b, tid)
            except HiveqError:
                out.append(tid)
        return out

    def executions(self) -> collections.Counter[str]:
        return collections.Counter(line for line in self.tally.read_text().splitlines() if line)

    def check_workers_alive(self) -> None:
        for w, log in zip(self.workers, self.logs(), strict=True):
            assert w.poll() is None, f"a worker exited ({w.returncode}): {log.read_text()[-3000:]}"

    def stop(self) -> str:
        """Stop the workers; their logs, which must hold no traceback."""
        for w in self.workers:
            stop_proc(w)
        text = "\n".join(p.read_text() for p in self.logs() if p.exists())
        return text

    def report(self, what: str) -> str:
        gaps = sorted(self.ack_gaps)
        return (
            f"{what}: {len(self.acked)} acknowledged, {self.refusals} refusals retried, slowest ack "
            f"{self.slowest_ack_s * 1000:.0f} ms, ack gap max {gaps[-1] * 1000:.0f} ms, median "
            f"{gaps[len(gaps) // 2] * 1000:.1f} ms"
        )
