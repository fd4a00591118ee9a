"""Operational routes: queue depths, workers, health (no auth) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from hiveq.api.deps import get_broker, require_token
from hiveq.api.schemas import errors
from hiveq.contract.errors import HiveqError
from hiveq.contract.protocol import VERSION
from hiveq.contract.redact import redact
from hiveq.contract.views import Health, Queues, RedisHealth, Throughput, Workers
from hiveq.diagnose.degraded import problems
from hiveq.queue import inspect, registry
from hiveq.queue.broker import Broker

router = APIRouter(tags=["system"], dependencies=[Depends(require_token)])
health_router = APIRouter(tags=["system"])
BrokerDep = Annotated[Broker, Depends(get_broker)]
HEALTH_TIMEOUT_S = 1.5


@router.get("/queues", response_model=Queues, responses=errors(401, 503))
async def queues(b: BrokerDep) -> Queues:
    """Waiting jobs per agent and priority with the oldest job's age, and jobs per place."""
    return Queues(queues=await inspect.queue_depths(b), counts=await inspect.counts(b))


@router.get("/workers", response_model=Workers, responses=errors(401, 503))
async def workers(b: BrokerDep) -> Workers:
    """Registered workers: host, pid, Redis client address, agents, running jobs, last heartbeat."""
    return Workers(workers=await registry.list_workers(b))


@router.get("/throughput", response_model=Throughput, responses=errors(401, 422, 503))
async def throughput(
    b: BrokerDep,
    window_s: Annotated[float, Query(ge=6, le=86400, description="seconds, split into 60 buckets")] = 60,
) -> Throughput:
    """Jobs that succeeded and were dead-lettered in each 60th of the last `window_s` seconds,
    counted in Redis from the jobs' finish times (not from events a client happened to see)."""
    return await inspect.throughput(b, window_s)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"},
        **errors(401, 503),
    },
)
async def metrics(request: Request, b: BrokerDep) -> Response:
    body = await request.app.state.metrics.render(b, request.app.state.epoch.losses)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def probe(b: Broker) -> RedisHealth:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            info = await b.node_command("INFO", "server")
    except TimeoutError:
        return RedisHealth(
            reachable=False,
            error=f"Redis at {redact(b.settings.redis_url)} did not answer within "
            f"{HEALTH_TIMEOUT_S} s; check that it is running and not overloaded",
        )
    except HiveqError as exc:
        return RedisHealth(reachable=False, error=str(exc))
    version = str(info.get("valkey_version") or info.get("redis_version") or "")
    return RedisHealth(
        reachable=True, version=version, latency_ms=round((time.perf_counter() - start) * 1000, 2)
    )


@health_router.get(
    "/health", response_model=Health, responses={503: {"model": Health, "description": "Redis down"}}
)
async def health(request: Request) -> Response:
    """Is Redis reachable, and can it serve this namespace? `degraded` (still 200) lists why not
    (a full Redis refusing writes, a foreign value on one of hiveq's keys) with what to do. Never
    needs a token; answers within a few seconds even when Redis is down."""
    b: Broker = request.app.state.broker
    redis = await probe(b)
    found: list[str] = []
    if redis.reachable:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                found = await problems(b)
        except (TimeoutError, HiveqError):
            found = []  # the probe answered: reachable; a slow extra check is not a verdict
    body = Health(
        status=("degraded" if found else "ok") if redis.reachable else "unavailable",
        version=VERSION,
        redis=redis,
        namespace=b.settings.namespace,
        problems=found,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if redis.reachable else 503)
