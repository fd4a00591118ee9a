"""`hiveq limits`, `hiveq limits set KEY …` and `hiveq limits rm KEY` through the real typer app."""

from __future__ import annotations

from tests.cli.test_admin import Cli, as_json, cli

__all__ = ["cli"]


def test_limits_set_shows_and_removes_a_rule(cli: Cli) -> None:
    res = cli(
        "limits", "set", "model:gpt-4o", "--rate", "60/min", "--tokens", "90000/min", "--concurrency", "4"
    )
    assert res.exit_code == 0, res.output
    assert "rate 60/min" in res.output and "tokens 90,000/min" in res.output
    [rule] = as_json(cli("limits", "--json"))
    assert rule["key"] == "model:gpt-4o" and rule["rule"]["concurrency"] == 4
    table = cli("limits")
    assert table.exit_code == 0 and "model:gpt-4o" in table.output
    assert cli("limits", "rm", "model:gpt-4o").exit_code == 0
    assert as_json(cli("limits", "--json")) == []
    again = cli("limits", "rm", "model:gpt-4o")
    assert again.exit_code == 3 and "no limit rule 'model:gpt-4o'" in again.output


def test_limits_set_with_a_bad_value_names_the_option_and_exits_2(cli: Cli) -> None:
    res = cli("limits", "set", "tenant:*", "--rate", "ten")
    assert res.exit_code == 2 and "--rate: must look like 10/s or 60/min" in res.output
    res = cli("limits", "set", "tenant:*")
    assert res.exit_code == 2 and "set at least one of" in res.output
    res = cli("limits", "set", "tenant:*", "--concurrency", "1", "--on-exhausted", "explode")
    assert res.exit_code == 2 and "--on-exhausted" in res.output
