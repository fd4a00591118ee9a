"""hiveq through its engine API, the way a Python producer and `python -m hiveq.worker` use it.

One job = a one-subtask task (`SubtaskSpec` with input `{"i": i}`); bulk = one `enqueue` call
with 1,000 tasks. Worker: `python -m hiveq.worker --processes P --concurrency 10` (one asyncio
process of 10 slots by default; P processes under hiveq's own supervisor). Settings come from
the environment as for any user (run.py sets REDIS_URL, HIVEQ_APP=peers, HIVEQ_ENV=bench).
"""

from __future__ import annotations

import sys

from shared import stamp

from hiveq.agents.registry import AgentContext, agent
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.settings import Settings

PACKAGE = "hiveq"
AGENT = "peers.noop"
WORKER = "1 process x 10 asyncio slots (python -m hiveq.worker --concurrency 10)"


@agent(AGENT)
async def noop(ctx: AgentContext) -> None:
    stamp()


def task(i: int) -> TaskSubmission:
    return TaskSubmission(description="noop", subtasks=[SubtaskSpec(id="s", agent=AGENT, input={"i": i})])


class Producer:
    async def start(self) -> None:
        self.b = await Broker.connect(Settings.from_env(), role="producer")

    async def enqueue(self, i: int) -> None:
        await enqueue(self.b, [task(i)])

    async def enqueue_many(self, ids: range) -> None:
        await enqueue(self.b, [task(i) for i in ids])

    async def close(self) -> None:
        await self.b.close()


def worker_argv(processes: int) -> list[list[str]] | None:
    cmd = [sys.executable, "-m", "hiveq.worker", "--agents", AGENT, "--module", "hiveq_peer"]
    return [[*cmd, "--processes", str(processes), "--concurrency", "10", "--log-level", "warning"]]
