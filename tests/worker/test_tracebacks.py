"""An agent's traceback is kept with its job: from the agent's own frames, with no secret in it."""

from __future__ import annotations

from hiveq.contract.redact import MASK, redact
from hiveq.contract.states import JobState
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.settings import Settings
from tests.support.waiting import until
from tests.support.worker import submit, worker_in_process

TOKEN, LLM_KEY = "tok-SECRET-1", "sk-SECRET-2"


def test_every_secret_a_worker_holds_is_masked_in_text() -> None:
    s = Settings(redis_url="redis://user:redis-pw-3@h:6379/0?password=query-pw-4").with_(
        api_tokens=(TOKEN,), api_key=LLM_KEY
    )
    text = f"{TOKEN} {LLM_KEY} redis-pw-3 query-pw-4 mysql://root:hunter2@db:3306/x plain://host/x"
    out = redact(text, s.secrets)
    for secret in (TOKEN, LLM_KEY, "redis-pw-3", "query-pw-4", "hunter2"):
        assert secret not in out
    assert out.count(MASK) == 5 and "mysql://root:***@db:3306/x" in out and "plain://host/x" in out


async def test_a_raising_agent_leaves_its_own_frames_and_no_secret_in_the_job(broker: Broker) -> None:
    settings = broker.settings.with_(api_tokens=(TOKEN,), api_key=LLM_KEY)
    leaky = await submit(broker, "t.leaky", [None], max_attempts=1)
    sync = await submit(broker, "t.sync_raise", [None], max_attempts=2, timeout_s=30)
    ids = leaky.job_ids + sync.job_ids
    async with worker_in_process(settings.with_(backoff_base_s=0.01), ["t.leaky", "t.sync_raise"]):

        async def dead() -> bool:
            return all(j.state == JobState.DEAD for j in await inspect.get_jobs(broker, ids))

        await until(dead, 20, "both jobs to be dead-lettered")
    job = await inspect.get_job(broker, leaky.job_ids[0])
    [tb] = job.tracebacks
    lines = tb.traceback.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "tests/support/agents.py" in lines[1] and "in leaky" in lines[1]  # the agent's frame first
    assert any("in _connect" in line for line in lines)
    assert lines[-1].startswith("ConnectionError: cannot reach")
    assert "hiveq/worker" not in tb.traceback
    everything = tb.model_dump_json() + job.model_dump_json()
    for secret in (TOKEN, LLM_KEY, "dbpw"):
        assert secret not in everything
    assert "postgres://app:***@db/x" in tb.traceback and "postgres://app:***@db/x" in (job.error or "")
    assert (tb.attempt, tb.failure, tb.error) == (1, 1, job.error)

    sync_job = await inspect.get_job(broker, sync.job_ids[0])
    assert [t.failure for t in sync_job.tracebacks] == [1, 2]
    first = sync_job.tracebacks[0].traceback.splitlines()
    assert "in sync_raise" in first[1] and "concurrent/futures" not in sync_job.tracebacks[0].traceback
    assert first[-1] == "ValueError: sync agent failed on attempt 1"
