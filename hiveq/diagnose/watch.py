"""watch: the live conservation watch. While any worker or API process of a namespace runs, a job
that leaves hiveq's places other than through hiveq's scripts is marked `vanished` within
seconds, with the suspected culprit, and (HIVEQ_RECOVER_VANISHED=auto) recovered.

One process at a time runs it: the holder of the `watch` lease, taken over within LEASE_MS when
its holder dies. Each tick (every `reap_interval_s`) costs one script call (watch_tick.lua):
- the tripwire: the `jobs` index against the sum of all places, which every hiveq script keeps
  equal; a shortfall (the deficit) means jobs left without a script. Only then the targeted
  sweep (find_vanished.lua) reads the index, newest first, in windows of FIND_WINDOW, until it
  found as many jobs in no place as the deficit, or the end of the index;
- one window of the rolling record sweep: sized so that every unfinished job's record is checked
  once per TARGET_PASS_S, which finds a deleted or evicted job record. When the server publishes
  keyspace notifications, a deleted record is heard of at once (keyspace_events.py) and the
  sweep is only a safety net, a pass every SAFETY_PASS_S.
What is found goes through mark_vanished.lua with what the suspects module saw. Jobs in no place
whose records say they finished (or were already vanished) cannot be marked; their count is the
`baseline` the tripwire compares against until the next full pass (the audit lists them).
docs/protocol.md ("The conservation watch") has the keys and the measured cost.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as rex

from hiveq.contract.errors import Code, Conflict, HiveqError, NotFound
from hiveq.contract.states import PENDING_JOB_STATES
from hiveq.diagnose.keyspace_events import SAFETY_PASS_S, KeyspaceEvents
from hiveq.diagnose.suspects import EvictionClock, observe
from hiveq.queue.broker import Broker
from hiveq.queue.vanish import Seen, mark_vanished, recover

TARGET_PASS_S = 3.0  # every unfinished job's record is checked at least this often
MIN_WINDOW, MAX_WINDOW = 256, 50_000  # records the sweep checks per tick
CALL_WINDOW = 2_000  # records per watch_tick call: Lua's cost per member grows with the call's size
FIND_WINDOW = 2_000  # index entries per find_vanished call
FIND_BUDGET = 25  # find_vanished calls per tick: up to 50,000 index entries
HOT = 1_000  # jobs marked lately, tried first (a thief that took one takes it again)
LEASE_MS = 2_000
# watch_tick returns these place counts in this order (KEYS 4-12 of the script).
TICK_PLACES = (
    "blocked",
    "delayed",
    "leases",
    "suspended",
    "succeeded",
    "dead",
    "cancelled",
    "quarantine",
    "vanished",
)
MARKABLE = {s.value for s in PENDING_JOB_STATES} | {""}  # '' : the record is gone too
COMPLAIN_EVERY_S = 60.0

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


@dataclass(frozen=True)
class Places:
    """The tripwire's snapshot: the index and every place, counted in one atomic step."""

    jobs: int
    fixed: dict[str, int]
    queues: dict[str, int]
    pending: int  # blocked + delayed + leases + every queue: what the record sweep walks

    @property
    def deficit(self) -> int:
        """Indexed jobs in no place (negative: members that are not indexed jobs)."""
        return self.jobs - sum(self.fixed.values()) - sum(self.queues.values())


@dataclass
class TickReport:
    held: bool
    holder: str
    places: Places | None = None
    checked: int = 0  # records checked by the record sweep
    wrapped: bool = False  # the record sweep finished a pass with this tick
    searched: int = 0  # index entries read by the targeted sweep
    marked: list[str] = field(default_factory=list)
    recovered: dict[str, str] = field(default_factory=dict)  # job id -> the state it went to


class Watch:
    """One namespace's conservation watch, ticked by a worker's maintenance or the API."""

    def __init__(self, b: Broker, owner: str | None = None, *, log: Logger | None = None) -> None:
        self.b = b
        self.owner = owner or b.identity
        self.log: Logger = log or logging.getLogger("hiveq.watch")
        self.interval_s = b.settings.leases.reap_interval_s
        self.auto = b.settings.watch.recover_vanished == "auto"
        self.sample_s = b.settings.watch.watch_sample_s
        self.clock = EvictionClock()
        self.events = KeyspaceEvents(b)
        self._reset()

    def _reset(self) -> None:
        self.started = False
        self.cursor = 0
        self.pending = 0
        self.baseline = 0
        self.search_rank: int | None = None  # a targeted sweep in progress: its next rank
        self.hot: list[str] = []  # the jobs this watch marked lately, newest last
        self.unmarkable = 0  # jobs in no place that cannot be marked, seen by this sweep so far

    def window(self) -> int:
        target = SAFETY_PASS_S if self.events.on else TARGET_PASS_S
        want = math.ceil(self.pending * self.interval_s / target)
        return max(MIN_WINDOW, min(MAX_WINDOW, want))

    async def close(self) -> None:
        await self.events.close()

    async def tick(self) -> TickReport:
        window = self.window()
        res = await self._tick_call(min(window, CALL_WINDOW))
        if int(res[0]) == 0:
            self._reset()
            await self.events.close()
            return TickReport(held=False, holder=str(res[1]))
        if not self.started:
            await self.clock.start(self.b)
            self.started = True
        await self.events.refresh()
        gone = await self.events.drain()  # job id -> deleted | expired | evicted, heard at once
        fixed = {p: int(n) for p, n in zip(TICK_PLACES, res[2], strict=True)}
        queues = {str(a): int(n) for a, n in zip(res[3][::2], res[3][1::2], strict=True)}
        places = Places(int(res[1]), fixed, queues, int(res[4]))
        report = TickReport(held=True, holder=self.owner, places=places)
        report.checked = min(window, places.pending)
        self.pending = places.pending
        found = dict.fromkeys(gone, "")  # job id -> the key it sits in without its record, if known
        while True:
            self.cursor, report.wrapped = int(res[5]), bool(int(res[6]))
            found.update(zip(res[7][1::2], res[7][::2], strict=True))
            window -= CALL_WINDOW
            if window <= 0 or report.wrapped:
                break
            res = await self._tick_call(min(window, CALL_WINDOW))
            if int(res[0]) == 0:
                break
        deficit = places.deficit
        self.baseline = min(self.baseline, deficit)
        if deficit > self.baseline or self.search_rank is not None:
            for job_id in await self._search(deficit - self.baseline, sorted(queues), report):
                found.setdefault(job_id, "")
        if found:
            await self._report(found, {j for j, how in gone.items() if how == "evicted"}, report)
        return report

    async def _tick_call(self, window: int) -> Any:
        return await self.b.run("watch_tick", [self.owner, LEASE_MS, self.cursor, window])

    async def _find(
        self, mode: str, args: list[Any], agents: list[str], report: TickReport
    ) -> tuple[int, list[Any]]:
        scanned, rows = await self.b.run("find_vanished", [mode, *args, *agents])
        report.searched += int(scanned)
        return int(scanned), [(str(j), str(s)) for j, s in zip(rows[::3], rows[1::3], strict=True)]

    async def _search(self, need: int, agents: list[str], report: TickReport) -> list[str]:
        """The targeted sweep: the markable jobs in no place, looked for where thieves take them
        first (jobs marked lately, the heads of the queues), then through the whole index."""
        found: set[str] = set()
        if self.search_rank is None:  # a new search: the cheap probes first
            found = await self._probe(agents, report)
            if len(found) >= need:
                return sorted(found)
        return sorted(found | await self._pass(need - len(found), agents, report))

    async def _probe(self, agents: list[str], report: TickReport) -> set[str]:
        probes: list[tuple[str, list[Any]]] = []
        if self.hot:
            probes.append(("ids", [len(self.hot), *self.hot]))
        if agents:
            probes.append(("heads", [max(100, 5_000 // len(agents))]))
        found: set[str] = set()
        for mode, args in probes:
            _, rows = await self._find(mode, args, agents, report)
            found |= {j for j, state in rows if state in MARKABLE}
        return found

    async def _pass(self, need: int, agents: list[str], report: TickReport) -> set[str]:
        """The whole index, newest first, up to FIND_BUDGET windows per tick; a pass that reaches
        the end sets the baseline (jobs in no place that cannot be marked)."""
        found: set[str] = set()
        rank = self.search_rank or 0
        for _ in range(FIND_BUDGET):
            scanned, rows = await self._find("rank", [rank, FIND_WINDOW], agents, report)
            rank += scanned
            for job_id, state in rows:
                if state in MARKABLE:
                    found.add(job_id)
                else:
                    self.unmarkable += 1
            if scanned < FIND_WINDOW:  # the whole index was read
                if self.unmarkable != self.baseline:
                    self.log.warning(
                        "%d job(s) of %s are in no place although their records say they finished; "
                        "`hiveq doctor` lists them",
                        self.unmarkable,
                        self.b.keys.prefix,
                    )
                self.baseline, self.unmarkable, self.search_rank = self.unmarkable, 0, None
                return found
            if len(found) >= need:
                self.unmarkable, self.search_rank = 0, None
                return found
        self.search_rank = rank
        return found

    async def _report(self, found: dict[str, str], evicted: set[str], report: TickReport) -> None:
        b = self.b
        seen = await observe(b, sample_s=self.sample_s, clock=self.clock, auto_recover=self.auto)
        batches: list[tuple[Seen, list[tuple[str, str]]]] = [
            (seen, sorted((j, k) for j, k in found.items() if j not in evicted))
        ]
        if evicted:  # Redis said so itself: an eviction, whatever INFO shows
            named = seen.evicted or "a keyspace notification said `evicted`"
            redis_did = Seen("Redis itself (" + named + ")", seen.suspects, [], seen.sample, named, self.auto)
            batches.append((redis_did, sorted((j, found[j]) for j in evicted)))
        for who, jobs in batches:
            codes = await mark_vanished(b, who, jobs)
            report.marked += [
                job_id for (job_id, _), code in zip(jobs, codes, strict=True) if code == Code.OK
            ]
        self.hot = [j for j in self.hot if j not in report.marked][
            -(HOT - len(report.marked)) :
        ] + report.marked
        for job_id in report.marked:
            reason = await b.guard(b.redis.hget(b.keys.job(job_id), "reason"))
            self.log.warning("job %s %s", job_id, reason)
        if not self.auto:
            return
        for job_id in report.marked:
            try:
                state = await recover(b, job_id, f"the watch ({self.owner}, HIVEQ_RECOVER_VANISHED=auto)")
            except (Conflict, NotFound) as exc:
                self.log.warning("job %s stays vanished: %s", job_id, exc)
                continue
            report.recovered[job_id] = state.value
            self.log.info("job %s recovered by the watch: now %s", job_id, state.value)

    async def settle(self, max_ticks: int = 10_000) -> list[str]:
        """Tick until the record sweep has done a whole pass and the tripwire is quiet (tests and
        benchmarks); returns the jobs marked vanished meanwhile."""
        marked: list[str] = []
        wrapped = False
        for _ in range(max_ticks):
            r = await self.tick()
            if not r.held:
                raise RuntimeError(f"the watch lease is held by {r.holder}")
            marked += r.marked
            wrapped = wrapped or r.wrapped
            assert r.places is not None
            if wrapped and self.search_rank is None and r.places.deficit - len(r.marked) <= self.baseline:
                return marked
        raise RuntimeError(f"the watch did not settle within {max_ticks} ticks")


async def watch_forever(
    b: Broker, *, ready: Callable[[], bool] = lambda: True, log: Logger | None = None
) -> None:
    """Tick a Watch every `reap_interval_s` (the API's loop; workers tick from their maintenance).
    A failing tick is logged at most once a minute and never ends the loop."""
    watch = Watch(b, log=log)
    complained = Complaints(watch.log)
    try:
        while True:
            await asyncio.sleep(watch.interval_s)
            if not ready():
                continue
            try:
                await watch.tick()
            except (HiveqError, rex.RedisError) as exc:
                complained(exc)
    finally:
        await watch.close()


class Complaints:
    """A failing watch says so at most once per COMPLAIN_EVERY_S (not per tick)."""

    def __init__(self, log: Logger, what: str = "conservation watch paused") -> None:
        self.log = log
        self.what = what
        self.last = -math.inf

    def __call__(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self.last >= COMPLAIN_EVERY_S:
            self.last = now
            self.log.warning("%s: %s", self.what, exc)
