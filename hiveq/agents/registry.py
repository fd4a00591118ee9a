"""The agent registry: `@agent("name")` registers a user function; `AgentContext` is what it gets.

An agent is a plain function (sync or async) taking one `AgentContext` and returning a JSON-able
result. Sync agents run in a thread pool, so they may block; `ctx.progress`, `ctx.emit` and
`ctx.is_cancelled` work from both. The durable calls (`step`, `spawn`, `wait_for`,
`wait_for_signal`) are for async agents; hiveq/agents/durable.py has their rules.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hiveq.agents.durable import Durable, LocalBackend
from hiveq.contract.errors import ConfigError
from hiveq.contract.limit_rules import LIMIT_KEY_RE, check_limit_key
from hiveq.contract.models import SubtaskSpec
from hiveq.contract.protocol import AGENT_RE
from hiveq.settings import Settings

ProgressFn = Callable[[float, str], Coroutine[Any, Any, None]]
AgentFn = Callable[["AgentContext"], Any]
F = TypeVar("F", bound=AgentFn)


class FatalError(Exception):
    """Raise from an agent to dead-letter the job at once (no retry), e.g. missing configuration."""


class RateLimited(Exception):
    """Raise from an agent when a provider says "too many requests" (HTTP 429): the job goes back
    to its queue without an attempt counted, and `key` (default: each of the job's limit keys) is
    paused for `retry_after` seconds for every worker (docs/limits.md)."""

    def __init__(self, retry_after: float = 1.0, key: str | None = None) -> None:
        self.retry_after = max(0.0, float(retry_after))
        self.key = key
        super().__init__(f"rate limited: retry after {self.retry_after:g} s" + (f" ({key})" if key else ""))


UsageFn = Callable[[int, float], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class AgentSpec:
    name: str
    fn: AgentFn
    timeout_s: float | None = None  # overrides the job's timeout when set
    limits: tuple[str, ...] = ()  # limit keys added to every job of this agent (docs/limits.md)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)


async def _no_progress(fraction: float, message: str) -> None:
    return None


async def _no_usage(tokens: int, usd: float) -> None:
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
    _usage: UsageFn = _no_usage
    _loop: asyncio.AbstractEventLoop | None = None
    durable: Durable = field(default_factory=lambda: Durable(LocalBackend()))

    def is_cancelled(self) -> bool:
        """True once the task was cancelled or the lease lost; long agents should check it."""
        return self.cancelled.is_set()

    def progress(self, fraction: float, message: str = "") -> Awaitable[None]:
        """Report progress (0..1) with a short message; it becomes a `progress` event.

        Async agents `await ctx.progress(...)`; sync agents (in the thread pool) just call it: the
        report is handed to the worker loop thread-safely and waited for.
        """
        return self._call(lambda: self._progress(fraction, message))

    def report_usage(self, tokens: int = 0, usd: float = 0.0) -> Awaitable[None]:
        """Report what this job used (LLM tokens, US dollars): counted at once against the limit
        keys it runs under, its estimate_tokens reservation first (docs/limits.md). Call it once
        per call made; async agents await it, sync agents just call it."""
        if tokens < 0 or usd < 0:
            raise ValueError("report_usage: tokens and usd must be >= 0")
        return self._call(lambda: self._usage(int(tokens), float(usd)))

    def _call(self, make: Callable[[], Coroutine[Any, Any, None]]) -> Awaitable[None]:
        """Awaitable for async agents; run to the end at once when called from a sync agent's thread."""
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is not None:
            return make()
        asyncio.run_coroutine_threadsafe(make(), loop).result(timeout=30)
        return _Done()

    # -- durable agents (docs/durable.md) -------------------------------------------------------
    async def step(self, name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` (sync in a thread, or async) at most once per job to success
        and store its JSON result; a later run of the job returns the stored result instead."""
        return await self.durable.step(name, fn, *args, **kwargs)

    async def spawn(self, subtasks: Sequence[SubtaskSpec | Mapping[str, Any]]) -> list[str]:
        """Add subtasks to this task, as children of this job, in one atomic step; their job ids.
        A step itself: a later run gets the same ids and spawns nothing."""
        return await self.durable.spawn(subtasks)

    async def wait_for(self, children: Sequence[str]) -> list[Any]:
        """The children's results, in order, once all have finished. Until then the job is
        suspended (no slot held) and runs again when they are done; raises ChildFailed when one
        was dead-lettered, quarantined or cancelled."""
        return await self.durable.wait_for(children)

    async def spawn_and_wait(self, subtasks: Sequence[SubtaskSpec | Mapping[str, Any]]) -> list[Any]:
        return await self.wait_for(await self.spawn(subtasks))

    async def wait_for_signal(self, name: str, timeout_s: float | None = None) -> Any:
        """The data of signal `name` (POST /jobs/{id}/signals/{name}, `hiveq signal`, the
        dashboard). A signal sent earlier is kept; each wait receives exactly one. Until one comes
        the job is suspended (no slot held); raises SignalTimeout after `timeout_s`."""
        return await self.durable.wait_for_signal(name, timeout_s)

    def emit(self, value: Any) -> Awaitable[None]:
        """Append text (or a JSON value, as one line) to the job's streamed output: `output` events
        on the task's stream, `hiveq watch --output`, the dashboard's output panel."""
        return self._call(lambda: self.durable.emit(value))


class _Done:
    """An already-finished awaitable: what `progress()` returns to a sync caller."""

    def __await__(self) -> Generator[None, None, None]:
        return
        yield


class Registry:
    """Name -> agent. One process-wide instance (`REGISTRY`) holds the built-ins and user agents."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentSpec] = {}
        self.origins: dict[str, str] = {}  # agent -> the --module whose import registered it
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

    def get_spec(self, name: str) -> AgentSpec:
        return self._agents[name]

    def names(self) -> list[str]:
        return sorted(self._agents)


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


REGISTRY = Registry()


def agent(name: str, *, timeout_s: float | None = None, limits: Sequence[str] = ()) -> Callable[[F], F]:
    """Register `fn(ctx) -> result` under `name`. `timeout_s` caps every job of this agent;
    `limits` are limit keys every job of it runs under (docs/limits.md)."""
    for key in limits:
        try:
            check_limit_key(key, concrete=True)
        except ValueError as exc:
            raise ConfigError(f"@agent({name!r}, limits=...): {exc}") from None

    def deco(fn: F) -> F:
        if not callable(fn):
            raise ConfigError(f"@agent({name!r}) must decorate a function")
        REGISTRY.add(AgentSpec(name=name, fn=fn, timeout_s=timeout_s, limits=tuple(limits)))
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


def cwd_on_path() -> str:
    """Put the current directory first on sys.path, as `python -m`, `celery -A` and `rq worker` do,
    so `hiveq worker --module my_agents` finds ./my_agents.py (a console script starts without it)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    return cwd


def module_origin(name: str) -> str | None:
    """The user module that registered agent `name` in this process (None for built-ins)."""
    return REGISTRY.origins.get(name)


def load_modules(modules: Iterable[str]) -> list[str]:
    """Import user modules that define agents (current directory first, then PYTHONPATH and
    site-packages). Returns the agent names registered afterwards."""
    load_builtins()
    wanted = [m.strip() for m in modules if m.strip()]
    cwd = cwd_on_path() if wanted else os.getcwd()
    for mod in wanted:
        before = set(REGISTRY.names())
        try:
            importlib.import_module(mod)
        except Exception as exc:
            raise ConfigError(_import_failure(mod, exc, cwd)) from exc  # the cause shows with --debug
        for name in REGISTRY.names():  # new ones, and ones an earlier import of `mod` registered
            defined_in = getattr(REGISTRY.get_spec(name).fn, "__module__", "")
            if name not in before or defined_in == mod or defined_in.startswith(mod + "."):
                REGISTRY.origins.setdefault(name, mod)
    return REGISTRY.names()


def _import_failure(mod: str, exc: Exception, cwd: str) -> str:
    """One line: the module itself is missing (where we looked), or it broke while importing."""
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if missing and (mod == missing or mod.startswith(missing + ".")):
        path = mod.replace(".", "/")
        return (
            f"could not import agent module {mod!r}: no {path}.py (or package {path}/) in the current "
            f"directory {cwd} nor on PYTHONPATH; check the --module option / HIVEQ_AGENT_MODULES, or "
            "start the worker in the folder that holds the module"
        )
    return (
        f"could not import agent module {mod!r}: importing it raised {type(exc).__name__}: {exc}; "
        "fix the module (check the --module option / HIVEQ_AGENT_MODULES; run with --debug for details)"
    )


def agent_limit_keys(specs: Mapping[str, AgentSpec | None], settings: Settings) -> dict[str, tuple[str, ...]]:
    """The limit keys each served agent adds to its jobs: its @agent(limits=…), and for the
    built-in `llm` agent `model:<HIVEQ_LLM_MODEL>` (docs/limits.md)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, spec in specs.items():
        keys = spec.limits if spec is not None else ()
        model_key = f"model:{settings.llm.model}"
        if name == "llm" and LIMIT_KEY_RE.match(model_key) and not model_key.endswith("*"):
            keys = (*keys, model_key)
        if keys:
            out[name] = keys
    return out
