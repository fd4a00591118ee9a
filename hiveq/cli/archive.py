"""`hiveq archiver` (run the archiver, or show its lag with --status, or --detach the archive) and
`hiveq recover --from-archive` (resubmit what Redis lost, as the archive remembers it).

    HIVEQ_ARCHIVE_URL=postgresql://hiveq@db/hiveq hiveq archiver
    hiveq archiver --status
    hiveq recover --from-archive --yes
"""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer
from rich.markup import escape

from hiveq.cli.common import connect as connect_broker
from hiveq.cli.common import console, err_console, fail, print_json, run, settings
from hiveq.contract.errors import ExitCode, HiveqError
from hiveq.logs import setup_logging
from hiveq.queue import archiving
from hiveq.settings import Settings

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
NO_ARCHIVE = "no archive configured: set HIVEQ_ARCHIVE_URL (e.g. sqlite:///.hiveq/archive.db)"


async def run_archiver(s: Settings) -> None:
    """The archiver until SIGINT/SIGTERM."""
    from hiveq.archive.archiver import Archiver

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await Archiver(s).run(stop)


async def status(s: Settings) -> dict[str, object]:
    from hiveq.archive import query
    from hiveq.archive.read import Archive

    async with connect_broker(s) as b:
        lag = await archiving.lag(b)
    out: dict[str, object] = {
        "namespace": s.namespace,
        "attached": lag.attached,
        "archiver": lag.holder or None,
        "lag_seconds": round(lag.seconds, 3),
        "pending": lag.pending,
        "undelivered": lag.undelivered,
        "stream_length": lag.stream_length,
    }
    archive = Archive.of(s)
    if archive is not None:
        try:
            out["archive"] = {"url": archive.where, **(await archive.call(query.stats))}
        except HiveqError as exc:
            out["archive"] = {"url": archive.where, "error": str(exc)}
        finally:
            archive.close()
    return out


def archiver_cmd(
    ctx: typer.Context,
    show: Annotated[
        bool, typer.Option("--status", help="Show the archive's lag and holder, then exit.")
    ] = False,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Stop using an archive for this namespace: Redis trims the stream and expires "
            "finished tasks as without one again (asks first; --yes).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
    as_json: JsonOpt = False,
) -> None:
    """Follow the event stream into the archive (HIVEQ_ARCHIVE_URL); one runs at a time per
    namespace, others wait to take over."""
    s = settings(ctx)
    if show:
        got = run(status(s))
        if as_json:
            print_json(got)
            return
        who = got["archiver"] or "none running"
        console.print(
            f"archive of {s.namespace}: {'attached' if got['attached'] else 'not attached'}; archiver: "
            f"{escape(str(who))}; lag {got['lag_seconds']}s ({got['pending']} read, "
            f"{got['undelivered']} not read yet; stream {got['stream_length']} entries)"
        )
        if "archive" in got:
            console.print(f"archive: {escape(str(got['archive']))}")
        return
    if detach:
        if not yes:
            typer.confirm(f"detach the archive from {s.namespace}?", abort=True, err=True)

        async def off() -> str:
            async with connect_broker(s, write=True) as b:
                st = await archiving.lease(b, "cli-detach", "detach", 0)
            return st.holder

        holder = run(off())
        if holder:
            fail(f"archiver {holder} is running for {s.namespace}; stop it first", ExitCode.CONFLICT)
        console.print(f"{s.namespace}: archive detached")
        return
    from hiveq.archive.db import redacted

    url = s.archive.archive_url
    if not url:
        fail(NO_ARCHIVE, ExitCode.USAGE)
    setup_logging(log_level, "text")
    err_console.print(f"archiver for {s.namespace} -> {redacted(url)}")
    run(run_archiver(s))


def recover_from_archive(s: Settings, *, yes: bool, as_json: bool) -> None:
    """`hiveq recover --from-archive`: list the accepted tasks that are unfinished in the archive
    and missing from Redis, then resubmit them with the same ids and idempotency keys (asks
    first; --yes)."""
    from hiveq.archive.loss import lost_tasks, recover
    from hiveq.archive.read import Archive

    archive = Archive.of(s)
    if archive is None:
        fail(NO_ARCHIVE, ExitCode.USAGE)

    async def go() -> None:
        async with connect_broker(s, write=True) as b:
            lost = await lost_tasks(b, archive)
            if not lost:
                if as_json:
                    print_json({"lost": [], "recovered": []})
                else:
                    console.print(f"{s.namespace}: nothing lost (every unfinished archived task is in Redis)")
                return
            if not as_json:
                console.print(
                    f"{len(lost)} accepted task(s) unfinished in the archive and missing from Redis:"
                )
                for t in lost:
                    console.print(
                        f"  {t.task_id}  {t.status}  {t.subtasks} subtask(s)  {escape(t.description[:60])}"
                    )
            if not yes and not typer.confirm(f"resubmit {len(lost)} task(s)?", err=True):
                raise typer.Abort()
            done = await recover(b, archive, [t.task_id for t in lost])
        if as_json:
            print_json({"lost": lost, "recovered": [e.task_id for e in done]})
        else:
            console.print(f"resubmitted {len(done)} task(s) with their ids and idempotency keys")

    try:
        run(go())
    finally:
        archive.close()


def register(app: typer.Typer) -> None:
    app.command("archiver")(archiver_cmd)  # `recover --from-archive` is in recover.py
