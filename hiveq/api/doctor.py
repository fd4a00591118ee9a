"""Doctor routes: `GET /doctor` (every check, with verdict, evidence and fix) and
`GET /jobs/{job_id}/why` (why one job is where it is, in plain words)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from hiveq.api.deps import get_broker
from hiveq.api.schemas import errors
from hiveq.diagnose.doctor import run_doctor
from hiveq.diagnose.monitor import MAX_SAMPLE_S
from hiveq.diagnose.report import DoctorReport
from hiveq.diagnose.why import Why, why
from hiveq.queue.broker import Broker

router = APIRouter(tags=["diagnose"])


@router.get("/doctor", response_model=DoctorReport, responses=errors(401, 422))
async def doctor(
    request: Request,
    sample: Annotated[float, Query(ge=0, le=MAX_SAMPLE_S, description="seconds of MONITOR sample")] = 0,
    remember: Annotated[
        bool,
        Query(description="keep the dead-letter count for the next run's growth (false: a live view)"),
    ] = True,
) -> DoctorReport:
    """Run the doctor: `{ok, namespace, checks: [{name, verdict, summary, evidence, fix}]}`.

    Always 200 when the API itself works: an unreachable Redis is a failing `connection` check in
    the report (read `ok`), so the report can say what is wrong instead of a bare 503.
    """
    b: Broker = request.app.state.broker
    return await run_doctor(b, sample_s=sample, remember=remember)


@router.get("/jobs/{job_id}/why", response_model=Why, responses=errors(401, 404, 503))
async def job_why(job_id: str, b: Annotated[Broker, Depends(get_broker)]) -> Why:
    """Why this job is not running yet (or how it ended): dependencies, workers, queue position,
    retry schedule, lease, dead-letter reason."""
    return await why(b, job_id)
