"""The agent registry: `@agent("name")` registers a user function; `AgentContext` is what it gets.

An agent is a plain function (sync or async) taking one `AgentContext` and returning a JSON-able
result. Sync agents run in a thread pool, so they may block; `ctx.progress` works from both.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hiveq.contract.errors import ConfigError
from hiveq.contract.protocol import AGENT_RE
from hiveq.settings import Settings

ProgressFn = Callable[[float, str], Coroutine[Any, Any, None]]
AgentFn = Callable[["AgentContext"], Any]
F = TypeVar("F", bound=AgentFn)


class FatalError(Exception):
    """Raise from an agent to dead-letter the job at once (no retry), e.g. missing configuration."""


@dataclass(frozen=True)
class AgentSpec:
    name: str
    fn: AgentFn
    timeout_s: float | None = None  # overrides the job's timeout when set

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)


async def _no_progress(fraction: float, message: str) -> None:
    return None


@dataclass
class AgentContext:
    """Everything an agent needs for one job. `progress()` becomes an event on the task's stream."""

    job_id: str
    task_id: str
    subtask_id: str
    agent: str
    input: Any = None
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    dependency_results: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    settings: Settings = field(default_factory=Settings)
    # Per-worker shared objects (e.g. the llm agent's client and semaphore), keyed by agent.
    resources: dict[str, Any] = field(default_factory=dict)
    logger: logging.LoggerAdapter[logging.Logger] = field(
        default_factory=lambda: logging.LoggerAdapter(logging.getLogger("hiveq.agent"), {})
    )
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    _progress: ProgressFn = _no_progress
    _loop: asyncio.AbstractEventLoop | None = None

    def is_cancelled(self) -> bool:
        """True once the task was cancelled or the lease lost; long agents should check it."""
        return self.cancelled.is_set()

    def progress(self, fraction: float, message: str = "") -> Awaitable[None]:
        """Report progress (0..1) with a short message; it becomes a `progress` event.

        Async agents `await ctx.progress(...)`; sync agents (in the thread pool) just call it: the
        report is handed to the worker loop thread-safely and waited for.
        """
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is not None:
            return self._progress(fraction, message)
        asyncio.run_coroutine_threadsafe(self._progress(fraction, message), loop).result(timeout=30)
        return _Done()


class _Done:
    """An already-finished awaitable: what `progress()` returns to a sync caller."""

    def __await__(self) -> Generator[None, None, None]:
        return
        yield


class Registry:
    """Name -> agent. One process-wide instance (`REGISTRY`) holds the built-ins and user agents."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentSpec] = {}
        self.builtins_loaded = False

    def add(self, spec: AgentSpec) -> None:
        if not AGENT_RE.fullmatch(spec.name):
            raise ConfigError(
                f"agent name {spec.name!r} is not valid: use 1-64 characters of a-z, 0-9, '_', '.', '-'"
            )
        old = self._agents.get(spec.name)
        if old is not None and old.fn is not spec.fn and _qualname(old.fn) != _qualname(spec.fn):
            raise ConfigError(
                f"agent {spec.name!r} is registered twice ({_qualname(old.fn)} and {_qualname(spec.fn)}); "
                "give one of them another name"
            )
        self._agents[spec.name] = spec

    def get(self, name: str) -> AgentSpec | None:
        return self._agents.get(name)

    def names(self) -> list[str]:
        return sorted(self._agents)


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


REGISTRY = Registry()


def agent(name: str, *, timeout_s: float | None = None) -> Callable[[F], F]:
    """Register `fn(ctx) -> result` under `name`. `timeout_s` caps every job of this agent."""

    def deco(fn: F) -> F:
        if not callable(fn):
            raise ConfigError(f"@agent({name!r}) must decorate a function")
        REGISTRY.add(AgentSpec(name=name, fn=fn, timeout_s=timeout_s))
        return fn

    return deco


def load_builtins() -> None:
    """Import the built-in agents (`demo`, `llm`) once; they register themselves."""
    if not REGISTRY.builtins_loaded:
        importlib.import_module("hiveq.agents.demo")
        importlib.import_module("hiveq.agents.llm")
        REGISTRY.builtins_loaded = True


def get_agent(name: str) -> AgentSpec | None:
    load_builtins()
    return REGISTRY.get(name)


def registered_agents() -> list[str]:
    load_builtins()
    return REGISTRY.names()


def load_modules(modules: Iterable[str]) -> list[str]:
    """Import user modules that define agents. Returns the agent names registered afterwards."""
    load_builtins()
    for mod in modules:
        mod = mod.strip()
        if not mod:
            continue
        try:
            importlib.import_module(mod)
        except Exception as exc:
            raise ConfigError(
                f"could not import agent module {mod!r} ({type(exc).__name__}: {exc}); check the "
                "--module option / HIVEQ_AGENT_MODULES and that the module is on PYTHONPATH"
            ) from None
    return REGISTRY.names()
