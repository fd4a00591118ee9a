"""Operator commands (tables and --json) through the real typer app, in process, on a real server."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from typer.testing import CliRunner, Result

from hiveq.cli.main import app
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import enqueue
from hiveq.queue.fetch import claim
from hiveq.queue.keys import Keyspace
from hiveq.queue.purge import purge_namespace
from hiveq.queue.retry import Failure, fail
from hiveq.server import ServerProcess
from hiveq.settings import Settings
from tests.cli.conftest import base_env

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


def dead_letters(cli: Cli, n: int) -> list[str]:
    """`n` dead-lettered jobs in the CLI's namespace (claimed, then failed fatally)."""

    async def go() -> list[str]:
        b = await Broker.connect(Settings(redis_url=cli.url, app=cli.name, env="test"), role="test")
        try:
            subs = [SubtaskSpec(id=f"s{i}", agent="demo") for i in range(n)]
            await enqueue(b, [TaskSubmission(description="doomed", subtasks=subs)])
            jobs = await claim(b, "w-test", ["demo"], n)
            await fail(b, [Failure(j.lease, "boom", fatal=True) for j in jobs])
            return sorted(j.id for j in jobs)
        finally:
            await b.close()

    return asyncio.run(go())


def test_dlq_retry_and_purge_answer_json_in_the_api_shape(cli: Cli) -> None:
    first, second, third = dead_letters(cli, 3)
    assert as_json(cli("dlq", "retry", first, "--json")) == {"job_id": first, "state": "waiting"}
    assert as_json(cli("dlq", "purge", second, "--json")) == {
        "discarded": 1,
        "items": [{"job_id": second, "state": "cancelled"}],
    }
    # Confirmed at the prompt, in a real process: the question goes to stderr, stdout stays JSON.
    everything = subprocess.run(
        [sys.executable, "-m", "hiveq", "dlq", "purge", "--json"],
        input="y\n",
        env=base_env(REDIS_URL=cli.url, HIVEQ_APP=cli.name, HIVEQ_ENV="test"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert everything.returncode == 0, everything.stderr
    assert json.loads(everything.stdout) == {
        "discarded": 1,
        "items": [{"job_id": third, "state": "cancelled"}],
    }
    assert "Discard every dead letter" in everything.stderr
    assert as_json(cli("dlq", "list", "--json")) == {"items": []}


def test_purge_json_reports_the_keys_removed(cli: Cli) -> None:
    assert cli("submit", SEED).exit_code == 0
    res = as_json(cli("purge", "--namespace", "--yes", "--json"))
    assert res["namespace"] == f"{cli.name}:test" and res["removed_keys"] > 0
    assert as_json(cli("tasks", "--json"))["total"] == 0
