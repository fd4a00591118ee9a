"""outbox: finished jobs wait here by kind, leave in bounded batches oldest first, come back in
front of newer ones when a send failed, and keep their leases visible to the heartbeat meanwhile."""

from __future__ import annotations

from hiveq.queue.complete import Completion
from hiveq.queue.retry import Failure, Quarantine
from hiveq.worker.execute import Ending, Outcome
from hiveq.worker.outbox import Outbox
from tests.worker.claimed import claimed

OK = Outcome(Ending.OK, result={"n": 1})
BOOM = Outcome(Ending.FAILED, error="boom", fatal=True)
UNRUNNABLE = Outcome(Ending.QUARANTINE, error="no agent 'unit'")


def test_each_outcome_becomes_the_call_of_its_kind_with_the_jobs_lease() -> None:
    box = Outbox()
    a, b, c = claimed("a"), claimed("b"), claimed("c")
    box.add(a, OK)
    box.add(b, BOOM)
    box.add(c, UNRUNNABLE)
    batch = box.take()
    assert batch.done == [Completion(a.lease, {"n": 1})]
    assert batch.failed == [Failure(b.lease, "boom", fatal=True)]
    assert batch.quarantined == [Quarantine(c.lease, "no agent 'unit'")]
    assert len(batch) == 3 and len(box.pending) == 0


def test_a_batch_holds_at_most_max_batch_of_each_kind_oldest_first() -> None:
    box = Outbox(max_batch=2)
    jobs = [claimed(f"s{i}") for i in range(5)]
    for job in jobs:
        box.add(job, OK)
    first = box.take()
    assert [c.lease.job_id for c in first.done] == [j.id for j in jobs[:2]]
    assert box.ready.is_set(), "more outcomes are waiting: the flusher must come back"
    box.sent()
    assert [c.lease.job_id for c in box.take().done] == [j.id for j in jobs[2:4]]
    box.sent()
    assert [c.lease.job_id for c in box.take().done] == [jobs[4].id]
    assert not box.ready.is_set()


def test_a_batch_put_back_goes_in_front_of_outcomes_that_finished_since() -> None:
    box = Outbox()
    old, new = claimed("old"), claimed("new")
    box.add(old, OK)
    batch = box.take()
    box.add(new, OK)
    box.put_back(batch)  # the send failed: Redis is away
    assert [c.lease.job_id for c in box.pending.done] == [old.id, new.id]
    assert len(box.in_flight) == 0 and box.ready.is_set()


def test_leases_of_outcomes_in_flight_and_pending_stay_visible_to_the_heartbeat() -> None:
    box = Outbox()
    sent, waiting, failed = claimed("sent"), claimed("waiting"), claimed("failed")
    box.add(sent, OK)
    box.take()  # now in flight
    box.add(waiting, UNRUNNABLE)
    box.add(failed, BOOM)
    assert sorted(box.leases(), key=lambda lease: lease.job_id) == sorted(
        [sent.lease, waiting.lease, failed.lease], key=lambda lease: lease.job_id
    )
    assert len(box) == 3
    box.sent()
    assert sent.lease not in box.leases() and len(box) == 2


def test_taking_from_an_empty_outbox_gives_an_empty_batch_and_clears_ready() -> None:
    box = Outbox()
    box.ready.set()
    assert len(box.take()) == 0
    assert not box.ready.is_set()
