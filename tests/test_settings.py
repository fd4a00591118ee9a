"""Settings come from the environment; a bad value stops with a message naming the variable."""

from __future__ import annotations

import pytest

from hiveq.contract.errors import ConfigError
from hiveq.settings import Settings


def test_defaults_name_the_dev_namespace_on_local_redis() -> None:
    s = Settings.from_env({})
    assert (s.app, s.env, s.namespace) == ("default", "dev", "default:dev")
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert (s.lease_s, s.max_attempts, s.max_deliveries, s.port) == (5.0, 3, 5, 8001)


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
    assert (s.redis_url, s.namespace, s.lease_s) == ("redis://db:6380/2", "shop:prod", 9.0)
    assert s.max_description_chars == 50
    assert s.api_tokens == ("a", "b")


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
    ],
)
def test_a_bad_value_is_refused_with_the_variable_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)
