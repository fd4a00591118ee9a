"""The planning step: what a client asks for (`TaskRequest`), what a planner returns (`Plan`),
and the registry of planners by name."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from hiveq.errors import ValidationFailed
from hiveq.models import SubtaskSpec
from hiveq.settings import Settings

DEFAULT_AGENT = "demo"


class TaskRequest(BaseModel):
    """A task as a client submits it (the body of `POST /tasks`)."""

    model_config = ConfigDict(extra="forbid")

    # The bounds are checked in submit (with messages that say what to do); documented here.
    description: str = Field(
        description="What to do, in plain words; stored and returned as text",
        json_schema_extra={"minLength": 1, "maxLength": 10_000, "pattern": "\\S"},
    )
    priority: int = Field(default=5, ge=1, le=10, description="1 is the most urgent, 10 the least")
    planner: str | None = Field(
        default=None,
        description="template | explicit | llm; default: explicit when subtasks are given, "
        "else the server's default planner",
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free JSON kept with the task")
    subtasks: list[SubtaskSpec] | None = Field(
        default=None, description="For the explicit planner: the subtasks with their depends_on"
    )
    agent: str | None = Field(
        default=DEFAULT_AGENT, description="The agent that template and llm planned subtasks use"
    )


class Plan(BaseModel):
    """What a planner made of a request: the subtask graph, and a note (e.g. why it fell back)."""

    planner: str
    subtasks: list[SubtaskSpec]
    note: str | None = None


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
