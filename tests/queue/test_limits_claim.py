"""claim.lua under limit rules (docs/limits.md): a held job is passed over without losing its
place, the claim takes the next eligible job, and every script that ends a lease gives back
what the claim took (set_limit.lua, report_usage.lua, release_limits in _lib.lua)."""

from __future__ import annotations

import pytest

from hiveq.contract.errors import Code, WrongTypeError
from hiveq.contract.limit_rules import LimitRule
from hiveq.queue.broker import Broker, expected_type
from hiveq.queue.cancel import cancel_task
from hiveq.queue.complete import Completion, complete
from hiveq.queue.enqueue import enqueue
from hiveq.queue.events import last_event_id, read_events
from hiveq.queue.fetch import claim, claim_batch
from hiveq.queue.inspect import get_job
from hiveq.queue.keys import Keyspace
from hiveq.queue.limits import remove_limit, report_usage, set_limit, view
from hiveq.queue.maintain import reap_expired
from hiveq.queue.release import release
from hiveq.queue.retry import Failure, fail
from hiveq.queue.suspend import wait_signal
from tests.queue.helpers import enqueue_task, st, submission, variant


async def test_a_job_at_its_concurrency_limit_is_passed_over_and_the_next_eligible_job_is_taken(
    broker: Broker,
) -> None:
    b = broker
    await set_limit(b, "tenant:acme", LimitRule(concurrency=2))
    held = await enqueue_task(b, *(st(f"x{i}", limits=["tenant:acme"]) for i in range(4)))
    free = await enqueue_task(b, st("free"))
    got = await claim(b, "w", ["a"], 10)
    assert [j.id for j in got] == [*held.job_ids[:2], free.job_ids[0]]
    # the held ones kept their places, in order, at the head of the queue
    assert await b.redis.zrange(b.keys.queue("a"), 0, -1) == held.job_ids[2:]
    assert set(await b.redis.zrange(b.keys.limit_holders("tenant:acme"), 0, -1)) == set(held.job_ids[:2])
    assert await claim(b, "w", ["a"], 10) == []
    await complete(b, [Completion(got[0].lease, "ok")])
    assert await b.redis.zcard(b.keys.wake("a")) == 1  # the freed slot wakes the waiting agent
    [next_job] = await claim(b, "w", ["a"], 10)
    assert next_job.id == held.job_ids[2]  # FIFO within the key
    v = await view(b, "tenant:acme")
    assert v.usage[0].in_use == 2 and v.usage[0].throttled_total >= 2


async def test_a_pattern_rule_gives_each_matching_key_its_own_counters(broker: Broker) -> None:
    b = broker
    await set_limit(b, "tenant:*", LimitRule(concurrency=1))
    await enqueue_task(b, *(st(f"a{i}", limits=["tenant:a"]) for i in range(3)))
    await enqueue_task(b, *(st(f"b{i}", limits=["tenant:b"]) for i in range(3)))
    got = await claim(b, "w", ["a"], 10)
    assert sorted(j.subtask_id for j in got) == ["a0", "b0"]
    v = await view(b, "tenant:*")
    assert [(u.key, u.in_use) for u in v.usage] == [("tenant:a", 1), ("tenant:b", 1)]


async def test_an_exact_rule_wins_over_a_pattern(broker: Broker) -> None:
    b = broker
    await set_limit(b, "tenant:*", LimitRule(concurrency=1))
    await set_limit(b, "tenant:big", LimitRule(concurrency=3))
    await enqueue_task(b, *(st(f"x{i}", limits=["tenant:big"]) for i in range(5)))
    assert len(await claim(b, "w", ["a"], 10)) == 3


async def test_a_rate_rule_admits_n_starts_a_window_and_says_when_it_refills(broker: Broker) -> None:
    b = broker
    await set_limit(b, "model:m", LimitRule(rate="3/min"))
    await enqueue_task(b, *(st(f"x{i}", limits=["model:m"]) for i in range(5)))
    got = await claim_batch(b, "w", ["a"], 10)
    assert len(got.jobs) == 3
    assert got.retry_s is not None and 59 < got.retry_s <= 60  # the oldest start leaves the window
    again = await claim_batch(b, "w", ["a"], 10)
    assert again.jobs == [] and again.retry_s is not None
    for j in got.jobs:  # finishing does not give a rate back: it counts starts
        await complete(b, [Completion(j.lease, "ok")])
    assert await claim(b, "w", ["a"], 10) == []


async def test_changing_a_rule_takes_effect_on_the_next_claim_and_wakes_every_agent(broker: Broker) -> None:
    b = broker
    await set_limit(b, "k", LimitRule(concurrency=1))
    await enqueue_task(b, *(st(f"x{i}", limits=["k"]) for i in range(4)))
    assert len(await claim(b, "w", ["a"], 10)) == 1
    await b.redis.delete(b.keys.wake("a"))
    await set_limit(b, "k", LimitRule(concurrency=3))
    assert await b.redis.zcard(b.keys.wake("a")) == 1
    assert len(await claim(b, "w", ["a"], 10)) == 2
    await remove_limit(b, "k")
    assert len(await claim(b, "w", ["a"], 10)) == 1  # no rule: nothing holds it


async def test_every_way_a_lease_ends_gives_the_slot_back(broker: Broker) -> None:
    b = broker
    await set_limit(b, "k", LimitRule(concurrency=5))
    res = await enqueue_task(b, *(st(f"x{i}", limits=["k"], max_attempts=5) for i in range(5)))
    jobs = {j.subtask_id: j for j in await claim(variant(b, lease_s=0.001), "w", ["a"], 5)}
    holders = b.keys.limit_holders("k")
    assert await b.redis.zcard(holders) == 5
    await complete(b, [Completion(jobs["x0"].lease, "ok")])
    await fail(b, [Failure(jobs["x1"].lease, "boom")])
    await release(b, [jobs["x2"].lease])
    await wait_signal(b, jobs["x3"].lease, "hiveq.signal:go", "go", 60)  # suspended: holds no slot
    assert await b.redis.zrange(holders, 0, -1) == [jobs["x4"].id]
    await reap_expired(b)  # x4's lease (1 ms) expired
    assert await b.redis.zcard(holders) == 0
    again = await claim(b, "w", ["a"], 5)
    assert sorted(j.subtask_id for j in again) == ["x2", "x4"] and await b.redis.zcard(holders) == 2
    await cancel_task(b, res.task_id, "ops")
    assert await b.redis.zcard(holders) == 0


async def test_token_reservations_hold_a_job_that_would_overshoot_the_budget_and_usage_reconciles(
    broker: Broker,
) -> None:
    b = broker
    await set_limit(b, "budget:t", LimitRule(budget_tokens=1000))
    await enqueue_task(b, *(st(f"x{i}", limits=["budget:t"], estimate_tokens=300) for i in range(5)))
    got = await claim(b, "w", ["a"], 10)
    assert len(got) == 3  # 900 reserved; a fourth would make 1200
    counters = b.keys.limit_counters("budget:t")
    assert await b.redis.hget(counters, "bt") == "900"
    await report_usage(b, got[0].lease, 100, 0.01)  # used less than its estimate
    await complete(b, [Completion(got[0].lease, "ok")])  # the unused 200 come back
    assert await b.redis.hget(counters, "bt") == "700"
    [fourth] = await claim(b, "w", ["a"], 10)
    await report_usage(b, got[1].lease, 450, 0)  # 150 more than reserved: counted at once
    assert await b.redis.hget(counters, "bt") == "1150"
    v = await view(b, "budget:t")
    assert v.usage[0].budget_usd_used == 0.01
    assert await claim(b, "w", ["a"], 10) == [], fourth.id


async def test_a_spent_budget_whose_rule_says_fail_hands_the_job_out_to_be_dead_lettered(
    broker: Broker,
) -> None:
    b = broker
    await set_limit(b, "budget:f", LimitRule(budget_tokens=100, on_exhausted="fail"))
    await enqueue_task(b, st("x", limits=["budget:f"], estimate_tokens=500))
    [job] = await claim(b, "w", ["a"], 1)
    assert job.limit_fail and "budget:f" in job.limit_fail and "on_exhausted=fail" in job.limit_fail
    assert await b.redis.zcard(b.keys.limit_holders("budget:f")) == 0  # it reserved nothing


async def test_a_cool_down_holds_every_job_of_the_key_and_the_hand_back_counts_no_attempt(
    broker: Broker,
) -> None:
    b = broker
    await enqueue_task(b, *(st(f"x{i}", limits=["model:m"]) for i in range(2)))
    [job] = await claim(b, "w", ["a"], 1)
    await release(b, [job.lease], "429", cool_s=30)
    got = await claim_batch(b, "w", ["a"], 10)
    assert got.jobs == [] and got.retry_s is not None and 29 < got.retry_s <= 30
    assert int(await b.redis.hget(b.keys.job(job.id), "attempts") or 0) == 0


async def test_agent_default_limit_keys_apply_to_its_jobs(broker: Broker) -> None:
    b = broker
    await set_limit(b, "model:x", LimitRule(concurrency=1))
    await enqueue_task(b, st("a1"), st("a2"))
    got = await claim(b, "w", ["a"], 10, agent_limits={"a": ["model:x"]})
    assert len(got) == 1
    assert await b.redis.hget(b.keys.job(got[0].id), "lkeys") == "model:x"


async def test_a_burst_under_one_key_does_not_delay_another_keys_job_past_one_batch(broker: Broker) -> None:
    b = broker
    burst = [submission(st("x", limits=["tenant:a"])) for _ in range(600)]
    await enqueue(b, burst)
    [late] = await enqueue(b, [submission(st("x", limits=["tenant:b"]))])
    got = await claim(b, "w", ["a"], 10)
    assert late.job_ids[0] in [j.id for j in got]
    later = await enqueue(b, [submission(st("x", limits=["tenant:a"])) for _ in range(3)])
    rest = [j.id for j in await claim(b, "w", ["a"], 1000)]
    assert rest[-3:] == [e.job_ids[0] for e in later]  # FIFO within a key


async def test_jobs_without_limits_keep_strict_fifo(broker: Broker) -> None:
    b = broker
    res = [await enqueue_task(b, st("x")) for _ in range(5)]
    got = await claim(b, "w", ["a"], 5)
    assert [j.id for j in got] == [r.job_ids[0] for r in res]


async def test_a_foreign_type_on_a_limit_counter_holds_its_jobs_and_says_so(broker: Broker) -> None:
    b = broker
    await enqueue_task(b, st("free"))
    await b.redis.set(b.keys.limit_counters("tenant:x"), "someone else's")
    res = await enqueue_task(b, st("x", limits=["tenant:y"]))
    await b.redis.hset(b.keys.job(res.job_ids[0]), "limits", "tenant:x")  # as if enqueued under x
    since = await last_event_id(b)
    got = await claim(b, "w", ["a"], 5)
    assert [j.subtask_id for j in got] == ["free"]  # the other is held, not lost, not failed
    assert await b.redis.zrange(b.keys.queue("a"), 0, -1) == res.job_ids
    _, events = await read_events(b, since)
    assert any(e.type == "anomaly" and b.keys.limit_counters("tenant:x") in (e.reason or "") for e in events)


async def test_a_foreign_type_on_a_limit_holders_key_does_not_stop_the_lease_ending(broker: Broker) -> None:
    b = broker
    await enqueue_task(b, st("x", limits=["k"]))
    [job] = await claim(b, "w", ["a"], 1)
    await b.redis.delete(b.keys.limit_holders("k"))
    await b.redis.set(b.keys.limit_holders("k"), "foreign")
    assert await complete(b, [Completion(job.lease, "ok")]) == [Code.OK]
    assert (await get_job(b, job.id)).state == "succeeded"


async def test_enqueue_under_a_foreign_typed_flow_key_fails_before_writing_anything(broker: Broker) -> None:
    b = broker
    await b.redis.set(b.keys.limit_counters("tenant:z"), "foreign")
    with pytest.raises(WrongTypeError):
        await enqueue_task(b, st("x", limits=["tenant:z"]))
    assert await b.redis.zcard(b.keys.jobs) == 0


async def test_a_tokens_per_minute_rule_holds_a_job_whose_estimate_does_not_fit_this_minute(
    broker: Broker,
) -> None:
    b = broker
    await set_limit(b, "model:t", LimitRule(tokens="1000/min"))
    await enqueue_task(b, *(st(f"x{i}", limits=["model:t"], estimate_tokens=400) for i in range(3)))
    got = await claim_batch(b, "w", ["a"], 10)
    assert len(got.jobs) == 2 and got.retry_s is not None and 0 < got.retry_s <= 60  # the next minute
    await report_usage(b, got.jobs[0].lease, 100, 0)
    await complete(b, [Completion(got.jobs[0].lease, "ok")])  # 300 of its 400 come back: 500 used
    assert len(await claim(b, "w", ["a"], 10)) == 1


async def test_a_dollar_budget_holds_new_jobs_once_reported_spending_reaches_it(broker: Broker) -> None:
    b = broker
    await set_limit(b, "budget:usd", LimitRule(budget_usd=1.0))
    await enqueue_task(b, *(st(f"x{i}", limits=["budget:usd"]) for i in range(3)))
    [first] = await claim(b, "w", ["a"], 1)
    await report_usage(b, first.lease, 0, 1.25)
    assert await claim(b, "w", ["a"], 10) == []
    await b.redis.delete(b.keys.wake("a"))
    await set_limit(b, "budget:usd", LimitRule(budget_usd=5.0))  # raised: the others may go
    assert len(await claim(b, "w", ["a"], 10)) == 2


async def test_a_holder_whose_lease_ended_outside_hiveq_does_not_keep_its_slot(broker: Broker) -> None:
    b = broker
    await set_limit(b, "k", LimitRule(concurrency=1))
    await enqueue_task(b, *(st(f"x{i}", limits=["k"]) for i in range(2)))
    [first] = await claim(b, "w", ["a"], 5)
    await b.redis.zrem(b.keys.leases, first.id)  # a foreign client took its lease entry
    [second] = await claim(b, "w", ["a"], 5)
    assert second.id != first.id
    assert await b.redis.zrange(b.keys.limit_holders("k"), 0, -1) == [second.id]


def test_a_wrong_type_on_a_limit_key_is_named_with_the_type_hiveq_keeps_there() -> None:
    keys = Keyspace("app", "env")
    assert [
        expected_type(keys, k)
        for k in (
            keys.limit_counters("a"),
            keys.limit_holders("a"),
            keys.limit_waiting("a"),
        )
    ] == ["hash", "zset", "set"]
    assert expected_type(keys, keys.limits) == "hash"


async def test_a_changed_rate_counts_the_starts_already_in_its_window(broker: Broker) -> None:
    b = broker
    await set_limit(b, "model:m", LimitRule(rate="3/min"))
    await enqueue_task(b, *(st(f"x{i}", limits=["model:m"]) for i in range(8)))
    assert len(await claim(b, "w", ["a"], 10)) == 3
    await set_limit(b, "model:m", LimitRule(rate="2/min"))
    assert await claim(b, "w", ["a"], 10) == []  # its 3 starts still fill a ring of 2
    await set_limit(b, "model:m", LimitRule(rate="5/min"))
    assert len(await claim(b, "w", ["a"], 10)) == 2  # the 3 in its window count: 2 more fit under 5
    assert await claim(b, "w", ["a"], 10) == []
