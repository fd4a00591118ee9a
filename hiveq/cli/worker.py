"""`hiveq worker`: run worker processes that claim jobs and run their agents.

    hiveq worker --agents demo,llm --concurrency 20 --processes 2 --module myapp.agents

Exit codes: 0 stopped cleanly (SIGTERM/SIGINT: running jobs finish within HIVEQ_SHUTDOWN_GRACE,
the rest are handed back), 2 configuration error (unknown agent, module that does not import).
"""

from __future__ import annotations

from typing import Annotated

import typer

from hiveq.cli.common import error_boundary, global_options, settings
from hiveq.logs import setup_logging
from hiveq.worker.main import run_worker_processes


def worker(
    ctx: typer.Context,
    agents: Annotated[
        str | None,
        typer.Option("--agents", help="Comma-separated agents to serve (default: every registered)."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, help="Jobs at once per process (HIVEQ_CONCURRENCY)."),
    ] = None,
    processes: Annotated[
        int, typer.Option("--processes", "-p", min=1, max=256, help="Worker processes.")
    ] = 1,
    module: Annotated[
        list[str] | None,
        typer.Option("--module", "-m", help="Module with @agent functions (repeatable, HIVEQ_AGENT_MODULES)"),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
    log_format: Annotated[
        str, typer.Option("--log-format", help="text or json (one object per line).")
    ] = "text",
) -> None:
    """Run workers: claim jobs, run their agents, record results; SIGTERM stops them cleanly."""
    s = settings(ctx)
    with error_boundary(global_options(ctx).debug):
        setup_logging(log_level, log_format, secrets=s.secrets)
        names = [a for a in agents.split(",") if a.strip()] if agents else None
        code = run_worker_processes(
            s, agents=names, concurrency=concurrency, processes=processes, modules=module or []
        )
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
