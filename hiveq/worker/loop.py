"""loop: one worker process's asyncio loop.

Four concurrent loops share one `Worker`:
- claim: leases as many jobs as there are free slots in ONE claim call, starts them, and waits
  for work on a dedicated connection (BZPOPMIN on wake markers, no polling) when the queues are
  empty;
- flush (record.py): records finished jobs in batches (one `complete` + one `fail` call each);
- heartbeat: extends every held lease in one call each `heartbeat_s`, stops agents whose lease
  was lost (task cancelled, lease reclaimed), re-registers if the worker record was reaped; it
  beats at once when the inbox loop hears of a cancel (BZPOPMIN on this worker's inbox marker);
- maintain: promotes due retries and reclaims dead workers' leases every `reap_interval_s`, then
  ticks the conservation watch (hiveq/diagnose/watch.py; one process of the namespace runs it).
On stop, claiming ends, running jobs get `shutdown_grace_s`, the rest are handed back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from hiveq.agents.durable import Durable
from hiveq.agents.registry import AgentContext, AgentSpec, agent_limit_keys, get_agent, module_origin
from hiveq.contract.errors import Code, HiveqError, RedisFull, RedisUnavailable, WrongTypeError
from hiveq.contract.lease import Lease
from hiveq.contract.models import ClaimedJob
from hiveq.diagnose.watch import Complaints, Watch
from hiveq.logs import ContextAdapter, bound_logger
from hiveq.queue import connection, fetch, heartbeat, limits, maintain, registry, release
from hiveq.queue.broker import Broker
from hiveq.queue.epoch import EpochGuard, loss_line
from hiveq.queue.heartbeat import RECONNECT_BEAT_S
from hiveq.queue.keys import Keyspace
from hiveq.schedule.fire import fire_due
from hiveq.settings import Settings
from hiveq.worker.durable import RunBackend
from hiveq.worker.execute import Ending, Outcome, execute, precheck
from hiveq.worker.inbox import Inbox
from hiveq.worker.outbox import Outbox
from hiveq.worker.reconnect import Link, ReconnectDelay
from hiveq.worker.record import Recorder
from hiveq.worker.trouble import Trouble

STOP_BACKGROUND_S = 5.0  # how long shutdown waits for the background loops
IDLE_WAIT_S = 5.0  # a safety net only: enqueue/requeue/promote always set a wake marker
# Two claim loops overlap Redis and Python: one decodes and starts its jobs while Redis serves the
# other's claim. Each claims at most half the slots, so both get work under load.
CLAIMERS_FROM = 8  # slots at which a second claim loop pays off


ARCHIVER_STOP_S = 10.0  # on shutdown, how long the archiver may take to finish its batch


@dataclass
class Running:
    job: ClaimedJob
    ctx: AgentContext
    backend: RunBackend
    task: asyncio.Task[None] | None = None
    abandoned: bool = False  # lease lost or handed back: its outcome is not recorded


class Worker:
    def __init__(
        self, settings: Settings, agents: list[str], concurrency: int, worker_id: str, stop: asyncio.Event
    ) -> None:
        self.settings = settings
        self.agents = agents
        self.specs: dict[str, AgentSpec | None] = {a: get_agent(a) for a in agents}
        self.agent_limits = agent_limit_keys(self.specs, settings)
        self.modules = {a: m for a in agents if (m := module_origin(a))}  # user agents' --module
        self.concurrency = concurrency
        self.id = worker_id
        self.stop = stop
        self.log: ContextAdapter = bound_logger("hiveq.worker", worker_id=worker_id)
        self.link = Link(
            self.log,
            settings.redis_url,
            probe_name=Keyspace(settings.app, settings.env).client_name("worker-probe", worker_id),
            drop_idle=self._drop_idle,
        )
        self.running: dict[str, Running] = {}
        self.outbox = Outbox()
        self.claimers = 2 if concurrency >= CLAIMERS_FROM else 1
        self.slot_events = [asyncio.Event() for _ in range(self.claimers)]
        self.reserved = 0  # slots asked for by claims in flight
        self.resources: dict[str, Any] = {}
        self.executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="hiveq-agent")
        self.hb_generation = 0
        self.beat_now = asyncio.Event()  # set by the inbox loop: a cancel revoked a lease of ours
        # A foreign value on one of our keys or a full Redis: paused and retried, never fatal.
        self.trouble = Trouble(self.log, Keyspace(settings.app, settings.env), agents)
        self.recorder = Recorder(lambda: self.b, self.outbox, self.link, self.log, self.trouble)
        self._b: Broker | None = None
        self._epoch: EpochGuard | None = None
        self._wait_conns: list[Redis] = []
        self._inbox: Inbox | None = None
        self._abandoned_waits: list[asyncio.Future[bool]] = []
        self._stop_waiter: asyncio.Future[bool] | None = None

    async def _drop_idle(self) -> None:
        if self._b is not None:
            await connection.drop_idle(self._b.redis)

    @property
    def b(self) -> Broker:
        assert self._b is not None, "worker not connected"
        return self._b

    # -- lifecycle ---------------------------------------------------------------------------
    async def run(self) -> None:
        if not await self._connect():
            return
        bg = [
            asyncio.create_task(self._heartbeat_loop(), name="hiveq-heartbeat"),
            asyncio.create_task(self._maintain_loop(), name="hiveq-maintain"),
            asyncio.create_task(self.recorder.flush_loop(), name="hiveq-flush"),
            asyncio.create_task(self._listen_inbox(), name="hiveq-inbox"),
        ]
        if self.settings.archive.archive_url:  # one archiver per namespace runs; the others wait
            bg.append(asyncio.create_task(self._archive_loop(), name="hiveq-archive"))
        try:
            await asyncio.gather(*(self._claim_loop(i) for i in range(self.claimers)))
            await self._drain()
        finally:
            if self._inbox is not None:
                await self._inbox.hang_up()  # first: a blocked read may finish before it lets go
            for t in bg:
                t.cancel()
            # Bounded: a background loop that ignores its cancel must not keep the worker alive.
            _, stuck = await asyncio.wait(bg, timeout=STOP_BACKGROUND_S)
            for t in stuck:
                self.log.warning("%s did not stop within %g s; leaving it", t.get_name(), STOP_BACKGROUND_S)
            for t in bg:
                if t.done() and not t.cancelled():
                    t.exception()  # retrieved: errors on the way out are expected here
            await self.recorder.final_flush()
            await self._leave()

    async def _connect(self) -> bool:
        """Connect and register; while Redis is unreachable, retry with backoff until stopped."""
        delay = ReconnectDelay(cap=5.0)
        stalled = self.trouble.backoff()
        while not self.stop.is_set():
            try:
                self._b = await Broker.connect(self.settings, role="worker", ident=self.id)
                await registry.register_worker(self.b, self.id, self.agents, self.concurrency, self.modules)
                self._epoch = EpochGuard(self.b, self.id)
                await self._epoch.remember()
            except RedisUnavailable as exc:
                if self._b is not None:
                    await self._b.close()
                    self._b = None
                await self.link.failed(exc)
                await self._sleep_or_stop(delay.next_delay())
                continue
            except (WrongTypeError, RedisFull) as exc:  # a foreign meta/workers key, a full Redis
                if self._b is not None:
                    await self._b.close()
                    self._b = None
                self.trouble.say(exc, "starting (registering this worker)")
                await self._sleep_or_stop(stalled.next_delay())
                continue
            self.link.restored()
            # Over the BZPOPMIN timeout (redis-py default: 5 s).
            self._wait_conns = [
                await self.b.dedicated(f"worker-wait{i}", self.id, IDLE_WAIT_S + 5.0)
                for i in range(self.claimers)
            ]
            self._inbox = await Inbox.open(self.b, self.id, IDLE_WAIT_S)
            self.log.info(
                "worker started: agents=%s concurrency=%d namespace=%s",
                ",".join(self.agents),
                self.concurrency,
                self.settings.namespace,
            )
            return True
        return False

    async def _leave(self) -> None:
        if self._b is not None:
            try:
                await registry.deregister_worker(self.b, self.id, "stopped")
            except (HiveqError, RedisError) as exc:  # away, full, or a foreign `workers` key
                self.log.warning("could not deregister (%s); the record expires with its heartbeat", exc)
            await self.b.close()
        for conn in self._wait_conns:
            await conn.aclose()
        if self._inbox is not None:
            await self._inbox.close()
        if self._stop_waiter is not None:
            self._stop_waiter.cancel()
        if self._abandoned_waits:
            await asyncio.wait(self._abandoned_waits, timeout=1.0)
            for w in self._abandoned_waits:
                if w.done() and not w.cancelled():
                    w.exception()  # retrieved: a closed connection's error is expected here
        for res in self.resources.values():  # agents' per-worker clients (e.g. llm's HTTP client)
            closer = getattr(res, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.log.info("worker stopped after %d jobs", self.recorder.processed)

    async def _sleep_or_stop(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), delay)

    # -- claim ---------------------------------------------------------------------------------
    async def _claim_loop(self, n: int) -> None:
        delay = ReconnectDelay()
        stalled = self.trouble.backoff()  # a shared key holds a foreign type, or Redis is full
        slot_freed = self.slot_events[n]
        share = -(-self.concurrency // self.claimers)
        while not self.stop.is_set():
            slot_freed.clear()
            want = min(share, self.concurrency - len(self.running) - self.reserved)
            if want <= 0:
                await self._wait_event(slot_freed)
                continue
            agents = self.trouble.claimable()
            if not agents:  # every agent's queue key is paused: wait for the first retry
                await self._sleep_or_stop(self.trouble.next_retry_in(IDLE_WAIT_S))
                continue
            self.reserved += want
            try:
                try:
                    got = await fetch.claim_batch(
                        self.b, self.id, agents, want, agent_limits=self.agent_limits
                    )
                finally:
                    self.reserved -= want
                self.trouble.worked(agents)
                for job in got.jobs:
                    self._start(job)
                if len(got.jobs) < want:
                    await self._wait_for_work(self._wait_conns[n], got.retry_s)
            except RedisUnavailable as exc:
                await self.link.failed(exc)
                await self._sleep_or_stop(delay.next_delay())
                continue
            except (WrongTypeError, RedisFull) as exc:
                if not self.trouble.met(exc, "claiming"):  # one agent's key: go on with the others
                    await self._sleep_or_stop(stalled.next_delay())
                continue
            delay.reset()
            if stalled.attempt:
                stalled.reset()
                self.trouble.resumed("claims")
            self.link.restored()
            self.link.confirmed()

    async def _wait_event(self, event: asyncio.Event) -> None:
        """Wait for `event` or for stop, whichever comes first."""
        if event.is_set() or self.stop.is_set():
            return
        waiter: asyncio.Future[bool] = asyncio.ensure_future(event.wait())
        await asyncio.wait([waiter, self._stopping()], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    def _stopping(self) -> asyncio.Future[bool]:
        """One shared future for "stop was asked", so waits need not make a task for it each time."""
        if self._stop_waiter is None:
            waiter: asyncio.Future[bool] = asyncio.ensure_future(self.stop.wait())
            self._stop_waiter = waiter
            return waiter
        return self._stop_waiter

    async def _wait_for_work(self, conn: Redis, retry_s: float | None = None) -> None:
        """Until a wake-up, a paused key's retry, or (a job held by a refilling limit window) until
        the window refills."""
        agents = self.trouble.wakeable()
        timeout = self.trouble.next_retry_in(IDLE_WAIT_S)  # a paused key is retried on time
        if retry_s is not None:
            timeout = min(timeout, max(retry_s, 0.001))
        if not agents:
            await self._sleep_or_stop(timeout)
            return
        wait = asyncio.ensure_future(fetch.wait_for_work(self.b, agents, timeout, conn=conn))
        await asyncio.wait([wait, self._stopping()], return_when=asyncio.FIRST_COMPLETED)
        if not wait.done():
            # Stopping: leave the blocked read behind (redis-py may finish a cancelled BZPOPMIN
            # before it lets go); `_leave` closes its connection, which ends it at once.
            wait.cancel()
            self._abandoned_waits.append(wait)
            return
        wait.result()
        self.trouble.worked(agents, waited=True)

    def _start(self, job: ClaimedJob) -> None:
        spec = self.specs.get(job.agent)
        early = precheck(job, spec, self.id)
        if early is not None or spec is None:
            assert early is not None
            self.outbox.add(job, early)
            return
        log = ContextAdapter(
            self.log.logger,
            {
                "worker_id": self.id,
                "task_id": job.task_id,
                "job_id": job.id,
                "agent": job.agent,
                "attempt": job.attempt,
            },
        )
        ctx = AgentContext(
            job_id=job.id,
            task_id=job.task_id,
            subtask_id=job.subtask_id,
            agent=job.agent,
            input=job.input,
            description=job.description,
            metadata=job.metadata,
            dependency_results=job.dependency_results,
            attempt=job.attempt,
            logger=log,
            settings=self.settings,
            resources=self.resources,
            _progress=self._progress_fn(job),
            _usage=self._usage_fn(job),
            _loop=asyncio.get_running_loop(),
        )
        backend = RunBackend(lambda: self.b, job.lease, log, lambda why: self._lose(job.id, why, stop=False))
        ctx.durable = Durable(backend, job.id)
        r = Running(job, ctx, backend)
        self.running[job.id] = r
        r.task = asyncio.create_task(self._run(r, spec))

    async def _run(self, r: Running, spec: AgentSpec) -> None:
        job = r.job
        outcome: Outcome | None = None
        try:
            outcome = await execute(job, spec, r.ctx, self.executor)
            if outcome.ending is not Ending.SUSPENDED and not r.abandoned:
                await r.backend.flush()  # the output goes out before the job is recorded
        except asyncio.CancelledError:
            outcome = None
        finally:
            r.backend.output.close()
            if self.running.get(job.id) is r:
                del self.running[job.id]
            self._slot_freed()
        if outcome is not None and outcome.ending is Ending.RATE_LIMITED:
            if not r.abandoned:
                await self._hand_back_rate_limited(job, outcome)
        elif outcome is not None and outcome.ending is not Ending.SUSPENDED and not r.abandoned:
            self.outbox.add(job, outcome)

    async def _hand_back_rate_limited(self, job: ClaimedJob, outcome: Outcome) -> None:
        """A provider's 429: the job goes back (no attempt counted) and its keys cool down for
        every worker. With Redis away the lease expires and the reaper puts it back instead."""
        try:
            await release.release(
                self.b,
                [job.lease],
                f"rate limited by the provider ({outcome.error}); its limit keys cool down",
                cool_s=outcome.retry_after,
                cool_key=outcome.cool_key,
            )
        except RedisUnavailable as exc:
            await self.link.failed(str(exc))

    def _usage_fn(self, job: ClaimedJob) -> Any:
        async def report(tokens: int, usd: float) -> None:
            try:
                await limits.report_usage(self.b, job.lease, tokens, usd)
            except RedisUnavailable as exc:
                await self.link.failed(str(exc))

        return report

    def _slot_freed(self) -> None:
        for event in self.slot_events:
            event.set()

    def _progress_fn(self, job: ClaimedJob) -> Any:
        async def report(fraction: float, message: str) -> None:
            try:
                code = await heartbeat.progress(self.b, job.lease, fraction, message)
            except RedisUnavailable as exc:
                await self.link.failed(exc)
                return
            except (WrongTypeError, RedisFull) as exc:  # progress is best effort: the job goes on
                self.trouble.say(exc, "progress reports")
                return
            if code == Code.STALE_TOKEN and job.id in self.running:
                self._lose(job.id, "progress report refused: lease no longer held")

        return report

    # -- heartbeat -----------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        retry_delay = ReconnectDelay(cap=min(RECONNECT_BEAT_S, self.settings.leases.heartbeat_s))
        delay = self.settings.leases.heartbeat_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.beat_now.wait(), delay)
            self.beat_now.clear()
            delay = self.settings.leases.heartbeat_s
            # One lease per job: a job running again (a fresh claim) beside its older run's
            # outcome in the outbox beats with the running claim's token only.
            held = {lease.job_id: lease for lease in self.outbox.leases()}
            held.update((r.job.id, r.job.lease) for r in self.running.values() if not r.abandoned)
            leases = list(held.values())
            try:
                beat = await heartbeat.heartbeat(self.b, self.id, leases, len(self.running))
                if not beat.epoch_ok:
                    await self._data_lost(leases)
                    delay = 0  # beat again at once, in the namespace's new epoch
                    continue
                if self._epoch is not None:
                    self._epoch.saw_epoch()
                if not beat.registered:
                    self.log.warning("this worker's record was reaped (missed heartbeats); registering again")
                    await registry.register_worker(
                        self.b, self.id, self.agents, self.concurrency, self.modules
                    )
            except RedisUnavailable as exc:
                await self.link.failed(exc)
                delay = retry_delay.next_delay()
                continue
            except (WrongTypeError, RedisFull) as exc:  # the leases stay as they are meanwhile
                self.trouble.say(exc, "extending leases (heartbeat)")
                delay = retry_delay.next_delay()
                continue
            retry_delay.reset()
            self.link.restored()
            self.hb_generation = self.link.generation
            sent = {lease.job_id: lease.token for lease in leases}
            for job_id in beat.lost:
                # Only the lease that was sent: a reply about an older claim never stops a fresh one.
                r = self.running.get(job_id)
                if r is not None and r.job.lease.token == sent.get(job_id):
                    self._lose(job_id, "lease lost: the task was cancelled or the lease was reclaimed")

    async def _data_lost(self, leases: list[Lease]) -> None:
        """Redis lost the namespace (heartbeat found another epoch): say so, with the jobs this
        worker held, stop them (their records are gone: nothing to record), register again."""
        assert self._epoch is not None
        ids = sorted({lease.job_id for lease in leases})
        # Only the jobs whose records went: one claimed since Redis came back is alive and kept.
        pipe = self.b.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(self.b.keys.job(job_id))
        there = await self.b.guard(pipe.execute()) if ids else []
        held = [job_id for job_id, n in zip(ids, there, strict=True) if not n]
        loss = await self._epoch.report(held)
        if loss is None:
            return
        self.log.error("%s", loss_line(loss, held))
        for job_id in held:
            self._lose(job_id, "data loss: Redis lost this job's record", quiet=True)
        self.outbox.drop(set(held))
        await registry.register_worker(self.b, self.id, self.agents, self.concurrency, self.modules)
        self.log.warning("registered again after the data loss; serving %s", ",".join(self.agents))

    def _lose(self, job_id: str, why: str, stop: bool = True, quiet: bool = False) -> None:
        """Stop a job whose lease is gone; `stop=False` when the run itself found out (it ends by
        raising CancelledError); `quiet`: the caller said why in one line for all of them."""
        r = self.running.pop(job_id, None)
        if r is None:
            return
        r.abandoned = True
        r.ctx.cancelled.set()
        if stop and r.task is not None:
            r.task.cancel()
        self._slot_freed()
        if not quiet:
            r.ctx.logger.warning("%s; stopping the agent, its result will not be recorded", why)

    async def _listen_inbox(self) -> None:
        assert self._inbox is not None
        await self._inbox.listen(lambda: self.b, self.beat_now)

    # -- maintain ------------------------------------------------------------------------------
    async def _maintain_loop(self) -> None:
        watch = Watch(self.b, self.id, log=self.log)  # its pub/sub, if any, closes with the broker
        complaints = Complaints(self.log)
        paused = False
        unfired = Complaints(self.log, "schedules not fired")
        while True:
            await asyncio.sleep(self.settings.leases.reap_interval_s)
            # After an outage, reap only once our own leases were extended: never reclaim our jobs.
            if not self.link.up or self.hb_generation != self.link.generation:
                continue
            try:
                m = await maintain.maintain(self.b)
            except RedisUnavailable as exc:
                await self.link.failed(exc)
                continue
            except (WrongTypeError, RedisFull) as exc:
                self.trouble.say(exc, "maintenance (promoting retries, reclaiming expired leases)")
                continue
            if m.paused_ms and not paused:
                self.log.warning(
                    "Redis was away (no worker reached it for a while): expired leases are reaped "
                    "only after %.1f s more, so live workers extend theirs first",
                    m.paused_ms / 1000,
                )
            paused = m.paused_ms > 0
            if m.requeued or m.dead_lettered or m.workers_lost:
                self.log.info(
                    "maintenance: %d expired leases requeued, %d dead-lettered, %d workers lost",
                    m.requeued,
                    m.dead_lettered,
                    m.workers_lost,
                )
            await self._watch(watch, complaints)
            await self._fire_schedules(unfired)

    async def _fire_schedules(self, complaints: Complaints) -> None:
        """Due schedules' ticks (hiveq/schedule/fire.py): atomic in Redis, so every worker and API
        process may try; one ZRANGEBYSCORE when nothing is due."""
        try:
            await fire_due(self.b, self.id)
        except RedisUnavailable as exc:
            await self.link.failed(str(exc))
        except (HiveqError, RedisError) as exc:
            complaints(exc)

    async def _watch(self, watch: Watch, complaints: Complaints) -> None:
        """One tick of the conservation watch; its failures are logged, never fatal."""
        try:
            await watch.tick()
        except RedisUnavailable as exc:
            await self.link.failed(exc)
        except (HiveqError, RedisError) as exc:
            complaints(exc)

    async def _archive_loop(self) -> None:
        """With HIVEQ_ARCHIVE_URL set, every worker is a candidate archiver (archive/archiver.py):
        the lease lets one of them run, and another takes over within seconds when it dies. On
        shutdown it finishes its batch (a cancel could leave a write half-way in its thread)."""
        from hiveq.archive.archiver import Archiver  # SQLAlchemy loads only where an archive is set

        stop = asyncio.Event()
        try:
            runner = asyncio.create_task(Archiver(self.settings, ident=self.id).run(stop))
        except HiveqError as exc:
            self.log.warning("archiver not started: %s", exc)
            return
        try:
            await asyncio.shield(runner)
        except asyncio.CancelledError:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner, ARCHIVER_STOP_S)
            raise

    # -- shutdown ------------------------------------------------------------------------------
    async def _drain(self) -> None:
        grace = self.settings.worker.shutdown_grace_s
        tasks = [r.task for r in self.running.values() if r.task is not None]
        if tasks:
            self.log.info("stopping: no new jobs; %d running jobs get %g s to finish", len(tasks), grace)
            await asyncio.wait(tasks, timeout=grace)
        left = [r for r in self.running.values() if not r.abandoned]
        if not left:
            return
        for r in left:
            r.abandoned = True
            r.ctx.cancelled.set()
            if r.task is not None:
                r.task.cancel()
        leases = [r.job.lease for r in left]
        reason = f"worker {self.id} shutting down: not finished within the {grace:g} s grace period"
        try:
            await release.release(self.b, leases, reason)
            ids = sorted(lease.job_id for lease in leases)
            self.log.info("handed back %d unfinished jobs: %s", len(leases), ", ".join(ids))
        except (RedisUnavailable, WrongTypeError, RedisFull) as exc:
            self.log.warning(
                "could not hand back %d jobs (%s); they run again when their leases expire", len(leases), exc
            )
        await asyncio.gather(*(r.task for r in left if r.task is not None), return_exceptions=True)
