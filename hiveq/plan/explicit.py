"""The explicit planner: the client sends the subtasks itself (enqueue validates the graph)."""

from __future__ import annotations

from hiveq.contract.errors import ValidationFailed
from hiveq.contract.models import Plan, TaskRequest
from hiveq.settings import Settings


class ExplicitPlanner:
    name = "explicit"

    async def plan(self, request: TaskRequest, settings: Settings) -> Plan:
        if not request.subtasks:
            raise ValidationFailed(
                "subtasks", "the explicit planner needs a non-empty list of subtasks (id, agent, depends_on)"
            )
        return Plan(planner="explicit", subtasks=list(request.subtasks))
