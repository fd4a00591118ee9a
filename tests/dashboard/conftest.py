"""Dashboard harness: a real uvicorn serving `create_app` on a free port, and Debian's Chromium.

The browser is launched once per module (it is the slow part); each test gets a fresh context,
so localStorage (the saved token) never leaks between tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright, expect

from hiveq.api.app import create_app
from hiveq.queue.broker import Broker
from hiveq.server import free_port
from hiveq.settings import Settings
from tests.support.waiting import until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UI_TIMEOUT_MS = 20_000  # generous: a 2-core machine shared with other test runs
expect.set_options(timeout=UI_TIMEOUT_MS)


@contextlib.asynccontextmanager
async def running_api(settings: Settings, port: int | None = None) -> AsyncIterator[str]:
    """Serve `create_app(settings)` with real uvicorn (on a free port unless given); yields the base URL.

    Open event streams never end by themselves, so shutdown cuts them after a short grace period.
    """
    port = port or free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done(), 20, "uvicorn to start")
    if task.done():
        task.result()  # surfaces the startup error
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


@dataclass
class Dashboard:
    page: Page
    base_url: str
    settings: Settings


OpenDashboard = Callable[..., Awaitable[Dashboard]]


@pytest.fixture
async def open_dashboard(browser: Browser, broker: Broker) -> AsyncIterator[OpenDashboard]:
    """Start the API on the test's namespace (settings overridable) and open the dashboard page.

    Teardown closes the page first, so its event stream is gone before the server stops.
    """
    errors: list[str] = []
    async with contextlib.AsyncExitStack() as stack:

        async def open_(**overrides: object) -> Dashboard:
            settings = broker.settings.with_(**overrides) if overrides else broker.settings
            base = await stack.enter_async_context(running_api(settings))
            context = await browser.new_context(viewport={"width": 1440, "height": 1000})
            stack.push_async_callback(context.close)
            context.set_default_timeout(UI_TIMEOUT_MS)
            pg = await context.new_page()
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            await pg.goto(f"{base}/dashboard/")
            return Dashboard(pg, base, settings)

        yield open_
    assert not errors, f"JavaScript errors on the dashboard: {errors}"
