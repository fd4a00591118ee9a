"""The seed's exact curl command against a real uvicorn (only the port differs: tests use free ports)."""

from __future__ import annotations

import asyncio
import json
import shlex

from hiveq.queue.broker import Broker
from tests.api.live import live_server

BODY = """'{"description":"Build a user authentication system","priority":1}'"""
SEED = 'curl -X POST http://localhost:8001/tasks -H "Content-Type: application/json" -d ' + BODY
DESIGN_SEED = "curl -X POST localhost:8001/tasks -d " + BODY


async def run_curl(command: str, port: int) -> dict[str, object]:
    args = shlex.split(command.replace(":8001", f":{port}"))
    proc = await asyncio.create_subprocess_exec(
        *args, "-sS", "--max-time", "30", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    body: dict[str, object] = json.loads(out)
    return body


async def test_seed_curl_commands_work_unchanged(broker: Broker) -> None:
    async with live_server(broker.settings) as url:
        port = int(url.rsplit(":", 1)[1])
        for command in (SEED, DESIGN_SEED):  # the form, and the design brief's (no -H)
            body = await run_curl(command, port)
            assert str(body["task_id"]).startswith("t")
            plan = body["plan"]
            assert isinstance(plan, dict)
            assert [s["id"] for s in plan["subtasks"]] == ["design", "implement", "test", "document"]
            assert body["links"] == {
                "self": f"/tasks/{body['task_id']}",
                "events": f"/tasks/{body['task_id']}/events",
                "cancel": f"/tasks/{body['task_id']}/cancel",
            }
