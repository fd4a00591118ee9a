"""fail.lua: retry later with exponential backoff and bounded jitter, or dead-letter."""

from __future__ import annotations

import re

from hiveq.contract.errors import Code
from hiveq.contract.lease import Lease
from hiveq.contract.limits import TRACEBACK_MAX_BYTES, TRACEBACKS_KEPT
from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job, get_task, stats
from hiveq.queue.maintain import promote_due
from hiveq.queue.retry import Failure, clip_traceback, fail, retry_dead
from tests.queue.helpers import enqueue_task, last_event, places_of, st, stream_events, variant
from tests.support.waiting import until


async def _delay_of(b: Broker, job_id: str) -> int:
    ev = await last_event(b, job_id)
    assert ev.to == "delayed" and ev.reason
    m = re.search(r" in (\d+) ms", ev.reason)
    assert m, ev.reason
    due = int(await b.redis.hget(b.keys.job(job_id), "due") or 0)
    assert due == ev.ts + int(m.group(1))
    assert await b.redis.zscore(b.keys.delayed, job_id) == due
    return int(m.group(1))


async def test_a_failed_job_goes_to_delayed_with_its_error(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    assert await fail(b, [Failure(job.lease, "boom")]) == [Code.OK]
    rec = await get_job(b, job.id)
    assert (rec.state, rec.failures, rec.error, rec.lease_deadline_ms) == ("delayed", 1, "boom", None)
    assert await places_of(b, job.id) == ["delayed"]
    ev = await last_event(b, job.id)
    assert (ev.frm, ev.to, ev.worker) == ("active", "delayed", "w")
    assert ev.reason and ev.reason.startswith("retry 2 of 3") and ev.reason.endswith("boom")
    assert (await get_task(b, res.task_id)).status == "running"
    assert (await stats(b))["failed"] == 1


async def test_jitter_keeps_the_first_delay_between_half_and_all_of_the_base(any_broker: Broker) -> None:
    b = variant(any_broker, backoff_base_s=1.0)
    await enqueue_task(b, *[st(f"s{i}") for i in range(20)])
    jobs = await claim(b, "w", ["a"], 20)
    await fail(b, [Failure(j.lease, "e") for j in jobs])
    delays = [await _delay_of(b, j.id) for j in jobs]
    assert all(500 <= d <= 1000 for d in delays), delays
    assert len(set(delays)) > 1  # jitter spreads the retries


async def test_backoff_delay_doubles_per_failure_up_to_the_cap(any_broker: Broker) -> None:
    b = variant(any_broker, backoff_base_s=0.02, backoff_max_s=0.07)
    await enqueue_task(b, st("x", max_attempts=5))
    delays = []
    for _ in range(4):
        [job] = await until(lambda: claim(b, "w", ["a"], 1), what="job to be claimable")
        await fail(b, [Failure(job.lease, "again")])
        delays.append(await _delay_of(b, job.id))
        await until(lambda: promote_due(b), what="retry to become due")
    bounds = [(10, 20), (20, 40), (35, 70), (35, 70)]  # base * 2^k, capped at 70 ms, times [0.5, 1]
    assert all(lo <= d <= hi for d, (lo, hi) in zip(delays, bounds, strict=True)), delays


async def test_dead_letter_after_max_attempts_cancels_blocked_dependents(any_broker: Broker) -> None:
    b = variant(any_broker, backoff_base_s=0.001)
    res = await enqueue_task(b, st("x", max_attempts=2), st("after", deps=("x",)))
    jx, jafter = res.job_ids
    for _ in range(2):
        [job] = await until(lambda: claim(b, "w", ["a"], 1), what="job to be claimable")
        await fail(b, [Failure(job.lease, "nope")])
        await promote_due(b)
    rec = await get_job(b, jx)
    assert (rec.state, rec.failures) == ("dead", 2)
    assert rec.reason == "failed 2 of 2 attempts; last error: nope"
    assert await places_of(b, jx) == ["dead"]
    assert (await last_event(b, jx)).to == "dead"
    assert await places_of(b, jafter) == ["cancelled"]
    ev = await last_event(b, jafter)
    assert (ev.frm, ev.to, ev.reason) == ("blocked", "cancelled", f"dependency {jx} was dead-lettered")
    task = await get_task(b, res.task_id)
    assert (task.status, task.dead, task.cancelled) == ("failed", 1, 1)
    assert (await stats(b))["dead"] == 1
    # A task holding a dead letter is not on the retention clock until the letter is handled.
    assert await b.redis.zscore(b.keys.finished, res.task_id) is None


async def test_a_fatal_failure_dead_letters_at_once(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "bad input", fatal=True)])
    rec = await get_job(b, job.id)
    assert (rec.state, rec.reason) == ("dead", "fatal error: bad input")


async def test_fail_with_a_stale_token_is_refused(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    codes = await fail(b, [Failure(Lease(job.id, "old", "w"), "e"), Failure(Lease("t0.nope", "x", "w"), "e")])
    assert codes == [Code.STALE_TOKEN, Code.NOT_FOUND]
    assert (await get_job(b, job.id)).state == "active"


def _tb(n: int, size: int = 200) -> str:
    return f"Traceback (most recent call last):\n{'x' * size}\nRuntimeError: failure {n}\n"


async def test_a_failure_keeps_its_traceback_with_the_job_and_not_in_the_event(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    text = _tb(1, size=6000)
    await fail(b, [Failure(job.lease, "RuntimeError: failure 1", traceback=text)])
    [kept] = (await get_job(b, job.id)).tracebacks
    assert (kept.attempt, kept.failure, kept.worker, kept.error) == (1, 1, "w", "RuntimeError: failure 1")
    assert kept.traceback == text
    ev = await last_event(b, job.id)
    assert ev.ts == kept.ts and ev.to == "delayed"
    # The custody event stays small: the 6 KB traceback is in no stream entry and no log entry.
    assert all("xxxxxxxxxx" not in (e.reason or "") + str(e.data) for e in await stream_events(b))
    assert all("xxxxxxxxxx" not in row for row in await b.redis.lrange(b.keys.job_log(job.id), 0, -1))


async def test_only_the_last_attempts_tracebacks_are_kept_each_cut_to_its_end(any_broker: Broker) -> None:
    b = variant(any_broker, backoff_base_s=0.001, backoff_max_s=0.002)
    n = TRACEBACKS_KEPT + 2
    await enqueue_task(b, st("x", max_attempts=n))
    for i in range(1, n + 1):
        if i > 1:
            await until(lambda: promote_due(b), what="the retry to become due")
        [job] = await claim(b, "w", ["a"], 1)
        size = 3 * TRACEBACK_MAX_BYTES if i == n else 100
        await fail(b, [Failure(job.lease, f"failure {i}", traceback=_tb(i, size))])
    rec = await get_job(b, job.id)
    assert rec.state == "dead"
    assert [t.failure for t in rec.tracebacks] == list(range(n - TRACEBACKS_KEPT + 1, n + 1))
    last = rec.tracebacks[-1].traceback
    assert len(last.encode()) <= TRACEBACK_MAX_BYTES
    assert last.endswith(f"RuntimeError: failure {n}\n")  # the end (innermost frame, the error) is kept
    assert last.startswith("… (") and "earlier bytes cut" in last.splitlines()[0]


async def test_a_failure_without_a_traceback_stores_none_and_retry_keeps_earlier_ones(
    any_broker: Broker,
) -> None:
    b = variant(any_broker, backoff_base_s=0.001)
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "timed out")])
    assert (await get_job(b, job.id)).tracebacks == []
    assert await b.redis.exists(b.keys.job_tracebacks(job.id)) == 0
    await until(lambda: promote_due(b), what="the retry to become due")
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "bad", fatal=True, traceback=_tb(2))])
    await retry_dead(b, job.id, "ops")
    [kept] = (await get_job(b, job.id)).tracebacks  # a retried dead letter keeps its history
    assert (kept.attempt, kept.error) == (2, "bad")


def test_clip_traceback_keeps_short_text_and_cuts_long_text_at_a_character_boundary() -> None:
    assert clip_traceback("short") == "short"
    text = "é" * 100  # two bytes each
    clipped = clip_traceback(text, max_bytes=61)
    assert len(clipped.encode()) <= 61 and clipped.endswith("é")
    assert clipped.startswith("… (")


async def test_a_foreign_entry_among_the_tracebacks_is_shown_as_text(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "e", traceback=_tb(1))])
    await b.redis.rpush(b.keys.job_tracebacks(job.id), "not json", '{"attempt": "many"}')
    kept = (await get_job(b, job.id)).tracebacks
    assert [t.traceback for t in kept[1:]] == ["not json", '{"attempt": "many"}']
    assert kept[0].failure == 1
