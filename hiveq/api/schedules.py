"""Schedule routes: put (add or replace), list, read, delete (docs/schedules.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from hiveq.api.deps import get_broker, require_token, who_asked
from hiveq.api.schemas import errors
from hiveq.api.tasks import read_model
from hiveq.contract.views import ScheduleList, ScheduleRemoved, ScheduleRequest, ScheduleView
from hiveq.queue.broker import Broker
from hiveq.schedule import store

router = APIRouter(tags=["schedules"], dependencies=[Depends(require_token)])
BrokerDep = Annotated[Broker, Depends(get_broker)]


@router.get("/schedules", response_model=ScheduleList, responses=errors(401, 503))
async def list_schedules(b: BrokerDep) -> ScheduleList:
    """Every schedule, soonest `next_run` first."""
    return ScheduleList(items=await store.list_schedules(b))


@router.get("/schedules/{name}", response_model=ScheduleView, responses=errors(401, 404, 422, 503))
async def get_schedule(name: str, b: BrokerDep) -> ScheduleView:
    return await store.get(b, name)


@router.put(
    "/schedules/{name}",
    response_model=ScheduleView,
    status_code=200,
    responses={
        201: {"model": ScheduleView, "description": "created"},
        **errors(401, 403, 413, 415, 422, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScheduleRequest"}}},
        }
    },
)
async def put_schedule(name: str, request: Request, response: Response, b: BrokerDep) -> ScheduleView:
    """Add a schedule (201) or replace its cron, zone and task (200). Its task is checked as
    `POST /tasks` would check it; each tick submits it once."""
    spec = await read_model(request, ScheduleRequest)
    view, created = await store.put(b, name, spec, who=who_asked(request, b))
    if created:
        response.status_code = 201
    return view


@router.delete("/schedules/{name}", response_model=ScheduleRemoved, responses=errors(401, 403, 404, 422, 503))
async def delete_schedule(name: str, request: Request, b: BrokerDep) -> ScheduleRemoved:
    """Remove a schedule; the tasks it fired are left alone."""
    await store.remove(b, name, who=who_asked(request, b))
    return ScheduleRemoved(name=name)
