"""`hiveq schedules` (table), `schedules add` (cron and zone checked, clear one-line errors, exit
2), `schedules rm`; `hiveq submit --delay / --run-at` and `hiveq task` showing the start."""

from __future__ import annotations

import json

from tests.cli.conftest import Hiveq

TASK = json.dumps({"description": "nightly report"})


def test_add_lists_and_removes_a_schedule(hiveq: Hiveq) -> None:
    res = hiveq("schedules", "add", "nightly", "--cron", "0 9 * * *", "--tz", "Europe/Berlin", "--task", TASK)
    assert res.returncode == 0, res.stderr
    assert "schedule nightly added; next run" in res.stdout and "T09:00:00+0" in res.stdout
    table = hiveq("schedules")
    assert table.returncode == 0, table.stderr
    for col in ("name", "cron", "tz", "next run", "last fired", "last task", "nightly", "Europe/Berlin"):
        assert col in table.stdout, col
    [item] = hiveq.json("schedules")["items"]
    assert (item["name"], item["cron"], item["task"]) == (
        "nightly",
        "0 9 * * *",
        {"description": "nightly report"},
    )
    again = hiveq("schedules", "add", "nightly", "--cron", "@hourly", "--task", TASK)
    assert again.returncode == 0 and "replaced" in again.stdout
    rm = hiveq("schedules", "rm", "nightly")
    assert rm.returncode == 0 and "removed" in rm.stdout
    gone = hiveq("schedules", "rm", "nightly")
    assert gone.returncode != 0 and "unknown schedule" in gone.stderr
    assert hiveq.json("schedules")["items"] == []


def test_bad_cron_zone_or_task_is_one_line_naming_the_field(hiveq: Hiveq) -> None:
    cases = [
        (["--cron", "0 25 * * *", "--task", TASK], "cron:"),
        (
            ["--cron", "0 9 * * *", "--tz", "Berlin", "--task", TASK],
            "tz: 'Berlin' is not a known IANA time zone",
        ),
        (["--cron", "0 9 * * *", "--task", "{"], "--task"),
        (["--cron", "0 9 * * *", "--task", "[1]"], "--task must be a JSON object"),
        (["--cron", "0 9 * * *", "--task", '{"priority": 1}'], "task.description: is required"),
    ]
    for args, words in cases:
        res = hiveq("schedules", "add", "x", *args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert words in res.stderr and "Traceback" not in res.stderr, (args, res.stderr)
    assert hiveq.json("schedules")["items"] == []


def test_submit_with_a_delay_shows_its_start_in_the_task_view(hiveq: Hiveq) -> None:
    res = hiveq("submit", "later", "--delay", "3600", "--json")
    assert res.returncode == 0, res.stderr
    tid = json.loads(res.stdout)["task_id"]
    view = hiveq.json("task", tid)
    assert view["run_at_ms"] and {s["state"] for s in view["subtasks"]} == {"delayed", "blocked"}
    shown = hiveq("task", tid)
    assert "starts no earlier than" in shown.stdout
    bad = hiveq("submit", "later", "--run-at", "2030-01-01T09:00:00")
    assert bad.returncode == 2 and "run_at:" in bad.stderr and "no time zone" in bad.stderr
    both = hiveq("submit", "later", "--run-at", "2030-01-01T09:00:00Z", "--delay", "5")
    assert both.returncode == 2 and "delay_s: give run_at or delay_s, not both" in both.stderr
