"""The planning step: the registry of planners by name (a planner turns a `TaskRequest` into a
`Plan`; both are wire models in hiveq/contract/models.py)."""

from __future__ import annotations

from typing import Protocol

from hiveq.contract.errors import ValidationFailed
from hiveq.contract.models import Plan, TaskRequest
from hiveq.settings import Settings


class Planner(Protocol):
    name: str

    async def plan(self, request: TaskRequest, settings: Settings) -> Plan: ...


PLANNERS: dict[str, Planner] = {}


def register_planner(planner: Planner) -> Planner:
    PLANNERS[planner.name] = planner
    return planner


def get_planner(name: str) -> Planner:
    try:
        return PLANNERS[name]
    except KeyError:
        known = ", ".join(sorted(PLANNERS))
        raise ValidationFailed("planner", f"unknown planner {name!r}; use one of: {known}") from None
