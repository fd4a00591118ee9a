"""Structured logging: `setup_logging(level, fmt)` and adapters that put the job's identity
(task id, job id, agent, attempt, worker id) on every line, as text or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping, Sequence
from typing import Any, Literal

from hiveq.contract.errors import ConfigError
from hiveq.contract.redact import RedactFilter

CONTEXT_FIELDS = ("worker_id", "task_id", "job_id", "agent", "attempt")
_SHORT = {"worker_id": "worker", "task_id": "task", "job_id": "job", "agent": "agent", "attempt": "attempt"}
LogFormat = Literal["text", "json"]


class ContextAdapter(logging.LoggerAdapter[logging.Logger]):
    """Merges its bound fields into every record (the call's own `extra` wins)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs

    def bind(self, **fields: Any) -> ContextAdapter:
        merged = dict(self.extra or {})
        merged.update({k: v for k, v in fields.items() if v is not None})
        return ContextAdapter(self.logger, merged)


def bound_logger(name: str, **fields: Any) -> ContextAdapter:
    return ContextAdapter(logging.getLogger(name), {k: v for k, v in fields.items() if v is not None})


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {f: getattr(record, f) for f in CONTEXT_FIELDS if getattr(record, f, None) is not None}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        line = self.formatMessage(record)
        ctx = _context(record)
        if ctx:  # on the first line, before any traceback, so grep finds it
            line += " [" + " ".join(f"{_SHORT[k]}={v}" for k, v in ctx.items()) + "]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_context(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(
    level: str = "info", fmt: LogFormat | str = "text", stream: Any = None, secrets: Sequence[str] = ()
) -> None:
    """Configure the root logger once for a process (worker, API, CLI). Every line is redacted:
    credentials in URLs, and the process's `secrets` (Settings.secrets) wherever they appear."""
    name = level.upper()
    if name not in logging.getLevelNamesMapping():
        raise ConfigError(f"log level {level!r} is not one of debug, info, warning, error")
    if fmt not in ("text", "json"):
        raise ConfigError(f"log format {fmt!r} is not 'text' or 'json'")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactFilter(secrets))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(name)
