"""Which limit holds a waiting job, in plain words with live numbers (for `why`, the API and the
dashboard). The same checks, in the same order, as claim.lua's limit_check; read-only.

Only the job's own limit keys (its record's `limits`: its subtask's and its task's) are looked
at; keys an agent adds at claim time (@agent(limits=…), the llm agent's model) live in the
worker and are named in `hiveq limits`."""

from __future__ import annotations

from typing import Any

from hiveq.contract.limit_rules import TOKENS_WINDOW_MS
from hiveq.contract.models import JobRecord
from hiveq.queue import limits
from hiveq.queue.broker import Broker


def _s(ms: float) -> str:
    return f"{max(0.0, ms) / 1000:.1f} s"


async def held_by(b: Broker, job: JobRecord) -> tuple[str, dict[str, Any]] | None:
    """(the sentence, its numbers) for the first of the job's keys that holds it, else None."""
    if not job.limits:
        return None
    rules = await limits.rules(b)
    now = await limits.server_ms(b)
    for key in job.limits:
        name = limits.rule_name_for(key, rules)
        rule = rules.get(name) if name else None
        u = await limits.usage(b, key, rule, now)
        d: dict[str, Any] = {"limit_key": key, "rule": name, "usage": u.model_dump()}
        if u.cooling_until_ms:
            left = _s(u.cooling_until_ms - now)
            return f"cooling down: {key} was paused after a provider's 429, for {left} more", d
        if rule is None:
            continue
        st = rule.stored()
        c = st.get("concurrency")
        if c is not None and u.in_use >= c:
            shown = ", ".join(u.holders)
            return f"waiting: {key} at its concurrency limit {u.in_use}/{c} (jobs {shown})", d
        n = st.get("rate_n")
        if n is not None and u.starts_in_window >= n:
            _, at = await limits.rate_window(b, key, st["rate_ms"], now)
            nxt = at - now
            unit = "second" if st["rate_ms"] == 1000 else "minute"
            return (
                f"rate limited: {key} {u.starts_in_window}/{n} requests this {unit}, next in {_s(nxt)}",
                d,
            )
        est = job.estimate_tokens or 0
        t = st.get("tokens")
        if t is not None and (
            (est > 0 and u.tokens_this_minute > 0 and u.tokens_this_minute + est > t)
            or (est == 0 and u.tokens_this_minute >= t)
        ):
            nxt = TOKENS_WINDOW_MS - now % TOKENS_WINDOW_MS
            return (
                f"rate limited: {key} {u.tokens_this_minute:,}/{t:,} tokens this minute (this job "
                f"reserves {est:,}), next window in {_s(nxt)}",
                d,
            )
        bt, bu = st.get("budget_tokens"), st.get("budget_usd")
        if bt is not None and u.budget_tokens_used + est > bt:
            return (
                f"budget: {key} used {u.budget_tokens_used:,} of {bt:,} tokens (this job reserves "
                f"{est:,}); raise it with `hiveq limits set {name} --budget-tokens N`",
                d,
            )
        if bu is not None and u.budget_usd_used >= bu:
            return f"budget: {key} used {u.budget_usd_used:,.2f} of {bu:,.2f} USD", d
    return None
