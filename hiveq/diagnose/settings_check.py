"""Redis settings that lose jobs or refuse them: eviction policy, persistence, memory headroom,
server version, replication. Each reads INFO first (allowed nearly everywhere) and CONFIG GET
only where INFO lacks the answer, saying so when CONFIG is not allowed."""

from __future__ import annotations

from typing import Any

from redis import exceptions as rex

from hiveq.diagnose.degraded import refusing_writes
from hiveq.diagnose.report import Check, fail, ok, warn
from hiveq.queue import connection
from hiveq.queue.broker import Broker

MEMORY_WARN, MEMORY_FAIL = 0.75, 0.90
REPLICA_LAG_WARN_S = 2  # replicas ACK every second: two seconds without one is a stall


async def config_get(b: Broker, name: str) -> str | None:
    """One CONFIG value, or None where CONFIG is disabled or not allowed (managed Redis)."""
    try:
        res = await b.node_command("CONFIG GET", name)
    except (rex.ResponseError, rex.NoPermissionError):
        return None
    value = res.get(name)
    return None if value is None else str(value)


async def info(b: Broker) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for section in ("server", "memory", "persistence", "replication"):
        res.update(await b.node_command("INFO", section))
    return res


async def eviction_check(b: Broker, inf: dict[str, Any]) -> Check:
    name = "eviction policy"
    policy = inf.get("maxmemory_policy") or await config_get(b, "maxmemory-policy")
    if policy is None:
        return warn(
            name,
            "could not read maxmemory-policy (neither INFO nor CONFIG GET shows it)",
            fix="Make sure the server runs with maxmemory-policy noeviction.",
        )
    if policy != "noeviction":
        return fail(
            name,
            f"maxmemory-policy is {policy}: when memory fills, Redis deletes keys, and job records "
            "and queues vanish silently",
            [f"maxmemory-policy={policy}", f"maxmemory={inf.get('maxmemory', '?')}"],
            fix="Set `maxmemory-policy noeviction` (CONFIG SET maxmemory-policy noeviction, and in "
            "redis.conf or your provider's parameter group); a full Redis then refuses new jobs "
            "loudly instead of deleting old ones. Keep caches on another Redis.",
        )
    return ok(name, "maxmemory-policy is noeviction: Redis never deletes job data to free memory")


async def persistence_check(b: Broker, inf: dict[str, Any]) -> Check:
    name = "persistence"
    aof = str(inf.get("aof_enabled", "0")) == "1"
    save = await config_get(b, "save")
    shown = f"save={save!r}" if save is not None else "save=(CONFIG not allowed)"
    evidence = [f"aof_enabled={int(aof)}", shown]
    if aof:
        return ok(name, "AOF is on: a restart keeps queued jobs", evidence)
    if save:
        return ok(
            name,
            f"RDB snapshots are on (save {save}): a restart loses at most the writes since the last snapshot",
            evidence,
        )
    if save is None:
        return warn(
            name,
            "AOF is off and the RDB schedule could not be read (CONFIG not allowed)",
            evidence,
            fix="Check with your provider that persistence (AOF or snapshots) is on.",
        )
    return warn(
        name,
        "no persistence (AOF off, no RDB save points): a Redis restart loses every queued job",
        evidence,
        fix="Turn on AOF (`CONFIG SET appendonly yes`, and in redis.conf) or at least RDB snapshots.",
    )


def memory_check(inf: dict[str, Any]) -> Check:
    name = "memory headroom"
    used, limit = int(inf.get("used_memory") or 0), int(inf.get("maxmemory") or 0)
    human = inf.get("used_memory_human", f"{used} B")
    if limit <= 0:
        total = int(inf.get("total_system_memory") or 0)
        extra = f" of {total / 2**30:.1f} GiB system memory" if total else ""
        return ok(
            name,
            f"{human} used; no maxmemory limit (bounded by the machine{extra})",
            [f"used_memory={used}", "maxmemory=0"],
        )
    ratio = used / limit
    summary = f"{human} used of maxmemory {inf.get('maxmemory_human', limit)} ({ratio:.0%})"
    evidence = [f"used_memory={used}", f"maxmemory={limit}"]
    fix = (
        "Raise maxmemory, trim finished data (HIVEQ_RETENTION_SECONDS), or move other apps' data "
        "elsewhere; at the limit Redis refuses new jobs (noeviction) or deletes them (other policies)."
    )
    refusing = refusing_writes(inf)
    if refusing:
        return fail(
            name,
            f"{summary}: {refusing}",
            [*evidence, f"maxmemory-policy={inf.get('maxmemory_policy')}"],
            fix,
        )
    if ratio >= MEMORY_FAIL:
        return fail(name, summary + ": new jobs will soon be refused", evidence, fix)
    if ratio >= MEMORY_WARN:
        return warn(name, summary, evidence, fix)
    return ok(name, summary, evidence)


def version_check(inf: dict[str, Any]) -> Check:
    name = "server version"
    valkey = inf.get("valkey_version")
    version = str(valkey or inf.get("redis_version", "0"))
    product = "Valkey" if valkey or inf.get("server_name") == "valkey" else "Redis"
    need = (7, 2) if product == "Valkey" else (7, 0)
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    mode = inf.get("redis_mode") or inf.get("server_mode") or "standalone"
    evidence = [
        f"{product} {version}",
        f"mode={mode}",
        f"os={inf.get('os', '?')}",
        f"uptime={inf.get('uptime_in_seconds', '?')}s",
    ]
    if parts < need:
        return fail(
            name,
            f"{product} {version} is older than hiveq needs ({'.'.join(map(str, need))})",
            evidence,
            fix=f"Upgrade to {product} ≥ {'.'.join(map(str, need))}.",
        )
    return ok(name, f"{product} {version} ({mode})", evidence)


def _replica_rows(inf: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    """(address, state, bytes behind the primary, seconds since its last ACK) per replica."""
    top = int(inf.get("master_repl_offset") or 0)
    out = []
    for k, v in inf.items():
        if k.startswith("slave") and isinstance(v, dict):
            behind = max(0, top - int(v.get("offset") or 0))
            out.append(
                (f"{v.get('ip')}:{v.get('port')}", str(v.get("state")), behind, int(v.get("lag") or 0))
            )
    return out


async def replication_check(b: Broker, inf: dict[str, Any]) -> Check:
    """Roles, replication offsets (not only the lag in seconds: a replica that stopped
    acknowledging shows a growing gap), `min-replicas-to-write` and HIVEQ_MIN_REPLICAS."""
    name = "replication"
    role = inf.get("role", "master")
    if role != "master":
        link = inf.get("master_link_status", "?")
        return fail(
            name,
            f"connected to a replica (master link {link}): hiveq must write to the primary",
            [f"role={role}", f"master={inf.get('master_host')}:{inf.get('master_port')}"],
            fix="Point REDIS_URL at the primary (or use Sentinel/Cluster discovery).",
        )
    wanted = b.settings.replication.min_replicas
    rows = _replica_rows(inf)
    if not rows:
        if wanted:
            return fail(
                name,
                f"HIVEQ_MIN_REPLICAS={wanted} but the primary has no replica: every acknowledging "
                "write is refused (503 not_replicated)",
                fix="Attach replicas, or set HIVEQ_MIN_REPLICAS=0.",
            )
        return ok(name, "primary with no replicas")
    to_write = int(await config_get(b, "min-replicas-to-write") or 0)
    evidence = [f"{a} state={st} behind={gap}B last-ack={lag}s" for a, st, gap, lag in rows]
    evidence += [f"master_repl_offset={inf.get('master_repl_offset')}", f"min-replicas-to-write={to_write}"]
    evidence.append(f"HIVEQ_MIN_REPLICAS={wanted}")
    bad = [r for r in rows if r[1] != "online" or r[3] > REPLICA_LAG_WARN_S]
    in_sync = len(rows) - len(bad)
    if bad:
        return warn(
            name,
            f"{len(bad)} of {len(rows)} replica(s) are offline or stopped acknowledging (offsets "
            "behind the primary): a failover now would lose the most recent jobs",
            evidence,
            fix="Check the replicas' network and load; set HIVEQ_MIN_REPLICAS so that acknowledged "
            "work waits for them.",
        )
    if wanted > in_sync:
        return fail(
            name,
            f"HIVEQ_MIN_REPLICAS={wanted} but only {in_sync} replica(s) are in sync: acknowledging "
            "writes are refused (503 not_replicated)",
            evidence,
            fix="Attach or repair replicas, or lower HIVEQ_MIN_REPLICAS.",
        )
    if wanted == 0:
        return warn(
            name,
            f"{len(rows)} replica(s) in sync, but HIVEQ_MIN_REPLICAS=0: acknowledged tasks and results "
            "are not waited for, so a failover (or a split brain: an old primary that keeps serving) "
            "can lose them",
            evidence,
            fix="Set HIVEQ_MIN_REPLICAS=1 (acknowledge after WAIT) and min-replicas-to-write 1 on the "
            "primary (an isolated primary then stops taking writes).",
        )
    return ok(
        name, f"{len(rows)} replica(s) online and in sync; acknowledgements wait for {wanted}", evidence
    )


async def cluster_check(b: Broker) -> Check | None:
    """On a Redis Cluster: the cluster's state and which primary serves the namespace's slot."""
    where = connection.home_of(b.redis, b.keys.meta)
    if where is None:
        return None
    slot, node, primaries = where
    state = await b.node_command("CLUSTER INFO")
    evidence = [f"slot {slot} on {node}", f"primaries: {', '.join(primaries)}"]
    evidence.append(f"cluster_state={state.get('cluster_state')}")
    summary = f"namespace slot {slot} is served by {node} ({len(primaries)} primaries)"
    if state.get("cluster_state") != "ok":
        return fail("cluster", f"cluster_state is {state.get('cluster_state')}: {summary}", evidence)
    return ok(
        "cluster", summary + "; one namespace is one slot (HIVEQ_PARTITIONS is not supported yet)", evidence
    )


async def settings_checks(b: Broker) -> list[Check]:
    inf = await info(b)
    found = await cluster_check(b)
    return [
        *([found] if found else []),
        await eviction_check(b, inf),
        await persistence_check(b, inf),
        memory_check(inf),
        version_check(inf),
        await replication_check(b, inf),
    ]
