"""`hiveq schedules`: recurring schedules in Redis (list, add, rm); docs/schedules.md."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hiveq.cli.common import connect, console, fail, print_json, run, settings
from hiveq.contract.errors import ExitCode, ValidationFailed
from hiveq.contract.jsonrules import parse_json
from hiveq.contract.views import ScheduleRequest, ScheduleView
from hiveq.schedule import store

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def schedules_app() -> typer.Typer:
    sub = typer.Typer(
        help="Recurring schedules: each cron tick submits a task, exactly once.", no_args_is_help=False
    )

    @sub.callback(invoke_without_command=True)
    def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
        """List schedules, soonest next run first (with no subcommand)."""
        if ctx.invoked_subcommand is not None:
            return
        s = settings(ctx)

        async def go() -> None:
            async with connect(s) as b:
                items = await store.list_schedules(b)
            if as_json:
                print_json({"items": items})
                return
            show(items, s.namespace)

        run(go())

    @sub.command("add")
    def add_cmd(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="1-64 of A-Z a-z 0-9 _ . -")],
        cron: Annotated[str, typer.Option("--cron", help="e.g. '0 9 * * *'; 6 fields: seconds first.")],
        task: Annotated[
            str, typer.Option("--task", help="The task, a POST /tasks body: '{\"description\": …}'.")
        ],
        tz: Annotated[str, typer.Option("--tz", help="IANA time zone the cron is read in.")] = "UTC",
        as_json: JsonOpt = False,
    ) -> None:
        """Add a schedule, or replace the one with this name. The task is checked now, as a submit."""
        s = settings(ctx)
        try:
            body = parse_json(task, "--task")
        except ValidationFailed as exc:
            fail(f'{exc}; pass an object like \'{{"description": "nightly report"}}\'', ExitCode.USAGE)
        if not isinstance(body, dict):
            fail('--task must be a JSON object like \'{"description": "nightly report"}\'', ExitCode.USAGE)

        async def go() -> None:
            async with connect(s, write=True) as b:
                view, created = await store.put(b, name, ScheduleRequest(cron=cron, tz=tz, task=body))
            if as_json:
                print_json(view)
                return
            verb = "added" if created else "replaced"
            console.print(
                f"schedule [bold]{escape(view.name)}[/] {verb}; next run {view.next_run} ({view.tz})"
            )

        run(go())

    @sub.command("rm")
    def rm_cmd(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
        """Remove a schedule (the tasks it fired stay)."""
        s = settings(ctx)

        async def go() -> None:
            async with connect(s, write=True) as b:
                await store.remove(b, name)
            console.print(f"schedule [bold]{escape(name)}[/] removed")

        run(go())

    return sub


def show(items: list[ScheduleView], namespace: str) -> None:
    table = Table(
        "name",
        "cron",
        "tz",
        "next run",
        "last fired",
        "last task",
        title=f"{len(items)} schedules in {namespace}",
        title_justify="left",
    )
    for v in items:
        last = v.last_fired or "-"
        if v.last_error:
            last += f" [red](no task: {escape(v.last_error)})[/]"
        table.add_row(escape(v.name), escape(v.cron), v.tz, v.next_run or "-", last, v.last_task_id or "-")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(schedules_app(), name="schedules")
