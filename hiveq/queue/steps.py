"""steps: a durable agent's stored step results (step_done.lua writes them; a run reads them).

A step is stored only by the worker that holds the job's lease (the script checks the token), so a
stale worker that lost its lease cannot write a result the next run would trust.
"""

from __future__ import annotations

from typing import cast

from hiveq.contract.errors import Code, PayloadTooLarge, ValidationFailed
from hiveq.contract.lease import Lease, LeaseLost
from hiveq.queue.broker import Broker


async def load_steps(b: Broker, job_id: str) -> dict[str, str]:
    """Every stored step of the job: step key -> result JSON text."""
    return cast("dict[str, str]", await b.guard(b.redis.hgetall(b.keys.job_steps(job_id))))


async def step_done(b: Broker, lease: Lease, key: str, result_json: str, elapsed_ms: int) -> None:
    """Store one step's result (kept as it was if this key is stored already).

    Raises LeaseLost (nothing stored), ValidationFailed (HIVEQ_MAX_STEPS) or PayloadTooLarge
    (HIVEQ_MAX_STEPS_BYTES; one result over HIVEQ_MAX_PAYLOAD_BYTES is refused by the caller's
    encoding)."""
    lim = b.settings.limits
    res = await b.run(
        "step_done",
        [
            lease.worker_id,
            lease.job_id,
            lease.token,
            key,
            result_json,
            elapsed_ms,
            lim.max_steps,
            lim.max_steps_bytes,
        ],
    )
    code, why = Code(int(res[0])), str(res[1])
    if code == Code.WRONG_STATE and why == "steps":
        raise ValidationFailed(
            f"step {key!r}",
            f"job {lease.job_id} already stored {lim.max_steps} steps (HIVEQ_MAX_STEPS); use fewer, "
            "larger steps",
        )
    if code == Code.WRONG_STATE:
        size = len(result_json.encode())
        raise PayloadTooLarge(f"the steps of job {lease.job_id} with step {key!r}", size, lim.max_steps_bytes)
    if code != Code.OK:
        raise LeaseLost(lease, f"step {key!r}")
