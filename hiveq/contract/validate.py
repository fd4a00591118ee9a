"""The rules a task must pass before it is enqueued, with one set of limits (`Limits`).

Every submission passes them exactly once: `submit` runs `check_fields` before planning (so a
planner never spends an LLM call on a task that would be refused) and enqueue runs the graph and
payload checks; a direct `enqueue` caller gets `check_fields` run by enqueue itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hiveq.contract.codec import dumps_bounded
from hiveq.contract.errors import ValidationFailed
from hiveq.contract.jsonrules import check_depth, encodable
from hiveq.contract.limits import IDEMPOTENCY_KEY_RE, IDEMPOTENCY_KEY_RULE, Limits
from hiveq.contract.models import SubtaskSpec


def check_fields(
    description: str, metadata: dict[str, Any], idempotency_key: str | None, limits: Limits
) -> None:
    """The task-level fields: a non-empty, bounded description that is real text, bounded
    metadata that is JSON (hiveq/contract/jsonrules.py: no NaN, bounded depth), a sane key."""
    encodable(description, "description")
    if not description.strip():
        raise ValidationFailed("description", "must not be empty; say what the task should do")
    if len(description) > limits.max_description_chars:
        raise ValidationFailed(
            "description",
            f"{len(description)} characters is over the limit of {limits.max_description_chars} "
            "(HIVEQ_MAX_DESCRIPTION_CHARS); shorten it or put large inputs in subtask input",
        )
    if metadata:
        check_depth(metadata, "metadata")  # the HTTP edge checked its body; the CLI and SDK come here
        size = len(dumps_bounded(metadata, "metadata", limits.max_payload_bytes).encode())
        if size > limits.max_metadata_bytes:
            raise ValidationFailed(
                "metadata",
                f"{size} bytes of JSON is over the limit of {limits.max_metadata_bytes} bytes "
                "(HIVEQ_MAX_METADATA_BYTES); keep metadata small and put large data in subtask input",
            )
    if idempotency_key is not None and not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise ValidationFailed("Idempotency-Key", IDEMPOTENCY_KEY_RULE)


def validate_graph(subtasks: Sequence[SubtaskSpec], max_subtasks: int) -> list[str]:
    """Check the DAG and return the subtask ids in a topological order."""
    if not subtasks:
        raise ValidationFailed("subtasks", "a task needs at least one subtask")
    if len(subtasks) > max_subtasks:
        raise ValidationFailed(
            "subtasks", f"{len(subtasks)} subtasks is over the limit of {max_subtasks} (HIVEQ_MAX_SUBTASKS)"
        )
    if len(subtasks) == 1 and not subtasks[0].depends_on:  # the common one-job task
        return [subtasks[0].id]
    index: dict[str, int] = {}
    for i, s in enumerate(subtasks):
        if s.id in index:
            raise ValidationFailed(f"subtasks[{i}].id", f"duplicate subtask id {s.id!r}; ids must be unique")
        index[s.id] = i
    for i, s in enumerate(subtasks):
        for dep in s.depends_on:
            if dep not in index:
                raise ValidationFailed(
                    f"subtasks[{i}].depends_on", f"unknown subtask {dep!r}; depend only on ids in this task"
                )
            if dep == s.id:
                raise ValidationFailed(f"subtasks[{i}].depends_on", f"subtask {s.id!r} depends on itself")
    return _topological(subtasks)


def _topological(subtasks: Sequence[SubtaskSpec]) -> list[str]:
    deps = {s.id: list(dict.fromkeys(s.depends_on)) for s in subtasks}
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    for root in deps:
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                if state.get(node) == 2:
                    continue
                if state.get(node) == 1:
                    cycle = [*path[path.index(node) :], node]
                    raise ValidationFailed("subtasks", "dependency cycle: " + " -> ".join(cycle))
                state[node] = 1
                path.append(node)
            if i < len(deps[node]):
                stack.append((node, i + 1))
                stack.append((deps[node][i], 0))
            else:
                state[node] = 2
                path.pop()
                order.append(node)
    return order


def validate_spawn(subtasks: Sequence[SubtaskSpec], max_subtasks: int) -> list[str]:
    """The subtasks a running agent spawns: unique ids and no cycle among them. A dependency
    outside the batch is checked by spawn.lua against the task (it must have succeeded), so the
    task's graph stays acyclic: nothing that exists can depend on what is spawned now."""
    if not subtasks:
        raise ValidationFailed("subtasks", "spawn needs at least one subtask")
    if len(subtasks) > max_subtasks:
        raise ValidationFailed(
            "subtasks", f"{len(subtasks)} subtasks is over the limit of {max_subtasks} (HIVEQ_MAX_SUBTASKS)"
        )
    ids: set[str] = set()
    for i, s in enumerate(subtasks):
        if s.id in ids:
            raise ValidationFailed(f"subtasks[{i}].id", f"duplicate subtask id {s.id!r}; ids must be unique")
        ids.add(s.id)
        if s.id in s.depends_on:
            raise ValidationFailed(f"subtasks[{i}].depends_on", f"subtask {s.id!r} depends on itself")
    inner = [s.model_copy(update={"depends_on": [d for d in s.depends_on if d in ids]}) for s in subtasks]
    return _topological(inner)
