"""`hiveq doctor [--json] [--sample SECONDS]` and `hiveq why JOB [--json]`.

Exit codes: 0 when no check failed, 1 when one did (so it can gate a deploy), 3 for an unknown
job id, 5 when Redis cannot be reached at all for `why`.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from hiveq.cli.common import console, print_json, run, settings
from hiveq.contract.errors import ExitCode
from hiveq.diagnose.doctor import run_doctor
from hiveq.diagnose.monitor import MAX_SAMPLE_S
from hiveq.diagnose.report import DoctorReport, Verdict
from hiveq.diagnose.why import Why, why
from hiveq.queue.broker import Broker
from hiveq.settings import Settings

MARK = {
    Verdict.OK: "[green]ok  [/green]",
    Verdict.WARN: "[yellow]warn[/yellow]",
    Verdict.FAIL: "[red]FAIL[/red]",
}


async def _doctor(s: Settings, sample_s: float) -> DoctorReport:
    # No namespace claim: the doctor must work on a Redis it cannot write to, or one that is down.
    b = await Broker.connect(s, role="doctor", check_namespace=False)
    try:
        return await run_doctor(b, sample_s=sample_s)
    finally:
        await b.close()


async def _why(s: Settings, job_id: str) -> Why:
    # Read-only: asking about a mistyped namespace must not create it.
    b = await Broker.connect(s, role="cli", check_namespace=False)
    try:
        return await why(b, job_id)
    finally:
        await b.close()


def render(report: DoctorReport) -> None:
    where = f"[bold]{escape(report.namespace)}[/bold] on {escape(report.redis_url)}"
    console.print(f"hiveq doctor: namespace {where}", emoji=False)
    for c in report.checks:
        console.print(
            f"{MARK[c.verdict]} [bold]{escape(c.name)}[/bold]: {escape(c.summary)}",
            soft_wrap=True,
            emoji=False,
        )
        lines = c.lines()
        if c.verdict != Verdict.OK:
            for line in lines[:20]:
                console.print(f"       · {escape(str(line))}", soft_wrap=True, emoji=False)
            if len(lines) > 20:
                console.print(f"       · … {len(lines) - 20} more (use --json)", emoji=False)
        if c.fix and c.verdict != Verdict.OK:
            console.print(f"       [cyan]fix:[/cyan] {escape(c.fix)}", soft_wrap=True, emoji=False)
    fails = sum(c.verdict == Verdict.FAIL for c in report.checks)
    warns = sum(c.verdict == Verdict.WARN for c in report.checks)
    tail = "[red]problems found[/red]" if fails else "[green]no failures[/green]"
    console.print(f"{tail}: {fails} fail, {warns} warn, {len(report.checks)} checks in {report.took_ms} ms")


def register(app: typer.Typer) -> None:
    """Add the `doctor` and `why` commands to the `hiveq` CLI."""

    @app.command("doctor")
    def doctor_cmd(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
        sample: Annotated[
            float,
            typer.Option(
                "--sample",
                metavar="SECONDS",
                min=0,
                max=MAX_SAMPLE_S,
                help="Also watch commands (MONITOR) this long, to name who touches our keys.",
            ),
        ] = 0,
    ) -> None:
        """Find who is taking your jobs, and everything else that makes jobs vanish or stall."""
        report = run(_doctor(settings(ctx), sample))
        if as_json:
            print_json(report)
        else:
            render(report)
        if not report.ok:
            raise typer.Exit(int(ExitCode.FAILURE))

    @app.command("why")
    def why_cmd(
        ctx: typer.Context,
        job_id: Annotated[str, typer.Argument(metavar="JOB", help="A job id (task id.subtask id).")],
        as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    ) -> None:
        """Why a job is not running yet, or how it ended, in plain words."""
        answer = run(_why(settings(ctx), job_id))
        if as_json:
            print_json(answer)
        else:
            console.print(
                f"[bold]{escape(answer.job_id)}[/bold] ({answer.state}): {escape(answer.summary)}",
                soft_wrap=True,
            )
