"""Shared Redis: other applications' keys next to ours (information, with the risk explained),
and any of our keys holding the wrong Redis type (a collision that breaks hiveq loudly).

Both walk the keyspace with SCAN under a hard cap, never KEYS.
"""

from __future__ import annotations

import re
from collections import Counter

from hiveq.contract.protocol import PROTOCOL_VERSION
from hiveq.diagnose.monitor import GENERIC_NAMES, GENERIC_PREFIXES
from hiveq.diagnose.report import Check, fail, ok, warn, when
from hiveq.queue import connection
from hiveq.queue.broker import Broker, expected_type

SCAN_CAP = 20_000  # keys examined per walk; enough to characterise a database, cheap to run
OTHER_HIVEQ = re.compile(r"^hiveq:\{([^}]*)\}:")
FRAMEWORK_PREFIXES = (*GENERIC_PREFIXES, "celery-task-meta-", "_kombu.", "unacked", "huey.")


async def scan_keys(b: Broker, match: str | None = None, cap: int = SCAN_CAP) -> tuple[list[str], bool]:
    """Up to `cap` key names (SCAN, never KEYS); the flag says whether the walk was cut short."""
    return await b.guard(connection.scan_capped(b.redis, match, cap))


def _classify(key: str, prefix: str) -> str | None:
    if key.startswith(prefix):
        return None
    m = OTHER_HIVEQ.match(key)
    if m:
        return f"hiveq namespace {m.group(1)}"
    if key in GENERIC_NAMES:
        return f"generic queue name {key!r}"
    for p in FRAMEWORK_PREFIXES:
        if key.startswith(p):
            return f"{p}* keys (another queue framework)"
    return "other keys"


async def shared_check(b: Broker) -> Check:
    name = "shared redis"
    keys, cut = await scan_keys(b)
    groups = Counter(g for k in keys if (g := _classify(k, b.keys.prefix)) is not None)
    more = f" (first {SCAN_CAP} keys scanned)" if cut else ""
    if not groups:
        return ok(name, f"only this namespace's keys in this database{more}")
    evidence = [f"{g}: {n} key(s)" for g, n in groups.most_common()]
    risky = [
        g
        for g in groups
        if g.startswith(
            ("generic", "rq:", "bull:", "arq:", "dramatiq:", "saq:", "celery", "_kombu", "unacked", "huey")
        )
    ]
    risk = (
        "; generic queue names and other frameworks' queues mean other consumers on this server — "
        "the seed incident's thief was one: hiveq's own keys are namespaced sorted sets they cannot "
        "pop, but anything your code pushes to a generic name can be taken by them"
        if risky
        else "; a shared server shares memory, eviction policy and failures"
    )
    return ok(name, f"this database is shared with other applications{more}{risk}", evidence)


async def wrong_type_check(b: Broker) -> Check:
    name = "key types"
    k = b.keys
    fixed = k.fixed_keys()
    ours, cut = await scan_keys(b, match=k.prefix + "*")
    names = list(dict.fromkeys([*fixed, *ours]))
    pipe = b.redis.pipeline(transaction=False)
    for key in names:
        pipe.type(key)
    found = await b.guard(pipe.execute())
    bad = []
    for key, typ in zip(names, found, strict=True):
        want = expected_type(k, key)
        if want and typ not in ("none", want):
            bad.append(f"{key}: holds a {typ}, hiveq keeps a {want} there")
    if bad:
        return fail(
            name,
            f"{len(bad)} of this namespace's keys hold the wrong Redis type: another "
            "application writes to hiveq's key names",
            bad,
            fix="Run `hiveq repair` to move each foreign value aside under `aside:<key>:<ms>` in the "
            "namespace (nothing is deleted; paused workers resume within seconds), then find the "
            "writer (`hiveq doctor --sample 5`) or point hiveq at a fresh namespace (HIVEQ_APP/HIVEQ_ENV).",
        )
    more = f" (first {SCAN_CAP} scanned)" if cut else ""
    return ok(name, f"{len(ours)} keys of this namespace, all of the expected type{more}")


async def namespace_check(b: Broker) -> Check:
    name = "namespace"
    raw = await b.guard(b.redis.hgetall(b.keys.meta))
    meta = {str(f): str(v) for f, v in raw.items()}
    if not meta:
        return warn(
            name,
            f"namespace {b.keys.prefix} has not been used yet (no {b.keys.meta})",
            fix="Check HIVEQ_APP/HIVEQ_ENV and REDIS_URL (including the database number) "
            "match your producers and workers.",
        )
    evidence = [f"{f}={v}" for f, v in sorted(meta.items()) if f != "loss"]
    if meta.get("app") != b.settings.app or meta.get("env") != b.settings.env:
        return fail(
            name,
            f"{b.keys.meta} is owned by app={meta.get('app')!r} env={meta.get('env')!r}",
            evidence,
            fix="Use the namespace's own app/env, or a fresh namespace.",
        )
    proto = str(meta.get("protocol", meta.get("proto", PROTOCOL_VERSION)))
    if proto != str(PROTOCOL_VERSION):
        return fail(
            name,
            f"namespace speaks protocol v{proto}, this hiveq speaks v{PROTOCOL_VERSION}",
            evidence,
            fix="Upgrade all producers and workers together, or use a new namespace.",
        )
    since = (
        f"; re-created after a data loss at {when(int(meta['lost_at']))} (see `data loss`)"
        if meta.get("lost_at")
        else ""
    )
    return ok(
        name,
        f"{b.keys.prefix} owned by app={b.settings.app} env={b.settings.env}, protocol v{proto}{since}",
        evidence,
    )
