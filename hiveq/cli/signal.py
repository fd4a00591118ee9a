"""`hiveq signal JOB NAME --data JSON`: send a signal to a durable agent that waits for it (or
will: a signal sent early is kept until a wait of that name receives it)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from hiveq.cli.common import connect, console, fail, print_json, run, settings
from hiveq.contract.errors import ExitCode
from hiveq.queue.suspend import signal


def signal_cmd(
    ctx: typer.Context,
    job_id: Annotated[
        str, typer.Argument(metavar="JOB", help="The job id (`hiveq why JOB` says what it waits for).")
    ],
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The signal's name, as the agent waits for it.")
    ],
    data: Annotated[
        str, typer.Option("--data", help="The signal's data as JSON, e.g. '{\"ok\": true}'.")
    ] = "null",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Send signal NAME (with --data) to JOB: a job waiting for it resumes now, otherwise the signal
    is kept until the job waits for it (exit 3: unknown job, 4: the job has finished)."""
    s = settings(ctx)
    try:
        payload: Any = json.loads(data)
    except ValueError as exc:
        fail(
            f"--data: {data[:60]!r} is not valid JSON ({exc}); quote it, e.g. --data '{{\"ok\": true}}'",
            ExitCode.USAGE,
        )

    async def go() -> None:
        async with connect(s, write=True) as b:
            sent = await signal(b, job_id, name, payload, who=f"the CLI ({b.identity})")
        if as_json:
            print_json(sent)
        elif sent.delivered:
            console.print(f"job {job_id}: signal {name} delivered; the job resumes")
        else:
            console.print(
                f"job {job_id}: signal {name} kept ({sent.pending} waiting) until the job waits for it"
            )

    run(go())


def register(app: typer.Typer) -> None:
    app.command("signal")(signal_cmd)
