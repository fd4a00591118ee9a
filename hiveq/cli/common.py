"""What every `hiveq` command shares: settings from env + global options, the error boundary that
turns a hiveq error into one red line and an exit code, the console and JSON output.

Exit codes (a script can rely on them) are `ExitCode` in hiveq/contract/errors.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from redis import exceptions as rex
from rich.console import Console
from rich.markup import escape

from hiveq.cli import stackfile
from hiveq.contract.errors import ExitCode, HiveqError
from hiveq.contract.redact import redact
from hiveq.queue.broker import Broker
from hiveq.settings import Settings

if TYPE_CHECKING:
    from hiveq.archive.read import Archive

T = TypeVar("T")


def _width() -> int | None:
    """Terminals report their width; pipes and logs get a wide default so ids are never cut."""
    return None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160


# Rich decides colour from the stream: colours and live views only on a terminal.
# In pipes and logs, long lines stay whole (soft wrap) so each event is one greppable line.
console = Console(highlight=False, width=_width(), soft_wrap=not sys.stdout.isatty())
err_console = Console(stderr=True, highlight=False, width=_width())


@dataclass(frozen=True)
class GlobalOptions:
    """The options given before the command (`hiveq --app x tasks`), kept on ctx.obj."""

    redis_url: str | None = None
    app: str | None = None
    env: str | None = None
    debug: bool = False


def global_options(ctx: typer.Context) -> GlobalOptions:
    return ctx.find_object(GlobalOptions) or GlobalOptions(debug=debugging())


def debugging() -> bool:
    """--debug (the main callback exports it as HIVEQ_DEBUG=1, so child processes inherit it)."""
    return os.environ.get("HIVEQ_DEBUG", "").lower() in ("1", "true", "yes")


def settings_from(
    opts: GlobalOptions, env: dict[str, str] | None = None, *, from_stack: bool = True
) -> Settings:
    """Settings from the environment with the global options on top (validated the same way).

    Without a Redis URL (no --redis-url, REDIS_URL or HIVEQ_REDIS_URL), the stack that `hiveq up`
    started in the current directory provides it and the default namespace; one line on stderr
    says so (`from_stack=False`: `up` and `demo`, which start their own)."""
    e = dict(os.environ if env is None else env)
    if opts.redis_url:
        e["REDIS_URL"] = opts.redis_url
    elif from_stack and not (e.get("REDIS_URL") or e.get("HIVEQ_REDIS_URL")):
        found = stackfile.find()
        if found.note:
            err_console.print(found.note, markup=False, soft_wrap=True, emoji=False)
        if found.state is not None:
            e["REDIS_URL"] = found.state.redis_url
            e.setdefault("HIVEQ_APP", found.state.app)
            e.setdefault("HIVEQ_ENV", found.state.env)
    if opts.app:
        e["HIVEQ_APP"] = opts.app
    if opts.env:
        e["HIVEQ_ENV"] = opts.env
    return Settings.from_env(e)


def settings(ctx: typer.Context, *, from_stack: bool = True) -> Settings:
    """The settings of this invocation; a bad value ends the command with one line and exit 2."""
    with error_boundary(global_options(ctx).debug):
        return settings_from(global_options(ctx), from_stack=from_stack)


def exit_code_for(exc: BaseException) -> ExitCode:
    """hiveq errors carry their exit code (hiveq/contract/errors.py); Redis and pydantic ones map here."""
    if isinstance(exc, HiveqError):
        return exc.exit_code
    if isinstance(exc, rex.ConnectionError | rex.TimeoutError):
        return ExitCode.REDIS_UNAVAILABLE
    if isinstance(exc, PydanticError):
        return ExitCode.USAGE
    return ExitCode.FAILURE


def fail(message: str, code: int = ExitCode.FAILURE) -> NoReturn:
    """Print one red line to stderr and exit with `code`."""
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, emoji=False)
    raise typer.Exit(int(code))


@contextmanager
def error_boundary(debug: bool = False) -> Iterator[None]:
    """Turn hiveq and Redis errors into one line + an exit code; a traceback only with --debug."""
    try:
        yield
    except (HiveqError, rex.RedisError, PydanticError) as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        fail(describe(exc), exit_code_for(exc))


def describe(exc: BaseException) -> str:
    """One sentence for a user: hiveq's messages already are; Redis and pydantic ones get a frame.
    Redacted, like every line hiveq prints: no password of a Redis URL reaches the terminal."""
    return redact(_describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, rex.ConnectionError | rex.TimeoutError):
        return f"Redis is unreachable ({exc}); check that it is running and REDIS_URL is right"
    if isinstance(exc, rex.RedisError):
        return f"Redis answered with an error: {exc}"
    if isinstance(exc, PydanticError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "input"
        return f"{field}: {first['msg']}"
    return str(exc)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run with the error boundary; Ctrl-C exits 130 without a traceback."""
    try:
        with error_boundary(debugging()):
            return asyncio.run(coro)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


@asynccontextmanager
async def connect(s: Settings, role: str = "cli", *, write: bool = False) -> AsyncIterator[Broker]:
    """A named connection to the namespace, closed on the way out. Commands that write first check
    that the namespace is ours (and claim it if new); read-only commands never write anything."""
    b = await Broker.connect(s, role=role, ident=str(os.getpid()), check_namespace=write)
    try:
        yield b
    finally:
        await b.close()


@asynccontextmanager
async def open_archive(s: Settings) -> AsyncIterator[Archive | None]:
    """The archive reads fall through to (None without HIVEQ_ARCHIVE_URL)."""
    from hiveq.archive.read import Archive  # here: SQLAlchemy loads only for commands that use it

    archive = Archive.of(s)
    try:
        yield archive
    finally:
        if archive is not None:
            archive.close()


def jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", by_alias=True)
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """Machine-readable output: plain JSON on stdout, no colours, no wrapping."""
    sys.stdout.write(json.dumps(jsonable(obj), indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
