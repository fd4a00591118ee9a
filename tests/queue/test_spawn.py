"""spawn.lua: a running job adds subtasks to its task, all or none, as its children; the graph
stays acyclic, the subtask limit holds, and a second spawn with the same step key creates nothing."""

from __future__ import annotations

import pytest

from hiveq.contract.errors import ValidationFailed
from hiveq.contract.lease import LeaseLost
from hiveq.contract.models import SubtaskSpec
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_job
from hiveq.queue.complete import Completion, complete
from hiveq.queue.events import job_history
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job, get_task
from hiveq.queue.spawn import spawn
from tests.queue.helpers import enqueue_task, places_of, st, variant


def kid(sid: str, *deps: str, agent: str = "b") -> SubtaskSpec:
    return SubtaskSpec(id=sid, agent=agent, input={"k": sid}, depends_on=list(deps))


async def test_spawned_children_join_the_task_graph_in_one_step(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("plan"), st("done"))
    [parent] = await claim(b, "w", ["a"], 1)
    [other] = await claim(b, "w", ["a"], 1)
    await complete(b, [Completion(other.lease, {"n": 1})])
    ids = await spawn(b, parent.lease, "hiveq.spawn", [kid("r1"), kid("r2", "r1"), kid("r3", "done")])
    tid = res.task_id
    assert ids == [f"{tid}.r1", f"{tid}.r2", f"{tid}.r3"]
    assert [await places_of(b, i) for i in ids] == [["waiting"], ["blocked"], ["waiting"]]
    task = await get_task(b, tid)
    assert (task.total, task.status, task.job_ids[2:]) == (5, "running", ids)
    rec = await get_job(b, ids[1])
    assert (rec.parent, rec.depends_on, rec.pending_deps) == ("plan", ["r1"], 1)
    assert (await get_job(b, parent.id)).children == ["r1", "r2", "r3"]
    first = (await job_history(b, ids[0]))[0]  # its own spawn event, not the task's enqueue
    assert (first.frm, first.to, first.worker, first.reason) == (
        "",
        "waiting",
        "w",
        f"spawned by {parent.id}",
    )
    step = (await job_history(b, parent.id))[-1]
    assert (step.type, step.data["children"]) == ("step", ids)
    # A child runs like any job and releases its sibling; the dependency's result is handed over.
    [r1] = [j for j in await claim(b, "w", ["b"], 5) if j.subtask_id == "r1"]
    await complete(b, [Completion(r1.lease, "r1 done")])
    [r2] = [j for j in await claim(b, "w", ["b"], 5) if j.subtask_id == "r2"]
    assert r2.dependency_results == {"r1": "r1 done"}
    assert (await audit(b)).ok


async def test_a_second_spawn_with_the_same_step_key_returns_the_same_ids_and_creates_nothing(
    any_broker: Broker,
) -> None:
    b = any_broker
    res = await enqueue_task(b, st("plan"))
    [parent] = await claim(b, "w", ["a"], 1)
    first = await spawn(b, parent.lease, "hiveq.spawn", [kid("r1")])
    again = await spawn(b, parent.lease, "hiveq.spawn", [kid("r1"), kid("zz")])
    assert again == first
    assert (await get_task(b, res.task_id)).total == 2


@pytest.mark.parametrize(
    ("subtasks", "rule"),
    [
        ([kid("plan")], "subtask plan already exists"),
        ([kid("r1", "later")], "depends on .*later, which is blocked"),
        ([kid("r1", "plan")], "depends on .*plan, which is active"),
        ([kid("r1", "ghost")], "depends on .*ghost, which is not a subtask of this task"),
        ([kid(f"r{i}") for i in range(3)], "over the limit of 4 \\(HIVEQ_MAX_SUBTASKS\\)"),
        ([kid("r1", "r2"), kid("r2", "r1")], "dependency cycle"),
        ([kid("r1"), kid("r1")], "duplicate subtask id"),
    ],
)
async def test_a_spawn_that_would_break_the_graph_or_its_limits_is_refused_whole(
    any_broker: Broker, subtasks: list[SubtaskSpec], rule: str
) -> None:
    b = variant(any_broker, max_subtasks=4)
    res = await enqueue_task(b, st("plan"), st("later", deps=("plan",)))
    [parent] = await claim(b, "w", ["a"], 1)
    with pytest.raises(ValidationFailed, match=rule):
        await spawn(b, parent.lease, "hiveq.spawn", subtasks)
    assert (await get_task(b, res.task_id)).total == 2
    assert await b.redis.exists(b.keys.job(f"{res.task_id}.r1")) == 0
    assert (await audit(b)).ok


async def test_a_spawn_under_a_lost_lease_creates_nothing(any_broker: Broker) -> None:
    b = any_broker
    res = await enqueue_task(b, st("plan"))
    [parent] = await claim(b, "w", ["a"], 1)
    await cancel_job(b, parent.id)
    with pytest.raises(LeaseLost):
        await spawn(b, parent.lease, "hiveq.spawn", [kid("r1")])
    assert (await get_task(b, res.task_id)).total == 1
