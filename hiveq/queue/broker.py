"""The connection to one namespace: a named Redis client, the keyspace and the scripts.

Every hiveq process opens its connections through `Broker.connect`, which names them with
`CLIENT SETNAME` (so `CLIENT LIST` shows who is who) and checks that the namespace is ours.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis import exceptions as rex
from redis.asyncio import Redis

from hiveq.contract.errors import (
    Code,
    NamespaceError,
    NotReplicated,
    RedisFull,
    RedisUnavailable,
    WrongTypeError,
)
from hiveq.contract.protocol import PROTOCOL_VERSION
from hiveq.contract.redact import redact
from hiveq.contract.redisurl import is_sentinel_url
from hiveq.queue import connection
from hiveq.queue.keys import Keyspace
from hiveq.queue.scripts import Scripts, script_keys
from hiveq.settings import Settings

T = TypeVar("T")

# Where `hiveq repair` moves a foreign value (lua/set_aside.lua): `<prefix>aside:<suffix>:<ms>`.
ASIDE = "aside:"
# The refusal of a script's prelude (lua/_lib.lua check_type): it names the key itself.
_SCRIPT_WRONGTYPE = re.compile(r"WRONGTYPE hiveq key (\S+) holds a (\w+), expected a (\w+)")
# With an archive attached (meta.archive, see lua/archive_lease.lua) scripts add events with this
# cap, which no stream reaches: the archiver trims what it has archived (lua/trim_events.lua).
NO_TRIM = 10**15
# How often a broker re-reads whether an archive is attached: a process that connected before an
# archiver first started stops trimming within this long.
ARCHIVE_FLAG_REFRESH_S = 2.0
# A script refused by a topology change (MOVED, TRYAGAIN, CLUSTERDOWN, READONLY, …: nothing ran)
# is sent again with growing pauses for this long before the caller hears RedisUnavailable.
REFUSED_RETRY_S = 10.0
# Scripts whose effect is acknowledged to someone: with HIVEQ_MIN_REPLICAS they are followed by
# WAIT (a submit's 201, a completion or failure, a cancel; a claim, so that a job is not started
# unless a failover keeps its lease and so cannot run twice).
ACKNOWLEDGED = frozenset({"enqueue", "complete", "fail", "cancel", "claim"})
ADVICE = {
    "complete": "the worker keeps the result and records it again (the lease token makes that safe)",
    "fail": "the worker keeps the failure and records it again (the lease token makes that safe)",
    "claim": "the jobs are handed back unstarted and claimed again later",
    "cancel": "the task may be cancelled already; retry the cancel",
}
log = logging.getLogger("hiveq.redis")


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
        rep = settings.replication
        if rep.min_replicas and socket_timeout is not None:  # a WAIT must not time out the socket
            socket_timeout = max(socket_timeout, rep.replica_timeout_ms / 1000 + 1.0)
        options: dict[str, Any] = {
            "client_name": name,
            "socket_timeout": socket_timeout,
            "max_connections": max_connections,
            "health_check_interval": 30,
        }
        try:
            redis = await connection.open_redis(settings.redis_url, **options)
        except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
            # Unreachable now: a plain client (an API serves 503s until Redis is back); the first
            # MOVED it meets switches it to a cluster client (`guard`).
            log.debug("cluster mode not detected (%s)", exc)
            redis = await connection.open_redis(settings.redis_url, **options, cluster=False)
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

    async def dedicated(self, role: str, ident: str, socket_timeout: float) -> Redis:
        """A client of its own for a blocking read (BZPOPMIN, XREAD BLOCK), of the broker's mode."""
        return await connection.open_redis(
            self.settings.redis_url,
            client_name=self.keys.client_name(role, ident),
            socket_timeout=socket_timeout,
            max_connections=1,
            cluster=connection.is_cluster(self.redis),
        )

    async def _switch_to_cluster(self) -> None:
        """A plain client met MOVED: the URL names a cluster node (detection failed at connect,
        Redis being down then): replace the client with a cluster client."""
        if connection.is_cluster(self.redis):
            return
        try:
            if not await connection.detect_cluster(self.settings.redis_url, client_name=self.client_name):
                return
        except (rex.RedisError, OSError):
            return
        old = self.redis
        self.redis = await connection.open_redis(
            self.settings.redis_url, client_name=self.client_name, health_check_interval=30, cluster=True
        )
        self.scripts = Scripts(self.redis)
        log.warning("Redis at %s is a cluster node: switched to a cluster client", self.where)
        await old.aclose()

    async def node_command(self, *command: Any) -> Any:
        """A node-level command (INFO, CONFIG GET, CLIENT INFO) on the namespace's primary."""
        return await self.guard(connection.at_home(self.redis, self.keys.meta, *command))

    async def client_list(self) -> list[dict[str, Any]]:
        """CLIENT LIST of every primary (a consumer of our keys talks to the namespace's node, but
        a cluster client also opens connections to the others)."""
        got = await self.guard(connection.at_primaries(self.redis, "CLIENT LIST"))
        return [row for rows in got.values() for row in rows]

    @property
    def where(self) -> str:
        return redact(self.settings.redis_url)

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

    async def run(self, script: str, args: list[Any], suspects: Sequence[tuple[str, str]] = ()) -> Any:
        """Run one transition script with the fixed keys its header declares (in that order) and
        `args` from ARGV[3]; translate Redis errors into hiveq's. `suspects` (key, type) are the
        derived keys it touches that a foreign type is looked for first."""
        keys = self._keys_of(script)
        full = [self.keys.prefix, await self.events_cap(), *args]
        rep = self.settings.replication
        acked = rep.min_replicas > 0 and script in ACKNOWLEDGED
        deadline = time.monotonic() + REFUSED_RETRY_S
        pause = 0.05
        while True:
            try:
                if acked:
                    return await self.guard(self._run_acked(script, keys, full), suspects, retryable=True)
                return await self.guard(self.scripts.run(script, keys, full), suspects, retryable=True)
            except _Refused as exc:  # nothing ran: the same call again, once the topology is known
                if time.monotonic() + pause > deadline:
                    raise RedisUnavailable(self.settings.redis_url, exc.reason, sent=False) from None
                if pause == 0.05:
                    log.warning(
                        "Redis at %s refused %s (%s): the cluster or failover is changing; retrying "
                        "with backoff for up to %g s",
                        self.where,
                        script,
                        exc.reason,
                        REFUSED_RETRY_S,
                    )
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def _run_acked(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """The script then WAIT on its connection; NotReplicated unless enough replicas confirm.

        Retrying after NotReplicated is safe by construction: enqueue is idempotent by its key,
        complete/fail by the lease token (a second call is refused as stale, nothing counted
        twice), cancel finds the work already cancelled, claim hands the jobs back (fetch.py)."""
        rep = self.settings.replication
        sha = self.scripts.sha(script)
        try:
            res, confirmed = await connection.script_then_wait(
                self.redis, sha, keys, args, rep.min_replicas, rep.replica_timeout_ms
            )
        except rex.NoScriptError:
            await self.redis.script_load(self.scripts.source(script))
            res, confirmed = await connection.script_then_wait(
                self.redis, sha, keys, args, rep.min_replicas, rep.replica_timeout_ms
            )
        if confirmed < rep.min_replicas:
            url, wanted, ms = self.settings.redis_url, rep.min_replicas, rep.replica_timeout_ms
            err = NotReplicated(url, f"the {script} step", confirmed, wanted, ms, ADVICE.get(script, ""))
            err.reply = res
            raise err
        return res

    @property
    def pipelines_scripts(self) -> bool:
        """Whether script calls can share a pipeline (redis-py's cluster pipeline refuses EVALSHA)."""
        return not connection.is_cluster(self.redis)

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

    async def guard(
        self, op: Awaitable[T], suspects: Sequence[tuple[str, str]] = (), *, retryable: bool = False
    ) -> T:
        """Await a Redis call, turning connection, OOM, topology and WRONGTYPE errors into hiveq
        errors. A WRONGTYPE that names no key is looked for among `suspects` (key, type) first. A
        topology refusal (MOVED, TRYAGAIN, CLUSTERDOWN, READONLY, UNBLOCKED: nothing ran) is a
        RedisUnavailable that was not sent, or `_Refused` for `run` to retry."""
        try:
            return await op
        except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            await connection.refresh_topology(self.redis)
            raise RedisUnavailable(self.settings.redis_url, reason, sent=maybe_sent(exc)) from None
        except rex.OutOfMemoryError:
            raise await self.explain_full() from None
        except (rex.RedisError, rex.RedisClusterException) as exc:
            if not connection.is_refused(exc):
                if isinstance(exc, rex.ResponseError):
                    await self._response_error(exc, suspects)
                raise
            reason = f"{type(exc).__name__}: {exc}"
            if not connection.is_cluster(self.redis) and not is_sentinel_url(self.settings.redis_url):
                await self._switch_to_cluster()
            await connection.refresh_topology(self.redis)
            if retryable:
                raise _Refused(reason) from None
            raise RedisUnavailable(self.settings.redis_url, reason, sent=False) from None

    async def _response_error(self, exc: rex.ResponseError, suspects: Sequence[tuple[str, str]]) -> None:
        """Raise the hiveq error a Redis error reply stands for (WRONGTYPE), if any."""
        if "WRONGTYPE" in str(exc):
            named = _SCRIPT_WRONGTYPE.search(str(exc))
            if named:
                raise WrongTypeError(*named.groups()) from None
            raise await self.explain_wrongtype(suspects) from None

    async def explain_full(self) -> RedisFull:
        """Redis answered OOM: name its limit and policy (INFO still answers when it is full)."""
        try:
            mem = await connection.at_home(self.redis, self.keys.meta, "INFO", "memory")
        except (rex.RedisError, rex.RedisClusterException):
            mem = {}
        limit = str(mem.get("maxmemory_human") or mem.get("maxmemory") or "?")
        return RedisFull(limit, str(mem.get("maxmemory_policy") or "?"))

    async def explain_wrongtype(self, suspects: Sequence[tuple[str, str]] = ()) -> Exception:
        """Find which of our keys holds the wrong Redis type, for a message that names it."""
        for key, expected in [*suspects, *self.keys.fixed_keys().items()]:
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


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    if suffix.startswith(ASIDE):  # a foreign value `hiveq repair` set aside: any type
        return None
    if suffix.startswith(("q:", "wake:", "inbox:")):
        return "zset"
    if suffix.startswith(("job:", "task:", "worker:")):
        if suffix.endswith(":output"):
            return "string"
        return "list" if suffix.endswith((":log", ":tracebacks", ":signals")) else "hash"
    if suffix.startswith("idem:"):
        return "string"
    if suffix.startswith(("lim:c:", "lim:h:", "lim:w:", "lim:k:")):  # docs/limits.md
        return {"c": "hash", "h": "zset", "s": "zset", "w": "set", "k": "set"}[suffix[4]]
    if suffix.startswith("sched:"):
        return "hash"
    return keys.fixed_keys().get(key)
