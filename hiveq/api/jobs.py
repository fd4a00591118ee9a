"""Job routes: one job, its custody history, its output and signals (durable agents), the
dead-letter queue (list, retry, discard) and vanished jobs (list, recover)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from hiveq.aggregate import problem
from hiveq.api.deps import get_archive, get_broker, require_token, who_asked
from hiveq.api.schemas import errors
from hiveq.api.tasks import json_body
from hiveq.archive import read
from hiveq.archive.read import Archive
from hiveq.contract.models import JobRecord
from hiveq.contract.protocol import SIGNAL_NAME_PATTERN
from hiveq.contract.views import DeadLetters, JobAction, JobHistory, JobOutput, SignalSent, VanishedJobs
from hiveq.queue import inspect, output, retry, suspend, vanish
from hiveq.queue.broker import Broker

router = APIRouter(tags=["jobs"], dependencies=[Depends(require_token)])
BrokerDep = Annotated[Broker, Depends(get_broker)]
ArchiveDep = Annotated[Archive | None, Depends(get_archive)]


@router.get("/jobs/{job_id}", response_model=JobRecord, responses=errors(401, 404, 503))
async def get_job(job_id: str, b: BrokerDep, archive: ArchiveDep) -> JobRecord:
    """The job's record with the agent's traceback of each of its last failed attempts (Redis,
    else the archive)."""
    return await read.get_job(b, archive, job_id)


@router.get("/jobs/{job_id}/history", response_model=JobHistory, responses=errors(401, 404, 503))
async def job_history(job_id: str, b: BrokerDep, archive: ArchiveDep) -> JobHistory:
    """Every custody event of the job: who enqueued, claimed, completed, failed or reaped it."""
    return JobHistory(job_id=job_id, events=await read.job_history(b, archive, job_id))


@router.get("/jobs/{job_id}/output", response_model=JobOutput, responses=errors(401, 404, 503))
async def job_output(job_id: str, b: BrokerDep) -> JobOutput:
    """The job's streamed output as kept (its last HIVEQ_MAX_OUTPUT_BYTES) and the event id it is
    complete up to: follow `/tasks/{task_id}/events?after=<last_event_id>` for the `output`
    events that come after it, nothing repeated or missed."""
    return await output.read_output(b, job_id)


@router.post(
    "/jobs/{job_id}/signals/{name}",
    response_model=SignalSent,
    responses=errors(401, 403, 404, 409, 413, 415, 421, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"description": "the signal's data: any JSON value"}}},
        }
    },
)
async def send_signal(
    job_id: str,
    name: Annotated[str, Path(pattern=SIGNAL_NAME_PATTERN, description="the name the agent waits for")],
    request: Request,
    b: BrokerDep,
) -> SignalSent:
    """Send a signal (the JSON body is its data) to a durable agent. A job waiting for it in
    `ctx.wait_for_signal(name)` resumes now; otherwise the signal is kept until it waits (each
    wait receives exactly one). 409 when the job has finished."""
    data = await json_body(request, empty=None)  # an empty body: null
    return await suspend.signal(b, job_id, name, data, who_asked(request, b))


@router.get("/dlq", response_model=DeadLetters, responses=errors(401, 422, 503))
async def dead_letters(
    b: BrokerDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeadLetters:
    """Dead-lettered and quarantined jobs, newest first, with their reasons and each one's last
    traceback (all kept ones: `GET /jobs/{id}`); `total` counts them all."""
    total, items = await inspect.dead_letters(b, offset, limit)
    return DeadLetters(total=total, items=items)


@router.post("/dlq/{job_id}/retry", response_model=JobAction, responses=errors(401, 404, 409, 503))
async def retry_dead(job_id: str, b: BrokerDep) -> JobAction:
    """Queue a dead letter again with fresh attempts; its cancelled dependents and task revive."""
    await retry.retry_dead(b, job_id, f"api {b.identity}")
    return JobAction(job_id=job_id, state=(await inspect.get_job(b, job_id)).state)


@router.post("/dlq/{job_id}/discard", response_model=JobAction, responses=errors(401, 404, 409, 503))
async def discard_dead(job_id: str, b: BrokerDep) -> JobAction:
    """Mark a dead letter handled: it becomes cancelled and its task's retention clock starts."""
    await retry.discard_dead(b, job_id, f"api {b.identity}")
    return JobAction(job_id=job_id, state=(await inspect.get_job(b, job_id)).state)


@router.get("/vanished", response_model=VanishedJobs, responses=errors(401, 422, 503))
async def vanished(b: BrokerDep, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> VanishedJobs:
    """Jobs that left hiveq's places without a hiveq step, oldest first: the key each left, when
    the conservation watch saw it, and the suspected culprit."""
    total = int(await b.guard(b.redis.zcard(b.keys.vanished)))
    return VanishedJobs(total=total, items=[problem(j) for j in await vanish.list_vanished(b, limit)])


@router.post("/jobs/{job_id}/recover", response_model=JobAction, responses=errors(401, 404, 409, 503))
async def recover(job_id: str, b: BrokerDep) -> JobAction:
    """Put a vanished job back where it belongs (waiting, blocked or delayed, by its
    dependencies), counting one delivery; at the delivery limit it is dead-lettered instead.
    409 when the job is not vanished."""
    return JobAction(job_id=job_id, state=await vanish.recover(b, job_id, f"api {b.identity}"))
