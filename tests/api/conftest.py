"""API fixtures: the app on the shared Valkey in a fresh namespace, called in process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from hiveq.api.app import create_app
from hiveq.queue.broker import Broker
from tests.api.live import asgi_client


@pytest.fixture
async def api(broker: Broker) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(broker.settings)) as client:
        yield client
