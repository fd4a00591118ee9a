"""The llm planner against a local OpenAI-compatible stand-in: a good plan is used; any failure
falls back to the template planner with a note that says why."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hiveq.contract.models import TaskRequest
from hiveq.plan import get_planner
from hiveq.settings import LLMSettings, Settings
from tests.support.fake_openai import FakeOpenAI, Reply, fake_openai

REQUEST = TaskRequest(description="Build a user authentication system")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with fake_openai() as f:
        yield f


def settings_for(fake: FakeOpenAI) -> Settings:
    return Settings(
        llm=LLMSettings(base_url=fake.base_url, api_key="k", model="m1", timeout_s=10, max_retries=0)
    )


async def test_llm_plan_is_validated_and_used(fake: FakeOpenAI) -> None:
    answer = {
        "subtasks": [
            {"id": "schema", "title": "Design the user schema", "instructions": "tables", "depends_on": []},
            {"id": "login", "title": "Login endpoint", "depends_on": ["schema"]},
            {"id": "signup", "title": "Signup endpoint", "depends_on": ["schema"]},
        ]
    }
    fake.script(Reply(text=json.dumps(answer)))
    p = await get_planner("llm").plan(REQUEST, settings_for(fake))
    assert p.planner == "llm"
    assert [(s.id, s.depends_on, s.agent) for s in p.subtasks] == [
        ("schema", [], "demo"),
        ("login", ["schema"], "demo"),
        ("signup", ["schema"], "demo"),
    ]
    sent = fake.requests[0].body
    assert sent["model"] == "m1"
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["messages"][-1]["content"] == REQUEST.description


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (Reply(text="Sure! Here is a plan: design, then build."), "not JSON"),
        (Reply(text=json.dumps({"steps": []})), "does not match the plan schema"),
        (Reply(text=json.dumps({"subtasks": [{"id": "a", "depends_on": ["a"]}]})), "graph is invalid"),
        (Reply(text=json.dumps({"subtasks": [{"id": "a b"}]})), "does not match the plan schema"),
        (Reply(status=500), "InternalServerError"),
    ],
)
async def test_llm_failure_falls_back_to_template_and_says_why(
    fake: FakeOpenAI, reply: Reply, why: str
) -> None:
    fake.script(reply)
    p = await get_planner("llm").plan(REQUEST, settings_for(fake))
    assert p.planner == "template"
    assert [s.id for s in p.subtasks] == ["design", "implement", "test", "document"]
    assert p.note is not None and "fell back to the template planner" in p.note and why in p.note


async def test_llm_without_endpoint_falls_back_without_a_network_call() -> None:
    p = await get_planner("llm").plan(REQUEST, Settings(llm=LLMSettings()))
    assert p.planner == "template"
    assert p.note is not None and "HIVEQ_LLM_BASE_URL" in p.note
