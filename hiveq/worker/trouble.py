"""trouble: how a worker lives through a foreign value on one of hiveq's keys, or a full Redis.

Neither is a reason to exit (DESIGN.md, invariant 10), and neither is an outage: Redis answers,
it refuses one key or every write.
- A foreign type on one agent's queue or wake key (`q:<agent>`, `wake:<agent>`) pauses that key
  only: the worker keeps claiming for its other agents and tries the paused key again after a
  growing backoff, until `hiveq repair` moved the foreign value aside.
- A foreign type on a shared key (leases, jobs, events…) or a full Redis stops the one loop that
  met it, which retries with backoff; outcomes waiting to be recorded stay in the outbox (their
  leases extended by the heartbeat) until they can be recorded, so no job runs twice.
Each problem is logged once per SAY_EVERY_S, not per attempt: the key, the type found, what to do.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

from hiveq.contract.errors import RedisFull, WrongTypeError
from hiveq.queue.keys import Keyspace
from hiveq.worker.reconnect import ReconnectDelay

SAY_EVERY_S = 60.0  # one log line per problem per minute, however often it is retried
PAUSE_BASE_S, PAUSE_CAP_S = 0.5, 5.0  # backoff of a paused key (and of a loop that met one)

Problem = WrongTypeError | RedisFull
FULL = "writes (Redis was full)"  # how a full Redis is named among the refused keys
Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


class Trouble:
    """The keys of ours this worker found holding a foreign type, and when to try each again."""

    def __init__(self, log: Logger, keys: Keyspace, agents: Sequence[str]) -> None:
        self.log = log
        self.agents = list(agents)
        self._agent_of = {keys.queue(a): a for a in agents} | {keys.wake(a): a for a in agents}
        self._queue = {a: keys.queue(a) for a in agents}
        self._wake = {a: keys.wake(a) for a in agents}
        self._said: dict[str, float] = {}
        self._paused: dict[str, tuple[float, ReconnectDelay]] = {}  # key -> (retry at, backoff)

    def backoff(self) -> ReconnectDelay:
        """The retry delay of a loop stopped by a shared key or a full Redis."""
        return ReconnectDelay(base=PAUSE_BASE_S, cap=PAUSE_CAP_S)

    def say(self, exc: Problem, doing: str) -> None:
        """Log `exc` at most once per SAY_EVERY_S per key (or once for a full Redis)."""
        what = exc.key if isinstance(exc, WrongTypeError) else FULL
        now = time.monotonic()
        if now - self._said.get(what, -math.inf) < SAY_EVERY_S:
            return
        self._said[what] = now
        agent = self._agent_of.get(what)
        if agent is not None:
            others = [a for a in self.agents if a != agent]
            serving = f"still serving {', '.join(others)}; " if others else ""
            effect = f"{serving}agent {agent} is paused and retried with backoff"
        else:
            effect = f"{doing} is paused and retried with backoff; this worker keeps running"
        self.log.warning("%s (%s; said once a minute, not per attempt)", exc, effect)

    def met(self, exc: Problem, doing: str) -> bool:
        """Note a refusal. True when it concerns one agent's key only: that key is paused and the
        caller may go on at once with the other agents; False for a shared key or a full Redis."""
        self.say(exc, doing)
        if not isinstance(exc, WrongTypeError) or exc.key not in self._agent_of:
            return False
        _, delay = self._paused.get(exc.key, (0.0, self.backoff()))
        self._paused[exc.key] = (time.monotonic() + delay.next_delay(), delay)
        return True

    def _usable(self, key: str, now: float) -> bool:
        paused = self._paused.get(key)
        return paused is None or paused[0] <= now

    def claimable(self) -> list[str]:
        """The agents whose queue key is not paused (or whose retry time has come)."""
        now = time.monotonic()
        return [a for a in self.agents if self._usable(self._queue[a], now)]

    def wakeable(self) -> list[str]:
        """The agents whose wake marker a blocked fetch may wait on."""
        now = time.monotonic()
        usable = self._usable
        return [a for a in self.agents if usable(self._queue[a], now) and usable(self._wake[a], now)]

    def next_retry_in(self, default: float) -> float:
        """Seconds until the next paused key is due again (at most `default`)."""
        if not self._paused:
            return default
        soonest = min(at for at, _ in self._paused.values()) - time.monotonic()
        return max(0.05, min(default, soonest))

    def resumed(self, doing: str) -> None:
        """A loop stopped by a shared key or a full Redis got through again: say so once."""
        shared = [k for k in self._said if k not in self._agent_of]
        for k in shared:
            del self._said[k]
        if shared:
            self.log.warning(
                "Redis accepts %s again (%s no longer refused); resuming", doing, ", ".join(shared)
            )

    def worked(self, agents: Sequence[str], *, waited: bool = False) -> None:
        """A claim (or, `waited`, a wait) over `agents` went through: their keys are usable again."""
        for a in agents:
            for key in (self._wake[a],) if waited else (self._queue[a],):
                if self._paused.pop(key, None) is not None:
                    self._said.pop(key, None)
                    self.log.warning("Redis key %r is usable again: serving agent %s", key, a)
