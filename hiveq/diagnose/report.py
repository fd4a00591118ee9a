"""The doctor's vocabulary: a verdict per check, with the evidence and the fix, and the report."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, computed_field


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class Check(BaseModel):
    """One finding. `evidence` is what was seen (addresses, keys, counts); `fix` says what to do."""

    name: str
    verdict: Verdict
    summary: str
    evidence: list[str] | dict[str, Any] = Field(default_factory=list)
    fix: str = ""

    def lines(self) -> list[str]:
        """The evidence as lines of text (a dict becomes `key: value` lines)."""
        if isinstance(self.evidence, dict):
            return [f"{k}: {v}" for k, v in self.evidence.items()]
        return [str(x) for x in self.evidence]


class DoctorReport(BaseModel):
    namespace: str
    redis_url: str
    checks: list[Check]
    took_ms: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """False when any check failed (warnings do not fail the report)."""
        return all(c.verdict != Verdict.FAIL for c in self.checks)

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


def ok(name: str, summary: str, evidence: list[str] | dict[str, Any] | None = None) -> Check:
    return Check(name=name, verdict=Verdict.OK, summary=summary, evidence=evidence or [])


def warn(name: str, summary: str, evidence: list[str] | dict[str, Any] | None = None, fix: str = "") -> Check:
    return Check(name=name, verdict=Verdict.WARN, summary=summary, evidence=evidence or [], fix=fix)


def fail(name: str, summary: str, evidence: list[str] | dict[str, Any] | None = None, fix: str = "") -> Check:
    return Check(name=name, verdict=Verdict.FAIL, summary=summary, evidence=evidence or [], fix=fix)


def when(ms: int | float | None) -> str:
    """A Redis millisecond timestamp as readable UTC time."""
    if not ms:
        return "never"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def ago(ms: int | float) -> str:
    """A duration in milliseconds, in words a person reads at a glance."""
    s = ms / 1000
    if s < 1:
        return f"{int(ms)} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
