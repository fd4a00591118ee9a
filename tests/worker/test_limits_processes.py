"""Limits across worker processes (docs/limits.md), on a real Redis with two worker processes:
the jobs' own start and end times (on the server's clock) show what ran at once. Every wait is
for an event a test can see (a job started, a counter set), never a fixed sleep."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import pytest

from hiveq.contract.limit_rules import LimitRule
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.diagnose.why import why
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.inspect import get_job, get_jobs, get_task
from hiveq.queue.limits import set_limit
from tests.support.agents import limits_gate_key, limits_timeline_key, sidefx_key
from tests.support.waiting import until
from tests.support.worker import spawn_worker, stop_proc, submit

pytestmark = pytest.mark.slow


@contextmanager
def workers(
    b: Broker, agents: str, n: int = 2, concurrency: int = 4
) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [spawn_worker(b.settings, agents, concurrency=concurrency) for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            stop_proc(p)


def max_overlap(intervals: list[tuple[int, int]]) -> int:
    """The most intervals open at once; an end and a start in the same ms do not overlap."""
    edges = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1])
    )
    most = running = 0
    for _, d in edges:
        running += d
        most = max(most, running)
    return most


async def timeline(b: Broker, run: str) -> list[dict[str, int]]:
    return [json.loads(x) for x in await b.redis.lrange(limits_timeline_key(run), 0, -1)]


async def started(b: Broker, run: str) -> int:
    return int(await b.redis.llen(limits_timeline_key(run) + ":started"))


async def test_running_jobs_under_a_concurrency_key_never_overlap_more_than_the_limit_and_reach_it(
    broker: Broker,
) -> None:
    b, run, n, limit = broker, uuid.uuid4().hex, 12, 3
    await set_limit(b, "tenant:c", LimitRule(concurrency=limit))
    await submit(b, "t.held", [{"run": run, "gate": True}] * n, limits=["tenant:c"])
    with workers(b, "t.held"):
        for released in range(n):
            expect = min(n, released + limit)
            await until(partial(started_at_least, b, run, expect), 60, f"{expect} jobs started")
            assert await started(b, run) <= released + limit  # never a fourth while three run
            await b.redis.rpush(limits_gate_key(run), "go")
        await until(lambda: b.redis.llen(limits_timeline_key(run)), 60, "the timeline")
        await until(lambda: timeline_complete(b, run, n), 60, "every job's end")
    spans = [(t["start"], t["end"]) for t in await timeline(b, run)]
    assert max_overlap(spans) == limit


async def started_at_least(b: Broker, run: str, n: int) -> bool:
    return await started(b, run) >= n


async def timeline_complete(b: Broker, run: str, n: int) -> bool:
    return int(await b.redis.llen(limits_timeline_key(run))) == n


async def test_a_rate_limit_spaces_the_starts_across_workers(broker: Broker) -> None:
    b, run, n = broker, uuid.uuid4().hex, 10
    await set_limit(b, "model:r", LimitRule(rate="4/s"))
    res = await submit(b, "t.held", [{"run": run}] * n, limits=["model:r"])
    with workers(b, "t.held"):
        await until(lambda: timeline_complete(b, run, n), 60, "every job")
    starts = sorted(j.started_ms or 0 for j in await get_jobs(b, res.job_ids))
    assert all(starts[i + 4] - starts[i] >= 1000 for i in range(n - 4)), starts  # never 5 in a second
    assert starts[3] - starts[0] < 1000  # and the rate is used: the first four go at once


async def test_token_reservations_of_ten_parallel_children_overshoot_the_budget_by_at_most_one_estimate(
    broker: Broker,
) -> None:
    b, run, budget, estimate, used = broker, uuid.uuid4().hex, 1000, 150, 180
    await set_limit(b, "budget:kids", LimitRule(budget_tokens=budget))
    res = await submit(
        b, "t.held", [{"run": run, "tokens": used}] * 10, limits=["budget:kids"], estimate_tokens=estimate
    )
    counters, holders = b.keys.limit_counters("budget:kids"), b.keys.limit_holders("budget:kids")

    async def settled() -> bool:
        done = await b.redis.llen(limits_timeline_key(run))
        return (
            done > 0
            and await b.redis.zcard(holders) == 0
            and int(await b.redis.hget(counters, "bt") or 0) == done * used
        )

    with workers(b, "t.held", concurrency=10):
        await until(settled, 60, "the admitted children to finish")
        spent = int(await b.redis.hget(counters, "bt") or 0)
        assert spent <= budget + estimate
        ran = await b.redis.llen(limits_timeline_key(run))
        assert ran < 10  # the rest are held, not run over budget
        waiting = [j for j in await get_jobs(b, res.job_ids) if j.state == "waiting"]
        assert len(waiting) == 10 - ran
        answer = await why(b, waiting[0].id)
        assert answer.summary.startswith(f"budget: budget:kids used {spent:,} of {budget:,} tokens")
        await set_limit(b, "budget:kids", LimitRule(budget_tokens=100_000))  # runtime change: they run
        await until(lambda: timeline_complete(b, run, 10), 60, "the held children")
    assert (await get_task(b, res.task_id)).status == "succeeded"


async def test_a_429_cools_the_key_down_for_every_worker_and_counts_no_attempt(broker: Broker) -> None:
    b = broker
    counters = b.keys.limit_counters("model:hot")
    with workers(b, "t.ratelimited", concurrency=2):
        first = await submit(b, "t.ratelimited", [{"retry_after": 1.5}], limits=["model:hot"])
        cool = int(await until(lambda: b.redis.hget(counters, "cool"), 60, "the cool-down"))
        second = await submit(b, "t.ratelimited", [{}], limits=["model:hot"])
        for t in (first, second):
            await until(partial(task_done, b, t.task_id), 60, "the jobs after the cool-down")
    one, two = await get_job(b, first.job_ids[0]), await get_job(b, second.job_ids[0])
    assert (one.started_ms or 0) >= cool and (two.started_ms or 0) >= cool
    assert one.attempts == 1 and one.failures == 0  # handed back, not failed
    assert await b.redis.get(sidefx_key(one.id, "runs")) == "2"


async def task_done(b: Broker, task_id: str) -> bool:
    return (await get_task(b, task_id)).status == "succeeded"


async def test_another_tenants_job_starts_within_one_claim_batch_behind_a_burst_of_ten_thousand(
    broker: Broker,
) -> None:
    b, batch = broker, 10
    burst = [
        TaskSubmission(
            description="burst", subtasks=[SubtaskSpec(id="x", agent="t.noop", limits=["tenant:a"])]
        )
        for _ in range(10_000)
    ]
    a = await enqueue(b, burst)
    [lone] = await enqueue(
        b,
        [
            TaskSubmission(
                description="b", subtasks=[SubtaskSpec(id="x", agent="t.noop", limits=["tenant:b"])]
            )
        ],
    )
    with workers(b, "t.noop", concurrency=batch):
        await until(lambda: task_done(b, lone.task_id), 60, "tenant b's job")
    b_started = (await get_job(b, lone.job_ids[0])).started_ms or 0
    async with b.redis.pipeline(transaction=False) as p:
        for e in a:
            p.hget(b.keys.job(e.job_ids[0]), "started")
        starts = [int(s) for s in await p.execute() if s]
    before = sum(1 for s in starts if s < b_started)
    assert before <= 2 * batch  # at most one claim batch of each worker went first


async def test_raising_a_limit_at_runtime_lets_waiting_workers_start_more_at_once(broker: Broker) -> None:
    b, run = broker, uuid.uuid4().hex
    await set_limit(b, "k:live", LimitRule(concurrency=1))
    await submit(b, "t.held", [{"run": run, "gate": True}] * 3, limits=["k:live"])
    with workers(b, "t.held"):
        await until(lambda: started_at_least(b, run, 1), 60, "the first job")
        assert await started(b, run) == 1
        await set_limit(b, "k:live", LimitRule(concurrency=3))
        await until(lambda: started_at_least(b, run, 3), 60, "the next claim under the new limit")
        await b.redis.rpush(limits_gate_key(run), "go", "go", "go")
        await until(lambda: timeline_complete(b, run, 3), 60, "every job")
