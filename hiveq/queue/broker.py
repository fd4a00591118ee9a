"""The connection to one namespace: a named Redis client, the keyspace and the scripts.

Every hiveq process opens its connections through `Broker.connect`, which names them with
`CLIENT SETNAME` (so `CLIENT LIST` shows who is who) and checks that the namespace is ours.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis import exceptions as rex
from redis.asyncio import Redis

from hiveq.contract.errors import Code, NamespaceError, RedisUnavailable, WrongTypeError
from hiveq.contract.protocol import PROTOCOL_VERSION
from hiveq.queue.keys import Keyspace
from hiveq.queue.scripts import Scripts, script_keys
from hiveq.settings import Settings

T = TypeVar("T")

# The refusal of a script's prelude (lua/_lib.lua check_type): it names the key itself.
_SCRIPT_WRONGTYPE = re.compile(r"WRONGTYPE hiveq key (\S+) holds a (\w+), expected a (\w+)")
# With an archive attached (meta.archive, see lua/archive_lease.lua) scripts add events with this
# cap, which no stream reaches: the archiver trims what it has archived (lua/trim_events.lua).
NO_TRIM = 10**15
# How often a broker re-reads whether an archive is attached: a process that connected before an
# archiver first started stops trimming within this long.
ARCHIVE_FLAG_REFRESH_S = 2.0


def new_epoch() -> str:
    """A namespace epoch: random, so a namespace re-created after a loss never has the old one."""
    return secrets.token_hex(8)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Broker:
    redis: Redis
    keys: Keyspace
    settings: Settings
    client_name: str
    scripts: Scripts = field(init=False)
    # Per-broker helpers owned by other modules (e.g. the enqueue coalescer), keyed by name.
    extensions: dict[str, Any] = field(init=False, default_factory=dict)
    _script_keys: dict[str, list[str]] = field(init=False, default_factory=dict)
    _events_cap: int = field(init=False, default=0)
    _cap_read_at: float = field(init=False, default=float("-inf"))
    # The namespace epoch this process knows (claim_namespace; hiveq/queue/epoch.py): '' until then.
    epoch: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.scripts = Scripts(self.redis)

    @property
    def identity(self) -> str:
        """Who this process is, for custody records ("enqueued by …")."""
        return f"{self.client_name}@{socket.gethostname()}:{os.getpid()}"

    @classmethod
    async def connect(
        cls,
        settings: Settings,
        role: str = "client",
        ident: str = "",
        *,
        check_namespace: bool = True,
        socket_timeout: float | None = None,
        max_connections: int | None = None,
    ) -> Broker:
        keys = Keyspace(settings.app, settings.env)
        name = keys.client_name(role, ident or str(os.getpid()))
        redis = Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            client_name=name,
            socket_connect_timeout=2.0,
            socket_timeout=socket_timeout,
            health_check_interval=30,
            max_connections=max_connections,
        )
        broker = cls(redis=redis, keys=keys, settings=settings, client_name=name)
        if check_namespace:
            try:
                await broker.claim_namespace()
            except BaseException:
                await redis.aclose()
                raise
        return broker

    async def close(self) -> None:
        await self.redis.aclose()

    async def claim_namespace(self) -> dict[str, Any]:
        s = self.settings
        args = [s.app, s.env, str(PROTOCOL_VERSION), self.client_name, new_epoch()]
        res = await self.run("claim_namespace", args)
        code, app, env, proto, created = int(res[0]), res[1], res[2], res[3], res[4]
        if code == Code.NAMESPACE_MISMATCH:
            raise NamespaceError(
                f"namespace key {self.keys.meta!r} is owned by app={app!r} env={env!r}, not "
                f"app={s.app!r} env={s.env!r}; refusing to write into another owner's keys"
            )
        if code == Code.PROTOCOL_MISMATCH:
            raise NamespaceError(
                f"namespace {s.namespace!r} speaks hiveq protocol v{proto}, this client speaks "
                f"v{PROTOCOL_VERSION}; upgrade all producers and workers together, or use a new "
                "namespace (HIVEQ_ENV)"
            )
        self.epoch = str(res[5])
        return {"app": app, "env": env, "protocol": int(proto), "created_ms": created, "epoch": self.epoch}

    async def run(self, script: str, args: list[Any]) -> Any:
        """Run one transition script with the fixed keys its header declares (in that order) and
        `args` from ARGV[3]; translate Redis errors into hiveq's."""
        keys = self._keys_of(script)
        full = [self.keys.prefix, await self.events_cap(), *args]
        return await self.guard(self.scripts.run(script, keys, full))

    async def queue_run(self, pipe: Any, script: str, args: list[Any]) -> None:
        """Add one script call to a pipeline (`pipe.execute()` under `guard` sends it): several
        calls in one round trip, each still its own atomic script."""
        full = [self.keys.prefix, await self.events_cap(), *args]
        await self.scripts.run(script, self._keys_of(script), full, client=pipe)

    def _keys_of(self, script: str) -> list[str]:
        keys = self._script_keys.get(script)
        if keys is None:
            keys = self._script_keys[script] = [self.keys.key(s) for s in script_keys(script)]
        return keys

    async def events_cap(self) -> int:
        """The MAXLEN scripts trim the event stream to: HIVEQ_EVENTS_MAXLEN, or NO_TRIM while an
        archive is attached (so no entry goes before the archiver has it). Re-read every
        ARCHIVE_FLAG_REFRESH_S; concurrent callers share one read."""
        now = time.monotonic()
        if now - self._cap_read_at >= ARCHIVE_FLAG_REFRESH_S:
            self._cap_read_at = now
            try:
                attached = await self.guard(self.redis.hexists(self.keys.meta, "archive"))
            except BaseException:
                self._cap_read_at = float("-inf")
                raise
            self._events_cap = NO_TRIM if attached else self.settings.retention.events_maxlen
        return self._events_cap or self.settings.retention.events_maxlen

    async def guard(self, op: Awaitable[T]) -> T:
        """Await a Redis call, turning connection and WRONGTYPE errors into hiveq errors."""
        try:
            return await op
        except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise RedisUnavailable(self.settings.redis_url, reason, sent=maybe_sent(exc)) from None
        except rex.ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                named = _SCRIPT_WRONGTYPE.search(str(exc))
                if named:
                    raise WrongTypeError(*named.groups()) from None
                raise await self.explain_wrongtype() from None
            raise

    async def explain_wrongtype(self) -> Exception:
        """Find which of our keys holds the wrong Redis type, for a message that names it."""
        for key, expected in self.keys.fixed_keys().items():
            found = _text(await self.redis.type(key))
            if found not in ("none", expected):
                return WrongTypeError(key, found, expected)
        async for raw in self.redis.scan_iter(match=self.keys.prefix + "*", count=1000):
            key = _text(raw)
            found = _text(await self.redis.type(key))
            want = expected_type(self.keys, key)
            if want and found not in ("none", want):
                return WrongTypeError(key, found, want)
        return WrongTypeError(self.keys.prefix + "*", "another type", "its documented type")


# redis-py's words for a failure while opening a connection (socket connect, AUTH, SETNAME):
# no command of the caller's had been sent yet.
CONNECT_PHASE = ("connecting to", "Connection refused", "Name or service not known")


def maybe_sent(exc: BaseException) -> bool:
    """Whether the failed call may have reached Redis. False only when the connection could not
    be opened (nothing was sent); a broken or timed-out connection may have carried the command."""
    if isinstance(exc, rex.AuthenticationError | ConnectionRefusedError):
        return False
    return not any(words in str(exc) for words in CONNECT_PHASE)


def expected_type(keys: Keyspace, key: str) -> str | None:
    """The Redis type hiveq keeps at `key`, from the key table in docs/protocol.md."""
    suffix = key.removeprefix(keys.prefix)
    if suffix.startswith(("q:", "wake:", "inbox:")):
        return "zset"
    if suffix.startswith(("job:", "task:", "worker:")):
        if suffix.endswith(":output"):
            return "string"
        return "list" if suffix.endswith((":log", ":tracebacks", ":signals")) else "hash"
    if suffix.startswith("idem:"):
        return "string"
    return keys.fixed_keys().get(key)
