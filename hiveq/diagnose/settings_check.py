"""Redis settings that lose jobs or refuse them: eviction policy, persistence, memory headroom,
server version, replication. Each reads INFO first (allowed nearly everywhere) and CONFIG GET
only where INFO lacks the answer, saying so when CONFIG is not allowed."""

from __future__ import annotations

from typing import Any

from redis import exceptions as rex

from hiveq.diagnose.degraded import refusing_writes
from hiveq.diagnose.report import Check, fail, ok, warn
from hiveq.queue.broker import Broker

MEMORY_WARN, MEMORY_FAIL = 0.75, 0.90
REPLICA_LAG_WARN_S = 10


async def config_get(b: Broker, name: str) -> str | None:
    """One CONFIG value, or None where CONFIG is disabled or not allowed (managed Redis)."""
    try:
        res = await b.guard(b.redis.config_get(name))
    except (rex.ResponseError, rex.NoPermissionError):
        return None
    value = res.get(name)
    return None if value is None else str(value)


async def info(b: Broker) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for section in ("server", "memory", "persistence", "replication"):
        res.update(await b.guard(b.redis.info(section)))
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


def replication_check(inf: dict[str, Any]) -> Check:
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
    replicas = [v for k, v in inf.items() if k.startswith("slave") and isinstance(v, dict)]
    if not replicas:
        return ok(name, "primary with no replicas")
    evidence = [f"{r.get('ip')}:{r.get('port')} state={r.get('state')} lag={r.get('lag')}s" for r in replicas]
    bad = [r for r in replicas if r.get("state") != "online" or int(r.get("lag") or 0) > REPLICA_LAG_WARN_S]
    if bad:
        return warn(
            name,
            f"{len(bad)} of {len(replicas)} replica(s) lag or are offline: a failover "
            "now would lose the most recent jobs",
            evidence,
            fix="Check the replicas' network and load; consider WAIT/min-replicas-to-write.",
        )
    return ok(name, f"{len(replicas)} replica(s) online and in sync", evidence)


async def settings_checks(b: Broker) -> list[Check]:
    inf = await info(b)
    return [
        await eviction_check(b, inf),
        await persistence_check(b, inf),
        memory_check(inf),
        version_check(inf),
        replication_check(inf),
    ]
