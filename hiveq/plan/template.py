"""The template planner: deterministic and offline. It recognises a few kinds of request by
keywords and lays out a small, fixed graph of steps for each (a chain: every step needs the one
before it, so results flow forward)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hiveq.contract.models import DEFAULT_AGENT, Plan, SubtaskSpec, TaskRequest
from hiveq.settings import Settings


@dataclass(frozen=True)
class Template:
    kind: str
    keywords: tuple[str, ...]
    steps: tuple[tuple[str, str], ...]  # (subtask id, what the step does)


# Checked in order; the first template with a matching keyword wins.
TEMPLATES: tuple[Template, ...] = (
    Template(
        "bugfix",
        ("fix", "bug", "crash", "error", "regression", "broken", "failing"),
        (
            ("reproduce", "Reproduce the problem and write a failing test"),
            ("diagnose", "Find the root cause"),
            ("fix", "Fix the cause"),
            ("verify", "Verify the fix and check for regressions"),
        ),
    ),
    Template(
        "data_pipeline",
        ("pipeline", "etl", "ingest", "dataset", "data"),
        (
            ("extract", "Extract the source data"),
            ("transform", "Clean and transform it"),
            ("load", "Load it into the destination"),
            ("validate", "Validate row counts and data quality"),
        ),
    ),
    Template(
        "research",
        ("research", "report", "analyze", "analyse", "compare", "investigate", "survey"),
        (
            ("gather", "Gather sources and facts"),
            ("analyze", "Analyze and compare what was found"),
            ("write", "Write the report"),
            ("review", "Review the report for accuracy and gaps"),
        ),
    ),
    Template(
        "build",
        ("build", "implement", "create", "add", "develop", "design", "system", "feature"),
        (
            ("design", "Design the solution: components, interfaces, data model"),
            ("implement", "Implement the design"),
            ("test", "Write and run the tests"),
            ("document", "Document how to use and operate it"),
        ),
    ),
)
GENERIC = Template(
    "generic",
    (),
    (
        ("plan", "Work out the steps"),
        ("execute", "Carry them out"),
        ("review", "Check the outcome against the request"),
    ),
)


def choose_template(description: str) -> Template:
    words = set(re.findall(r"[a-z]+", description.lower()))
    for t in TEMPLATES:
        if words.intersection(t.keywords):
            return t
    return GENERIC


def template_plan(request: TaskRequest, note: str | None = None) -> Plan:
    template = choose_template(request.description)
    agent = request.agent or DEFAULT_AGENT
    subtasks: list[SubtaskSpec] = []
    previous: str | None = None
    for sid, what in template.steps:
        subtasks.append(
            SubtaskSpec(
                id=sid,
                agent=agent,
                title=f"{sid.capitalize()}: {what}"[:200],
                input={"task": request.description, "step": sid, "instructions": what, "kind": template.kind},
                depends_on=[previous] if previous else [],
            )
        )
        previous = sid
    return Plan(planner="template", subtasks=subtasks, note=note)


class TemplatePlanner:
    name = "template"

    async def plan(self, request: TaskRequest, settings: Settings) -> Plan:
        return template_plan(request)
