"""Waiting on work owned by another task or process: poll a condition against a deadline.

One helper for the whole suite; use it only where no event can be awaited (another process's
progress, a state in Redis written by a worker).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def until(
    check: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition", interval_s: float = 0.01
) -> Any:
    """Return the first truthy value of `check()` (sync or async); fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(interval_s)


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """The same for synchronous tests that drive subprocesses."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)
