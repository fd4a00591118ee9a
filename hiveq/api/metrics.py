"""Prometheus metrics read from Redis at scrape time.

`/metrics` first takes a snapshot of the namespace (an async read), then renders it through a
custom Collector in the app's own registry (no process-wide globals). Latency histograms are
built from jobs that succeeded since the previous scrape: queue wait = started - created,
run time = finished - started, both recorded by the scripts.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from hiveq.contract.limit_rules import LimitView
from hiveq.contract.models import QueueDepth
from hiveq.diagnose.suspects import foreign_clients
from hiveq.queue import archiving, inspect, limits
from hiveq.queue.broker import Broker

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
SCAN_LIMIT = 10_000  # most jobs folded into the histograms per scrape


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_S) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip([*map(str, BUCKETS_S), "+Inf"], self.counts, strict=True):
            running += n
            out.append((bound, float(running)))
        return out


@dataclass
class Snapshot:
    depths: list[QueueDepth] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    foreign_clients: int = 0
    archive_lag_s: float | None = None  # None: no archive attached
    data_losses: int = 0
    limits: list[LimitView] = field(default_factory=list)


async def _losses(b: Broker) -> int:
    return int(await b.guard(b.redis.hget(b.keys.meta, "data_losses")) or 0)


class HiveqCollector(Collector):
    """Renders the latest snapshot; histograms accumulate across scrapes in this app only."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self.wait = Histogram()
        self.run = Histogram()
        self.seen_until_ms = 0
        self.losses_seen = 0  # data losses this process saw (the count in meta may go with a loss)

    async def refresh(self, b: Broker) -> None:
        lag = await archiving.lag(b)
        self.snapshot = Snapshot(
            depths=await inspect.queue_depths(b),
            counts=await inspect.counts(b),
            stats=await inspect.stats(b),
            foreign_clients=await foreign_clients(b),
            archive_lag_s=lag.seconds if lag.attached else None,
            data_losses=max(
                self.losses_seen, int(await b.guard(b.redis.hget(b.keys.meta, "data_losses")) or 0)
            ),
            limits=await limits.views(b),
        )
        await self._fold_latencies(b)

    async def _fold_latencies(self, b: Broker) -> None:
        rows: list[Any] = await b.guard(
            b.redis.zrangebyscore(
                b.keys.succeeded, f"({self.seen_until_ms}", "+inf", start=0, num=SCAN_LIMIT, withscores=True
            )
        )
        if not rows:
            return
        pipe = b.redis.pipeline(transaction=False)
        for job_id, _ in rows:
            pipe.hmget(b.keys.job(job_id), "created", "started", "finished")
        stamps: list[list[str | None]] = await b.guard(pipe.execute())
        for created, started, finished in stamps:
            if created and started and finished:
                self.wait.observe(max(0.0, (float(started) - float(created)) / 1000))
                self.run.observe(max(0.0, (float(finished) - float(started)) / 1000))
        self.seen_until_ms = int(rows[-1][1])

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        snap = self.snapshot
        depth = GaugeMetricFamily(
            "hiveq_queue_depth", "Jobs waiting, per agent and priority", labels=["agent", "priority"]
        )
        oldest = GaugeMetricFamily(
            "hiveq_queue_oldest_age_seconds", "Age of the oldest waiting job", labels=["agent"]
        )
        for d in snap.depths:
            for prio, n in sorted(d.by_priority.items()):
                depth.add_metric([d.agent, str(prio)], n)
            oldest.add_metric([d.agent], (d.oldest_age_ms or 0) / 1000)
        yield depth
        yield oldest
        jobs = GaugeMetricFamily("hiveq_jobs", "Jobs by state", labels=["state"])
        for state, n in sorted(snap.counts.items()):
            if state != "workers":
                jobs.add_metric([state], n)
        yield jobs
        yield GaugeMetricFamily(
            "hiveq_dead_letters", "Dead-lettered jobs awaiting a decision", value=snap.counts.get("dead", 0)
        )
        yield GaugeMetricFamily(
            "hiveq_workers_alive",
            "Registered workers with a live heartbeat",
            value=snap.counts.get("workers", 0),
        )
        yield CounterMetricFamily(
            "hiveq_jobs_vanished",
            "Jobs the conservation watch found gone from hiveq's places without a hiveq step",
            value=snap.stats.get("vanished", 0),
        )
        yield CounterMetricFamily(
            "hiveq_data_loss_events",
            "Times Redis lost this namespace's data (its epoch changed or vanished: a restart without "
            "persistence, a flush, a failover without the writes), as recorded in meta or seen here",
            value=snap.data_losses,
        )
        yield GaugeMetricFamily(
            "hiveq_foreign_clients",
            "Non-hiveq clients touching this namespace's keys, as far as Redis can tell: suspects "
            "of vanishings in the last hour (CLIENT LIST, MONITOR samples) still connected",
            value=snap.foreign_clients,
        )
        if snap.archive_lag_s is not None:
            yield GaugeMetricFamily(
                "hiveq_archive_lag_seconds",
                "Age of the oldest event-stream entry not yet in the archive (0: caught up)",
                value=snap.archive_lag_s,
            )
        total = CounterMetricFamily(
            "hiveq_jobs_transitions", "Job transitions since the namespace began", labels=["event"]
        )
        for name, n in sorted(snap.stats.items()):
            total.add_metric([name], n)
        yield total
        yield from limit_metrics(snap.limits)
        for name, h, what in (
            ("hiveq_job_wait_seconds", self.wait, "Enqueue to start of succeeded jobs"),
            ("hiveq_job_run_seconds", self.run, "Start to finish of succeeded jobs"),
        ):
            yield HistogramMetricFamily(name, what, buckets=h.buckets(), sum_value=h.total)


def limit_metrics(views: list[LimitView]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Per concrete limit key (docs/limits.md): jobs holding a slot, the rule's limit of each kind,
    and how often a job was passed over because of it."""
    labels = ["key", "rule"]
    in_use = GaugeMetricFamily("hiveq_limit_in_use", "Jobs running under a limit key", labels=labels)
    limit = GaugeMetricFamily(
        "hiveq_limit_limit", "The rule's limit for a key, per kind", labels=[*labels, "kind"]
    )
    throttled = CounterMetricFamily(
        "hiveq_limit_throttled", "Times a job was passed over because of a limit key", labels=labels
    )
    for v in views:
        kinds = {
            k: val
            for k, val in v.rule.stored().items()
            if k in ("concurrency", "rate_n", "tokens", "budget_tokens", "budget_usd")
        }
        for u in v.usage:
            in_use.add_metric([u.key, v.key], u.in_use)
            throttled.add_metric([u.key, v.key], u.throttled_total)
            for kind, val in kinds.items():
                limit.add_metric([u.key, v.key, kind], float(val))
    yield in_use
    yield limit
    yield throttled


class Metrics:
    """One registry per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = HiveqCollector()
        self.registry.register(self.collector)

    async def render(self, b: Broker, losses_seen: int = 0) -> bytes:
        self.collector.losses_seen = max(self.collector.losses_seen, losses_seen)
        await self.collector.refresh(b)
        return generate_latest(self.registry)
