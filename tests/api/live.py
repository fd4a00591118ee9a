"""Helpers for API tests: the app in process (ASGI transport), and a real uvicorn on a free port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from hiveq.api.app import create_app
from hiveq.server import free_port
from hiveq.settings import Settings


@asynccontextmanager
async def asgi_client(app: FastAPI, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, called in process (no network)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", headers=headers
        ) as client,
    ):
        yield client


@asynccontextmanager
async def live_server(settings: Settings, **app_kw: Any) -> AsyncIterator[str]:
    """A real uvicorn serving `create_app(settings)` on a free port in this event loop; yields its URL.

    Needed for streaming (SSE): the ASGI transport buffers whole responses."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, **app_kw), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # Ctrl-C stays pytest's
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
