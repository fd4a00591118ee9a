"""Durable agents: steps stored under the job, children spawned at run time, waits that hold no
worker slot, and streamed output (docs/durable.md).

A run of a job replays: every `step`, `spawn` and wait is named (its step key), and a key whose
result is stored returns that result without running again. A wait that has to wait ends the
run (`Suspended`); when it is over, the job runs again from the top on any worker and gets past
the wait with what it received. Code outside steps runs again on every run, as in Temporal or
Inngest; output emitted while the run replays is not emitted twice.

The worker provides the `Backend` (Redis, with the job's lease); `LocalBackend` keeps steps in
memory so an agent can be called in a test without a worker.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from hiveq.contract.codec import dumps, dumps_bounded
from hiveq.contract.errors import ChildFailed, PayloadTooLarge, SignalTimeout, ValidationFailed
from hiveq.contract.limits import RESERVED_STEP_PREFIX, STEP_NAME_MAX_CHARS
from hiveq.contract.models import ChildOutcome, SubtaskSpec
from hiveq.contract.protocol import job_id_for, task_of

# hiveq's own step names (the n-th call in a run gets "#n"): spawn, wait_for, wait_for_signal.
SPAWN = RESERVED_STEP_PREFIX + "spawn"
WAIT = RESERVED_STEP_PREFIX + "wait"
SIGNAL = RESERVED_STEP_PREFIX + "signal:"


class Suspended(BaseException):
    """Ends a run whose wait has to wait: the job is suspended in Redis already, so the worker
    records nothing and frees the slot. A BaseException (like asyncio.CancelledError), so an
    agent's `except Exception` does not swallow it."""


class NotDurable(Exception):
    """A durable call outside a worker (spawn and waits need the job's lease in Redis)."""


class Backend(Protocol):
    """What a run needs from its worker (hiveq/worker/durable.py), each call under the job's lease."""

    max_payload_bytes: int

    async def load_steps(self) -> dict[str, str]: ...
    async def save_step(self, key: str, result_json: str, elapsed_ms: int) -> None: ...
    async def spawn(self, key: str, subtasks: Sequence[SubtaskSpec]) -> list[str]: ...
    async def wait_children(self, key: str, children: Sequence[str]) -> str | None: ...
    async def wait_signal(self, key: str, name: str, timeout_s: float | None) -> str | None: ...
    async def children(self, job_ids: Sequence[str]) -> list[ChildOutcome]: ...
    def emit(self, text: str) -> None: ...
    async def flush(self) -> None: ...


def check_step_name(name: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= STEP_NAME_MAX_CHARS:
        raise ValueError(f"a step name must be a string of 1-{STEP_NAME_MAX_CHARS} characters, not {name!r}")
    if name.startswith(RESERVED_STEP_PREFIX):
        raise ValueError(f"step name {name!r}: names starting with {RESERVED_STEP_PREFIX!r} are hiveq's own")


class Durable:
    """The durable side of one run of one job."""

    def __init__(self, backend: Backend, job_id: str = "") -> None:
        self.backend = backend
        self.job_id = job_id
        self.replaying = False  # True while the run is still going through stored steps
        self._stored: dict[str, str] | None = None
        self._loading: asyncio.Future[dict[str, str]] | None = None
        self._calls: dict[str, int] = {}
        self._unreplayed: set[str] = set()

    def key(self, name: str) -> str:
        """The n-th call of `name` in a run is step `name#n` (the first is `name`): a name used in
        a loop is one step per call, matched by order on the next run. Taken before any await,
        so steps started together (asyncio.gather) get their keys in call order."""
        n = self._calls.get(name, 0) + 1
        self._calls[name] = n
        return name if n == 1 else f"{name}#{n}"

    async def stored(self) -> dict[str, str]:
        """The job's stored steps, read once per run (on the first durable call)."""
        if self._stored is not None:
            return self._stored
        if self._loading is None:
            self._loading = asyncio.ensure_future(self.backend.load_steps())
        try:
            steps = await asyncio.shield(self._loading)
        except Exception:
            self._loading = None  # Redis was away: the next durable call reads them again
            raise
        if self._stored is None:
            self._stored = dict(steps)
            self._unreplayed = set(steps)
            self.replaying = bool(steps)
        return self._stored

    async def lookup(self, key: str) -> str | None:
        text = (await self.stored()).get(key)
        if text is None:
            self.replaying = False  # past what earlier runs stored: live from here on
        else:
            self._unreplayed.discard(key)
            self.replaying = bool(self._unreplayed)
        return text

    def remember(self, key: str, text: str) -> None:
        assert self._stored is not None
        self._stored[key] = text

    async def step(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        check_step_name(name)
        key = self.key(name)
        text = await self.lookup(key)
        if text is not None:
            return json.loads(text)
        started = time.monotonic()
        if inspect.iscoroutinefunction(fn):
            value = await fn(*args, **kwargs)
        else:
            value = await asyncio.to_thread(fn, *args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
        ms = int((time.monotonic() - started) * 1000)
        text = _encode(value, f"result of step {key!r}", self.backend.max_payload_bytes)
        await self.backend.save_step(key, text, ms)
        self.remember(key, text)
        return json.loads(text)  # the same JSON a later run gets back (tuples become lists)

    async def spawn(self, subtasks: Sequence[SubtaskSpec | Mapping[str, Any]]) -> list[str]:
        specs = [s if isinstance(s, SubtaskSpec) else SubtaskSpec.model_validate(s) for s in subtasks]
        if not specs:
            return []
        key = self.key(SPAWN)
        text = await self.lookup(key)
        if text is not None:
            return [str(x) for x in json.loads(text)]
        ids = await self.backend.spawn(key, specs)
        self.remember(key, dumps(ids))
        return ids

    async def wait_for(self, children: Sequence[str]) -> list[Any]:
        ids = [c if "." in c else job_id_for(task_of(self.job_id), c) for c in children]
        if not ids:
            return []
        key = self.key(WAIT)
        text = await self.lookup(key)
        if text is None:
            await self.backend.flush()
            text = await self.backend.wait_children(key, ids)
            if text is None:
                raise Suspended(f"waiting for {len(ids)} children")
            self.remember(key, text)
        states: dict[str, str] = json.loads(text)["children"]
        outcomes = []
        for o in await self.backend.children(ids):
            state = states.get(o.job_id, o.state)  # as the wait saw it (a later retry changes nothing)
            ok = state == "succeeded"
            outcomes.append(o.model_copy(update={"state": state, "result": o.result if ok else None}))
        if any(o.state != "succeeded" for o in outcomes):
            raise ChildFailed(outcomes)
        return [o.result for o in outcomes]

    async def wait_for_signal(self, name: str, timeout_s: float | None) -> Any:
        if timeout_s is not None and timeout_s < 0:
            raise ValueError(f"timeout_s must be >= 0 or None, not {timeout_s!r}")
        key = self.key(SIGNAL + name)
        text = await self.lookup(key)
        if text is None:
            await self.backend.flush()
            text = await self.backend.wait_signal(key, name, timeout_s)
            if text is None:
                raise Suspended(f"waiting for signal {name!r}")
            self.remember(key, text)
        got = json.loads(text)
        if got.get("timeout"):
            raise SignalTimeout(name, timeout_s)
        return got.get("data")

    async def emit(self, value: Any) -> None:
        text = value if isinstance(value, str) else dumps(value) + "\n"
        await self.stored()
        if text and not self.replaying:  # an earlier run emitted it already
            self.backend.emit(text)


def _encode(value: Any, what: str, limit: int) -> str:
    """A step result as JSON; one that cannot be stored will not be storable on a retry either,
    so it ends the job (a FatalError: dead-lettered with this sentence)."""
    from hiveq.agents.registry import FatalError

    try:
        return dumps_bounded(value, what, limit)
    except (ValidationFailed, PayloadTooLarge) as exc:
        raise FatalError(str(exc)) from None


class LocalBackend:
    """Steps in memory and output in a list: an agent called without a worker (in a test) runs its
    steps once each; spawn and the waits need a worker and say so."""

    def __init__(self, max_payload_bytes: int = 1_000_000) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.steps: dict[str, str] = {}
        self.output: list[str] = []

    async def load_steps(self) -> dict[str, str]:
        return dict(self.steps)

    async def save_step(self, key: str, result_json: str, elapsed_ms: int) -> None:
        self.steps[key] = result_json

    def _needs_worker(self, what: str) -> NotDurable:
        return NotDurable(f"ctx.{what} needs a worker (the job's lease in Redis): run it with `hiveq worker`")

    async def spawn(self, key: str, subtasks: Sequence[SubtaskSpec]) -> list[str]:
        raise self._needs_worker("spawn")

    async def wait_children(self, key: str, children: Sequence[str]) -> str | None:
        raise self._needs_worker("wait_for")

    async def wait_signal(self, key: str, name: str, timeout_s: float | None) -> str | None:
        raise self._needs_worker("wait_for_signal")

    async def children(self, job_ids: Sequence[str]) -> list[ChildOutcome]:
        raise self._needs_worker("wait_for")

    def emit(self, text: str) -> None:
        self.output.append(text)

    async def flush(self) -> None:
        return None
