"""`hiveq recover JOB` and `hiveq recover --all`: put vanished jobs back where they belong;
`hiveq recover --from-archive`: resubmit the accepted tasks Redis lost, as the archive knows
them (cli/archive.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from hiveq.cli.archive import recover_from_archive
from hiveq.cli.common import connect, console, err_console, fail, print_json, run, settings
from hiveq.cli.watch import styled
from hiveq.contract.errors import Conflict, ExitCode
from hiveq.contract.states import JobState
from hiveq.queue.vanish import recover, recover_all


def recover_cmd(
    ctx: typer.Context,
    job_id: Annotated[str | None, typer.Argument(metavar="[JOB]", help="The vanished job.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every vanished job of the namespace.")] = False,
    from_archive: Annotated[
        bool,
        typer.Option(
            "--from-archive",
            help="After Redis lost data: resubmit the accepted, unfinished tasks the archive knows "
            "(same ids and idempotency keys; asks first, --yes).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --from-archive: do not ask.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Put a vanished job back where it belongs (waiting, blocked or delayed), counting one
    delivery; at the delivery limit it is dead-lettered instead. Exit 4 if it is not vanished.
    With --from-archive, resubmit the tasks Redis lost (docs/archive.md)."""
    s = settings(ctx)
    if from_archive:
        if job_id is not None or every:
            fail("--from-archive resubmits whole tasks: give no JOB and no --all with it", ExitCode.USAGE)
        recover_from_archive(s, yes=yes, as_json=as_json)
        return
    if (job_id is None) == (not every):
        fail("name one vanished job (`hiveq recover JOB`) or pass --all", ExitCode.USAGE)

    async def go() -> list[tuple[str, JobState | Conflict]]:
        async with connect(s, write=True) as b:
            if job_id is not None:
                return [(job_id, await recover(b, job_id, f"the CLI ({b.identity})"))]
            return await recover_all(b, f"the CLI ({b.identity})")

    outcomes = run(go())
    refused = [(j, o) for j, o in outcomes if isinstance(o, Conflict)]
    if as_json:
        print_json(
            {
                "recovered": {j: o.value for j, o in outcomes if isinstance(o, JobState)},
                "refused": {j: str(o) for j, o in refused},
            }
        )
    else:
        for j, o in outcomes:
            if isinstance(o, JobState):
                console.print(f"job {j}: recovered -> {styled(o.value)}")
            else:
                err_console.print(f"[red]job {j}: not recovered:[/] {escape(str(o))}", soft_wrap=True)
        if every and not outcomes:
            console.print(f"no vanished jobs in {s.namespace}")
    if refused:
        raise typer.Exit(ExitCode.CONFLICT)


def register(app: typer.Typer) -> None:
    app.command("recover")(recover_cmd)
