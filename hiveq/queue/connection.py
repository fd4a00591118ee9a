"""connection: the one place that builds a Redis client from REDIS_URL.

- `redis://`/`rediss://` naming one server, or ANY node of a Redis Cluster: cluster mode is
  detected when connecting (`INFO cluster` → `cluster_enabled:1`) and redis-py's asyncio
  `RedisCluster` is used; it follows MOVED/ASK, and a namespace's keys share one hash tag, so
  every script, MULTI and blocking read of a namespace goes to the one primary owning its slot.
- `redis+sentinel://…/service`: redis-py's Sentinel pool; each new connection asks the sentinels
  for the current primary, and a write meeting a demoted primary (READONLY) drops the connection
  (redis-py turns it into a ConnectionError), so the next attempt reaches the new one.
- `unix://`: one server.

The cluster client is typed as `Redis`: it answers the same command methods, and the few places
that differ (pools, node-level commands, WAIT on the script's own connection) are here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff

from hiveq.contract.errors import ConfigError
from hiveq.contract.redisurl import is_sentinel_url, parse_sentinel_url

# Errors a cluster or a failover answers with before running the command (nothing happened), or
# with which a blocking read was cut short: transient, retried with backoff (Broker.run / guard).
REFUSED: tuple[type[BaseException], ...] = (
    rex.AskError,  # and MovedError, its subclass
    rex.TryAgainError,
    rex.ClusterDownError,  # and MasterDownError
    rex.ClusterError,  # redis-py's "TTL exhausted" after too many redirections
    rex.SlotNotCoveredError,
    rex.ReadOnlyError,
)
# Attempts redis-py's cluster client makes itself (re-reading the topology in between) before a
# connection or cluster error reaches hiveq: more than its default 3, a failover takes seconds.
CLUSTER_RETRIES = 5
REFUSED_WORDS = ("UNBLOCKED", "LOADING", "MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN", "READONLY")


def is_refused(exc: BaseException) -> bool:
    """Did Redis refuse (or cut short) the command because of a topology change? Then nothing was
    written, and the same call can be sent again once the topology is known."""
    if isinstance(exc, REFUSED):
        return True
    if isinstance(exc, rex.RedisClusterException) and "cluster" in str(exc).lower():
        return True
    return isinstance(exc, rex.ResponseError) and str(exc).startswith(REFUSED_WORDS)


def is_cluster(r: Redis) -> bool:
    return isinstance(r, RedisCluster)


async def detect_cluster(url: str, **kw: Any) -> bool:
    """Whether the server at `url` runs in cluster mode (one short-lived connection)."""
    if url.startswith("unix://"):
        return False
    probe = Redis.from_url(url, **{**kw, "max_connections": 1, "client_name": kw.get("client_name")})
    try:
        info = await probe.info("cluster")
        return bool(int(info.get("cluster_enabled", 0) or 0))
    finally:
        await probe.aclose()


async def open_redis(
    url: str,
    *,
    client_name: str | None,
    socket_timeout: float | None = None,
    socket_connect_timeout: float = 2.0,
    max_connections: int | None = None,
    health_check_interval: int = 0,
    decode_responses: bool = True,
    cluster: bool | None = None,
) -> Redis:
    """A client for `url`. `cluster=None` detects the mode (raises redis-py's ConnectionError when
    the server is unreachable); True/False skips the detection (a dedicated connection of a
    process that already knows)."""
    kw: dict[str, Any] = {
        "decode_responses": decode_responses,
        "client_name": client_name,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "health_check_interval": health_check_interval,
    }
    if is_sentinel_url(url):
        return _sentinel_client(url, kw, max_connections)
    if cluster is None:
        cluster = await detect_cluster(url, **kw)
    if cluster:
        return _cluster_client(url, kw, max_connections)
    if max_connections is not None:
        kw["max_connections"] = max_connections
    return Redis.from_url(url, **kw)


def _sentinel_client(url: str, kw: dict[str, Any], max_connections: int | None) -> Redis:
    su = parse_sentinel_url(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(su.sentinels),
        min_other_sentinels=0,
        sentinel_kwargs={"socket_connect_timeout": kw["socket_connect_timeout"], "socket_timeout": 2.0},
    )
    extra: dict[str, Any] = {"db": su.db, "username": su.username, "password": su.password}
    if su.tls:
        extra["ssl"] = True
    if max_connections is not None:
        extra["max_connections"] = max_connections
    client = sentinel.master_for(su.service, redis_class=SentinelRedis, **kw, **extra)
    client.discovery = sentinel
    return cast("Redis", client)


class SentinelRedis(Redis):
    """The primary's client; closing it closes the sentinel connections used to find it too."""

    discovery: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.discovery is not None:
            for s in self.discovery.sentinels:
                await s.aclose()


def _cluster_client(url: str, kw: dict[str, Any], max_connections: int | None) -> Redis:
    path = url.split("://", 1)[1].split("?", 1)[0].partition("/")[2]
    if path not in ("", "0"):
        raise ConfigError(
            f"REDIS_URL names database {path!r}, but a Redis Cluster has only database 0; drop the "
            "/db part of the URL (namespaces keep apps apart: HIVEQ_APP/HIVEQ_ENV)"
        )
    ckw = dict(kw)
    if max_connections is not None:
        ckw["max_connections"] = max_connections
    retry = Retry(ExponentialWithJitterBackoff(base=0.1, cap=1.0), CLUSTER_RETRIES)
    client = RedisCluster.from_url(url, retry=retry, **ckw)
    return cast("Redis", client)


async def refresh_topology(r: Redis) -> None:
    """After a refused command on a cluster, re-read who owns which slot (never closes the client,
    whose other connections are in use)."""
    if isinstance(r, RedisCluster):
        with contextlib.suppress(rex.RedisError, OSError):
            await r.nodes_manager.initialize()


async def drop_idle(r: Redis) -> None:
    """Forget pooled connections that died with their server (the next call opens new ones)."""
    if isinstance(r, RedisCluster):
        for node in r.get_nodes():
            await node.disconnect_free_connections()
        return
    await r.connection_pool.disconnect(inuse_connections=False)


async def hang_up(r: Redis) -> None:
    """End a blocked read on a dedicated client at once."""
    if isinstance(r, RedisCluster):
        await r.aclose()
        return
    await r.connection_pool.disconnect()


def _node_client(r: RedisCluster, node: ClusterNode, client_name: str | None) -> Redis:
    ckw = node.connection_kwargs
    allowed = ("username", "password", "ssl", "socket_connect_timeout", "socket_timeout")
    kw = {k: ckw[k] for k in allowed if k in ckw}
    return Redis(host=node.host, port=int(node.port), decode_responses=True, client_name=client_name, **kw)


@contextlib.asynccontextmanager
async def primaries(r: Redis, client_name: str | None = None) -> AsyncIterator[list[tuple[str, Redis]]]:
    """(name, client) for every primary: the client itself on one server, one plain client per
    primary of a cluster, for node-level commands (INFO, CLIENT LIST, CONFIG GET, MONITOR)."""
    if not isinstance(r, RedisCluster):
        yield [("", r)]
        return
    if not r.get_nodes():
        await r.initialize()
    made = [(n.name, _node_client(r, n, client_name)) for n in r.get_primaries()]
    try:
        yield made
    finally:
        for _, c in made:
            await c.aclose()


@contextlib.asynccontextmanager
async def home_node(r: Redis, key: str, client_name: str | None = None) -> AsyncIterator[Redis]:
    """A client on the primary that holds `key`'s slot (the namespace's node): the client itself
    on one server. For a subscription or MONITOR, which a cluster client does not offer."""
    if not isinstance(r, RedisCluster):
        yield r
        return
    if not r.get_nodes():
        await r.initialize()
    node = r.get_node_from_key(key)
    if node is None:
        raise rex.SlotNotCoveredError(f"no primary holds the slot of {key!r}")
    c = _node_client(r, node, client_name)
    try:
        yield c
    finally:
        await c.aclose()


async def script_then_wait(
    r: Redis, sha: str, keys: Sequence[str], args: Sequence[Any], replicas: int, timeout_ms: int
) -> tuple[Any, int]:
    """EVALSHA and then `WAIT replicas timeout_ms` on the same connection (WAIT counts the writes
    of its own connection): the script's reply and how many replicas confirmed. Redis errors of
    the script are raised (NoScriptError included: the caller loads the script and retries; a
    MOVED: the caller refreshes the topology and retries; nothing ran then)."""
    evalsha = ("EVALSHA", sha, len(keys), *keys, *args)
    wait = ("WAIT", replicas, timeout_ms)
    if isinstance(r, RedisCluster):
        # A cluster pipeline refuses EVALSHA and may split commands over connections: send both
        # on one connection of the node that serves the keys' slot.
        if not r.get_nodes():
            await r.initialize()
        node = r.get_node_from_key(keys[0])
        if node is None:
            raise rex.SlotNotCoveredError(f"no primary holds the slot of {keys[0]!r}")
        cmds = [PipelineCommand(0, *evalsha), PipelineCommand(1, *wait)]
        await node.execute_pipeline(cmds)
        res = [c.result for c in cmds]
    else:
        pipe = r.pipeline(transaction=False)
        pipe.execute_command(*evalsha)
        pipe.execute_command(*wait)
        res = await pipe.execute(raise_on_error=False)
    if isinstance(res[0], BaseException):
        raise res[0]
    if isinstance(res[1], BaseException):
        return res[0], 0
    return res[0], int(res[1])


def _home(r: RedisCluster, key: str) -> ClusterNode:
    node = r.get_node_from_key(key)
    if node is None:
        raise rex.SlotNotCoveredError(f"no primary holds the slot of {key!r}")
    return node


async def at_home(r: Redis, key: str, *command: Any) -> Any:
    """A node-level command (named as redis-py names it: "INFO", "CONFIG GET", "CLIENT INFO") on
    the primary serving `key`'s slot: the namespace's own node on a cluster, else the server."""
    if isinstance(r, RedisCluster):
        if not r.get_nodes():
            await r.initialize()
        return await r.execute_command(*command, target_nodes=_home(r, key))
    return await r.execute_command(*command)  # type: ignore[no-untyped-call]


async def at_primaries(r: Redis, *command: Any) -> dict[str, Any]:
    """A node-level command on every primary: {node name: reply} ("" on one server)."""
    if isinstance(r, RedisCluster):
        if not r.get_nodes():
            await r.initialize()
        nodes = r.get_primaries()
        replies = await asyncio.gather(*(r.execute_command(*command, target_nodes=n) for n in nodes))
        return {n.name: got for n, got in zip(nodes, replies, strict=True)}
    return {"": await r.execute_command(*command)}  # type: ignore[no-untyped-call]


async def node_for_pubsub(r: Redis, key: str, client_name: str | None) -> tuple[Redis, bool]:
    """(client, owned) for a subscription to notifications about `key`'s slot, which a cluster
    publishes only on the node serving it: a plain client on that primary (owned: the caller
    closes it), or `r` itself on one server."""
    if not isinstance(r, RedisCluster):
        return r, False
    if not r.get_nodes():
        await r.initialize()
    return _node_client(r, _home(r, key), client_name), True


def database(r: Redis) -> int:
    """The database number the client uses (always 0 on a cluster)."""
    if isinstance(r, RedisCluster):
        return 0
    return int(r.connection_pool.connection_kwargs.get("db") or 0)


async def scan_capped(r: Redis, match: str | None, cap: int, count: int = 1000) -> tuple[list[str], bool]:
    """Up to `cap` key names matching `match` (SCAN, never KEYS; on a cluster every primary's),
    and whether the walk was cut short."""
    out: list[str] = []
    it = r.scan_iter(match=match, count=count)
    try:
        async for key in it:
            if len(out) >= cap:
                return out, True
            out.append(str(key))
    finally:
        closer = getattr(it, "aclose", None)  # an async generator: stop its SCAN walk
        if closer is not None:
            await closer()
    return out, False


def home_of(r: Redis, key: str) -> tuple[int, str, list[str]] | None:
    """(slot, serving primary, every primary) of `key` on a cluster; None on one server."""
    if not isinstance(r, RedisCluster) or not r.get_nodes():
        return None
    return r.keyslot(key), _home(r, key).name, sorted(n.name for n in r.get_primaries())
