"""The llm planner: asks any OpenAI-compatible endpoint for a JSON plan and validates it against
the same schema as explicit subtasks. On any failure (no endpoint configured, network, bad JSON,
a bad graph) it falls back to the template planner and the plan's note says why."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hiveq.contract.errors import HiveqError
from hiveq.contract.models import DEFAULT_AGENT, Plan, SubtaskSpec, TaskRequest
from hiveq.contract.validate import validate_graph
from hiveq.plan.template import template_plan
from hiveq.settings import Settings

SYSTEM_PROMPT = """You plan work for a team of AI agents. Split the user's task into 2-8 subtasks.
Answer with JSON only, exactly this shape:
{"subtasks": [{"id": "short_id", "title": "what this step does", "instructions": "details",
"depends_on": ["ids of earlier steps it needs"]}]}
Ids are 1-64 characters of a-z, 0-9, '_' or '-'. Dependencies must form a DAG."""


class _LLMStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    title: str = Field(default="", max_length=200)
    instructions: str = ""
    depends_on: list[str] = Field(default_factory=list)


class _LLMPlan(BaseModel):
    model_config = ConfigDict(extra="ignore")

    subtasks: list[_LLMStep]


def parse_llm_plan(text: str, request: TaskRequest, settings: Settings) -> list[SubtaskSpec]:
    """Validate the model's answer; raises ValueError (with a readable reason) when it is unusable."""
    try:
        raw: Any = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the answer is not JSON ({exc})") from None
    try:
        steps = _LLMPlan.model_validate(raw).subtasks
        subtasks = [
            SubtaskSpec(
                id=s.id,
                agent=request.agent or DEFAULT_AGENT,
                title=s.title or None,
                input={"task": request.description, "step": s.id, "instructions": s.instructions or s.title},
                depends_on=s.depends_on,
            )
            for s in steps
        ]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"the answer does not match the plan schema ({where}: {first['msg']})") from None
    try:
        validate_graph(subtasks, settings.limits.max_subtasks)
    except HiveqError as exc:
        raise ValueError(f"the planned graph is invalid ({exc})") from None
    return subtasks


async def ask_llm(request: TaskRequest, settings: Settings) -> str:
    from openai import AsyncOpenAI  # optional dependency: pip install "hiveq[llm]"

    llm = settings.llm
    client = AsyncOpenAI(
        base_url=llm.base_url,
        api_key=llm.api_key or "not-needed",
        timeout=llm.timeout_s,
        max_retries=llm.max_retries,
    )
    try:
        resp = await client.chat.completions.create(
            model=llm.model,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": request.description},
            ],
            response_format={"type": "json_object"},
            temperature=0,
        )
    finally:
        await client.close()
    content = resp.choices[0].message.content if resp.choices else None
    if not content:
        raise ValueError("the answer was empty")
    return content


class LLMPlanner:
    name = "llm"

    async def plan(self, request: TaskRequest, settings: Settings) -> Plan:
        if not settings.llm.base_url and not settings.llm.api_key:
            return template_plan(
                request,
                note=(
                    "llm planner fell back to the template planner: no LLM endpoint is configured "
                    "(set HIVEQ_LLM_BASE_URL and/or HIVEQ_LLM_API_KEY)"
                ),
            )
        try:
            subtasks = parse_llm_plan(await ask_llm(request, settings), request, settings)
        except ImportError:
            reason = "the openai package is not installed (pip install 'hiveq[llm]')"
        except Exception as exc:  # any failure of the endpoint or the answer means: fall back
            reason = f"{type(exc).__name__}: {exc}"[:500]
        else:
            return Plan(planner="llm", subtasks=subtasks, note=f"planned by {settings.llm.model}")
        return template_plan(request, note=f"llm planner fell back to the template planner: {reason}")
