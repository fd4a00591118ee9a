"""The `hiveq` command: global options, then the commands each module registers."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from hiveq.cli import (
    admin,
    archive,
    demo,
    doctor,
    limits,
    recover,
    repair,
    schedules,
    signal,
    submit,
    up,
    watch,
    worker,
)
from hiveq.cli.common import GlobalOptions, err_console
from hiveq.contract.errors import ExitCode
from hiveq.contract.protocol import VERSION

app = typer.Typer(
    name="hiveq",
    help="Run AI-agent work on Redis: no job ever disappears silently, and you can always see who took it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hiveq {VERSION}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="Redis URL (default: env REDIS_URL).", show_default=False),
    ] = None,
    app_name: Annotated[
        str | None, typer.Option("--app", help="Namespace app name (default: env HIVEQ_APP or 'default').")
    ] = None,
    env: Annotated[
        str | None, typer.Option("--env", help="Namespace environment (default: env HIVEQ_ENV or 'dev').")
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", envvar="HIVEQ_DEBUG", help="Show tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Global options come before the command: `hiveq --app shop tasks`."""
    if debug:
        os.environ["HIVEQ_DEBUG"] = "1"
    ctx.obj = GlobalOptions(redis_url=redis_url, app=app_name, env=env, debug=debug)


for module in (up, demo, submit, watch, admin, limits, signal, recover, repair, archive, schedules):
    module.register(app)
worker.register(app)
doctor.register(app)


def main() -> None:
    """Entry point: usage errors, too, are one line on stderr (exit 2), not a framed box."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(ExitCode.FAILURE)
    except typer.TyperException as exc:
        message = exc.format_message()
        if "\n" in message.strip():  # `hiveq` alone: the help text
            err_console.print(message, markup=False)
        else:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            err_console.print(f"[red]error:[/red] {escape(message)}{hint}", soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", ExitCode.USAGE))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
