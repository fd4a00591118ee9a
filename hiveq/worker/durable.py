"""durable: what a running job's durable calls do in Redis, under its lease (the `Backend` of
hiveq/agents/durable.py), and the buffer that sends its streamed output in batches.

A refused call (the lease was lost: the task was cancelled or the lease reclaimed) stops the run
as a cancellation would: nothing of it is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from redis.exceptions import RedisError

from hiveq.contract.errors import Code, HiveqError
from hiveq.contract.lease import Lease, LeaseLost
from hiveq.contract.models import ChildOutcome, SubtaskSpec
from hiveq.logs import ContextAdapter
from hiveq.queue import output, spawn, steps, suspend
from hiveq.queue.broker import Broker

T = TypeVar("T")
# Output is sent at most every FLUSH_S (or at once past CHUNK_CHARS): a token stream becomes a
# few events a second per job instead of one per token.
FLUSH_S = 0.1
CHUNK_CHARS = 16_384


class OutputBuffer:
    """Text an agent emitted, not yet sent; one sender task at a time, in order."""

    def __init__(self, send: Callable[[str], Awaitable[None]], flush_s: float = FLUSH_S) -> None:
        self.send = send
        self.flush_s = flush_s
        self.parts: list[str] = []
        self.size = 0
        self.full = asyncio.Event()
        self.sender: asyncio.Task[None] | None = None

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= CHUNK_CHARS:
            self.full.set()
        if self.sender is None:
            self.sender = asyncio.create_task(self._send_soon(), name="hiveq-output")

    async def _send_soon(self) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.full.wait(), self.flush_s)
            await self._send_all()
        finally:
            self.sender = None

    async def _send_all(self) -> None:
        while self.parts:
            text = "".join(self.parts)
            head, rest = text[:CHUNK_CHARS], text[CHUNK_CHARS:]
            self.parts = [rest] if rest else []
            self.size = len(rest)
            self.full.clear()
            await self.send(head)

    async def flush(self) -> None:
        """Send everything emitted so far, now."""
        sender = self.sender
        if sender is not None:
            self.full.set()
            await asyncio.shield(sender)
        await self._send_all()

    def close(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
        self.parts.clear()


class RunBackend:
    """One run of one job: its lease, the broker (a getter: it is replaced after an outage) and
    `on_lost`, which marks the run abandoned when Redis refuses the lease."""

    def __init__(
        self,
        broker: Callable[[], Broker],
        lease: Lease,
        log: ContextAdapter,
        on_lost: Callable[[str], None],
    ) -> None:
        self.broker = broker
        self.lease = lease
        self.log = log
        self.on_lost = on_lost
        self.max_payload_bytes = broker().settings.limits.max_payload_bytes
        self.output = OutputBuffer(self._send_output)

    async def _held(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except LeaseLost as exc:
            self.on_lost(str(exc))
            raise asyncio.CancelledError(str(exc)) from None

    async def load_steps(self) -> dict[str, str]:
        return await steps.load_steps(self.broker(), self.lease.job_id)

    async def save_step(self, key: str, result_json: str, elapsed_ms: int) -> None:
        await self.flush()  # output emitted inside the step goes out before the step is stored
        await self._held(steps.step_done(self.broker(), self.lease, key, result_json, elapsed_ms))

    async def spawn(self, key: str, subtasks: Sequence[SubtaskSpec]) -> list[str]:
        return await self._held(spawn.spawn(self.broker(), self.lease, key, subtasks))

    async def wait_children(self, key: str, children: Sequence[str]) -> str | None:
        got = await self._held(suspend.wait_children(self.broker(), self.lease, key, children))
        return got.outcome if got.ready else None

    async def wait_signal(self, key: str, name: str, timeout_s: float | None) -> str | None:
        got = await self._held(suspend.wait_signal(self.broker(), self.lease, key, name, timeout_s))
        return got.outcome if got.ready else None

    async def children(self, job_ids: Sequence[str]) -> list[ChildOutcome]:
        return await suspend.children_outcomes(self.broker(), job_ids)

    def emit(self, text: str) -> None:
        self.output.add(text)

    async def flush(self) -> None:
        await self.output.flush()

    async def _send_output(self, text: str) -> None:
        try:
            code = await output.append_output(self.broker(), self.lease, text)
        except (HiveqError, RedisError) as exc:  # output is best effort (Redis away, a foreign key)
            self.log.warning("could not send %d characters of output (%s); they are not kept", len(text), exc)
            return
        if code != Code.OK:
            self.log.warning("output refused (%s): the lease is no longer held", code.name.lower())
