"""`hiveq up` (the whole stack in one command) and `hiveq serve` (the API alone)."""

from __future__ import annotations

import asyncio
import importlib
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from redis.exceptions import RedisError

from hiveq.cli import stackfile
from hiveq.cli.common import console, error_boundary, global_options, settings
from hiveq.cli.stack import Stack, StackOptions, port_free
from hiveq.contract.errors import ConfigError, Conflict, HiveqError
from hiveq.contract.redact import redact
from hiveq.contract.states import PENDING_JOB_STATES
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.server import free_port
from hiveq.settings import Settings

DEFAULT_REDIS_PORT = 6390


class StopFlag:
    """SIGINT/SIGTERM set it; a second signal asks for a fast stop."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signals = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals == 1:
            console.print("\nstopping: workers finish or hand back their jobs (Ctrl-C again to force)")
        self.event.set()

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


def redis_given(ctx: typer.Context) -> bool:
    return bool(
        global_options(ctx).redis_url or os.environ.get("REDIS_URL") or os.environ.get("HIVEQ_REDIS_URL")
    )


def grace_of(s: Settings) -> float:
    """How long workers may take to stop: their own grace plus a margin for start-up and release."""
    return s.worker.shutdown_grace_s + 10.0


async def leftover(s: Settings) -> dict[str, int]:
    b = await Broker.connect(s, role="up", ident=str(os.getpid()), check_namespace=False)
    try:
        return await inspect.counts(b)
    finally:
        await b.close()


def report_leftover(s: Settings) -> None:
    """Say what stays in Redis for the next start (best effort: shutdown goes on regardless)."""
    try:
        kept = asyncio.run(leftover(s))
    except (HiveqError, RedisError, OSError):
        return
    pending = {state.value for state in PENDING_JOB_STATES}
    unfinished = {k: v for k, v in kept.items() if k in pending and v}
    if unfinished:
        console.print("kept for the next start: " + ", ".join(f"{v} {k}" for k, v in unfinished.items()))


def hiveq_command() -> str:
    """How to run `hiveq` in a new terminal in this folder, so that a printed command works as
    printed: the bare name only when PATH finds this very script without an activated virtualenv
    (a new terminal has not activated it); else the script's path, relative when it is below here."""
    script = Path(sys.executable).with_name("hiveq")
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m hiveq"
    found = shutil.which("hiveq")
    venv = os.environ.get("VIRTUAL_ENV")
    activated = venv is not None and found is not None and Path(found).parent == Path(venv) / "bin"
    if found and Path(found).resolve() == script.resolve() and not activated:
        return "hiveq"
    try:
        return shlex.quote(str(script.absolute().relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(script.absolute()))


def print_banner(stack: Stack, embedded: bool) -> None:
    from hiveq.archive.db import redacted  # here: SQLAlchemy loads only for commands that use it

    s, o = stack.settings, stack.options
    where = (
        f"embedded {stack.server.kind if stack.server else 'server'}, AOF in {o.data_dir}"
        if embedded
        else "given"
    )
    slots = o.concurrency or s.worker.concurrency
    hiveq = hiveq_command()
    elsewhere = f"REDIS_URL={redact(s.redis_url)}" if embedded else "the same REDIS_URL"
    shown = redact(s.redis_url)  # a given REDIS_URL may hold a password: never print it
    # One print, so a reader of the output (a person or a test) never sees half a banner.
    console.print(
        "\n".join(
            [
                f"[bold green]hiveq is up[/]  namespace [bold]{s.namespace}[/]",
                f"  API        {stack.api_url}",
                f"  API docs   {stack.api_url}/docs",
                f"  dashboard  {stack.api_url}/dashboard/",
                f"  Redis      {shown}  ({where})",
                f"  workers    {o.workers} process(es) x {slots} slots; each also runs the maintenance "
                "loop (expired leases, due retries)",
                f"  archive    {redacted(s.archive.archive_url or '')}  (history; one worker at a time)",
                "In another terminal, in this folder (commands run here find this stack through "
                f"./{stackfile.STATE_DIR}/{stackfile.STATE_NAME}; elsewhere set {elsewhere}):",
                f'  [bold]{hiveq} submit "Build a user authentication system" --wait[/]',
                "Ctrl-C stops everything; unfinished jobs stay in Redis and resume on the next `hiveq up`.",
            ]
        ),
        markup=True,
        soft_wrap=True,
    )


DEFAULT_ARCHIVE = Path(".hiveq/archive.db")


def require_watchfiles() -> None:
    """`--reload` needs watchfiles: say so before anything starts, not after the stack is up."""
    try:
        importlib.import_module("watchfiles")
    except ImportError:
        raise ConfigError(
            '--reload needs the watchfiles package: install the reload extra (pip install -e ".[reload]" '
            "in a checkout of hiveq, or pip install 'hiveq[reload]')"
        ) from None


def refuse_second_stack_here() -> None:
    """One `up` per folder: a second one would take over ./.hiveq/stack.json from the first."""
    found = stackfile.find()
    if found.state is not None:
        raise Conflict(
            f"a `hiveq up` (pid {found.state.pid}, API {found.state.api_url}) already runs from this "
            "folder; stop it first, or start this one from another folder"
        )


def record(stack: Stack, embedded: bool) -> None:
    """Leave ./.hiveq/stack.json for the commands of a second terminal (removed when `up` stops)."""
    s = stack.settings
    state = stackfile.StackState(
        pid=os.getpid(),
        started_ms=int(time.time() * 1000),
        redis_url=s.redis_url,
        api_url=stack.api_url,
        app=s.app,
        env=s.env,
        embedded=embedded,
    )
    stackfile.write(state)


def supervise(stack: Stack, stop: StopFlag, reload: bool, poll: bool) -> None:
    """Keep the children running until a signal; with reload, restart API and workers on code changes."""
    if not reload:
        while not stop.event.wait(0.5):
            stack.check_children()
        return
    require_watchfiles()
    from watchfiles import PythonFilter, watch

    import hiveq

    paths = sorted({str(Path(hiveq.__file__).parent), os.getcwd()})
    console.print(f"reload: watching {', '.join(paths)}{' (polling)' if poll else ''}")
    for changes in watch(
        *paths,
        watch_filter=PythonFilter(),
        force_polling=poll or None,
        stop_event=stop.event,
        rust_timeout=500,
        yield_on_timeout=True,
        raise_interrupt=False,
    ):
        if stop.event.is_set():
            return
        if changes:
            console.print(f"reload: {len(changes)} file(s) changed; restarting API and workers")
            stack.stop_processes(grace_of(stack.settings))
            stack.start_api()
            stack.start_workers()
        else:
            stack.check_children()


def up_cmd(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="API port (default: HIVEQ_PORT or 8001).")] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="API bind address (default HIVEQ_HOST or 127.0.0.1; beyond loopback needs a token)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=0, max=64, help="Worker processes.")] = 2,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Slots per worker (HIVEQ_CONCURRENCY).")
    ] = None,
    module: Annotated[
        list[str] | None, typer.Option("--module", "-m", help="Import agents from module.")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Embedded Redis data (AOF).")] = Path(".hiveq/data"),
    redis_port: Annotated[
        int | None,
        typer.Option(help=f"Embedded Redis port (default {DEFAULT_REDIS_PORT} if free, else any free port)."),
    ] = None,
    token: Annotated[str | None, typer.Option(help="API bearer token (HIVEQ_API_TOKENS).")] = None,
    reload: Annotated[
        bool, typer.Option("--reload", help="Restart API and workers on code changes.")
    ] = False,
    reload_poll: Annotated[
        bool,
        typer.Option(
            "--reload-poll",
            help="Poll for changes (containers, network mounts; env WATCHFILES_FORCE_POLLING).",
        ),
    ] = False,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Show the API's access log (one line per request).")
    ] = False,
) -> None:
    """The whole stack: Redis (embedded Valkey with AOF unless REDIS_URL is given), the API, workers,
    and the history archive (HIVEQ_ARCHIVE_URL, by default SQLite at .hiveq/archive.db)."""
    s = settings(ctx, from_stack=False)
    if not s.archive.archive_url:
        s = s.with_(archive_url=f"sqlite:///{DEFAULT_ARCHIVE.resolve()}")
    embedded = not redis_given(ctx)
    with error_boundary(global_options(ctx).debug):
        if reload:
            require_watchfiles()
        refuse_second_stack_here()
    if embedded and redis_port is None:
        redis_port = DEFAULT_REDIS_PORT if port_free("127.0.0.1", DEFAULT_REDIS_PORT) else free_port()
    poll = reload_poll or os.environ.get("WATCHFILES_FORCE_POLLING", "").lower() in ("1", "true", "yes")
    options = StackOptions(
        data_dir=data_dir if embedded else None,
        host=host or s.api.host,
        port=port or s.api.port,
        redis_port=redis_port or 0,
        workers=workers,
        concurrency=concurrency,
        modules=module or [],
        token=token,
        access_log=access_log,
    )
    stack = Stack(s, options, log=lambda line: console.print(line))
    stop = StopFlag()
    stop.install()
    with error_boundary(global_options(ctx).debug):
        try:
            stack.start()
            stack.wait_ready()
            record(stack, embedded)
            print_banner(stack, embedded)
            supervise(stack, stop, reload, poll)
        finally:
            stackfile.remove()
            stack.stop_processes(grace_of(stack.settings), force=lambda: stop.signals > 1)
            if stack.server is not None or not embedded:
                report_leftover(stack.settings)
            stack.stop()
    console.print("stopped")


def serve_cmd(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(help="Bind address (default HIVEQ_HOST or 127.0.0.1); beyond loopback needs a token."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: HIVEQ_PORT or 8001).")] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a public bind without a token.")
    ] = False,
    reload: Annotated[bool, typer.Option("--reload", help="Restart on code changes (development).")] = False,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log one line per request.")
    ] = True,
) -> None:
    """The HTTP API (and dashboard) alone, against the Redis in REDIS_URL."""
    from hiveq.api.serve import serve

    s = settings(ctx)
    with error_boundary(global_options(ctx).debug):
        serve(
            s,
            host=host or s.api.host,
            port=port or s.api.port,
            insecure=insecure,
            reload=reload,
            access_log=access_log,
        )


def register(app: typer.Typer) -> None:
    app.command("up")(up_cmd)
    app.command("serve")(serve_cmd)
