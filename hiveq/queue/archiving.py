"""archiving: the Redis side of the archiver (hiveq/archive): its lease (archive_lease.lua), the
consumer group it follows `events` with, the marks that let archived tasks leave Redis
(mark_archived.lua), the trimming of what it archived (trim_events.lua) and its lag.

Reading and acknowledging through the group (XREADGROUP, XACK) changes no job and no task: it
is the archiver's own bookkeeping of what it has written to SQL, so it is plain commands here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis import exceptions as rex

from hiveq.queue.broker import Broker
from hiveq.queue.keys import ARCHIVE_GROUP

# The group has one consumer name: one archiver holds the lease at a time, and a successor takes
# over the entries its predecessor read but did not acknowledge by reading the same name's
# pending list first.
CONSUMER = "archiver"

Entry = tuple[str, dict[str, str] | None]


@dataclass(frozen=True)
class LeaseState:
    held: bool
    holder: str  # '' when nobody holds it
    fresh: bool = False  # taken just now (it was free): the taker replays the group's pending entries


async def lease(b: Broker, holder: str, mode: str, lease_ms: int, kind: str = "") -> LeaseState:
    """take | keep | drop | detach (see lua/archive_lease.lua)."""
    res = await b.run("archive_lease", [holder, lease_ms, mode, kind])
    return LeaseState(bool(int(res[0])), str(res[1] or ""), len(res) > 2 and bool(int(res[2])))


async def mark_archived(b: Broker, snap_ms: int, task_ids: Sequence[str]) -> int:
    if not task_ids:
        return 0
    return int(await b.run("mark_archived", [snap_ms, *task_ids]))


async def ack_and_mark(b: Broker, ids: Sequence[str], snap_ms: int, task_ids: Sequence[str]) -> None:
    """XACK a written batch, then mark its finished tasks archived: one round trip, in that order."""
    if not ids and not task_ids:
        return
    if not b.pipelines_scripts:  # a cluster pipeline refuses EVALSHA: two round trips, same order
        if ids:
            await b.guard(b.redis.xack(b.keys.events, ARCHIVE_GROUP, *ids))
        await mark_archived(b, snap_ms, task_ids)
        return
    pipe = b.redis.pipeline(transaction=False)
    if ids:
        pipe.xack(b.keys.events, ARCHIVE_GROUP, *ids)
    if task_ids:
        await b.queue_run(pipe, "mark_archived", [snap_ms, *task_ids])
    await b.guard(pipe.execute())


async def trim_events(b: Broker, bound: str) -> int:
    return int(await b.run("trim_events", [ARCHIVE_GROUP, bound]))


@dataclass(frozen=True)
class TaskSnapshot:
    task: dict[str, str]  # empty: Redis does not hold the task
    seq: float | None  # its score in `tasks`
    # (job hash, with its tracebacks and steps as JSON text under `_tracebacks` / `_steps` when it
    # has any; custody log rows if asked for)
    jobs: list[tuple[dict[str, str], list[str]]]


def _hash(flat: list[Any]) -> dict[str, str]:
    it = iter(flat)  # HGETALL's flat list of strings (the client decodes responses)
    return dict(zip(it, it, strict=True))


def _job(j: list[Any]) -> dict[str, str]:
    h = _hash(j[0])
    if j[1]:
        h["_tracebacks"] = json.dumps([str(r) for r in j[1]])
    if j[2]:
        h["_steps"] = json.dumps(_hash(j[2]))
    return h


async def snapshot_tasks(
    b: Broker, task_ids: Sequence[str], *, logs: bool = False
) -> tuple[int, list[TaskSnapshot]]:
    """(Redis time of the read, each task with its jobs) in one call (snapshot_tasks.lua)."""
    return _snapshot(await b.run("snapshot_tasks", [1 if logs else 0, *task_ids]))


async def snapshot_chunks(
    b: Broker, chunks: Sequence[Sequence[str]], *, logs: bool = False
) -> list[tuple[int, list[TaskSnapshot]]]:
    """snapshot_tasks for each chunk of ids, all in one pipeline (one round trip; each chunk is
    still one call at one instant, so no call holds Redis for long)."""
    if len(chunks) <= 1 or not b.pipelines_scripts:
        return [await snapshot_tasks(b, chunk, logs=logs) for chunk in chunks]
    pipe = b.redis.pipeline(transaction=False)
    for chunk in chunks:
        await b.queue_run(pipe, "snapshot_tasks", [1 if logs else 0, *chunk])
    return [_snapshot(res) for res in await b.guard(pipe.execute())]


def _snapshot(res: list[Any]) -> tuple[int, list[TaskSnapshot]]:
    out = []
    for entry in res[1:]:
        jobs = [(_job(j), [str(r) for r in j[3]] if len(j) > 3 else []) for j in entry[2:]]
        seq = float(entry[1]) if entry[1] not in ("", None) else None
        out.append(TaskSnapshot(_hash(entry[0]), seq, jobs))
    return int(res[0]), out


async def ensure_group(b: Broker) -> None:
    """Create the group at the stream's start (everything still in it gets archived)."""
    try:
        await b.guard(b.redis.xgroup_create(b.keys.events, ARCHIVE_GROUP, id="0", mkstream=True))
    except rex.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def read(b: Broker, count: int, block_ms: int | None, *, pending: bool) -> list[Entry]:
    """Entries for the archiver: its own unacknowledged ones first (`pending`), else new ones.
    A missing group (a Redis that lost its data, a purge) is created again."""
    for _ in range(2):
        try:
            res = await b.guard(
                b.redis.xreadgroup(
                    ARCHIVE_GROUP,
                    CONSUMER,
                    {b.keys.events: "0" if pending else ">"},
                    count=count,
                    block=None if pending else block_ms,
                )
            )
        except rex.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await ensure_group(b)
            continue
        out: list[Entry] = []
        for _stream, entries in cast("list[tuple[str, list[Entry]]]", res or []):
            out += entries
        return out
    return []


async def ack(b: Broker, ids: Sequence[str]) -> None:
    if ids:
        await b.guard(b.redis.xack(b.keys.events, ARCHIVE_GROUP, *ids))


@dataclass(frozen=True)
class Lag:
    """How far the archive is behind the stream."""

    attached: bool  # meta.archive is set
    holder: str  # the archiver holding the lease, '' when none
    seconds: float  # age of the oldest entry not yet archived (0 when caught up)
    pending: int  # read by the archiver, not yet written
    undelivered: int | None  # not read yet (None: Redis cannot tell)
    stream_length: int


def _ms_of(stream_id: Any) -> int:
    return int(str(stream_id).partition("-")[0])


async def lag(b: Broker) -> Lag:
    pipe = b.redis.pipeline(transaction=False)
    pipe.hexists(b.keys.meta, "archive")
    pipe.get(b.keys.archiver)
    pipe.exists(b.keys.events)
    meta_attached, holder, has_stream = await b.guard(pipe.execute())
    now = await b.node_command("TIME")  # not in the pipeline: a cluster pipeline refuses TIME
    now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
    if not has_stream:
        return Lag(bool(meta_attached), holder or "", 0.0, 0, 0, 0)
    length = int(await b.guard(b.redis.xlen(b.keys.events)))
    groups = cast("list[dict[str, Any]]", await b.guard(b.redis.xinfo_groups(b.keys.events)))
    group = next((g for g in groups if g.get("name") == ARCHIVE_GROUP), None)
    oldest: int | None = None
    pending, undelivered = 0, None
    if group is None:
        first = await b.guard(b.redis.xrange(b.keys.events, count=1))
        if first:
            oldest = _ms_of(first[0][0])
        undelivered = length
    else:
        pending = int(group.get("pending") or 0)
        raw_lag = group.get("lag")
        undelivered = int(raw_lag) if raw_lag is not None else None
        if pending:
            summary = await b.guard(b.redis.xpending(b.keys.events, ARCHIVE_GROUP))
            if summary.get("min"):  # acknowledged meanwhile: nothing pending after all
                oldest = _ms_of(summary["min"])
        last = str(group.get("last-delivered-id") or "0-0")
        nxt = await b.guard(b.redis.xrange(b.keys.events, min="(" + last, count=1))
        if nxt:
            oldest = min(oldest or _ms_of(nxt[0][0]), _ms_of(nxt[0][0]))
    seconds = max(0.0, (now_ms - oldest) / 1000) if oldest is not None else 0.0
    return Lag(bool(meta_attached), holder or "", seconds, pending, undelivered, length)
