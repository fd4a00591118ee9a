"""Cron expressions in a time zone: checked once when a schedule is put, then next / latest ticks.

croniter does the parsing and the calendar; zoneinfo (with the `tzdata` package where the system
has no zone database) the zones, daylight saving included. A tick is an instant: Redis ms.
Five fields are classic cron (minute hour day month weekday); six put seconds first, as Quartz,
Spring and node-cron do (`*/10 * * * * *`: every 10 s). The @-aliases (@daily, @hourly, …) work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from hiveq.contract.errors import ValidationFailed

MAX_CRON_CHARS = 200
MISSED_COUNTED = 1000  # a long outage counts at most this many skipped ticks (then: "at least")
CRON_HINT = (
    "use 5 fields (minute hour day month weekday, e.g. '0 9 * * *'), 6 with seconds first "
    "(e.g. '*/10 * * * * *'), or an alias such as @daily"
)


def zone(tz: str) -> ZoneInfo:
    """The IANA zone named `tz` (e.g. Europe/Berlin, UTC); anything else is a ValidationFailed."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            "tz", f"{tz!r} is not a known IANA time zone; use a name such as UTC or Europe/Berlin"
        ) from None


def check_cron(expr: str, tz: str) -> tuple[str, ZoneInfo]:
    """The expression with its spaces normalised and its zone; refuses what croniter would not run."""
    text = " ".join(expr.split())
    if not text or len(text) > MAX_CRON_CHARS:
        raise ValidationFailed("cron", f"must be 1-{MAX_CRON_CHARS} characters; {CRON_HINT}")
    fields = len(text.split())
    if not (text.startswith("@") and fields == 1) and fields not in (5, 6):
        raise ValidationFailed("cron", f"{expr!r} has {fields} fields; {CRON_HINT}")
    where = zone(tz)
    try:
        _iter(text, where, 0).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValidationFailed(
            "cron", f"{expr!r} is not a valid cron expression ({exc}); {CRON_HINT}"
        ) from None
    return text, where


def _iter(expr: str, where: ZoneInfo, ms: int) -> croniter:
    start = datetime.fromtimestamp(ms / 1000, UTC).astimezone(where)
    return croniter(expr, start, second_at_beginning=len(expr.split()) == 6)


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


def next_after(expr: str, where: ZoneInfo, ms: int) -> int:
    """The first tick strictly after `ms`."""
    return _ms(_iter(expr, where, ms).get_next(datetime))


def latest_since(expr: str, where: ZoneInfo, due_ms: int, now_ms: int) -> tuple[int, int]:
    """The catch-up policy: of the ticks from `due_ms` (a tick, <= now) up to now, the latest
    fires and the earlier ones are skipped. Returns (that tick, how many were skipped)."""
    it = _iter(expr, where, due_ms)
    tick, missed = due_ms, 0
    while missed < MISSED_COUNTED:
        later = _ms(it.get_next(datetime))
        if later > now_ms:
            return tick, missed
        tick, missed = later, missed + 1
    # a long outage: jump to the latest tick instead of walking every one
    latest = _ms(_iter(expr, where, now_ms + 1).get_prev(datetime))
    return max(latest, tick), missed


def iso(ms: int, where: ZoneInfo | None = None) -> str:
    """A tick as ISO 8601 text (UTC unless a zone is given), e.g. 2026-12-01T08:00:00Z."""
    when = datetime.fromtimestamp(ms / 1000, UTC)
    if where is not None:
        return when.astimezone(where).isoformat(timespec="seconds")
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")
