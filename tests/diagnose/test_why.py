"""`why`: the plain-words answer for a job in every place it can be."""

from __future__ import annotations

import pytest

from hiveq.contract.errors import NotFound
from hiveq.contract.models import SubtaskSpec
from hiveq.diagnose.why import why
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_task
from hiveq.queue.complete import Completion, complete
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim
from hiveq.queue.registry import register_worker
from hiveq.queue.retry import Failure, fail
from hiveq.queue.spawn import spawn
from hiveq.queue.suspend import signal, wait_children, wait_signal
from tests.queue.helpers import enqueue_task, st, submission, variant
from tests.support.waiting import until


async def test_a_blocked_job_names_its_pending_dependencies_and_their_states(broker: Broker) -> None:
    res = await enqueue_task(broker, st("a"), st("b"), st("c", deps=("a", "b")))
    await register_worker(broker, "w", ["a"], 1)
    [first] = await claim(broker, "w", ["a"], 1)
    answer = await why(broker, res.job_ids[2])
    assert answer.state == "blocked"
    assert answer.summary.startswith("waiting on dependencies a (active) and b (waiting)")
    assert answer.details["dependencies"] == {"a": "active", "b": "waiting"}
    await complete(broker, [Completion(first.lease, {"ok": 1})])
    assert (await why(broker, res.job_ids[2])).summary.startswith("waiting on dependencies b (waiting)")


async def test_a_waiting_job_with_no_live_worker_for_its_agent_says_so(broker: Broker) -> None:
    await register_worker(broker, "w", ["demo"], 1)
    res = await enqueue_task(broker, st("x", agent="translator"))
    answer = await why(broker, res.job_ids[0])
    assert answer.state == "waiting"
    assert answer.summary.startswith("no live worker serves agent translator")
    assert "hiveq worker --agents translator" in answer.summary


async def test_a_waiting_job_counts_the_jobs_of_higher_and_equal_priority_ahead(broker: Broker) -> None:
    await register_worker(broker, "w", ["a"], 4)
    res = await enqueue_task(
        broker, st("urgent", priority=1), st("p5a"), st("p5b"), st("me"), st("later"), st("low", priority=9)
    )
    answer = await why(broker, res.job_ids[3])
    assert answer.summary.startswith("waiting behind 1 job(s) of higher and 2 of equal priority for agent a")
    assert "1 live worker(s) serve it with 4 free slot(s)" in answer.summary
    assert (answer.details["ahead_higher_priority"], answer.details["ahead_equal_priority"]) == (1, 2)


async def test_a_delayed_job_gives_its_due_time_retry_number_and_last_error(broker: Broker) -> None:
    b = variant(broker, backoff_base_s=600)
    res = await enqueue_task(b, st("x", max_attempts=4))
    [job] = await claim(b, "w", ["a"], 1)
    await fail(b, [Failure(job.lease, "rate limited")])
    answer = await why(b, res.job_ids[0])
    assert answer.state == "delayed"
    assert answer.summary.startswith("delayed until 20") and "UTC" in answer.summary
    assert "for retry 2 of 4 (last error: rate limited)" in answer.summary


async def test_a_job_delayed_by_its_task_start_says_so_not_retry(broker: Broker) -> None:
    sub = submission(st("x")).model_copy(update={"delay_ms": 600_000})
    [res] = await enqueue(broker, [sub])
    answer = await why(broker, res.job_ids[0])
    assert answer.state == "delayed"
    assert (
        answer.summary.startswith("delayed until 20")
        and "its task's start (run_at / delay_s)" in answer.summary
    )
    assert "retry" not in answer.summary


async def test_a_leased_job_names_its_worker_host_pid_and_an_expired_lease(broker: Broker) -> None:
    b = variant(broker, lease_s=0.3)
    res = await enqueue_task(b, st("x"))
    info = await register_worker(b, "w-7", ["a"], 1)
    await claim(b, "w-7", ["a"], 1)
    answer = await why(b, res.job_ids[0])
    assert answer.summary.startswith(f"leased by worker w-7 (host {info.host}, pid {info.pid}) since ")
    assert "delivery 1 of 5; lease deadline" in answer.summary and "expired" not in answer.summary

    async def expired() -> bool:
        return "expired" in (await why(b, res.job_ids[0])).summary

    await until(expired, 20, "the lease to expire")
    assert "stopped heartbeating" in (await why(b, res.job_ids[0])).summary


async def test_finished_jobs_say_how_they_ended(broker: Broker) -> None:
    res = await enqueue_task(broker, st("ok"), st("bad"), st("never", deps=("bad",)), st("stop", agent="z"))
    ok_job, bad_job = await claim(broker, "w", ["a"], 2)
    await complete(broker, [Completion(ok_job.lease, 1)])
    await fail(broker, [Failure(bad_job.lease, "bad input", fatal=True)])
    await cancel_task(broker, res.task_id)
    done, dead, cascaded, stopped = [await why(broker, j) for j in res.job_ids]
    assert done.summary.startswith("succeeded at") and "on worker w" in done.summary
    assert dead.summary.startswith("dead-lettered at") and "because fatal error: bad input" in dead.summary
    assert f"hiveq dlq retry {bad_job.id}" in dead.summary
    assert cascaded.state == "cancelled" and f"dependency {bad_job.id} was dead-lettered" in cascaded.summary
    assert stopped.state == "cancelled" and "cancelled by user" in stopped.summary


async def test_an_unknown_job_id_is_not_found_never_pending(broker: Broker) -> None:
    with pytest.raises(NotFound):
        await why(broker, "t0000000000000000.nope")


async def test_a_suspended_job_says_which_signal_it_waits_for_and_how_to_send_it(broker: Broker) -> None:
    res = await enqueue_task(broker, st("x"))
    [job] = await claim(broker, "w", ["a"], 1)
    await signal(broker, job.id, "other", 1, "ann")
    await wait_signal(broker, job.lease, "hiveq.signal:approval", "approval", 3600)
    answer = await why(broker, res.job_ids[0])
    assert answer.state == "suspended"
    assert "holding no worker slot: waiting for signal 'approval'" in answer.summary
    assert f"hiveq signal {job.id} approval --data" in answer.summary
    assert f"POST /jobs/{job.id}/signals/approval" in answer.summary and "times out at" in answer.summary
    assert "1 signal(s) of other names are kept" in answer.summary
    assert answer.details["wait"]["name"] == "approval" and answer.details["signals_kept"] == 1


async def test_a_suspended_parent_names_each_child_and_its_state(broker: Broker) -> None:
    await enqueue_task(broker, st("plan"))
    [parent] = await claim(broker, "w", ["a"], 1)
    kids = await spawn(
        broker, parent.lease, "hiveq.spawn", [SubtaskSpec(id=f"k{i}", agent="b") for i in (1, 2)]
    )
    [first] = await claim(broker, "w", ["b"], 1)
    await complete(broker, [Completion(first.lease, 1)])
    await wait_children(broker, parent.lease, "hiveq.wait", kids)
    answer = await why(broker, parent.id)
    assert "waiting for its children k1 (succeeded), k2 (waiting)" in answer.summary
    assert "(1 of 2 have)" in answer.summary and answer.details["children"] == {
        "k1": "succeeded",
        "k2": "waiting",
    }
