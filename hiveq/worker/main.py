"""main: the worker process entry (`run_worker`) and the N-process supervisor
(`run_worker_processes`).

One process (`--processes 1`, the default) runs the worker loop itself, so a container or
systemd supervises it directly. With N > 1 the parent supervises N child processes: it forwards
SIGTERM/SIGINT, and restarts a child that died (a poison job, an OOM kill) after a short backoff;
the dead child's leases expire and its jobs run again elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import time
from collections.abc import Sequence
from multiprocessing.connection import wait as wait_sentinels
from multiprocessing.process import BaseProcess

from hiveq.agents.registry import load_modules
from hiveq.contract.errors import ConfigError, HiveqError
from hiveq.logs import JsonFormatter, setup_logging
from hiveq.settings import Settings
from hiveq.worker.loop import Worker

log = logging.getLogger("hiveq.worker")


def new_worker_id() -> str:
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{secrets.token_hex(2)}"


def resolve_agents(settings: Settings, agents: Sequence[str] | None, modules: Sequence[str]) -> list[str]:
    """Load user modules and check the agents asked for exist (None = every registered agent)."""
    known = load_modules([*settings.worker.agent_modules, *modules])
    wanted = [a.strip() for a in agents if a.strip()] if agents is not None else known
    missing = [a for a in wanted if a not in known]
    if missing:
        raise ConfigError(
            f"--agents names {', '.join(repr(a) for a in missing)}, which no loaded module registers; "
            f"known agents: {', '.join(known)}. Load the module that defines it with --module"
        )
    if not wanted:
        raise ConfigError("--agents is empty: name at least one agent to serve")
    return sorted(dict.fromkeys(wanted))


async def run_worker(
    settings: Settings,
    *,
    agents: Sequence[str] | None = None,
    concurrency: int | None = None,
    modules: Sequence[str] = (),
    stop: asyncio.Event | None = None,
    worker_id: str | None = None,
) -> None:
    """Run one worker until `stop` is set (or SIGTERM/SIGINT when no `stop` is given)."""
    names = resolve_agents(settings, agents, modules)
    slots = concurrency or settings.worker.concurrency
    if slots < 1:
        raise ConfigError(f"--concurrency={slots} is not allowed; use 1 or more")
    own_signals = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        await Worker(settings, names, slots, worker_id or new_worker_id(), stop).run()
    finally:
        if own_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the supervisor dies, so no orphan worker keeps running."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _child(
    settings: Settings, agents: list[str], concurrency: int, modules: list[str], logging_: tuple[int, str]
) -> None:
    os.setpgrp()  # a terminal's Ctrl-C reaches the supervisor only; it forwards one SIGTERM
    _die_with_parent()
    level, fmt = logging_
    if level:
        setup_logging(logging.getLevelName(level), fmt)
    try:
        asyncio.run(run_worker(settings, agents=agents, concurrency=concurrency, modules=modules))
    except HiveqError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None


def run_worker_processes(
    settings: Settings,
    *,
    agents: Sequence[str] | None,
    concurrency: int | None,
    processes: int,
    modules: Sequence[str] = (),
) -> int:
    """Run `processes` workers (blocking); returns an exit code (0: stopped cleanly)."""
    names = resolve_agents(settings, agents, modules)  # fail fast, before any child starts
    if processes < 1:
        raise ConfigError(f"--processes={processes} is not allowed; use 1 or more")
    slots = concurrency or settings.worker.concurrency
    if processes == 1:
        try:
            asyncio.run(run_worker(settings, agents=names, concurrency=slots, modules=modules))
        except KeyboardInterrupt:
            return 130
        return 0
    return Supervisor(settings, names, slots, processes, list(modules)).run()


class Supervisor:
    """Keeps N worker processes alive until told to stop."""

    def __init__(self, settings: Settings, agents: list[str], concurrency: int, n: int, modules: list[str]):
        root = logging.getLogger()
        fmt = "json" if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers) else "text"
        self.args = (settings, agents, concurrency, modules, (root.level, fmt))
        self.n = n
        self.mp = multiprocessing.get_context("spawn")
        self.children: dict[int, BaseProcess] = {}
        self.stopping = False
        self.crashes = 0

    def _spawn(self, slot: int) -> None:
        p = self.mp.Process(target=_child, args=self.args, name=f"hiveq-worker-{slot}", daemon=False)
        p.start()
        self.children[slot] = p

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            name = signal.Signals(signum).name
            log.info("received %s: stopping %d worker processes", name, len(self.children))
        self.stopping = True
        for p in self.children.values():
            if p.pid is not None and p.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)

    def run(self) -> int:
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in range(self.n):
                self._spawn(slot)
            return self._watch()
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _watch(self) -> int:
        code = 0
        while self.children:
            wait_sentinels([p.sentinel for p in self.children.values()], timeout=1.0)
            for slot, p in list(self.children.items()):
                if p.exitcode is None:
                    continue
                del self.children[slot]
                if self.stopping:
                    code = code or (0 if p.exitcode == 0 else 1)
                    continue
                if p.exitcode == 2:  # configuration error: restarting will not help
                    self.stopping = True
                    self._on_signal(signal.SIGTERM, None)
                    code = 2
                    continue
                self.crashes += 1
                delay = min(10.0, 0.2 * 2 ** min(self.crashes, 6))
                log.warning(
                    "worker process %s exited with code %s; starting a new one in %.1f s",
                    p.pid,
                    p.exitcode,
                    delay,
                )
                time.sleep(delay)
                if not self.stopping:
                    self._spawn(slot)
        return code
