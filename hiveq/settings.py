"""Settings: small frozen dataclasses read from the environment, with errors that name the variable."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hiveq.contract.errors import ConfigError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def check_name(kind: str, value: str) -> str:
    """App and env names become part of every key, so only a safe, short alphabet is allowed."""
    if not NAME_RE.match(value):
        raise ConfigError(
            f"{kind} {value!r} is not a valid name: use 1-32 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; set it to an integer") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range; allowed {lo}..{hi}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it to a number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range; allowed {lo}..{hi}")
    return value


def _tokens(raw: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (raw or "").split(",") if t.strip())


@dataclass(frozen=True)
class LLMSettings:
    """An OpenAI-compatible endpoint, used by the `llm` planner and agent."""

    base_url: str | None = None
    api_key: str | None = None
    model: str = "gpt-4o-mini"
    timeout_s: float = 60.0
    max_retries: int = 3
    max_concurrency: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LLMSettings:
        return cls(
            base_url=env.get("HIVEQ_LLM_BASE_URL") or env.get("OPENAI_BASE_URL") or None,
            api_key=env.get("HIVEQ_LLM_API_KEY") or env.get("OPENAI_API_KEY") or None,
            model=env.get("HIVEQ_LLM_MODEL", "gpt-4o-mini"),
            timeout_s=_float(env, "HIVEQ_LLM_TIMEOUT", 60.0, 0.1, 3600.0),
            max_retries=_int(env, "HIVEQ_LLM_MAX_RETRIES", 3, 0, 20),
            max_concurrency=_int(env, "HIVEQ_LLM_CONCURRENCY", 4, 1, 256),
        )


@dataclass(frozen=True)
class Settings:
    """Everything a hiveq process needs; `Settings.from_env()` reads `HIVEQ_*` and `REDIS_URL`."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    app: str = "default"
    env: str = "dev"
    # Leases and liveness: a dead worker's jobs run again within lease_s + reap_interval_s.
    lease_s: float = 5.0
    heartbeat_s: float = 1.0
    reap_interval_s: float = 0.5
    # Retry policy defaults (per job overridable).
    max_attempts: int = 3
    max_deliveries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    job_timeout_s: float = 600.0
    # Bounds.
    max_payload_bytes: int = 1_000_000
    max_description_chars: int = 10_000
    max_subtasks: int = 100
    # Retention.
    retention_s: int = 7 * 24 * 3600
    events_maxlen: int = 100_000
    # API.
    host: str = "127.0.0.1"
    port: int = 8001
    api_tokens: tuple[str, ...] = ()
    default_planner: str = "template"
    # Worker.
    concurrency: int = 10
    demo_delay_s: float = 0.5
    shutdown_grace_s: float = 10.0  # SIGTERM: running jobs get this long before they are handed back
    agent_modules: tuple[str, ...] = ()  # user modules defining @agent functions
    llm: LLMSettings = field(default_factory=LLMSettings)

    @property
    def namespace(self) -> str:
        return f"{self.app}:{self.env}"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        app = check_name("HIVEQ_APP", e.get("HIVEQ_APP", "default"))
        envname = check_name("HIVEQ_ENV", e.get("HIVEQ_ENV", "dev"))
        url = e.get("REDIS_URL") or e.get("HIVEQ_REDIS_URL") or cls.redis_url
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"REDIS_URL={url!r} is not a Redis URL; use redis://host:port/db, rediss:// or unix://"
            )
        lease = _float(e, "HIVEQ_LEASE_SECONDS", 5.0, 1.0, 3600.0)
        return cls(
            redis_url=url,
            app=app,
            env=envname,
            lease_s=lease,
            heartbeat_s=_float(e, "HIVEQ_HEARTBEAT_SECONDS", min(1.0, lease / 3), 0.05, lease / 2),
            reap_interval_s=_float(e, "HIVEQ_REAP_INTERVAL", 0.5, 0.05, 60.0),
            max_attempts=_int(e, "HIVEQ_MAX_ATTEMPTS", 3, 1, 100),
            max_deliveries=_int(e, "HIVEQ_MAX_DELIVERIES", 5, 1, 100),
            backoff_base_s=_float(e, "HIVEQ_BACKOFF_BASE", 1.0, 0.0, 3600.0),
            backoff_max_s=_float(e, "HIVEQ_BACKOFF_MAX", 300.0, 0.0, 86400.0),
            job_timeout_s=_float(e, "HIVEQ_JOB_TIMEOUT", 600.0, 0.1, 86400.0),
            max_payload_bytes=_int(e, "HIVEQ_MAX_PAYLOAD_BYTES", 1_000_000, 1024, 64_000_000),
            max_subtasks=_int(e, "HIVEQ_MAX_SUBTASKS", 100, 1, 10_000),
            max_description_chars=_int(e, "HIVEQ_MAX_DESCRIPTION_CHARS", 10_000, 1, 1_000_000),
            retention_s=_int(e, "HIVEQ_RETENTION_SECONDS", 7 * 24 * 3600, 1, 10 * 365 * 86400),
            events_maxlen=_int(e, "HIVEQ_EVENTS_MAXLEN", 100_000, 100, 100_000_000),
            host=e.get("HIVEQ_HOST", "127.0.0.1"),
            port=_int(e, "HIVEQ_PORT", 8001, 1, 65535),
            api_tokens=_tokens(e.get("HIVEQ_API_TOKENS") or e.get("HIVEQ_API_TOKEN")),
            default_planner=e.get("HIVEQ_PLANNER", "template"),
            concurrency=_int(e, "HIVEQ_CONCURRENCY", 10, 1, 10_000),
            demo_delay_s=_float(e, "HIVEQ_DEMO_DELAY", 0.5, 0.0, 3600.0),
            shutdown_grace_s=_float(e, "HIVEQ_SHUTDOWN_GRACE", 10.0, 0.0, 86400.0),
            agent_modules=_tokens(e.get("HIVEQ_AGENT_MODULES")),
            llm=LLMSettings.from_env(e),
        )
