"""Limit rules: the named rules in Redis that decide when a job with limit keys may run.

A rule is stored as JSON in the namespace's `limits` hash, field = its key (docs/limits.md); the
claim script (queue/lua/claim.lua) reads it there. This module is the one place a rule's fields,
their bounds and the key syntax are written down; the HTTP body, the CLI flags and the stored
form all go through `LimitRule`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A limit key: 1-100 of A-Z a-z 0-9 _ . : / @ -, optionally ending in `*` (a pattern: each
# distinct key that starts with what comes before the `*` gets its own counters under it).
LIMIT_KEY_PATTERN = r"^[A-Za-z0-9_.:/@\-]{1,100}\*?$|^\*$"
LIMIT_KEY_RE = re.compile(LIMIT_KEY_PATTERN)
LIMIT_KEY_RULE = "must be 1-100 of A-Z a-z 0-9 _ . : / @ -, optionally ending in * (a pattern)"
JOB_LIMIT_KEY_RULE = "must be 1-100 of A-Z a-z 0-9 _ . : / @ - (a concrete key: no *)"
MAX_JOB_LIMITS = 8  # limit keys on one job (its own, its task's and its agent's together)
MAX_ESTIMATE_TOKENS = 10_000_000
TOKENS_WINDOW_MS = 60_000  # `tokens` is per minute, counted in fixed one-minute windows
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute)\s*$")
RATE_RULE = "must look like 10/s or 60/min (a whole number of requests per second or minute)"
_UNIT_MS = {"s": 1000, "sec": 1000, "second": 1000, "m": 60_000, "min": 60_000, "minute": 60_000}


def parse_rate(text: str) -> tuple[int, int]:
    """'10/s' -> (10, 1000): requests per window of that many ms. ValueError names the rule."""
    m = RATE_RE.match(text)
    if m is None or int(m.group(1)) < 1:
        raise ValueError(RATE_RULE)
    return int(m.group(1)), _UNIT_MS[m.group(2)]


def parse_tokens(text: str | int) -> int:
    """'90000/min' or 90000 -> 90000 tokens per minute."""
    if isinstance(text, int):
        n = text
    else:
        m = re.match(r"^\s*(\d+)\s*(?:/\s*(?:m|min|minute))?\s*$", text)
        if m is None:
            raise ValueError("must be a whole number of tokens per minute, e.g. 90000 or 90000/min")
        n = int(m.group(1))
    if n < 1:
        raise ValueError("must be at least 1 token per minute")
    return n


def is_pattern(key: str) -> bool:
    return key.endswith("*")


def check_limit_key(key: str, *, concrete: bool = False) -> str:
    if not LIMIT_KEY_RE.match(key) or (concrete and is_pattern(key)):
        raise ValueError(f"limit key {key!r} {JOB_LIMIT_KEY_RULE if concrete else LIMIT_KEY_RULE}")
    return key


class LimitRule(BaseModel):
    """What may run under one key (the body of `PUT /limits/{key}`); at least one limit is set."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = Field(default=None, ge=1, le=1_000_000, description="jobs running at once")
    rate: str | None = Field(default=None, description="job starts per second or minute: 10/s, 60/min")
    tokens: int | str | None = Field(
        default=None, description="tokens per minute (reserved at claim from estimate_tokens): 90000"
    )
    budget_tokens: int | None = Field(default=None, ge=1, description="tokens in total, ever")
    budget_usd: float | None = Field(default=None, gt=0, description="US dollars in total, ever")
    on_exhausted: Literal["wait", "fail"] = Field(
        default="wait", description="when a budget is spent: hold the job (wait) or dead-letter it (fail)"
    )

    @field_validator("rate")
    @classmethod
    def _rate(cls, v: str | None) -> str | None:
        if v is not None:
            parse_rate(v)
        return v

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, v: int | str | None) -> int | None:
        return None if v is None else parse_tokens(v)

    @model_validator(mode="after")
    def _some_limit(self) -> LimitRule:
        if all(
            v is None for v in (self.concurrency, self.rate, self.tokens, self.budget_tokens, self.budget_usd)
        ):
            raise ValueError("set at least one of concurrency, rate, tokens, budget_tokens, budget_usd")
        return self

    def stored(self) -> dict[str, Any]:
        """The JSON claim.lua reads: short names, rate split into count and window."""
        out: dict[str, Any] = {"on_exhausted": self.on_exhausted}
        if self.concurrency is not None:
            out["concurrency"] = self.concurrency
        if self.rate is not None:
            out["rate_n"], out["rate_ms"] = parse_rate(self.rate)
            out["rate"] = self.rate
        if self.tokens is not None:
            out["tokens"] = self.tokens
        if self.budget_tokens is not None:
            out["budget_tokens"] = self.budget_tokens
        if self.budget_usd is not None:
            out["budget_usd"] = self.budget_usd
        return out

    @classmethod
    def from_stored(cls, d: dict[str, Any]) -> LimitRule:
        return cls(
            concurrency=d.get("concurrency"),
            rate=d.get("rate"),
            tokens=d.get("tokens"),
            budget_tokens=d.get("budget_tokens"),
            budget_usd=d.get("budget_usd"),
            on_exhausted=d.get("on_exhausted", "wait"),
        )


class LimitUsage(BaseModel):
    """One concrete key's live numbers (for a pattern rule: one per key seen)."""

    key: str
    in_use: int  # jobs holding a slot (running under it)
    holders: list[str]  # their job ids (the first few)
    starts_in_window: int  # job starts in the rate window
    tokens_this_minute: int
    budget_tokens_used: int
    budget_usd_used: float
    throttled_total: int  # times a job was passed over because of this key
    cooling_until_ms: int | None  # a provider 429 paused it until then


class LimitView(BaseModel):
    """A rule with the live usage of the keys under it (`GET /limits`, `hiveq limits`)."""

    key: str
    rule: LimitRule
    usage: list[LimitUsage]


def job_limit_keys(*groups: list[str] | tuple[str, ...] | None) -> list[str]:
    """The limit keys of one job, in order, without repeats: its own, its task's, its agent's."""
    seen: dict[str, None] = {}
    for g in groups:
        for k in g or ():
            seen[k] = None
    return list(seen)


LLM_DEFAULT_MAX_TOKENS = 1024  # the llm agent's estimate when a subtask sets no max_tokens
CHARS_PER_TOKEN = 4


def llm_estimate(inp: Any, description: str) -> int:
    """The `llm` agent's estimate_tokens for a subtask: its prompt (and the task description it
    is given) at about four characters a token, plus its max_tokens."""
    d = inp if isinstance(inp, dict) else {"prompt": inp}
    text = "".join(str(d.get(k) or "") for k in ("prompt", "instructions", "system")) + description
    try:
        max_tokens = int(d.get("max_tokens") or LLM_DEFAULT_MAX_TOKENS)
    except (TypeError, ValueError):
        max_tokens = LLM_DEFAULT_MAX_TOKENS
    return min(MAX_ESTIMATE_TOKENS, -(-len(text) // CHARS_PER_TOKEN) + max(0, max_tokens))
