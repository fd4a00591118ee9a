"""Planners: template (deterministic, offline), explicit (graph validated) and the registry."""

from __future__ import annotations

from typing import Any

import pytest

from hiveq.contract.errors import ValidationFailed
from hiveq.contract.models import SubtaskSpec, TaskRequest
from hiveq.contract.validate import validate_graph
from hiveq.plan import PLANNERS, get_planner
from hiveq.settings import Settings

SETTINGS = Settings()


async def plan(description: str, **kw: Any) -> list[SubtaskSpec]:
    p = await get_planner("template").plan(TaskRequest(description=description, **kw), SETTINGS)
    return p.subtasks


async def test_template_plans_auth_system_as_design_implement_test_document_chain() -> None:
    subs = await plan("Build a user authentication system")
    assert [s.id for s in subs] == ["design", "implement", "test", "document"]
    assert [s.depends_on for s in subs] == [[], ["design"], ["implement"], ["test"]]
    assert {s.agent for s in subs} == {"demo"}
    assert validate_graph(subs, 100) == ["design", "implement", "test", "document"]
    assert subs[0].input["task"] == "Build a user authentication system"


@pytest.mark.parametrize(
    ("description", "first", "last"),
    [
        ("Fix the crash when the cart is empty", "reproduce", "verify"),
        ("Write a research report comparing vector databases", "gather", "review"),
        ("Set up an ETL pipeline from Postgres to S3", "extract", "validate"),
        ("Water the office plants", "plan", "review"),
    ],
)
async def test_template_gives_each_kind_of_request_its_own_steps(
    description: str, first: str, last: str
) -> None:
    subs = await plan(description)
    assert (subs[0].id, subs[-1].id) == (first, last)


async def test_template_is_deterministic_and_uses_the_requested_agent() -> None:
    a = await plan("Build a payments service", agent="llm")
    b = await plan("Build a payments service", agent="llm")
    assert a == b
    assert {s.agent for s in a} == {"llm"}


async def test_explicit_planner_keeps_the_clients_subtasks() -> None:
    subs = [SubtaskSpec(id="a", agent="demo"), SubtaskSpec(id="b", agent="demo", depends_on=["a"])]
    p = await get_planner("explicit").plan(TaskRequest(description="x", subtasks=subs), SETTINGS)
    assert p.planner == "explicit"
    assert p.subtasks == subs


@pytest.mark.parametrize(
    ("subtasks", "field", "rule"),
    [
        ([("a", ["b"]), ("b", ["a"])], "subtasks", "cycle"),
        ([("a", ["nope"])], "subtasks[0].depends_on", "unknown subtask 'nope'"),
        ([("a", []), ("a", [])], "subtasks[1].id", "duplicate"),
        ([(f"s{i}", []) for i in range(4)], "subtasks", "over the limit of 3"),
        ([], "subtasks", "at least one subtask"),
    ],
)
def test_bad_graphs_are_refused_naming_field_and_rule(
    subtasks: list[tuple[str, list[str]]], field: str, rule: str
) -> None:
    """The one graph check (enqueue runs it for every planner's plan)."""
    specs = [SubtaskSpec(id=i, agent="demo", depends_on=d) for i, d in subtasks]
    with pytest.raises(ValidationFailed) as err:
        validate_graph(specs, 3)
    assert err.value.field == field
    assert rule in err.value.rule


async def test_explicit_planner_refuses_a_request_without_subtasks() -> None:
    with pytest.raises(ValidationFailed) as err:
        await get_planner("explicit").plan(TaskRequest(description="x", subtasks=[]), SETTINGS)
    assert (err.value.field, "non-empty" in err.value.rule) == ("subtasks", True)


def test_unknown_planner_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationFailed) as err:
        get_planner("magic")
    assert err.value.field == "planner"
    assert "explicit, llm, template" in err.value.rule
    assert set(PLANNERS) == {"template", "explicit", "llm"}
