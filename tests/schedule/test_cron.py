"""Cron ticks in a zone: the next tick after an instant, daylight saving, seconds first, and the
catch-up policy (of the ticks missed since `next`, the latest fires; the others are counted)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hiveq.contract.errors import ValidationFailed
from hiveq.schedule.cron import MISSED_COUNTED, check_cron, iso, latest_since, next_after


def ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def test_nine_in_berlin_is_eight_utc_in_winter_and_seven_in_summer() -> None:
    expr, berlin = check_cron("0 9 * * *", "Europe/Berlin")
    assert iso(next_after(expr, berlin, ms("2026-12-01T10:00:00+01:00"))) == "2026-12-02T08:00:00Z"
    assert iso(next_after(expr, berlin, ms("2026-07-01T10:00:00+02:00"))) == "2026-07-02T07:00:00Z"
    # across the spring change (29 March 2026) the local time stays 09:00
    assert (
        iso(next_after(expr, berlin, ms("2026-03-28T10:00:00+01:00")), berlin) == "2026-03-29T09:00:00+02:00"
    )


def test_next_is_strictly_after_the_instant_even_on_a_tick() -> None:
    expr, utc = check_cron("*/15 * * * *", "UTC")
    on = ms("2026-12-01T08:15:00Z")
    assert next_after(expr, utc, on) == on + 15 * 60_000
    assert next_after(expr, utc, on - 1) == on


def test_six_fields_put_seconds_first_and_aliases_work() -> None:
    expr, utc = check_cron("*/10 * * * * *", "UTC")
    t = ms("2026-12-01T08:00:03Z")
    assert iso(next_after(expr, utc, t)) == "2026-12-01T08:00:10Z"
    daily, _ = check_cron("@daily", "UTC")
    assert iso(next_after(daily, utc, t)) == "2026-12-02T00:00:00Z"
    assert check_cron("  0   9 * *   *  ", "UTC")[0] == "0 9 * * *"


def test_the_latest_missed_tick_fires_and_the_earlier_are_counted() -> None:
    expr, utc = check_cron("0 * * * *", "UTC")
    due = ms("2026-12-01T08:00:00Z")
    assert latest_since(expr, utc, due, due) == (due, 0)
    assert latest_since(expr, utc, due, due + 59 * 60_000) == (due, 0)
    assert latest_since(expr, utc, due, ms("2026-12-01T11:30:00Z")) == (ms("2026-12-01T11:00:00Z"), 3)


def test_a_long_outage_jumps_to_the_latest_tick() -> None:
    expr, utc = check_cron("* * * * * *", "UTC")
    due = ms("2026-12-01T08:00:00Z")
    now = due + 86_400_000 + 500  # a day of per-second ticks
    tick, missed = latest_since(expr, utc, due, now)
    assert tick == due + 86_400_000 and missed == MISSED_COUNTED


@pytest.mark.parametrize(
    ("cron", "tz", "field"),
    [
        ("0 9 * *", "UTC", "cron"),
        ("0 9 * * * * *", "UTC", "cron"),
        ("0 24 * * *", "UTC", "cron"),
        ("0 9 31 2 *", "UTC", "cron"),  # never fires
        ("@sometimes", "UTC", "cron"),
        ("x" * 201, "UTC", "cron"),
        ("0 9 * * *", "Europe/Nowhere", "tz"),
        ("0 9 * * *", "", "tz"),
        ("0 9 * * *", "/etc/passwd", "tz"),
    ],
)
def test_bad_cron_or_zone_names_the_field(cron: str, tz: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        check_cron(cron, tz)
    assert err.value.field == field


def test_iso_is_utc_with_z_or_in_the_zone_given() -> None:
    t = ms("2026-12-01T08:00:00Z")
    assert iso(t) == "2026-12-01T08:00:00Z"
    assert datetime.fromisoformat(iso(t, check_cron("@daily", "Asia/Tokyo")[1])).astimezone(UTC).hour == 8
