"""The SDK against a real uvicorn: every call, and errors rebuilt as hiveq's own exceptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import hiveq
from hiveq.client import ApiError, AsyncClient, Client, parse_events, rebuild_error
from hiveq.contract.errors import Conflict, NotFound, PayloadTooLarge, Unauthorized, ValidationFailed
from hiveq.queue import complete, fetch, registry, retry
from hiveq.queue.broker import Broker
from tests.api.live import live_server


@pytest.fixture
async def url(broker: Broker) -> AsyncIterator[str]:
    async with live_server(broker.settings.with_(api_tokens=("tok",))) as u:
        yield u


async def test_async_client_covers_the_api(url: str, broker: Broker) -> None:
    async with AsyncClient(url, token="tok") as c:
        assert (await c.health()).status == "ok"
        sub = await c.submit(
            "x", subtasks=[{"id": "a", "agent": "demo"}], metadata={"who": "sdk"}, idempotency_key="k1"
        )
        again = await c.submit("x", subtasks=[{"id": "a", "agent": "demo"}], idempotency_key="k1")
        assert again.duplicate and again.task_id == sub.task_id
        assert (await c.get_task(sub.task_id)).metadata == {"who": "sdk"}
        assert [t.id for t in (await c.list_tasks()).items] == [sub.task_id]
        assert (await c.queues()).counts["waiting"] == 1
        await registry.register_worker(broker, "w-1", ["demo"], concurrency=1)
        assert [w.id for w in await c.workers()] == ["w-1"]
        (job,) = await fetch.claim(broker, "w-1", ["demo"], 1)
        await retry.fail(broker, [retry.Failure(job.lease, "boom", fatal=True)])
        assert [j.id for j in await c.dlq()] == [job.id]
        assert (await c.job(job.id)).state == "dead"
        assert [e.to for e in await c.job_history(job.id)] == ["waiting", "active", "dead"]
        assert (await c.retry_dead(job.id)).state == "waiting"
        (job,) = await fetch.claim(broker, "w-1", ["demo"], 1)
        await complete.complete(broker, [complete.Completion(job.lease, {"ok": True})])
        done = await c.wait(sub.task_id, timeout=20)
        assert done.status == "succeeded" and done.result["final"] == {"ok": True}


async def test_async_wait_follows_the_event_stream_until_the_task_finishes(url: str, broker: Broker) -> None:
    async with AsyncClient(url, token="tok") as c:
        sub = await c.submit("x", subtasks=[{"id": "a", "agent": "demo"}])
        waiter = asyncio.create_task(c.wait(sub.task_id, timeout=20))
        (job,) = await fetch.claim(broker, "w-1", ["demo"], 1)
        await complete.complete(broker, [complete.Completion(job.lease, 42)])
        assert (await waiter).result["final"] == 42
        with pytest.raises(TimeoutError):
            await c.wait((await c.submit("y")).task_id, timeout=0.5)


async def test_errors_come_back_as_hiveq_exceptions(url: str) -> None:
    async with AsyncClient(url, token="tok") as c:
        with pytest.raises(NotFound) as nf:
            await c.get_task("tnope")
        assert "unknown task id 'tnope'" in str(nf.value) and nf.value.kind == "task"
        with pytest.raises(ValidationFailed) as vf:
            await c.submit("x", priority=11)
        assert vf.value.field == "priority" and "less than or equal to 10" in vf.value.rule
        tid = (await c.submit("x")).task_id
        await c.cancel_task(tid)
        with pytest.raises(Conflict):
            await c.cancel_task(tid)
    async with AsyncClient(url, token="wrong") as bad:
        with pytest.raises(Unauthorized) as denied:
            await bad.list_tasks()
        assert isinstance(denied.value, Unauthorized) and denied.value.http_status == 401


def test_error_bodies_rebuild_into_classes_with_their_fields() -> None:
    e = rebuild_error(413, '{"error": {"code": "payload_too_large", "message": "too big", "field": "body"}}')
    assert isinstance(e, PayloadTooLarge) and str(e) == "too big"
    e = rebuild_error(502, "<html>bad gateway</html>")
    assert isinstance(e, ApiError) and e.status_code == 502 and "bad gateway" in str(e)


def test_sse_parser_reads_ids_types_multiline_data_and_skips_comments() -> None:
    lines = [
        "retry: 2000",
        "",
        ": keep-alive",
        "",
        "id: 1-0",
        "event: job",
        'data: {"type": "job", "ts": 1,',
        'data:  "to": "waiting"}',
        "",
    ]
    (ev,) = list(parse_events(lines))
    assert (ev.id, ev.type, ev.to) == ("1-0", "job", "waiting")


async def test_sync_client_and_package_exports(url: str) -> None:
    assert hiveq.Client is Client and hiveq.AsyncClient is AsyncClient

    def use_sync() -> tuple[str, str, int]:
        with Client(url, token="tok") as c:
            sub = c.submit("Build a user authentication system", priority=1)
            view = c.get_task(sub.task_id)
            try:
                c.job("tnope.a")
            except NotFound:
                pass
            else:
                raise AssertionError("expected NotFound")
            events = c.events(sub.task_id)
            first = next(events)
            events.close()  # type: ignore[attr-defined]
            return sub.task_id, str(first.to), len(view.subtasks)

    tid, first, n = await asyncio.to_thread(use_sync)  # the server runs in this event loop
    assert tid.startswith("t") and first == "queued" and n == 4


async def test_the_sdk_starts_tasks_later_and_manages_schedules(url: str) -> None:
    from datetime import UTC, datetime, timedelta

    at = datetime.now(UTC) + timedelta(hours=1)
    async with AsyncClient(url, token="tok") as c:
        later = await c.submit("x", run_at=at)
        assert (await c.get_task(later.task_id)).run_at_ms == round(at.timestamp() * 1000)
        soon = await c.submit("x", delay_s=60)
        assert (await c.get_task(soon.task_id)).run_at_ms
        with pytest.raises(ValidationFailed) as err:
            await c.submit("x", run_at=at.replace(tzinfo=None))
        assert err.value.field == "run_at"
        made = await c.put_schedule("nightly", "0 9 * * *", {"description": "report"}, tz="Europe/Berlin")
        assert made.next_run and made.tz == "Europe/Berlin"
        assert [s.name for s in await c.schedules()] == ["nightly"]
        assert (await c.get_schedule("nightly")).cron == "0 9 * * *"
        with pytest.raises(ValidationFailed) as bad:
            await c.put_schedule("nightly", "nope", {"description": "report"})
        assert bad.value.field == "cron"
        assert (await c.delete_schedule("nightly")).removed
        with pytest.raises(NotFound):
            await c.get_schedule("nightly")

    def sync_calls() -> None:  # the sync client, off the loop that serves the API
        with Client(url, token="tok") as sc:
            assert sc.put_schedule("s", "@daily", {"description": "r"}).name == "s"
            assert [s.name for s in sc.schedules()] == ["s"]
            assert sc.get_schedule("s").cron == "@daily"
            assert sc.delete_schedule("s").removed

    await asyncio.to_thread(sync_calls)
