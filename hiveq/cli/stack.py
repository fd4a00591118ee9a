"""The local stack behind `hiveq up` and `hiveq demo`: a Redis server, the API and worker processes.

Children run in their own sessions, so a terminal's Ctrl-C reaches only this supervisor, which
stops them in order (API and workers first, so workers hand back their leases; Redis last, so the
AOF holds everything). On Linux each child also gets SIGTERM if the supervisor dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hiveq.contract.errors import ConfigError, Conflict
from hiveq.server import ServerProcess, find_server_binary, free_port
from hiveq.settings import Settings


def _die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM this child when the supervisor's thread exits."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class Child:
    """One supervised process: a `hiveq` subcommand with its environment."""

    name: str
    argv: list[str]
    env: dict[str, str]
    output: Path | None = None  # None: share the terminal; else append stdout and stderr here
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self) -> None:
        out = open(self.output, "ab") if self.output else None  # noqa: SIM115 - the child owns it
        try:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=out,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            if out is not None:
                out.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def wait(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=max(timeout, 0.01))
        except subprocess.TimeoutExpired:
            return False
        return True


class PersistentServer(ServerProcess):
    """The embedded server, started so that it dies with the supervisor (never an orphan on the AOF)."""

    def start(self, timeout_s: float = 15.0) -> PersistentServer:
        self.proc = subprocess.Popen(
            self.args(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return self
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise ConfigError(f"{self.binary} exited at start on port {self.port}: {err.strip()}")
            time.sleep(0.05)
        self.stop()
        raise ConfigError(f"{self.binary} did not answer PING on port {self.port} within {timeout_s}s")


@dataclass
class StackOptions:
    data_dir: Path | None  # None: use the Redis at settings.redis_url
    host: str = "127.0.0.1"
    port: int = 8001
    redis_port: int = 0  # 0: a free port
    workers: int = 2
    concurrency: int | None = None
    modules: Sequence[str] = ()
    token: str | None = None
    log_level: str = "info"  # of the worker processes
    access_log: bool = False  # the API's one line per request (off: it would flood the terminal)
    output: Path | None = None  # API and worker output goes here instead of the terminal


@dataclass
class Stack:
    settings: Settings
    options: StackOptions
    log: Callable[[str], None] = print
    server: ServerProcess | None = None
    api: Child | None = None
    workers: list[Child] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        host = "127.0.0.1" if self.options.host in ("0.0.0.0", "::") else self.options.host
        return f"http://{host}:{self.options.port}"

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            REDIS_URL=self.settings.redis_url, HIVEQ_APP=self.settings.app, HIVEQ_ENV=self.settings.env
        )
        env.pop("HIVEQ_REDIS_URL", None)
        if self.settings.archive.archive_url:  # the workers run the archiver (one at a time)
            env["HIVEQ_ARCHIVE_URL"] = self.settings.archive.archive_url
        if self.options.token:
            env["HIVEQ_API_TOKENS"] = self.options.token
        return env

    def start_redis(self) -> None:
        o = self.options
        if o.data_dir is None:
            return
        lock = o.data_dir / "hiveq-up.pid"
        o.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_lock(lock)
        port = o.redis_port or free_port()
        if not port_free("127.0.0.1", port):
            raise Conflict(f"Redis port {port} is in use; pass another --redis-port (or 0 for a free one)")
        srv = PersistentServer(find_server_binary("valkey"), port=port, data_dir=o.data_dir.resolve())
        self.server = srv.start()
        lock.write_text(f"{os.getpid()} {srv.proc.pid if srv.proc else 0} {port}\n")
        self.settings = self.settings.with_(redis_url=srv.url)

    @staticmethod
    def _check_lock(lock: Path) -> None:
        """One supervisor per data dir: two servers on one AOF would corrupt it."""
        with contextlib.suppress(OSError, ValueError):
            up_pid, server_pid, _port = (int(x) for x in lock.read_text().split())
            for pid in (up_pid, server_pid):
                if pid and _pid_alive(pid):
                    raise Conflict(
                        f"data dir {lock.parent} is in use by process {pid} (another `hiveq up`?); "
                        "stop it first or pass another --data-dir"
                    )

    def check_api_port(self) -> None:
        o = self.options
        if not port_free(o.host if o.host not in ("0.0.0.0", "::") else "", o.port):
            raise Conflict(f"API port {o.port} is in use; pass another --port")

    def start_api(self) -> None:
        o = self.options
        self.check_api_port()
        argv = [sys.executable, "-m", "hiveq", "serve", "--host", o.host, "--port", str(o.port)]
        argv.append("--access-log" if o.access_log else "--no-access-log")
        self.api = Child("api", argv, self.child_env(), output=o.output)
        self.api.start()

    def start_workers(self) -> None:
        """N worker processes, each a `hiveq worker` (so each is restarted on its own if it dies)."""
        o = self.options
        argv = [sys.executable, "-m", "hiveq", "worker", "--log-level", o.log_level]
        if o.concurrency:
            argv += ["--concurrency", str(o.concurrency)]
        for m in o.modules:
            argv += ["--module", m]
        self.workers = [
            Child(f"worker-{i + 1}", argv, self.child_env(), output=o.output) for i in range(o.workers)
        ]
        for w in self.workers:
            w.start()

    def start(self) -> None:
        self.check_api_port()  # before anything starts
        self.start_redis()
        self.start_api()
        self.start_workers()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until the API answers /health (it has connected to Redis), or its process died."""
        import httpx  # here, not at the top: every `hiveq` command imports this module

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.api is not None and not self.api.alive():
                code = self.api.proc.returncode if self.api.proc else "?"
                raise ConfigError(f"the API process exited at start (exit code {code}){self.output_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.api_url + "/health", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise ConfigError(f"the API did not answer {self.api_url}/health within {timeout_s:.0f}s")

    def output_tail(self) -> str:
        """The last lines the children wrote, for an error message (when their output went to a file)."""
        if self.options.output is None:
            return "; see its output above"
        try:
            lines = self.options.output.read_text(errors="replace").strip().splitlines()[-5:]
        except OSError:
            return ""
        return ": " + " | ".join(line.strip() for line in lines)

    def check_children(self) -> None:
        """Restart a worker that died (a poison job may kill one); a dead API ends the stack."""
        if self.api is not None and not self.api.alive():
            code = self.api.proc.returncode if self.api.proc else "?"
            raise ConfigError(f"the API process exited (exit code {code}); stopping the stack")
        for w in self.workers:
            if not w.alive():
                code = w.proc.returncode if w.proc else "?"
                w.restarts += 1
                self.log(f"{w.name} exited (exit code {code}); restarting it (restart {w.restarts})")
                w.start()

    def stop_processes(self, grace_s: float, force: Callable[[], bool] = lambda: False) -> None:
        """SIGTERM API and workers (workers finish or hand back their jobs); SIGKILL after the grace
        or as soon as `force()` says so (a second Ctrl-C)."""
        children = [c for c in [self.api, *self.workers] if c is not None]
        for c in children:
            c.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while any(c.alive() for c in children) and time.monotonic() < deadline and not force():
            time.sleep(0.1)
        for c in children:
            if c.alive():
                self.log(f"{c.name} did not stop in time; killing it (its leases expire; its jobs run again)")
                c.signal(signal.SIGKILL)
                c.wait(5)

    def stop(self, grace_s: float = 20.0) -> None:
        try:
            self.stop_processes(grace_s)
        finally:
            if self.server is not None:
                self.server.stop()  # SIGTERM: the server fsyncs its AOF before exiting
                self.server = None
                if self.options.data_dir is not None:
                    with contextlib.suppress(OSError):
                        (self.options.data_dir / "hiveq-up.pid").unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
