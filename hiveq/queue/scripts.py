"""Registers the Lua scripts (each built by `assemble.script_source`) on a client and runs them.

Scripts are sent once and then called by SHA (redis-py reloads them after a server restart).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from hiveq.queue.assemble import script_keys, script_source

__all__ = ["SCRIPT_NAMES", "Scripts", "script_keys", "script_source"]

SCRIPT_NAMES = (
    "claim_namespace",
    "enqueue",
    "claim",
    "heartbeat",
    "progress",
    "complete",
    "fail",
    "release",
    "quarantine",
    "cancel",
    "retry_dead",
    "discard_dead",
    "promote_due",
    "reap_expired",
    "expire_finished",
    "archive_lease",
    "mark_archived",
    "trim_events",
    "snapshot_tasks",
    "register_worker",
    "deregister_worker",
    "step_done",
    "spawn",
    "suspend",
    "signal",
    "output",
    "set_limit",
    "report_usage",
    "watch_tick",
    "find_vanished",
    "mark_vanished",
    "recover",
    "record_loss",
    "set_aside",
    "put_schedule",
    "remove_schedule",
    "due_schedules",
    "schedule_fired",
)


class Scripts:
    """One registered script object per transition, bound to a client."""

    def __init__(self, redis: Redis) -> None:
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(script_source(name)) for name in SCRIPT_NAMES
        }

    def sha(self, name: str) -> str:
        return str(self._scripts[name].sha)

    def source(self, name: str) -> str:
        return str(self._scripts[name].script)

    async def run(self, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        return await self._scripts[name](keys=keys, args=args, client=client)
