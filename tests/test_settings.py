"""Settings come from the environment; a bad value stops with a message naming the variable."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from hiveq.contract.errors import ConfigError
from hiveq.settings import GROUPS, LIMITS_ENV, Settings


def test_defaults_name_the_dev_namespace_on_local_redis() -> None:
    s = Settings.from_env({})
    assert (s.app, s.env, s.namespace) == ("default", "dev", "default:dev")
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert (s.leases.lease_s, s.retry.max_attempts, s.retry.max_deliveries, s.api.port) == (5.0, 3, 5, 8001)


def test_environment_variables_set_every_bound() -> None:
    s = Settings.from_env(
        {
            "REDIS_URL": "redis://db:6380/2",
            "HIVEQ_APP": "shop",
            "HIVEQ_ENV": "prod",
            "HIVEQ_LEASE_SECONDS": "9",
            "HIVEQ_MAX_DESCRIPTION_CHARS": "50",
            "HIVEQ_API_TOKENS": "a, b,,",
        }
    )
    assert (s.redis_url, s.namespace, s.leases.lease_s) == ("redis://db:6380/2", "shop:prod", 9.0)
    assert s.limits.max_description_chars == 50
    assert s.api.api_tokens == ("a", "b")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HIVEQ_APP": "My App"}, "HIVEQ_APP"),
        ({"HIVEQ_ENV": "x" * 40}, "HIVEQ_ENV"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({"HIVEQ_MAX_ATTEMPTS": "three"}, "HIVEQ_MAX_ATTEMPTS"),
        ({"HIVEQ_MAX_ATTEMPTS": "0"}, "HIVEQ_MAX_ATTEMPTS"),
        ({"HIVEQ_LEASE_SECONDS": "-1"}, "HIVEQ_LEASE_SECONDS"),
        ({"HIVEQ_PORT": "70000"}, "HIVEQ_PORT"),
        ({"HIVEQ_RECOVER_VANISHED": "sometimes"}, "HIVEQ_RECOVER_VANISHED"),
        ({"HIVEQ_WATCH_SAMPLE_SECONDS": "60"}, "HIVEQ_WATCH_SAMPLE_SECONDS"),
    ],
)
def test_a_bad_value_is_refused_with_the_variable_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def declared_defaults() -> dict[str, object]:
    """Every environment variable that `hiveq/settings.py` declares, with its default."""
    base = Settings()
    out: dict[str, object] = {}
    for group in GROUPS:
        value = getattr(base, group)
        for f in fields(value):
            meta = f.metadata if "env" in f.metadata else LIMITS_ENV.get(f.name, {})
            if "env" in meta:
                out[meta["env"][0]] = getattr(value, f.name)
    return out


def readme_defaults() -> dict[str, str]:
    """`| `VAR`, `VAR2` | `d1`, `d2` | …` rows of the README's configuration table."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    out: dict[str, str] = {}
    for row in re.findall(r"^\| (`HIVEQ_[^|]+) \| ([^|]+) \|", text, re.M):
        names = re.findall(r"`(HIVEQ_\w+)`(?! \(or)", row[0].split(" (or ")[0] + " ")
        values = [v.strip().strip("`") for v in row[1].split(",")]
        out.update(
            zip(names, values if len(values) == len(names) else [row[1].strip()] * len(names), strict=True)
        )
    return out


def test_the_readme_table_gives_every_declared_setting_with_its_one_default() -> None:
    readme = readme_defaults()
    for name, default in declared_defaults().items():
        assert name in readme, f"{name} is declared in hiveq/settings.py but missing from the README"
        shown = readme[name]
        if default in (None, ()):
            assert shown == "none", (name, shown)
        elif isinstance(default, bool):  # yes/no settings are documented as 1 / 0
            assert shown == str(int(default)), (name, shown)
        elif isinstance(default, float):
            assert float(shown) == default, (name, shown)
        else:
            assert shown == str(default), (name, shown)
