"""The HTTP face of durable agents: POST /jobs/{id}/signals/{name}, GET /jobs/{id}/output, the
task's `output` events resumable with Last-Event-ID (a real uvicorn, a real worker process), and
who cancelled in the custody history."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from hiveq.client import SSEParser
from hiveq.contract.models import Event
from hiveq.contract.states import JobState
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion, complete
from hiveq.queue.events import job_history
from hiveq.queue.fetch import claim
from hiveq.queue.suspend import wait_signal
from tests.api.live import live_server
from tests.support.waiting import until
from tests.support.worker import spawn_worker, stop_proc, submit


async def test_a_signal_is_sent_with_its_json_body_and_kept_until_the_job_waits(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    [jid] = (await submit(broker, "t.approval", [None])).job_ids
    r = await api.post(f"/jobs/{jid}/signals/approval", json={"approved": True, "note": "ok"})
    assert r.status_code == 200, r.text
    assert r.json() == {"job_id": jid, "name": "approval", "delivered": False, "pending": 1}
    [job] = await claim(broker, "w", ["t.approval"], 1)
    got = await wait_signal(broker, job.lease, "hiveq.signal:approval", "approval", None)
    assert got.ready and '"data":{"approved":true,"note":"ok"}' in got.outcome
    history = await job_history(broker, jid)
    sent = next(e for e in history if e.type == "signal")
    assert "through the API" in (sent.reason or "")  # who sent it: the client's address and the API


async def test_a_signal_to_a_waiting_job_wakes_it_and_bad_signals_get_clear_errors(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    enq = await submit(broker, "t.approval", [None, None])
    waiting, done = enq.job_ids
    jobs = {j.id: j for j in await claim(broker, "w", ["t.approval"], 2)}
    await wait_signal(broker, jobs[waiting].lease, "hiveq.signal:go", "go", None)
    await complete(broker, [Completion(jobs[done].lease, "finished")])
    r = await api.post(f"/jobs/{waiting}/signals/go", content=b"")  # no body: null
    assert r.status_code == 200 and r.json()["delivered"] is True
    assert (await inspect.get_job(broker, waiting)).state == JobState.WAITING
    cases = [
        (f"/jobs/{done}/signals/go", b"1", 409, "has finished"),
        (f"/jobs/{enq.task_id}.nope/signals/go", b"1", 404, "unknown job id"),
        (f"/jobs/{waiting}/signals/go", b"{not json", 422, "not valid JSON"),
        (f"/jobs/{waiting}/signals/{'x' * 65}", b"1", 422, "name"),
    ]
    for path, body, status, said in cases:
        r = await api.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == status, (path, r.text)
        assert said in r.text


async def test_output_is_read_back_and_unknown_jobs_are_404(api: httpx.AsyncClient, broker: Broker) -> None:
    [jid] = (await submit(broker, "t.approval", [None])).job_ids
    r = await api.get(f"/jobs/{jid}/output")
    assert r.status_code == 200 and r.json()["text"] == "" and r.json()["bytes"] == 0
    assert (await api.get(f"/jobs/{jid}x/output")).status_code == 404


async def output_events(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], until_type: str, first_only: bool = False
) -> list[Event]:
    """`output` events of an SSE stream, up to the first one (then hang up) or to an event of
    `until_type`."""
    out: list[Event] = []
    parser = SSEParser()
    async with asyncio.timeout(30), http.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            ev = parser.feed(line)
            if ev is None:
                continue
            if ev.type == "output":
                out.append(ev)
                if first_only:
                    return out
            if ev.type == until_type:
                return out
    raise AssertionError("stream ended early")


@pytest.mark.slow
async def test_output_events_resume_after_a_dropped_connection_with_nothing_repeated_or_missed(
    broker: Broker,
) -> None:
    enq = await submit(broker, "t.emitter", [{"n": 5}])
    [jid] = enq.job_ids
    proc = spawn_worker(broker.settings, "t.emitter")
    try:
        async with live_server(broker.settings) as url, httpx.AsyncClient(base_url=url) as http:
            path = f"/tasks/{enq.task_id}/events"
            before = await output_events(http, path, {}, "", first_only=True)  # then the line drops
            await until(lambda: _suspended(broker, jid), 30, "the emitter to wait for `more`")
            await http.post(f"/jobs/{jid}/signals/more", json=None)
            after = await output_events(http, path, {"Last-Event-ID": before[-1].id}, "task")
            kept = (await http.get(f"/jobs/{jid}/output")).json()
    finally:
        assert stop_proc(proc) == 0
    events = before + after
    text = "".join(e.data["text"] for e in events)
    assert text == "".join(f"line {i}\n" for i in range(10)) == kept["text"]
    offsets = [e.data["at"] for e in events]
    sizes = [len(e.data["text"].encode()) for e in events]
    assert offsets == [sum(sizes[:i]) for i in range(len(events))]  # contiguous: no gap, no repeat
    assert len({e.id for e in events}) == len(events)


async def _suspended(b: Broker, job_id: str) -> bool:
    return (await inspect.get_job(b, job_id)).state == JobState.SUSPENDED


async def test_a_cancel_through_the_api_names_the_client_in_the_custody_history(
    api: httpx.AsyncClient, broker: Broker
) -> None:
    enq = await submit(broker, "t.approval", [None])
    r = await api.post(f"/tasks/{enq.task_id}/cancel")
    assert r.status_code == 200
    last = (await job_history(broker, enq.job_ids[0]))[-1]
    assert last.to == "cancelled" and (last.reason or "").startswith("cancelled by ")
    assert "through the API (hiveq:" in (last.reason or "")
