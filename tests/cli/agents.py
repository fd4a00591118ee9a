"""Agents for the CLI tests, loaded by worker subprocesses with `--module tests.cli.agents`."""

from __future__ import annotations

from hiveq import AgentContext, agent


@agent("always_fails")
async def always_fails(ctx: AgentContext) -> None:
    raise RuntimeError(f"always_fails refuses {ctx.subtask_id} (test agent)")
