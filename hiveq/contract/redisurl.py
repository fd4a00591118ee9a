"""The forms REDIS_URL takes, parsed without connecting (pure: the contract layer).

- `redis://[user:password@]host:port[/db]`, `rediss://…`, `unix://…`: one server, or any node of
  a Redis Cluster (cluster mode is detected when connecting, see hiveq/queue/connection.py);
- `redis+sentinel://[user:password@]host:port[,host:port…]/service_name[/db]`: the primary that
  the sentinels name for `service_name` (the same credentials are used for the sentinels and
  the data nodes); `rediss+sentinel://` connects to the data nodes with TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from hiveq.contract.errors import ConfigError
from hiveq.contract.redact import redact

PLAIN_SCHEMES = ("redis://", "rediss://", "unix://")
SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
REDIS_SCHEMES = PLAIN_SCHEMES + SENTINEL_SCHEMES
SENTINEL_FORM = "redis+sentinel://[user:password@]host:port[,host:port…]/service_name[/db]"
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False


def check_redis_url(url: str, name: str = "REDIS_URL") -> str:
    """`url` itself when it has one of the accepted forms; a ConfigError naming the forms if not."""
    if not url.startswith(REDIS_SCHEMES):
        raise ConfigError(
            f"{name}={redact(url)!r} is not a Redis URL; use redis://host:port/db, rediss://, unix:// "
            f"or {SENTINEL_FORM}"
        )
    if url.startswith(SENTINEL_SCHEMES):
        parse_sentinel_url(url, name)
    return url


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEMES)


def parse_sentinel_url(url: str, name: str = "REDIS_URL") -> SentinelUrl:
    scheme, _, rest = url.partition("://")
    rest = rest.split("?", 1)[0]
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        userinfo, hostpart = "", rest
    hosts, _, path = hostpart.partition("/")
    parts = [p for p in path.split("/") if p]

    def bad(why: str) -> ConfigError:
        return ConfigError(f"{name}={redact(url)!r}: {why}; the form is {SENTINEL_FORM}")

    if not parts:
        raise bad("the service name (the sentinels' primary group, e.g. mymaster) is missing")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise bad("after the service name only a database number may follow")
    sentinels: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon:
            host, port = item.strip(), str(DEFAULT_SENTINEL_PORT)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise bad(f"sentinel address {item.strip()!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    user, colon, password = userinfo.partition(":")
    return SentinelUrl(
        sentinels=tuple(sentinels),
        service=unquote(parts[0]),
        db=int(parts[1]) if len(parts) == 2 else 0,
        username=unquote(user) if colon and user else None,
        password=unquote(password if colon else user) if userinfo else None,
        tls=scheme.startswith("rediss"),
    )
