"""The archiver writes every transition, task and job to the archive, on SQLite and PostgreSQL:
retries, a dead letter and its retry from the dead-letter queue; results and errors; replays
leave no duplicate."""

from __future__ import annotations

from typing import cast

from sqlalchemy import func, select

from hiveq.archive import query
from hiveq.archive.archiver import Archiver
from hiveq.archive.read import Archive
from hiveq.archive.schema import events, jobs, tasks
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue import archiving, inspect
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.events import expand_entry, job_history
from hiveq.queue.retry import retry_dead
from tests.archive.conftest import drain
from tests.support.agents import FIXED
from tests.support.waiting import until
from tests.support.worker import worker_in_process


async def stream_events(b: Broker) -> list[tuple[str, str]]:
    """(stream id, subject) of every event the stream holds, as readers expand them."""
    out = []
    rows = cast("list[tuple[str, dict[str, str]]]", await b.redis.xrange(b.keys.events))
    for entry_id, fields in rows:
        for ev in expand_entry(entry_id, fields["e"]):
            out.append(
                (
                    ev.id,
                    ev.job
                    if ev.type == "job" and ev.job
                    else f"{ev.type}:{ev.job or ev.task or ev.worker or ''}",
                )
            )
    return out


def archived_events(a: Archiver) -> list[tuple[str, str]]:
    with a.engine.connect() as c:
        rows = c.execute(
            select(events.c.ms, events.c.seq, events.c.subject)
            .where(events.c.ns == a.ns)
            .order_by(events.c.ms, events.c.seq, events.c.n)
        )
        return [(f"{ms}-{seq}", subject) for ms, seq, subject in rows]


async def test_retries_a_dead_letter_and_its_retry_from_the_dlq_all_land_in_the_archive(
    stack: tuple[Broker, Archiver], reader: Archive
) -> None:
    b, a = stack
    sub = SubtaskSpec(id="f", agent="t.fixable", input={"case": 1}, max_attempts=2)
    (task,) = await enqueue(b, [TaskSubmission(description="flaky then fixed", subtasks=[sub])])
    job_id = task.job_ids[0]
    async with worker_in_process(b.settings, ["t.fixable"]):
        await until(lambda: _state(b, job_id, "dead"), what="the job dead-lettered after 2 failures")
        await drain(a)
        dead = await reader.call(query.get_job, job_id)
        assert dead is not None and dead["state"] == "dead" and "not fixed yet (attempt 2)" in dead["error"]
        FIXED.add(job_id)
        await retry_dead(b, job_id, "test")
        await until(lambda: _state(b, job_id, "succeeded"), what="the retried job succeeded")
    await drain(a)

    live = await job_history(b, job_id)
    kept = await reader.call(query.job_events, job_id)
    assert [(e.id, e.frm, e.to) for e in kept] == [(e.id, e.frm, e.to) for e in live]
    assert [e.to for e in kept] == [
        "waiting",
        "active",
        "delayed",
        "waiting",
        "active",
        "dead",
        "waiting",
        "active",
        "succeeded",
    ]
    assert archived_events(a) == await stream_events(b)  # every event of the stream, once, in order
    found = await reader.call(query.get_task, task.task_id)
    assert found is not None
    task_hash, job_hashes = found
    assert task_hash["status"] == "succeeded"
    job = inspect.decode_job(job_hashes[0])
    assert (job.state, job.result, job.attempts) == ("succeeded", {"attempt": 1}, 1)
    assert job.input == {"case": 1}


async def _state(b: Broker, job_id: str, state: str) -> bool:
    return bool(await b.redis.hget(b.keys.job(job_id), "state") == state)


async def test_a_replayed_batch_writes_nothing_twice(stack: tuple[Broker, Archiver]) -> None:
    b, a = stack
    subs = [SubtaskSpec(id=f"s{i}", agent="t.noop") for i in range(3)]
    await enqueue(b, [TaskSubmission(description=f"replay {i}", subtasks=subs) for i in range(20)])
    entries = await archiving.read(b, 1000, None, pending=False)
    assert entries
    # The archiver dies after writing but before its XACK: the next one gets the same entries.
    from hiveq.archive import store
    from hiveq.archive.snapshot import read_entries, snapshot

    got = read_entries(a.ns, entries)
    snap = await snapshot(b, a.ns, got.tasks)
    snap.batch.events = got.rows
    store.write(a.engine, snap.batch)
    a._replay = True
    assert await drain(a) == len(entries)
    with a.engine.connect() as c:
        n_events = c.scalar(select(func.count()).select_from(events).where(events.c.ns == a.ns))
        n_tasks = c.scalar(select(func.count()).select_from(tasks).where(tasks.c.ns == a.ns))
        n_jobs = c.scalar(select(func.count()).select_from(jobs).where(jobs.c.ns == a.ns))
    assert (n_events, n_tasks, n_jobs) == (len(await stream_events(b)), 20, 60)
    assert (await b.redis.xpending(b.keys.events, "hiveq-archiver"))["pending"] == 0


async def test_a_task_read_in_one_batch_is_read_again_when_a_later_entry_names_it(
    stack: tuple[Broker, Archiver], reader: Archive
) -> None:
    """The archiver skips re-reading a task only for entries older than its last read of it: the
    completion that follows the enqueue batch still lands."""
    from hiveq.queue.complete import Completion, complete
    from hiveq.queue.fetch import claim

    b, a = stack
    (task,) = await enqueue(
        b, [TaskSubmission(description="two batches", subtasks=[SubtaskSpec(id="a", agent="t.noop")])]
    )
    assert await a.step() > 0  # the enqueue: the task read as queued
    found = await reader.call(query.get_task, task.task_id)
    assert found is not None and found[0]["status"] == "queued"
    (job,) = await claim(b, "w", ["t.noop"], 1)
    await complete(b, [Completion(job.lease, {"ok": True})])
    await drain(a)
    found = await reader.call(query.get_task, task.task_id)
    assert found is not None and found[0]["status"] == "succeeded"
    assert inspect.decode_job(found[1][0]).result == {"ok": True}
