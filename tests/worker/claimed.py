"""Claimed jobs made in memory, for the worker's pure parts (outbox, execute) that never read Redis."""

from __future__ import annotations

from typing import Any

from hiveq.contract.models import ClaimedJob


def claimed(sub: str = "s1", *, worker: str = "w-unit", **fields: Any) -> ClaimedJob:
    """A job as a claim by `worker` would hand it out (task t00…01, token derived from the id)."""
    values: dict[str, Any] = {
        "id": f"t0000000000000001.{sub}",
        "task_id": "t0000000000000001",
        "subtask_id": sub,
        "agent": "unit",
        "priority": 5,
        "attempt": 1,
        "max_attempts": 3,
        "timeout_s": 10.0,
        "token": f"tok-{sub}",
        "worker_id": worker,
        "lease_deadline_ms": 0,
    }
    values.update(fields)
    return ClaimedJob(**values)
