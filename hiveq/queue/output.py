"""output: a running agent's streamed output (output.lua) and reading it back."""

from __future__ import annotations

from hiveq.contract.errors import Code, NotFound
from hiveq.contract.lease import Lease
from hiveq.contract.views import JobOutput
from hiveq.queue.broker import Broker


async def append_output(b: Broker, lease: Lease, text: str) -> Code:
    """Append `text` to the job's output (and one `output` event). STALE_TOKEN: lease lost."""
    res = await b.run(
        "output", [lease.worker_id, lease.job_id, lease.token, text, b.settings.limits.max_output_bytes]
    )
    return Code(int(res[0]))


async def read_output(b: Broker, job_id: str) -> JobOutput:
    """The job's kept output and the event id it is complete up to, read in one MULTI: output
    events after `last_event_id` are not in `text`, those up to it are."""
    pipe = b.redis.pipeline(transaction=True)
    pipe.get(b.keys.job_output(job_id))
    pipe.hmget(b.keys.job(job_id), ["id", "output_bytes", "output_trimmed"])
    pipe.xrevrange(b.keys.events, count=1)
    text, (ident, total, trimmed), last = await b.guard(pipe.execute())
    if not ident:
        raise NotFound("job", job_id)
    return JobOutput(
        job_id=job_id,
        text=text or "",
        bytes=int(total or 0),
        trimmed=int(trimmed or 0),
        last_event_id=str(last[0][0]) if last else "0-0",
    )
