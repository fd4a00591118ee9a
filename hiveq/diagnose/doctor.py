"""`run_doctor`: every check that explains a vanished or stuck job, each with a verdict, the
evidence and the fix. One call for the CLI (`hiveq doctor`), the API (`GET /doctor`) and code.

Order matters: the connection first (nothing else can run without it), then the MONITOR sample
(so CLIENT LIST, read right after, can name the addresses it saw), then the rest.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable

from redis import exceptions as rex

from hiveq.contract.errors import HiveqError, RedisUnavailable
from hiveq.contract.redact import redact
from hiveq.diagnose.archive_check import archive_check
from hiveq.diagnose.consumers import consumers_check, list_clients, sample_check
from hiveq.diagnose.loss_check import data_loss_check
from hiveq.diagnose.monitor import sample_monitor
from hiveq.diagnose.report import Check, DoctorReport, fail, ok, warn, when
from hiveq.diagnose.settings_check import settings_checks
from hiveq.diagnose.shared import namespace_check, shared_check, wrong_type_check
from hiveq.diagnose.workers_check import liveness, worker_checks
from hiveq.queue.audit import Misplaced, audit
from hiveq.queue.broker import Broker
from hiveq.queue.vanish import list_vanished

LATENCY_WARN_MS = 50.0
PINGS = 5


async def connection_check(b: Broker) -> Check:
    name = "connection"
    url = redact(b.settings.redis_url)
    fix = "Check that Redis runs at REDIS_URL, that host and port are reachable, and the user/password."
    rtts = []
    try:
        for _ in range(PINGS):
            t0 = time.perf_counter()
            await b.redis.ping()
            rtts.append((time.perf_counter() - t0) * 1000)
    except rex.AuthenticationError as exc:
        return fail(name, f"Redis at {url} refused the credentials ({exc})", fix=fix)
    except rex.ResponseError as exc:  # NOAUTH / WRONGPASS on servers that answer before AUTH
        return fail(name, f"Redis at {url} refused the connection ({exc})", fix=fix)
    except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
        return fail(name, f"Redis at {url} is unreachable ({exc or type(exc).__name__})", fix=fix)
    med = statistics.median(rtts[1:] or rtts)  # the first ping pays for connecting
    evidence = [f"round trips: {', '.join(f'{r:.2f}' for r in rtts)} ms", f"url={url}"]
    if med > LATENCY_WARN_MS:
        return warn(
            name,
            f"round trip {med:.1f} ms: every claim and completion pays this",
            evidence,
            fix="Run workers close to Redis (same region/network).",
        )
    return ok(name, f"Redis at {url} answers in {med:.2f} ms", evidence)


def _missing_line(m: Misplaced) -> str:
    ev = m.last_event
    last = "no custody event recorded"
    if ev is not None:
        who = ev.worker or ev.client or ""
        last = f"last custody event {when(ev.ts)}: {ev.frm or '?'} -> {ev.to or '?'}"
        last += f" by {who}" if who else ""
        if ev.reason:
            last += f" ({ev.reason})"
    return f"{m.job_id}: record says {m.state or '(record gone)'}, found in no place; {last}"


async def audit_check(b: Broker) -> Check:
    name = "vanished jobs"
    rep = await audit(b)
    marked = await list_vanished(b, 100)
    if rep.ok and not marked:
        return ok(
            name,
            f"all {rep.total} jobs accounted for, each in exactly one place",
            {k: v for k, v in rep.by_place.items() if v},
        )
    evidence = [f"{j.id}: {j.reason or 'vanished'}" for j in marked]
    evidence += [_missing_line(m) for m in rep.missing[:100]]
    evidence += [f"{m.job_id}: in several places at once: {', '.join(m.places)}" for m in rep.duplicated[:50]]
    stray = f"not in the job index ({rep.evicted})" if rep.evicted else "never enqueued by hiveq"
    gone = rep.evicted or "deleted or evicted"
    evidence += [f"{j}: in one of our sets but {stray}" for j in rep.strays[:50]]
    evidence += [f"{j}: its record is gone ({gone})" for j in rep.records_missing[:50]]
    evidence += [
        f"{key}: holds a {found}, not our zset (overwritten by another application?)"
        for key, found in rep.foreign_keys.items()
    ]
    n_marked = rep.by_place.get("vanished", 0)
    parts = [
        f"{len(rep.foreign_keys)} place key(s) overwritten" if rep.foreign_keys else "",
        f"{n_marked} vanished" if n_marked else "",
        f"{len(rep.missing)} missing from every place" if rep.missing else "",
        f"{len(rep.records_missing)} record(s) gone" if rep.records_missing else "",
        f"{len(rep.duplicated)} in several places" if rep.duplicated else "",
        f"{len(rep.strays)} foreign member(s)" if rep.strays else "",
    ]
    culprit = (
        f"{rep.evicted}: set maxmemory-policy noeviction so that Redis refuses new work instead"
        if rep.evicted
        else "something outside hiveq took, deleted or wrote them (a foreign pop, DEL, script or eviction)"
    )
    return fail(
        name,
        f"{', '.join(p for p in parts if p)} of {rep.total} jobs — {culprit}",
        evidence,
        fix="Stop the culprit (the suspect named with each vanished job, 'foreign consumers' below, "
        "or `hiveq doctor --sample 5` to catch it in the act) and check the eviction policy; then "
        "`hiveq recover --all`. Jobs missing from every place are marked vanished by the "
        "conservation watch of any running worker or API process.",
    )


async def _guarded(name: str, make: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
    """Run one group of checks; a refusal or error becomes a check, never a traceback."""
    try:
        return await make()
    except RedisUnavailable as exc:
        return [fail(name, str(exc), fix="Check that Redis is running and reachable.")]
    except (rex.NoPermissionError, rex.ResponseError) as exc:
        return [
            warn(
                name,
                f"could not run: the server refused ({exc})",
                fix="Run the doctor as a Redis user allowed read commands, INFO, CLIENT and MONITOR.",
            )
        ]
    except HiveqError as exc:
        return [fail(name, str(exc))]


async def run_doctor(b: Broker, *, sample_s: float = 0, remember: bool = True) -> DoctorReport:
    """Run every check against `b`'s namespace. `sample_s` > 0 adds a bounded MONITOR sample;
    `remember` stores the dead-letter count so the next run can report its growth."""
    t0 = time.monotonic()
    checks = [await connection_check(b)]
    if checks[0].verdict != "fail":
        checks += await _guarded("namespace", lambda: _one(namespace_check(b)))
        sample = None
        if sample_s > 0:
            name = b.keys.client_name("doctor-monitor", str(os.getpid()))
            sample = await sample_monitor(b.redis, b.settings.redis_url, b.keys, sample_s, name)
        lv = await liveness(b)
        clients, error = await list_clients(b)
        checks.append(consumers_check(b, clients, error, lv.addresses, sample))
        if sample is not None:
            checks.append(sample_check(sample, clients, b, lv.addresses))
        checks += await _guarded("vanished jobs", lambda: _one(audit_check(b)))
        checks += await _guarded("shared redis", lambda: _one(shared_check(b)))
        checks += await _guarded("key types", lambda: _one(wrong_type_check(b)))
        checks += await _guarded("redis settings", lambda: settings_checks(b))
        checks += await _guarded("workers", lambda: worker_checks(b, lv, remember=remember))
        checks += await _guarded("archive", lambda: _one(archive_check(b)))
        checks += await _guarded("data loss", lambda: _one(data_loss_check(b)))
    return DoctorReport(
        namespace=b.keys.prefix,
        redis_url=redact(b.settings.redis_url),
        checks=checks,
        took_ms=int((time.monotonic() - t0) * 1000),
    )


async def _one(check: Awaitable[Check]) -> list[Check]:
    return [await check]
