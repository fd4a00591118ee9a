"""submit: validate -> plan -> enqueue. The one entry point used by the API, the CLI and the SDK.

Validation that needs the settings or the namespace (length bounds, known agents) happens here,
before planning, so every surface refuses the same input with the same message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hiveq.codec import dumps
from hiveq.contract.errors import ValidationFailed
from hiveq.contract.models import Plan, SubtaskSpec, TaskRequest, TaskSubmission
from hiveq.plan import get_planner
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue

BUILTIN_AGENTS = frozenset({"demo", "llm"})
MAX_METADATA_BYTES = 65_536
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")


@dataclass(frozen=True)
class Submitted:
    task_id: str
    duplicate: bool  # True: an earlier task had this idempotency key; this is that task
    plan: Plan


def check_request(request: TaskRequest, max_description_chars: int) -> None:
    if not request.description.strip():
        raise ValidationFailed("description", "must not be empty; say what the task should do")
    if len(request.description) > max_description_chars:
        raise ValidationFailed(
            "description",
            f"{len(request.description)} characters is over the limit of {max_description_chars}; "
            "shorten it or put large inputs in subtask input",
        )
    size = len(dumps(request.metadata).encode())
    if size > MAX_METADATA_BYTES:
        raise ValidationFailed(
            "metadata",
            f"{size} bytes of JSON is over the limit of {MAX_METADATA_BYTES} bytes; keep "
            "metadata small and put large data in subtask input",
        )


def check_idempotency_key(key: str) -> None:
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise ValidationFailed("Idempotency-Key", "must be 1-200 printable ASCII characters without spaces")


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
    name = request.planner or ("explicit" if request.subtasks else default)
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
        )
        for j in jobs
    ]
    return Submitted(task_id, True, Plan(planner=task.planner, subtasks=subtasks, note=task.plan_note))


async def submit_task(b: Broker, request: TaskRequest, *, idempotency_key: str | None = None) -> Submitted:
    s = b.settings
    check_request(request, s.max_description_chars)
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
        earlier = await b.guard(b.redis.get(b.keys.idempotency(idempotency_key)))
        if earlier:
            return await replay(b, str(earlier))
    planner = get_planner(choose_planner(request, s.default_planner))
    plan = await planner.plan(request, s)
    await check_agents(b, plan.subtasks)
    submission = TaskSubmission(
        description=request.description,
        priority=request.priority,
        planner=plan.planner,
        metadata=request.metadata,
        idempotency_key=idempotency_key,
        subtasks=plan.subtasks,
        plan_note=plan.note,
    )
    (done,) = await enqueue(b, [submission])
    if done.duplicate:  # lost a race with a concurrent request carrying the same key
        return await replay(b, done.task_id)
    return Submitted(done.task_id, False, plan)
