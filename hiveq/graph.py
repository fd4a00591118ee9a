"""Validation of a task's subtask graph: unique ids, known references, no cycles, bounded size."""

from __future__ import annotations

from collections.abc import Sequence

from hiveq.contract.errors import ValidationFailed
from hiveq.contract.models import SubtaskSpec


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
