"""submit: validate -> plan -> enqueue. The one entry point used by the API, the CLI and the SDK.

The task's fields are checked here once, before planning (hiveq/contract/validate.py), so every
surface refuses the same input with the same message and no planner works on a refused task;
the graph and the payloads are checked once by enqueue.
"""

from __future__ import annotations

from dataclasses import dataclass

from hiveq.contract.errors import NotReplicated, OutcomeUnknown, RedisUnavailable, ValidationFailed
from hiveq.contract.limit_rules import llm_estimate
from hiveq.contract.models import Plan, SubtaskSpec, TaskRequest, TaskSubmission
from hiveq.contract.states import TaskStatus
from hiveq.contract.timing import start_of
from hiveq.contract.validate import check_fields
from hiveq.contract.views import Links, PlannedSubtask, PlanOut, SubmitResponse
from hiveq.plan import get_planner
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue

BUILTIN_AGENTS = frozenset({"demo", "llm"})
NOT_CREATED = "the task was not created; submit it again when Redis is back"


@dataclass(frozen=True)
class Submitted:
    task_id: str
    duplicate: bool  # True: an earlier task had this idempotency key; this is that task
    plan: Plan


async def check_agents(b: Broker, subtasks: list[SubtaskSpec]) -> None:
    """Refuse agents no worker could ever run: not built in and never registered by a worker."""
    names = {s.agent for s in subtasks} - BUILTIN_AGENTS
    if not names:
        return
    known = set(await b.guard(b.redis.smembers(b.keys.agents)))
    for i, s in enumerate(subtasks):
        if s.agent not in BUILTIN_AGENTS and s.agent not in known:
            raise ValidationFailed(
                f"subtasks[{i}].agent",
                f"unknown agent {s.agent!r}: not built in (demo, llm) and no worker has registered it; "
                "start a worker that serves it first",
            )


def choose_planner(request: TaskRequest, default: str) -> str:
    # Only an absent planner means "choose one"; an empty name is an unknown planner, as the
    # schema's enum says (get_planner refuses it naming the known ones).
    auto = "explicit" if request.subtasks else default
    name = request.planner if request.planner is not None else auto
    if request.subtasks and name != "explicit":
        raise ValidationFailed(
            "subtasks", f"subtasks are only accepted with the explicit planner, not {name!r}"
        )
    return name


async def replay(b: Broker, task_id: str) -> Submitted:
    """The answer for a repeated idempotency key: the earlier task and its plan."""
    task = await inspect.get_task(b, task_id)
    jobs = await inspect.get_jobs(b, task.job_ids)
    subtasks = [
        SubtaskSpec(
            id=j.subtask_id,
            agent=j.agent,
            input=j.input,
            depends_on=j.depends_on,
            priority=j.priority,
            title=j.title,
            limits=j.limits,
            estimate_tokens=j.estimate_tokens,
        )
        for j in jobs
    ]
    return Submitted(task_id, True, Plan(planner=task.planner, subtasks=subtasks, note=task.plan_note))


async def submit_task(b: Broker, request: TaskRequest, *, idempotency_key: str | None = None) -> Submitted:
    s = b.settings
    check_fields(request.description, request.metadata, idempotency_key, s.limits)
    start = start_of(request.run_at, request.delay_s)
    if idempotency_key is not None:
        try:
            earlier = await b.guard(b.redis.get(b.keys.idempotency(idempotency_key)))
        except RedisUnavailable as exc:  # a read: nothing was written
            raise RedisUnavailable(s.redis_url, exc.reason, effect=NOT_CREATED) from None
        if earlier:
            return await replay(b, str(earlier))
    planner = get_planner(choose_planner(request, s.api.default_planner))
    plan = await planner.plan(request, s)
    await check_agents(b, plan.subtasks)
    subtasks = [
        st.model_copy(update={"estimate_tokens": llm_estimate(st.input, request.description)})
        if st.agent == "llm" and st.estimate_tokens is None
        else st
        for st in plan.subtasks
    ]
    submission = TaskSubmission(
        description=request.description,
        priority=request.priority,
        planner=plan.planner,
        metadata=request.metadata,
        idempotency_key=idempotency_key,
        subtasks=subtasks,
        plan_note=plan.note,
        limits=request.limits,
        run_at_ms=start.run_at_ms,
        delay_ms=start.delay_ms,
    )
    try:
        (done,) = await enqueue(b, [submission], prechecked=True)
    except NotReplicated:  # written on the primary, not confirmed by replicas: says so as is
        raise
    except RedisUnavailable as exc:
        if exc.sent:  # the script may have run and its answer been lost: the task may exist
            raise OutcomeUnknown(exc, idempotency_key) from None
        raise RedisUnavailable(s.redis_url, exc.reason, effect=NOT_CREATED) from None
    if done.duplicate:  # lost a race with a concurrent request carrying the same key
        return await replay(b, done.task_id)
    return Submitted(done.task_id, False, plan)


def links(task_id: str) -> Links:
    return Links(
        self=f"/tasks/{task_id}", events=f"/tasks/{task_id}/events", cancel=f"/tasks/{task_id}/cancel"
    )


async def submit_response(b: Broker, done: Submitted, priority: int) -> SubmitResponse:
    """The one answer to a submission, for `POST /tasks` and `hiveq submit --json` alike."""
    status = (await inspect.get_task(b, done.task_id)).status if done.duplicate else TaskStatus.QUEUED
    plan = PlanOut(
        planner=done.plan.planner,
        note=done.plan.note,
        subtasks=[
            PlannedSubtask(
                id=st.id,
                agent=st.agent,
                title=st.title,
                depends_on=st.depends_on,
                priority=st.priority or priority,
            )
            for st in done.plan.subtasks
        ],
    )
    return SubmitResponse(
        task_id=done.task_id, status=status, duplicate=done.duplicate, plan=plan, links=links(done.task_id)
    )
