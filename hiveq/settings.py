"""Settings: small frozen dataclasses read from the environment, with errors that name the variable.

Each setting is declared once, as a dataclass field whose metadata names its environment
variable and its allowed range; `from_env` reads every field through that declaration, so a
default lives in exactly one place. The README's configuration table documents the same fields.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from hiveq.contract.errors import ConfigError
from hiveq.contract.limits import Limits
from hiveq.contract.models import DEFAULT_PLANNER
from hiveq.contract.protocol import check_name
from hiveq.contract.redact import url_secrets
from hiveq.contract.redisurl import check_redis_url

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
G = TypeVar("G")


def env(name: str, lo: float | None = None, hi: float | None = None, *aliases: str) -> dict[str, Any]:
    """Field metadata: the variable (and older or common aliases) that sets a field, and its range."""
    return {"env": (name, *aliases), "lo": lo, "hi": hi}


def _read(e: Mapping[str, str], meta: Mapping[str, Any], default: Any) -> Any:
    name, raw = next(((n, e[n]) for n in meta["env"] if e.get(n)), (meta["env"][0], None))
    if raw is None:
        return default
    if isinstance(default, tuple):  # comma-separated lists
        return tuple(t.strip() for t in raw.split(",") if t.strip())
    if isinstance(default, bool):
        word = raw.strip().lower()
        if word not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"{name}={raw!r} is not a yes/no value; set it to 1 or 0")
        return word in ("1", "true", "yes", "on")
    if isinstance(default, int | float):
        kind = type(default)
        try:
            value = kind(raw)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ConfigError(f"{name}={raw!r} is not {what}; set it to {what}") from None
        lo, hi = meta["lo"], meta["hi"]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"{name}={value} is out of range; allowed {lo}..{hi}")
        return value
    return raw


def load(cls: type[G], e: Mapping[str, str], **given: Any) -> G:
    """An instance of the settings group `cls`, each declared field read from `e` (or `given`)."""
    values = dict(given)
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in values and "env" in f.metadata:
            values[f.name] = _read(e, f.metadata, f.default)
    return cls(**values)


@dataclass(frozen=True)
class LeaseSettings:
    """Leases and liveness: a dead worker's jobs run again within lease_s + reap_interval_s."""

    lease_s: float = field(default=5.0, metadata=env("HIVEQ_LEASE_SECONDS", 1.0, 3600.0))
    # Default min(1, lease/3), bounded by lease/2: set in `from_env`, which knows the lease.
    heartbeat_s: float = 1.0
    reap_interval_s: float = field(default=0.5, metadata=env("HIVEQ_REAP_INTERVAL", 0.05, 60.0))

    @classmethod
    def from_env(cls, e: Mapping[str, str]) -> LeaseSettings:
        lease = load(cls, e, heartbeat_s=0.0).lease_s
        beat = _read(e, env("HIVEQ_HEARTBEAT_SECONDS", 0.05, lease / 2), min(1.0, lease / 3))
        return load(cls, e, heartbeat_s=beat)


@dataclass(frozen=True)
class RetrySettings:
    """What happens to a failing job (each value overridable per subtask where it says so)."""

    max_attempts: int = field(default=3, metadata=env("HIVEQ_MAX_ATTEMPTS", 1, 100))  # per subtask too
    max_deliveries: int = field(default=5, metadata=env("HIVEQ_MAX_DELIVERIES", 1, 100))
    backoff_base_s: float = field(default=1.0, metadata=env("HIVEQ_BACKOFF_BASE", 0.0, 3600.0))
    backoff_max_s: float = field(default=300.0, metadata=env("HIVEQ_BACKOFF_MAX", 0.0, 86400.0))
    job_timeout_s: float = field(
        default=600.0, metadata=env("HIVEQ_JOB_TIMEOUT", 0.1, 86400.0)
    )  # per subtask too


@dataclass(frozen=True)
class RetentionSettings:
    retention_s: int = field(
        default=7 * 24 * 3600, metadata=env("HIVEQ_RETENTION_SECONDS", 1, 10 * 365 * 86400)
    )  # finished tasks; dead letters are kept until handled
    events_maxlen: int = field(default=100_000, metadata=env("HIVEQ_EVENTS_MAXLEN", 100, 100_000_000))


ARCHIVE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")


@dataclass(frozen=True)
class ArchiveSettings:
    """History in SQL (hiveq/archive): with `archive_url` set, Redis keeps live work plus a tail."""

    archive_url: str | None = field(default=None, metadata=env("HIVEQ_ARCHIVE_URL"))
    # An archived finished task leaves Redis after this; unarchived ones stay until archived.
    redis_retention_s: int = field(default=3600, metadata=env("HIVEQ_REDIS_RETENTION", 1, 10 * 365 * 86400))
    archive_retention_s: int = field(
        default=30 * 86400, metadata=env("HIVEQ_ARCHIVE_RETENTION", 60, 100 * 365 * 86400)
    )

    @classmethod
    def from_env(cls, e: Mapping[str, str]) -> ArchiveSettings:
        got = load(cls, e)
        url = got.archive_url
        if url is not None and not url.startswith(ARCHIVE_SCHEMES):
            # The value is not echoed: a mistyped URL may still hold a password.
            raise ConfigError(
                "HIVEQ_ARCHIVE_URL is not an archive URL; use sqlite:///path/to/archive.db or "
                "postgresql://user@host:5432/db"
            )
        return got


@dataclass(frozen=True)
class ApiSettings:
    host: str = field(default="127.0.0.1", metadata=env("HIVEQ_HOST"))
    port: int = field(default=8001, metadata=env("HIVEQ_PORT", 1, 65535))
    api_tokens: tuple[str, ...] = field(
        default=(), metadata=env("HIVEQ_API_TOKENS", None, None, "HIVEQ_API_TOKEN")
    )
    # Host names the API answers to besides the loopback names and the bound host (api/guard.py).
    allowed_hosts: tuple[str, ...] = field(default=(), metadata=env("HIVEQ_ALLOWED_HOSTS"))
    # /docs, /redoc and /openapi.json without a token even when tokens are set.
    public_docs: bool = field(default=False, metadata=env("HIVEQ_PUBLIC_DOCS"))
    default_planner: str = field(default=DEFAULT_PLANNER, metadata=env("HIVEQ_PLANNER"))


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = field(default=10, metadata=env("HIVEQ_CONCURRENCY", 1, 10_000))  # slots per process
    demo_delay_s: float = field(default=0.5, metadata=env("HIVEQ_DEMO_DELAY", 0.0, 3600.0))
    # SIGTERM: running jobs get this long before they are handed back.
    shutdown_grace_s: float = field(default=10.0, metadata=env("HIVEQ_SHUTDOWN_GRACE", 0.0, 86400.0))
    agent_modules: tuple[str, ...] = field(default=(), metadata=env("HIVEQ_AGENT_MODULES"))


@dataclass(frozen=True)
class ReplicationSettings:
    """Acknowledged means replicated, when asked: with min_replicas > 0 every acknowledging write
    (a submit's 201, a completion, a cancel, a claim) is followed by `WAIT min_replicas
    replica_timeout_ms` on the same connection, and is not acknowledged unless enough replicas
    confirmed it (hiveq/queue/connection.py)."""

    min_replicas: int = field(default=0, metadata=env("HIVEQ_MIN_REPLICAS", 0, 100))
    replica_timeout_ms: int = field(default=1000, metadata=env("HIVEQ_REPLICA_TIMEOUT_MS", 1, 600_000))


RECOVER_MODES = ("off", "auto")


@dataclass(frozen=True)
class WatchSettings:
    """The conservation watch (hiveq/diagnose/watch.py), run by one worker or API process."""

    # off: a vanished job waits for `hiveq recover`; auto: the watch recovers it at once.
    recover_vanished: str = field(default="off", metadata=env("HIVEQ_RECOVER_VANISHED"))
    # > 0: when jobs vanish, watch every command for this long (MONITOR) to name who took them.
    watch_sample_s: float = field(default=0.0, metadata=env("HIVEQ_WATCH_SAMPLE_SECONDS", 0.0, 5.0))

    def __post_init__(self) -> None:
        if self.recover_vanished not in RECOVER_MODES:
            raise ConfigError(
                f"HIVEQ_RECOVER_VANISHED={self.recover_vanished!r} is not allowed; use off (vanished "
                "jobs wait for `hiveq recover`) or auto (the watch recovers them at once)"
            )


@dataclass(frozen=True)
class LLMSettings:
    """An OpenAI-compatible endpoint, used by the `llm` planner and agent."""

    base_url: str | None = field(
        default=None, metadata=env("HIVEQ_LLM_BASE_URL", None, None, "OPENAI_BASE_URL")
    )
    api_key: str | None = field(default=None, metadata=env("HIVEQ_LLM_API_KEY", None, None, "OPENAI_API_KEY"))
    model: str = field(default="gpt-4o-mini", metadata=env("HIVEQ_LLM_MODEL"))
    timeout_s: float = field(default=60.0, metadata=env("HIVEQ_LLM_TIMEOUT", 0.1, 3600.0))
    max_retries: int = field(default=3, metadata=env("HIVEQ_LLM_MAX_RETRIES", 0, 20))
    max_concurrency: int = field(default=4, metadata=env("HIVEQ_LLM_CONCURRENCY", 1, 256))

    @classmethod
    def from_env(cls, e: Mapping[str, str]) -> LLMSettings:
        return load(cls, e)


LIMITS_ENV = {
    "max_payload_bytes": env("HIVEQ_MAX_PAYLOAD_BYTES", 1024, 64_000_000),
    "max_description_chars": env("HIVEQ_MAX_DESCRIPTION_CHARS", 1, 1_000_000),
    "max_subtasks": env("HIVEQ_MAX_SUBTASKS", 1, 10_000),
    "max_metadata_bytes": env("HIVEQ_MAX_METADATA_BYTES", 64, 64_000_000),
    "max_steps": env("HIVEQ_MAX_STEPS", 1, 1_000_000),
    "max_steps_bytes": env("HIVEQ_MAX_STEPS_BYTES", 1024, 1_000_000_000),
    "max_output_bytes": env("HIVEQ_MAX_OUTPUT_BYTES", 1024, 64_000_000),
}


def limits_from_env(e: Mapping[str, str]) -> Limits:
    """`Limits` live in the contract layer (no settings machinery there); their variables here."""
    base = Limits()
    return Limits(**{name: _read(e, meta, getattr(base, name)) for name, meta in LIMITS_ENV.items()})


GROUPS = (
    "leases",
    "retry",
    "limits",
    "retention",
    "archive",
    "api",
    "worker",
    "watch",
    "llm",
    "replication",
)


@dataclass(frozen=True)
class Settings:
    """Everything a hiveq process needs; `Settings.from_env()` reads `HIVEQ_*` and `REDIS_URL`."""

    redis_url: str = DEFAULT_REDIS_URL
    app: str = "default"
    env: str = "dev"
    leases: LeaseSettings = field(default_factory=LeaseSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    limits: Limits = field(default_factory=Limits)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    replication: ReplicationSettings = field(default_factory=ReplicationSettings)

    @property
    def namespace(self) -> str:
        return f"{self.app}:{self.env}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret this process knows, so that `redact` masks it wherever it shows up."""
        found = [*self.api.api_tokens, *url_secrets(self.redis_url)]
        if self.llm.api_key:
            found.append(self.llm.api_key)
        return tuple(found)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some values changed, each named by its field (`with_(lease_s=2)`): the
        field names are unique across the groups, so a name says which group it belongs to."""
        top = {k: v for k, v in changes.items() if k in ("redis_url", "app", "env", *GROUPS)}
        rest = {k: v for k, v in changes.items() if k not in top}
        for group in GROUPS:
            current = getattr(self, group)
            mine = {f.name: rest.pop(f.name) for f in fields(current) if f.name in rest}
            if mine:
                top[group] = replace(current, **mine)
        if rest:
            raise TypeError(f"unknown settings: {', '.join(sorted(rest))}")
        return replace(self, **top)

    @classmethod
    def from_env(cls, env_: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env_ is None else env_
        url = e.get("REDIS_URL") or e.get("HIVEQ_REDIS_URL") or DEFAULT_REDIS_URL
        return cls(
            redis_url=check_redis_url(url),
            app=check_name("HIVEQ_APP", e.get("HIVEQ_APP", cls.app)),
            env=check_name("HIVEQ_ENV", e.get("HIVEQ_ENV", cls.env)),
            leases=LeaseSettings.from_env(e),
            retry=load(RetrySettings, e),
            limits=limits_from_env(e),
            retention=load(RetentionSettings, e),
            archive=ArchiveSettings.from_env(e),
            api=load(ApiSettings, e),
            worker=load(WorkerSettings, e),
            watch=load(WatchSettings, e),
            llm=LLMSettings.from_env(e),
            replication=load(ReplicationSettings, e),
        )
