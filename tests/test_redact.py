"""`redact`: the one function that takes credentials out of URLs, query strings and known secrets."""

from __future__ import annotations

import logging

import pytest

from hiveq.contract.errors import RedisUnavailable
from hiveq.contract.redact import RedactFilter, redact, url_secrets
from hiveq.settings import Settings

PW = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{PW}@h:6379/0", "redis://:***@h:6379/0"),
        (f"redis://alice:{PW}@h:6379/0", "redis://alice:***@h:6379/0"),
        (f"redis://{PW}@h", "redis://***@h"),  # a lone user info may be a password
        (f"redis://h:6379/0?password={PW}&db=1", "redis://h:6379/0?password=***&db=1"),
        (f"rediss://alice:{PW}@h:6380", "rediss://alice:***@h:6380"),
        (f"unix:///run/redis.sock?db=0&password={PW}", "unix:///run/redis.sock?db=0&password=***"),
        (f"unix://alice:{PW}@/run/redis.sock", "unix://alice:***@/run/redis.sock"),
        (
            f"redis+sentinel://alice:{PW}@h1:26379,h2:26379/mymaster",
            "redis+sentinel://alice:***@h1:26379,h2:26379/mymaster",
        ),
        ("redis://:p@ss@h/0", "redis://:***@h/0"),  # an unescaped '@' in the password
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),  # nothing to hide: unchanged
    ],
)
def test_redact_masks_the_password_of_every_redis_url_form(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert redact(f"Redis at {url} is unreachable (x@y)") == f"Redis at {shown} is unreachable (x@y)"


def test_redact_masks_credential_query_parameters_and_known_secrets() -> None:
    line = '127.0.0.1:5000 - "GET /tasks/t1/events?after=1-0&token=tok-abc HTTP/1.1" 200'
    assert redact(line) == '127.0.0.1:5000 - "GET /tasks/t1/events?after=1-0&token=*** HTTP/1.1" 200'
    assert redact("key tok-abc leaked; ab stays", ["tok-abc", "ab"]) == "key *** leaked; ab stays"


def test_url_secrets_are_the_password_as_written_and_decoded() -> None:
    assert url_secrets("redis://u:p%40ss@h") == ["p%40ss", "p@ss"]
    assert url_secrets("redis://h/0?password=x%2By") == ["x%2By", "x+y"]
    assert url_secrets("redis://h/0") == []


def test_redis_unavailable_never_carries_the_password() -> None:
    exc = RedisUnavailable(f"redis://:{PW}@h:6379/0", f"AUTH {PW} failed")
    assert PW not in str(exc) and PW not in exc.url
    assert str(exc).startswith("Redis at redis://:***@h:6379/0 is unreachable (AUTH *** failed)")


def test_settings_know_their_secrets_and_a_bad_url_error_hides_them() -> None:
    s = Settings.from_env({"REDIS_URL": f"redis://:{PW}@h/0", "HIVEQ_API_TOKENS": "tok-1,tok-2"})
    assert set(s.secrets) == {PW, "tok-1", "tok-2"}
    with pytest.raises(Exception, match="is not a Redis URL") as err:
        Settings.from_env({"REDIS_URL": f"http://:{PW}@h/0"})
    assert PW not in str(err.value)


def test_redact_filter_keeps_positional_arguments_for_access_log_formatters() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None
    )
    record.args = ("127.0.0.1:1", "GET", "/events?token=tok-9", "1.1", 200)
    assert RedactFilter(["tok-9"]).filter(record)
    assert record.args == ("127.0.0.1:1", "GET", "/events?token=***", "1.1", 200)
    assert record.getMessage() == '127.0.0.1:1 - "GET /events?token=*** HTTP/1.1" 200'
