"""Operator commands (tables and --json) through the real typer app, in process, on a real server."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from typer.testing import CliRunner, Result

from hiveq.cli.main import app
from hiveq.queue.keys import Keyspace
from hiveq.queue.purge import purge_namespace
from hiveq.server import ServerProcess

SEED = "Build a user authentication system"


@dataclass
class Cli:
    """The typer app bound to one server and a fresh namespace (app name `name`)."""

    url: str
    name: str
    runner: CliRunner = field(default_factory=CliRunner)

    def __call__(self, *args: str, input_text: str | None = None, env: str = "test") -> Result:
        environ = {"REDIS_URL": self.url, "HIVEQ_APP": self.name, "HIVEQ_ENV": env, "HIVEQ_DEBUG": None}
        return self.runner.invoke(app, list(args), input=input_text, env=environ)


@pytest.fixture
async def cli(server: ServerProcess) -> AsyncIterator[Cli]:
    c = Cli(server.url, "a" + secrets.token_hex(4))
    yield c
    r = Redis.from_url(server.url, decode_responses=True)
    for env in ("test", "other"):
        await purge_namespace(r, Keyspace(c.name, env))
    await r.aclose()


def as_json(res: Result) -> Any:
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_submit_prints_the_plan_and_task_tasks_queues_show_it(cli: Cli) -> None:
    res = cli("submit", SEED, "--priority", "2")
    assert res.exit_code == 0, res.output
    task_id = res.stdout.split()[1]
    for sub, dep in (("design", "-"), ("implement", "design"), ("test", "implement"), ("document", "test")):
        assert any(sub in line and line.rstrip(" │").endswith(dep) for line in res.stdout.splitlines())
    view = as_json(cli("task", task_id, "--json"))
    assert view["status"] == "queued" and view["priority"] == 2
    assert [(s["id"], s["state"]) for s in view["subtasks"]] == [
        ("design", "waiting"),
        ("implement", "blocked"),
        ("test", "blocked"),
        ("document", "blocked"),
    ]
    table = cli("task", task_id).stdout
    assert f"task {task_id} queued 0/4" in table and "waiting" in table
    listed = as_json(cli("tasks", "--json"))
    assert listed["total"] == 1 and listed["items"][0]["id"] == task_id
    assert task_id in cli("tasks").stdout
    queues = as_json(cli("queues", "--json"))
    assert queues["counts"]["waiting"] == 1 and queues["counts"]["blocked"] == 3
    assert [(q["agent"], q["waiting"], q["by_priority"]) for q in queues["queues"]] == [("demo", 1, {"2": 1})]
    assert "p2:1" in cli("queues").stdout


def test_submit_json_gives_the_task_id_and_an_idempotency_key_gives_the_same_task(cli: Cli) -> None:
    first = as_json(cli("submit", SEED, "--idempotency-key", "k-1", "--json"))
    again = as_json(cli("submit", SEED, "--idempotency-key", "k-1", "--json"))
    assert first["duplicate"] is False and again["duplicate"] is True
    assert again["task_id"] == first["task_id"]
    assert [s["id"] for s in first["plan"]["subtasks"]] == ["design", "implement", "test", "document"]


def test_cancel_cancels_unfinished_work_and_refuses_a_finished_task_with_exit_4(cli: Cli) -> None:
    task_id = as_json(cli("submit", SEED, "--json"))["task_id"]
    res = cli("cancel", task_id)
    assert res.exit_code == 0 and "cancelled 4 unfinished subtask(s)" in res.stdout
    assert as_json(cli("task", task_id, "--json"))["status"] == "cancelled"
    again = cli("cancel", task_id)
    assert again.exit_code == 4 and "already finished" in again.stderr


def test_unknown_ids_exit_3_with_one_line(cli: Cli) -> None:
    for args in (("task", "tnope"), ("trace", "tnope.x"), ("cancel", "tnope"), ("dlq", "retry", "tnope.x")):
        res = cli(*args)
        assert res.exit_code == 3, (args, res.output)
        assert res.stderr.count("\n") == 1 and "unknown" in res.stderr and "'tnope" in res.stderr


def test_workers_and_dlq_are_empty_tables_on_a_fresh_namespace(cli: Cli) -> None:
    assert as_json(cli("workers", "--json")) == {"workers": []}
    assert "0 workers in" in cli("workers").stdout
    assert as_json(cli("dlq", "list", "--json")) == {"items": []}
    assert "0 dead letters in" in cli("dlq", "list").stdout


def test_purge_asks_first_and_removes_only_this_namespace(cli: Cli) -> None:
    assert cli("submit", SEED).exit_code == 0
    assert cli("submit", SEED, env="other").exit_code == 0
    refused = cli("purge", "--namespace", input_text="n\n")
    assert refused.exit_code == 1 and "nothing deleted" in refused.stderr
    assert as_json(cli("tasks", "--json"))["total"] == 1
    done = cli("purge", "--namespace", input_text="y\n")
    assert done.exit_code == 0 and "removed" in done.stdout
    assert as_json(cli("tasks", "--json"))["total"] == 0
    assert as_json(cli("tasks", "--json", env="other"))["total"] == 1
    assert cli("purge").exit_code == 2  # says what to purge instead of guessing


def test_watch_of_a_finished_task_prints_its_outcome_and_exits_1_unless_it_succeeded(cli: Cli) -> None:
    task_id = as_json(cli("submit", SEED, "--json"))["task_id"]
    assert cli("cancel", task_id).exit_code == 0
    res = cli("watch", task_id)
    assert res.exit_code == 1, res.output
    assert f"task {task_id} cancelled" in res.stdout.splitlines()[-1]
    assert "Who ran what" in res.stdout
    view = cli("watch", task_id, "--json")
    assert view.exit_code == 1 and json.loads(view.stdout)["status"] == "cancelled"


def test_read_only_commands_write_nothing_to_redis(cli: Cli) -> None:
    for args in (("tasks",), ("queues",), ("workers",), ("dlq", "list"), ("task", "tnope"), ("trace", "t.x")):
        assert cli(*args).exit_code in (0, 3), args
    with SyncRedis.from_url(cli.url, decode_responses=True) as r:
        assert list(r.scan_iter(match=Keyspace(cli.name, "test").prefix + "*")) == []
