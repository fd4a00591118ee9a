"""output.lua: a running agent's output is appended under the job (its last
HIVEQ_MAX_OUTPUT_BYTES kept, the front trimmed behind a marker) with one `output` event per
call; only the lease holder writes; a reader gets the output and the event id it is complete to."""

from __future__ import annotations

from hiveq.contract.errors import Code
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_job
from hiveq.queue.events import job_history, read_events
from hiveq.queue.fetch import claim
from hiveq.queue.inspect import get_job
from hiveq.queue.output import append_output, read_output
from tests.queue.helpers import enqueue_task, st, variant


async def test_output_is_appended_and_announced_with_its_offset(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    start = (await read_output(b, job.id)).last_event_id
    assert await append_output(b, job.lease, "héllo ") == Code.OK
    assert await append_output(b, job.lease, "world\n") == Code.OK
    kept = await read_output(b, job.id)
    assert (kept.text, kept.bytes, kept.trimmed) == ("héllo world\n", 13, 0)
    _, events = await read_events(b, start)
    outs = [e for e in events if e.type == "output"]
    assert [(e.data["text"], e.data["at"], e.worker) for e in outs] == [
        ("héllo ", 0, "w"),
        ("world\n", 7, "w"),
    ]
    assert kept.last_event_id == outs[-1].id
    assert (await get_job(b, job.id)).output_bytes == 13
    assert all(e.type != "output" for e in await job_history(b, job.id))  # not custody


async def test_past_the_bound_the_front_is_trimmed_behind_a_marker_at_a_character(any_broker: Broker) -> None:
    b = variant(any_broker, max_output_bytes=1024)
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    for i in range(40):
        await append_output(b, job.lease, f"{i:02d}:" + "é" * 20 + "\n")  # 44 bytes, 2-byte characters
    kept = await read_output(b, job.id)
    assert kept.bytes == 40 * 44
    raw = str(await b.redis.get(b.keys.job_output(job.id)))
    assert len(raw.encode()) <= 1024
    marker, _, tail = kept.text.partition("\n")
    assert marker == f"[hiveq: {kept.trimmed} earlier bytes of output trimmed]"
    assert kept.trimmed + len(tail.encode()) == kept.bytes
    assert "\ufffd" not in tail and tail.endswith("39:" + "é" * 20 + "\n")


async def test_a_worker_without_the_lease_writes_no_output(any_broker: Broker) -> None:
    b = any_broker
    await enqueue_task(b, st("x"))
    [job] = await claim(b, "w", ["a"], 1)
    await cancel_job(b, job.id)
    assert await append_output(b, job.lease, "late") == Code.STALE_TOKEN
    assert (await read_output(b, job.id)).text == ""
