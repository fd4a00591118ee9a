"""The state file `hiveq up` leaves in `./.hiveq/stack.json`, so that every other `hiveq` command
run in that folder (the second terminal) finds the stack's Redis and namespace when REDIS_URL is
not set, and says so on stderr.

The file is written with mode 0600 (a REDIS_URL given to `up` may hold a password) and removed
when `up` stops. A file whose `up` process is gone (it was killed) is stale: readers ignore it,
with a note, and `up` replaces it on its next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hiveq.contract.redact import redact

STATE_DIR = ".hiveq"
STATE_NAME = "stack.json"
FORMAT = 1  # of the file; a reader ignores a file of another format


@dataclass(frozen=True)
class StackState:
    """What a second terminal needs to reach the stack `hiveq up` started in this folder."""

    pid: int  # of the `hiveq up` supervisor
    started_ms: int
    redis_url: str
    api_url: str
    app: str
    env: str
    embedded: bool  # the Redis is up's own server (else the REDIS_URL it was given)
    format: int = FORMAT

    @property
    def namespace(self) -> str:
        return f"{self.app}:{self.env}"


@dataclass(frozen=True)
class Found:
    """The live stack of this folder (or None) and the one line to say about it (or None)."""

    state: StackState | None
    note: str | None


def state_path(folder: Path | None = None) -> Path:
    return (folder or Path.cwd()) / STATE_DIR / STATE_NAME


def write(state: StackState, folder: Path | None = None) -> Path:
    """Write the file atomically with mode 0600 (never readable by other users, even briefly)."""
    path = state_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STATE_NAME}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(state), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path


def remove(folder: Path | None = None, pid: int | None = None) -> None:
    """Remove the file if it is this process's (another `up` may have replaced it since)."""
    path = state_path(folder)
    state = _load(path)
    if isinstance(state, StackState) and state.pid == (pid or os.getpid()):
        with contextlib.suppress(OSError):
            path.unlink()


def _load(path: Path) -> StackState | str | None:
    """The state, None when there is no file, or why the file cannot be used."""
    try:
        raw: Any = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return f"it cannot be read ({type(exc).__name__}: {exc})"
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        return f"it is not a format-{FORMAT} stack file"
    try:
        return StackState(**raw)
    except TypeError as exc:
        return f"it has unexpected fields ({exc})"


def process_alive(pid: int) -> bool:
    """Whether `pid` runs and (where /proc tells) is a hiveq process, not a reused pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return b"hiveq" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): the pid alone has to do


def find(folder: Path | None = None) -> Found:
    """The live stack `hiveq up` started in `folder` (default: the current directory)."""
    path = state_path(folder)
    shown = f"./{STATE_DIR}/{STATE_NAME}" if folder is None else str(path)
    state = _load(path)
    if state is None:
        return Found(None, None)
    if isinstance(state, str):
        return Found(None, f"note: ignoring {shown}: {state}")
    if not process_alive(state.pid):
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.started_ms / 1000))
        return Found(
            None,
            f"note: ignoring {shown}: the `hiveq up` that wrote it (pid {state.pid}, started "
            f"{started}) is no longer running; set REDIS_URL or start `hiveq up` again",
        )
    folder_shown = f"./{STATE_DIR}" if folder is None else str(path.parent)
    return Found(
        state,
        f"using the stack started by `hiveq up` in {folder_shown} ({redact(state.redis_url)}, "
        f"namespace {state.namespace})",
    )
