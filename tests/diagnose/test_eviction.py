"""Records Redis evicted are named for what they are: with `maxmemory 20mb` and allkeys-lru,
jobs keep being accepted while Redis deletes their records; the audit checks that each job's
record exists and, like the doctor and the live watch, says "evicted by Redis: maxmemory-policy
allkeys-lru" instead of blaming a foreign client or calling them never enqueued."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hiveq.diagnose.doctor import audit_check
from hiveq.diagnose.watch import Watch
from hiveq.queue.audit import audit
from hiveq.queue.broker import Broker
from hiveq.queue.inspect import get_job
from hiveq.server import ServerProcess
from tests.conftest import fresh_settings
from tests.support.worker import submit

pytestmark = pytest.mark.slow

EVICTED = "evicted by Redis: maxmemory-policy allkeys-lru"


async def test_jobs_whose_records_redis_evicted_are_named_evicted_not_foreign(
    private_server: Callable[..., ServerProcess],
) -> None:
    srv = private_server("redis", extra=["--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru"])
    b = await Broker.connect(fresh_settings(srv.url), role="test")
    try:
        watch = Watch(b)
        await watch.settle()  # the watch runs from before the evictions, as in a live namespace
        accepted: list[str] = []
        while not int((await b.redis.info("stats"))["evicted_keys"]) or len(accepted) < 400:
            accepted += (await submit(b, "t.count_a", [{"pad": "x" * 20_000}] * 20)).job_ids
            assert len(accepted) < 10_000, "Redis never evicted anything"
        await b.redis.config_set("maxmemory", 0)  # no more evictions from here on
        gone = [j for j in accepted if not await b.redis.exists(b.keys.job(j))]
        assert gone, "no job record was evicted"

        rep = await audit(b, with_history=False)
        assert not rep.ok
        assert rep.evicted.startswith(EVICTED)
        assert set(rep.records_missing) <= set(accepted)
        check = await audit_check(b)
        assert check.verdict == "fail" and EVICTED in check.summary
        lines = check.lines()
        assert not any("never enqueued by hiveq" in line or "foreign client" in line for line in lines)
        assert any(EVICTED in line for line in lines)

        marked = await watch.settle()
        assert marked, "the watch marked no evicted job vanished"
        for job_id in marked:
            job = await get_job(b, job_id)
            assert job.reason is not None and EVICTED in job.reason, job.reason
            assert job.suspect is not None and job.suspect.startswith("Redis itself")
    finally:
        await b.close()
