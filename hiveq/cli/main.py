"""The `hiveq` command: global options, then the commands each module registers."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from hiveq import __version__
from hiveq.cli import admin, demo, doctor, submit, up, watch, worker
from hiveq.cli.common import GlobalOptions

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
        typer.echo(f"hiveq {__version__}")
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


for module in (up, demo, submit, watch, admin):
    module.register(app)
worker.register(app)
doctor.register(app)


def main() -> None:
    app()
