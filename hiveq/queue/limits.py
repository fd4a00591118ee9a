"""limits: the rules of docs/limits.md, written by one script (set_limit.lua) and read back with
the live numbers of the keys under them. Enforcement is in claim.lua; giving back in
release_limits (lua/_lib.lua); usage in report_usage.lua."""

from __future__ import annotations

import json
from typing import Any, cast

from hiveq.contract.errors import Code, NotFound
from hiveq.contract.lease import Lease
from hiveq.contract.limit_rules import (
    TOKENS_WINDOW_MS,
    LimitRule,
    LimitUsage,
    LimitView,
    check_limit_key,
    is_pattern,
)
from hiveq.queue.broker import Broker

HOLDERS_SHOWN = 10  # job ids listed per key in a view
KEYS_SHOWN = 100  # concrete keys listed under one pattern rule


def _no_rule(key: str) -> NotFound:
    err = NotFound("limit", key)
    err.field = "key"
    err.args = (f"no limit rule {key!r} in this namespace; `hiveq limits` (GET /limits) lists the rules",)
    return err


async def set_limit(b: Broker, key: str, rule: LimitRule) -> bool:
    """Create or replace the rule for `key`; True when it replaced one. Waiting workers wake."""
    check_limit_key(key)
    res = await b.run("set_limit", [key, json.dumps(rule.stored()), b.identity])
    return bool(int(res[1]))


async def remove_limit(b: Broker, key: str) -> None:
    """Remove the rule for `key` (its counters stay); NotFound when it had none."""
    check_limit_key(key)
    res = await b.run("set_limit", [key, "", b.identity])
    if not int(res[1]):
        raise _no_rule(key)


async def rules(b: Broker) -> dict[str, LimitRule]:
    raw = cast("dict[str, str]", await b.guard(b.redis.hgetall(b.keys.limits)))
    return {k: LimitRule.from_stored(json.loads(v)) for k, v in sorted(raw.items())}


async def get_rule(b: Broker, key: str) -> LimitRule:
    raw = await b.guard(b.redis.hget(b.keys.limits, key))
    if raw is None:
        raise _no_rule(key)
    return LimitRule.from_stored(json.loads(raw))


def rule_name_for(key: str, names: set[str] | dict[str, Any]) -> str | None:
    """The rule that governs a concrete key: its own, else the longest pattern it starts with
    (the same choice as claim.lua's rule_for)."""
    if key in names:
        return key
    for i in range(len(key) - 1, -1, -1):
        if key[:i] + "*" in names:
            return key[:i] + "*"
    return None


async def concrete_keys(b: Broker, name: str) -> list[str]:
    """The concrete keys a rule governs: itself, or for a pattern the keys claims have seen under
    it (`lim:k:<pattern>`, the first KEYS_SHOWN)."""
    if not is_pattern(name):
        return [name]
    found: list[str] = []
    async for k in b.redis.sscan_iter(b.keys.limit_pattern_keys(name), count=KEYS_SHOWN):
        found.append(k)
        if len(found) >= KEYS_SHOWN:
            break
    return sorted(found)


async def usage(b: Broker, key: str, rule: LimitRule | None, now_ms: int) -> LimitUsage:
    """One concrete key's live numbers, read in one round trip."""
    stored = rule.stored() if rule else {}
    window = stored.get("rate_ms", 1000)
    async with b.redis.pipeline(transaction=False) as p:
        p.hmget(b.keys.limit_counters(key), "cool", "tw", "tu", "bt", "bu", "thr")
        p.zcard(b.keys.limit_holders(key))
        p.zrange(b.keys.limit_holders(key), 0, HOLDERS_SHOWN - 1)
        (cool, tw, tu, bt, bu, thr), in_use, holders = await b.guard(p.execute())
    starts, _ = await rate_window(b, key, window, now_ms)
    fresh = tw is not None and int(tw) == now_ms - now_ms % TOKENS_WINDOW_MS
    return LimitUsage(
        key=key,
        in_use=int(in_use),
        holders=list(holders),
        starts_in_window=int(starts),
        tokens_this_minute=int(tu or 0) if fresh else 0,
        budget_tokens_used=int(bt or 0),
        budget_usd_used=round(float(bu or 0), 6),
        throttled_total=int(thr or 0),
        cooling_until_ms=int(cool) if cool and int(cool) > now_ms else None,
    )


async def rate_window(b: Broker, key: str, window_ms: int, now_ms: int) -> tuple[int, int]:
    """A key's starts in its rate window and when the next one may go (ms; now when it may),
    from the ring of last starts the claim keeps in its counters (docs/limits.md)."""
    c = b.keys.limit_counters(key)
    ri, rn = await b.guard(b.redis.hmget(c, "ri", "rn"))
    if not rn:
        return 0, now_ms
    got = await b.guard(b.redis.hmget(c, [f"r{i}" for i in range(int(rn))]))
    slots = [int(v) if v else None for v in got]
    inside = sum(1 for v in slots if v is not None and v > now_ms - window_ms)
    last = slots[int(ri or 0) % int(rn)]
    return inside, max(now_ms, last + window_ms) if last is not None else now_ms


async def server_ms(b: Broker) -> int:
    sec, usec = await b.guard(b.redis.time())
    return int(sec) * 1000 + int(usec) // 1000


async def view(b: Broker, key: str, rule: LimitRule | None = None) -> LimitView:
    rule = rule or await get_rule(b, key)
    now = await server_ms(b)
    keys = await concrete_keys(b, key)
    return LimitView(key=key, rule=rule, usage=[await usage(b, k, rule, now) for k in keys])


async def views(b: Broker) -> list[LimitView]:
    return [await view(b, k, r) for k, r in (await rules(b)).items()]


async def report_usage(b: Broker, lease: Lease, tokens: int, usd: float) -> Code:
    """Count what a leased job used against its limit keys (its reservation first)."""
    res = await b.run("report_usage", [lease.job_id, lease.token, max(0, int(tokens)), max(0.0, usd)])
    return Code(int(res[0]))
