"""`hiveq submit`: plan and enqueue a task straight into Redis (no API needed), optionally wait."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hiveq.cli.common import connect, console, fail, print_json, run, settings
from hiveq.cli.watch import finish, follow
from hiveq.contract.errors import ExitCode, ValidationFailed
from hiveq.contract.jsonrules import parse_json
from hiveq.contract.models import TaskRequest
from hiveq.queue.events import last_event_id
from hiveq.submit import Submitted, submit_response, submit_task


def parse_metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = parse_json(raw, "--metadata")  # the API's rules: no NaN, bounded depth, real text
    except ValidationFailed as exc:
        fail(f'{exc}; pass an object like \'{{"team": "auth"}}\'', ExitCode.USAGE)
    if not isinstance(value, dict):
        fail('--metadata must be a JSON object like \'{"team": "auth"}\'', ExitCode.USAGE)
    return value


def show_plan(done: Submitted) -> None:
    dup = " [yellow](duplicate: an earlier task had this idempotency key)[/]" if done.duplicate else ""
    console.print(f"task [bold]{done.task_id}[/] submitted, planner {done.plan.planner}{dup}")
    if done.plan.note:
        console.print(f"[yellow]note:[/] {escape(done.plan.note)}")
    table = Table("subtask", "agent", "title", "depends on")
    for st in done.plan.subtasks:
        table.add_row(escape(st.id), st.agent, escape(st.title or ""), ", ".join(st.depends_on) or "-")
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("submit")
    def submit_cmd(
        ctx: typer.Context,
        description: Annotated[str, typer.Argument(help="What the task should do, in plain words.")],
        priority: Annotated[int, typer.Option("--priority", "-p", min=1, max=10, help="1 most urgent.")] = 5,
        planner: Annotated[
            str | None, typer.Option(help="template | explicit | llm (default: server's).")
        ] = None,
        agent: Annotated[str, typer.Option(help="Agent the planned subtasks use.")] = "demo",
        metadata: Annotated[str | None, typer.Option(help="JSON object kept with the task.")] = None,
        idempotency_key: Annotated[
            str | None, typer.Option(help="Submitting twice gives the same task.")
        ] = None,
        run_at: Annotated[
            str | None,
            typer.Option("--run-at", help="Start no earlier than this ISO 8601 time with its zone."),
        ] = None,
        delay: Annotated[
            float | None, typer.Option("--delay", help="Start no earlier than this many seconds from now.")
        ] = None,
        wait: Annotated[
            bool, typer.Option("--wait", "-w", help="Follow it; exit 0 on success, 1 if not.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Submit a task; prints its id and plan. With --wait, shows progress and the results."""
        s = settings(ctx)
        request = {
            "description": description,
            "priority": priority,
            "planner": planner,
            "agent": agent,
            "metadata": parse_metadata(metadata),
            "run_at": run_at,
            "delay_s": delay,
        }

        async def go() -> int:
            async with connect(s, write=True) as b:
                after = await last_event_id(b)  # before submitting: show every step, even fast ones
                req = TaskRequest.model_validate(request)
                done = await submit_task(b, req, idempotency_key=idempotency_key)
                if not wait:
                    if as_json:  # the same shape as the answer of POST /tasks
                        print_json(await submit_response(b, done, req.priority))
                    else:
                        show_plan(done)
                    return ExitCode.OK
                if not as_json:
                    show_plan(done)
                snap = await follow(b, done.task_id, console, after=after, quiet=as_json)
                return await finish(b, snap, console, as_json)

        raise typer.Exit(run(go()))
