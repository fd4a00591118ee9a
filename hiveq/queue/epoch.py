"""epoch: data that Redis lost is reported as data loss.

A namespace's `meta` record carries an epoch (a random id drawn when the namespace is created,
claim_namespace.lua). Every worker and API process remembers it; when Redis answers with another
epoch or none (a restart without persistence, FLUSHALL, a failover to a replica that lacked the
writes), the process says so at once through `EpochGuard.report` (record_loss.lua: the loss is
kept in `meta` with the jobs live workers held, an event goes out) instead of blaming lost leases
or calling the namespace unused. Workers check it in every heartbeat (heartbeat.lua), the API in
its own loop (`watch_forever`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from hiveq.contract.errors import HiveqError
from hiveq.contract.protocol import PROTOCOL_VERSION
from hiveq.queue.broker import Broker, new_epoch

CHECK_EVERY_S = 1.0  # the API's epoch check (workers check in each heartbeat)
RESTART_SLACK_S = 5.0  # an uptime within the time since we last saw our epoch (+ this): a restart


@dataclass(frozen=True)
class Loss:
    lost_epoch: str
    epoch: str  # the namespace's epoch now
    at_ms: int  # when the data went (a restart: the server's start), Redis time
    detected_ms: int
    cause: str
    reported_by: list[str]
    jobs: list[str]  # jobs live workers held that are gone
    count: int  # data losses recorded for this namespace (as far as a living process remembers)
    first: bool = False  # this process recorded it (the others add their jobs)


def _ids(value: Any) -> list[str]:
    return [str(x) for x in value] if isinstance(value, list) else []  # Lua's {} is an empty list


async def read_loss(b: Broker) -> Loss | None:
    """The last data loss recorded in `meta` (None: none since the namespace began)."""
    raw = await b.guard(b.redis.hmget(b.keys.meta, ["loss", "data_losses", "epoch"]))
    if not raw[0]:
        return None
    try:
        d = json.loads(raw[0])
    except ValueError:
        return None
    return Loss(
        lost_epoch=str(d.get("lost_epoch", "")),
        epoch=str(raw[2] or d.get("epoch", "")),
        at_ms=int(d.get("at") or 0),
        detected_ms=int(d.get("detected") or 0),
        cause=str(d.get("cause", "")),
        reported_by=_ids(d.get("reported_by")),
        jobs=_ids(d.get("jobs")),
        count=int(raw[1] or 1),
    )


class EpochGuard:
    """What one process remembers of its namespace's life: the epoch (on its broker), the server's
    run_id, when it last saw the epoch, and how many losses it has seen."""

    def __init__(self, b: Broker, who: str) -> None:
        self.b = b
        self.who = who
        self.losses = 0
        self.run_id = ""
        self.seen_at = time.monotonic()

    async def remember(self) -> None:
        """After claim_namespace (and after each loss): the server this epoch lives on."""
        inf = await self.b.node_command("INFO", "server")
        self.run_id = str(inf.get("run_id", ""))
        self.seen_at = time.monotonic()

    def saw_epoch(self) -> None:
        self.seen_at = time.monotonic()

    async def changed(self) -> bool:
        """A cheap read: does Redis still hold the epoch this process knows?"""
        found = await self.b.guard(self.b.redis.hget(self.b.keys.meta, "epoch"))
        if found == self.b.epoch:
            self.saw_epoch()
            return False
        return True

    async def _cause(self) -> tuple[str, int]:
        """What happened, read from INFO: (the words, when the data went in ms or 0 for now)."""
        inf = await self.b.node_command("INFO", "server")
        run_id, uptime = str(inf.get("run_id", "")), int(inf.get("uptime_in_seconds", 0))
        t = await self.b.guard(self.b.redis.time())
        now_ms = int(t[0]) * 1000 + int(t[1]) // 1000
        if self.run_id and run_id != self.run_id:
            if uptime <= time.monotonic() - self.seen_at + RESTART_SLACK_S:
                return f"restarted empty: uptime {uptime} s, run_id changed", now_ms - uptime * 1000
            return (
                f"another server answers without the data (a failover to a replica that lacked it?): "
                f"run_id changed, uptime {uptime} s",
                0,
            )
        return (
            f"flushed or deleted while the server ran (FLUSHALL, FLUSHDB or a DEL of {self.b.keys.meta}): "
            f"run_id unchanged, uptime {uptime} s",
            0,
        )

    async def report(self, held: Sequence[str] = ()) -> Loss | None:
        """Record (or join) the loss of the epoch this process knew, with the jobs it held that are
        gone; adopt the namespace's new epoch. None when the epoch is in fact still there."""
        b, s = self.b, self.b.settings
        cause, at = await self._cause()
        args = [b.epoch, new_epoch(), s.app, s.env, str(PROTOCOL_VERSION), self.who, cause, at]
        args += [self.losses, json.dumps(sorted(held))]
        res = await b.run("record_loss", args)
        if int(res[0]) == 0:
            self.saw_epoch()
            return None
        lost_epoch, b.epoch = b.epoch, str(res[1])
        self.losses = int(res[2])
        await self.remember()
        found = await read_loss(b)
        jobs = found.jobs if found and found.lost_epoch == lost_epoch else sorted(held)
        return Loss(
            lost_epoch=lost_epoch,
            epoch=b.epoch,
            at_ms=found.at_ms if found else at,
            detected_ms=found.detected_ms if found else 0,
            cause=found.cause if found else cause,
            reported_by=found.reported_by if found else [self.who],
            jobs=jobs,
            count=self.losses,
            first=int(res[3]) == 1,
        )


def loss_line(loss: Loss, held: Sequence[str]) -> str:
    """The log line a process writes when it finds the loss."""
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(loss.at_ms / 1000)) if loss.at_ms else "?"
    gone = (
        f"{len(held)} job(s) this process held are gone: {', '.join(sorted(held)[:50])}"
        if held
        else "this process held no jobs"
    )
    return (
        f"data loss: Redis lost this namespace's data at {at} ({loss.cause}); {gone}; the namespace "
        f"starts again as epoch {loss.epoch} (`hiveq doctor`: data loss)"
    )


async def watch_forever(
    guard: EpochGuard, log: logging.Logger, *, ready: Callable[[], bool] = lambda: True
) -> None:
    """The API's epoch check: every CHECK_EVERY_S, and a loss is reported as soon as it is seen.
    Errors (Redis away) wait for the next round; the loop never ends by itself."""
    while True:
        await asyncio.sleep(CHECK_EVERY_S)
        if not ready() or not guard.b.epoch:
            continue
        try:
            if await guard.changed():
                loss = await guard.report()
                if loss is not None:
                    log.error("%s", loss_line(loss, []))
        except (HiveqError, RedisError):
            continue
