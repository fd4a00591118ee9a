"""`hiveq repair`: set aside the foreign values on hiveq's key names, so service resumes.

Lists what it found (key, the type found, the type hiveq keeps), asks (or `--yes`), then moves
each under `<prefix>aside:<suffix>:<ms>` with one script call (queue/repair.py); nothing is
deleted. Exit 0 when nothing is left foreign; 1 when a value could not be moved."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from hiveq.cli.common import connect, console, fail, print_json, run, settings
from hiveq.contract.errors import ExitCode
from hiveq.queue.repair import ForeignValue, SetAside, find_foreign, set_aside


def repair_cmd(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Find values of another Redis type on this namespace's keys (another application wrote
    them; scripts refuse those keys) and move each aside under `aside:<key>:<ms>` in the
    namespace: nothing is deleted, and paused workers resume within seconds."""
    s = settings(ctx)

    async def find() -> list[ForeignValue]:
        async with connect(s) as b:  # read-only: the namespace meta itself may be the foreign one
            return await find_foreign(b)

    found = run(find())
    if not found:
        if as_json:
            print_json({"found": [], "moved": []})
        else:
            console.print(f"no foreign values on {s.namespace}'s keys: nothing to repair")
        return
    if not as_json:
        for f in found:
            console.print(f"{escape(f.key)}: holds a {f.found}, hiveq keeps a {f.expected} there")
    question = (
        f"move these {len(found)} value(s) aside under {s.namespace}'s aside: keys (nothing is deleted)?"
    )
    if not yes and not typer.confirm(question, err=as_json):  # stdout stays pure JSON
        fail("not confirmed; nothing moved", ExitCode.FAILURE)

    async def move() -> list[SetAside]:
        async with connect(s) as b:
            return [await set_aside(b, f) for f in found]

    moved = run(move())
    if as_json:
        print_json(
            {
                "found": [{"key": f.key, "found": f.found, "expected": f.expected} for f in found],
                "moved": [{"key": m.key, "found": m.found, "moved_to": m.moved_to} for m in moved],
            }
        )
    else:
        for m in moved:
            if m.moved_to:
                console.print(f"moved {escape(m.key)} (a {m.found}) -> {escape(m.moved_to)}")
            else:
                console.print(f"{escape(m.key)}: no longer foreign (holds a {m.found}); left as is")
    if any(not m.moved_to and m.found not in ("none", f.expected) for m, f in zip(moved, found, strict=True)):
        raise typer.Exit(ExitCode.FAILURE)


def register(app: typer.Typer) -> None:
    app.command("repair")(repair_cmd)
