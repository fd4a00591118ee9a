"""`hiveq demo`: a throwaway stack runs the seed task end to end while you watch, then stops.

Everything happens for real: an embedded Valkey in a temp dir, the API, worker processes, the
template planner and the demo agent (offline; it says it is a demo). Nothing is left behind.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from hiveq.cli.common import connect, console, error_boundary, global_options, run, settings
from hiveq.cli.stack import Stack, StackOptions
from hiveq.cli.submit import show_plan
from hiveq.cli.watch import custody, follow, render_summary
from hiveq.contract.errors import ExitCode
from hiveq.contract.models import TaskRequest
from hiveq.contract.redact import redact
from hiveq.contract.states import TaskStatus
from hiveq.queue.events import last_event_id
from hiveq.server import free_port
from hiveq.settings import Settings
from hiveq.submit import submit_task

SEED = "Build a user authentication system"


async def run_seed(s: Settings, description: str, priority: int) -> int:
    async with connect(s, role="demo", write=True) as b:
        after = await last_event_id(b)
        done = await submit_task(b, TaskRequest(description=description, priority=priority))
        show_plan(done)
        snap = await follow(b, done.task_id, console, after=after)
        console.rule("results")
        render_summary(console, snap, await custody(b, snap.jobs))
    return ExitCode.OK if snap.task.status == TaskStatus.SUCCEEDED else ExitCode.FAILURE


def demo_cmd(
    ctx: typer.Context,
    description: Annotated[str, typer.Option(help="The task to run.")] = SEED,
    priority: Annotated[int, typer.Option(min=1, max=10)] = 1,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, max=16, help="Worker processes.")] = 2,
    port: Annotated[int | None, typer.Option(help="API port (default: a free one).")] = None,
) -> None:
    """Run the seed task on a throwaway local stack with a live view, print who ran what, stop."""
    s = settings(ctx, from_stack=False)
    explicit_redis = global_options(ctx).redis_url is not None
    code: int = ExitCode.FAILURE
    with tempfile.TemporaryDirectory(prefix="hiveq-demo-") as tmp, error_boundary(global_options(ctx).debug):
        options = StackOptions(
            data_dir=None if explicit_redis else Path(tmp) / "data",
            port=port or free_port(),
            workers=workers,
            log_level="warning",
            output=Path(tmp) / "stack.log",  # the live view tells the story; logs would interleave with it
        )
        stack = Stack(s, options, log=lambda line: console.print(line))
        try:
            console.print("[bold]hiveq demo[/]: starting Redis, the API and workers …")
            stack.start()
            stack.wait_ready()
            console.print(
                f"  API {stack.api_url}  dashboard {stack.api_url}/dashboard/  "
                f"Redis {redact(stack.settings.redis_url)}  namespace {stack.settings.namespace}"
            )
            code = run(run_seed(stack.settings, description, priority))
        finally:
            stack.stop()
    console.print(
        "demo finished; the stack is stopped" + ("" if code == ExitCode.OK else " (the task did not succeed)")
    )
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
