"""The HTTP API: `create_app(settings)` builds the FastAPI app; the lifespan opens the brokers and
keeps them on `app.state` (no globals), so several apps can live in one process (tests do)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from hiveq.api import docs, errors, jobs, limits, schedules, stream, system, tasks
from hiveq.api.deps import require_token
from hiveq.api.doctor import router as doctor_router
from hiveq.api.guard import BrowserGuard
from hiveq.api.metrics import Metrics
from hiveq.archive.read import Archive
from hiveq.contract.errors import RedisFull, RedisUnavailable, WrongTypeError
from hiveq.contract.protocol import VERSION
from hiveq.dashboard.app import mount as mount_dashboard
from hiveq.diagnose.watch import watch_forever
from hiveq.queue import epoch
from hiveq.queue.broker import Broker
from hiveq.schedule.fire import fire_forever
from hiveq.settings import Settings

log = logging.getLogger("hiveq.api")
# Short enough that a stalled Redis turns into a 503 within two seconds.
SOCKET_TIMEOUT_S = 1.5
# Longer than a blocking XREAD of the event streams (stream.BLOCK_MS) plus margin.
STREAM_SOCKET_TIMEOUT_S = 10.0
WATCH_STOP_S = 2.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    b = await Broker.connect(settings, role="api", check_namespace=False, socket_timeout=SOCKET_TIMEOUT_S)
    sb = await Broker.connect(
        settings, role="api-stream", check_namespace=False, socket_timeout=STREAM_SOCKET_TIMEOUT_S
    )
    app.state.broker, app.state.stream_broker = b, sb
    app.state.archive = Archive.of(settings)
    app.state.namespace_claimed = False
    app.state.epoch = guard = epoch.EpochGuard(b, b.client_name)
    try:
        await b.claim_namespace()
        await guard.remember()
        app.state.namespace_claimed = True
    except (RedisUnavailable, WrongTypeError, RedisFull) as exc:  # serve errors (and /health) until fixed
        log.warning("%s", exc)
    # The namespace's epoch, checked every second: a Redis that lost the data is reported at once.
    epochs = asyncio.create_task(
        epoch.watch_forever(guard, log, ready=lambda: bool(app.state.namespace_claimed))
    )
    # The conservation watch runs in the API process too (one process of the namespace at a time).
    watch = (
        asyncio.create_task(watch_forever(b, ready=lambda: bool(app.state.namespace_claimed), log=log))
        if app.state.watch
        else None
    )
    # Schedules fire from every API and worker process; their scripts make each tick fire once.
    ready = lambda: bool(app.state.namespace_claimed)  # noqa: E731
    fire = asyncio.create_task(fire_forever(b, interval_s=settings.leases.reap_interval_s, ready=ready))
    try:
        yield
    finally:
        epochs.cancel()
        await asyncio.wait({epochs}, timeout=WATCH_STOP_S)
        fire.cancel()
        await asyncio.wait({fire}, timeout=WATCH_STOP_S)
        if watch is not None:
            watch.cancel()
            await asyncio.wait({watch}, timeout=WATCH_STOP_S)  # never holds the shutdown up
        if app.state.archive is not None:
            app.state.archive.close()
        await sb.close()
        await b.close()


def create_app(settings: Settings, *, sse_keepalive_s: float = 15.0, watch: bool = True) -> FastAPI:
    """`watch=False` leaves the conservation watch to the workers (tests that need a theft to
    stay unmarked use it)."""
    app = FastAPI(
        title="hiveq",
        version=VERSION,
        summary="AI-agent work on Redis: no job disappears silently, and you can always see who took it.",
        lifespan=lifespan,
        docs_url=None,  # hiveq/api/docs.py serves them offline, behind the token when one is set
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.sse_keepalive_s = sse_keepalive_s
    app.state.watch = watch
    app.state.metrics = Metrics()
    errors.install(app)
    app.add_middleware(errors.BodyLimit, limit=settings.limits.max_payload_bytes)
    app.add_middleware(BrowserGuard, settings=settings)  # outermost: before any body is read
    routers = (
        tasks.router,
        schedules.router,
        stream.router,
        jobs.router,
        limits.router,
        system.router,
        system.health_router,
    )
    for router in routers:
        app.include_router(router)
    app.include_router(doctor_router, dependencies=[Depends(require_token)])
    tasks.add_request_schema(app)
    docs.mount(app)
    mount_dashboard(app)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (used by `serve(reload=True)`)."""
    return create_app(Settings.from_env())
