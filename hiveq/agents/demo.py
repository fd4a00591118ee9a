"""The `demo` agent: deterministic, offline and honest about it.

It calls no model. After `settings.worker.demo_delay_s` (reported as a few progress steps, so a demo
shows real progress) it returns a short, plausible artefact for the subtask, built from the
step's instructions, the task description and the results of the steps before it. Every result
says `"demo": true` and how to get real output.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from hiveq.agents.registry import AgentContext, agent

NOTE = "produced by hiveq's built-in demo agent: no model was called; run the `llm` agent for real output"

# step id (from the template planner) -> what an artefact of that step looks like
SHAPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "design": (
        "design notes",
        ("components and their responsibilities", "interfaces between them", "data model", "open questions"),
    ),
    "implement": ("implementation plan", ("modules to write", "order of work", "edge cases handled")),
    "test": ("test plan", ("unit tests for each component", "an end-to-end scenario", "failure cases")),
    "document": ("documentation outline", ("getting started", "configuration", "operations")),
    "reproduce": ("reproduction", ("steps to reproduce", "expected vs actual", "a failing test")),
    "diagnose": ("diagnosis", ("symptom", "root cause hypothesis", "evidence")),
    "fix": ("change summary", ("what changed", "why it fixes the cause", "risk")),
    "verify": ("verification", ("tests run", "regressions checked", "result")),
    "gather": ("source list", ("primary sources", "secondary sources", "gaps")),
    "analyze": ("analysis", ("findings", "comparison", "caveats")),
    "write": ("report draft", ("summary", "findings", "recommendation")),
    "review": ("review notes", ("accuracy", "completeness", "suggested edits")),
    "extract": ("extraction plan", ("sources", "schema", "volume")),
    "transform": ("transformation spec", ("cleaning rules", "joins", "derived fields")),
    "load": ("load plan", ("destination", "write mode", "idempotency")),
    "validate": ("validation report", ("row counts", "null checks", "data quality rules")),
}
STEPS = ("reading the subtask", "drafting", "checking against the request")


def _text(value: Any, limit: int = 120) -> str:
    s = " ".join(str(value).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def artefact(ctx: AgentContext) -> dict[str, Any]:
    """The deterministic output for one subtask (same inputs, same artefact)."""
    inp = ctx.input if isinstance(ctx.input, dict) else {"instructions": ctx.input}
    step = str(inp.get("step") or ctx.subtask_id)
    instructions = _text(inp.get("instructions") or inp.get("prompt") or step)
    request = _text(inp.get("task") or ctx.description or "the request")
    kind, sections = SHAPES.get(step, ("result", ("approach", "outcome", "next steps")))
    seed = hashlib.sha256(f"{request}|{step}".encode()).hexdigest()[:8]
    lines = [f"{kind.capitalize()} for: {request}", f"Step: {instructions}"]
    lines += [f"- {s}: drafted for '{request[:60]}'" for s in sections]
    if ctx.dependency_results:
        lines.append("Builds on: " + ", ".join(sorted(ctx.dependency_results)))
    return {
        "demo": True,
        "note": NOTE,
        "kind": kind,
        "step": step,
        "summary": f"{kind} for {request!r} ({len(sections)} sections)",
        "artefact": "\n".join(lines),
        "uses": sorted(ctx.dependency_results),
        "fingerprint": seed,
    }


@agent("demo")
async def demo(ctx: AgentContext) -> dict[str, Any]:
    delay = ctx.settings.worker.demo_delay_s
    for i, message in enumerate(STEPS):
        await ctx.progress(i / len(STEPS), message)
        if delay:
            await asyncio.sleep(delay / len(STEPS))
        if ctx.is_cancelled():
            raise asyncio.CancelledError
    return artefact(ctx)
