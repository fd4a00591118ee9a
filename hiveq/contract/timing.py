"""When a submitted task may start: `run_at` (ISO 8601 with a zone) or `delay_s`, checked once.

A naive `run_at` is refused rather than guessed: "09:00" on a server in UTC and a laptop in
Berlin are different instants, and a task that runs an hour early or late is worse than a 422.
A `run_at` in the past starts at once (clock skew between client and Redis must not fail a
submit). docs/schedules.md has the rules.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from hiveq.contract.errors import ValidationFailed
from hiveq.contract.limits import MAX_DELAY_S

# A task fired by a schedule carries these in its metadata: the schedule's name and the tick
# (ISO 8601, UTC) it fired for; the idempotency key `schedule:<name>:<tick>` makes the fire unique.
SCHEDULE_META, TICK_META = "schedule", "schedule_tick"
ISO_HINT = "give an ISO 8601 time with its zone, e.g. 2026-12-01T09:00:00+01:00 or 2026-12-01T08:00:00Z"


@dataclass(frozen=True, slots=True)
class Start:
    """At most one of the two is set: an absolute start (Redis ms) or a delay from the enqueue."""

    run_at_ms: int | None = None
    delay_ms: int | None = None


def parse_run_at(text: str, field: str = "run_at") -> datetime:
    """An aware datetime from ISO 8601 text; naive or malformed text is a ValidationFailed."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(field, f"{text!r} is not an ISO 8601 time; {ISO_HINT}") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValidationFailed(field, f"{text!r} has no time zone, so its instant is ambiguous; {ISO_HINT}")
    return when


def start_of(run_at: str | None, delay_s: float | None, *, now_s: float | None = None) -> Start:
    """The start of a task from its request fields (both None: at once)."""
    if run_at is not None and delay_s is not None:
        raise ValidationFailed("delay_s", "give run_at or delay_s, not both")
    if delay_s is not None:
        if not math.isfinite(delay_s) or delay_s < 0 or delay_s > MAX_DELAY_S:
            raise ValidationFailed(
                "delay_s", f"must be a number of seconds from 0 to {MAX_DELAY_S} (366 days)"
            )
        return Start(delay_ms=round(delay_s * 1000)) if delay_s > 0 else Start()
    if run_at is None:
        return Start()
    when = parse_run_at(run_at)
    now = time.time() if now_s is None else now_s
    ahead = when.timestamp() - now
    if ahead > MAX_DELAY_S:
        raise ValidationFailed("run_at", f"is {ahead / 86_400:.0f} days ahead; at most 366 days are allowed")
    return Start(run_at_ms=round(when.timestamp() * 1000))


def iso_ms(ms: int, tz: object = UTC) -> str:
    """Redis ms as ISO 8601 text in `tz` (a tzinfo), seconds precision unless ms are set."""
    when = datetime.fromtimestamp(ms / 1000, tz)  # type: ignore[arg-type]
    return when.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
