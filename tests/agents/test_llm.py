"""The llm agent against a local OpenAI-compatible stand-in (a real HTTP server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hiveq.contract.models import JobRecord
from hiveq.contract.states import JobState
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.settings import LLMSettings, Settings
from tests.support.fake_openai import FakeOpenAI, Reply, fake_openai
from tests.support.waiting import until
from tests.support.worker import submit, worker_in_process


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with fake_openai() as f:
        yield f


def with_llm(settings: Settings, fake: FakeOpenAI, **kw: object) -> Settings:
    base: dict[str, object] = {
        "base_url": fake.base_url,
        "api_key": "test-key",
        "model": "fake-1",
        "max_retries": 2,
        "timeout_s": 5.0,
    }
    return settings.with_(llm=LLMSettings(**{**base, **kw}), backoff_base_s=0.05)  # type: ignore[arg-type]


async def run_jobs(
    broker: Broker, settings: Settings, inputs: list[object], final: JobState, **spec: object
) -> list[JobRecord]:
    enq = await submit(broker, "llm", inputs, **spec)
    async with worker_in_process(settings, ["llm"], concurrency=8):

        async def finished() -> bool:
            return all(j.state == final for j in await inspect.get_jobs(broker, enq.job_ids))

        await until(finished, 30, f"llm jobs to be {final}")
    return list(await inspect.get_jobs(broker, enq.job_ids))


async def test_llm_agent_returns_text_and_token_usage(broker: Broker, fake: FakeOpenAI) -> None:
    fake.script(Reply(text="a plan in three steps", usage=(20, 5)))
    settings = with_llm(broker.settings, fake)
    [job] = await run_jobs(broker, settings, [{"prompt": "Plan it"}], JobState.SUCCEEDED)
    assert job.result == {
        "text": "a plan in three steps",
        "model": "fake-1",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }
    req = fake.requests[0]
    assert req.path == "/v1/chat/completions" and req.headers["authorization"] == "Bearer test-key"
    assert "Your step: Plan it" in req.body["messages"][-1]["content"]


async def test_llm_agent_honours_retry_after_on_429_and_retries_a_500(
    broker: Broker, fake: FakeOpenAI
) -> None:
    fake.script(Reply(status=429, headers={"Retry-After": "1"}), Reply(status=500), Reply(text="done"))
    [job] = await run_jobs(broker, with_llm(broker.settings, fake), ["go"], JobState.SUCCEEDED)
    assert job.result["text"] == "done"
    t = [r.at for r in fake.requests]
    assert len(t) == 3
    assert t[1] - t[0] >= 0.95  # honoured Retry-After: 1 (the SDK's own backoff starts at 0.5 s)
    assert job.attempts == 1  # retried inside the call, not re-queued


async def test_llm_agent_times_out_and_the_job_is_retried(broker: Broker, fake: FakeOpenAI) -> None:
    fake.script(Reply(delay_s=3.0, text="too late"), Reply(text="second try"))
    settings = with_llm(broker.settings, fake, timeout_s=0.5, max_retries=0)
    [job] = await run_jobs(broker, settings, ["slow"], JobState.SUCCEEDED, max_attempts=2)
    assert job.result["text"] == "second try"
    assert job.failures == 1 and "did not answer within HIVEQ_LLM_TIMEOUT" in (job.error or "")


async def test_llm_agent_without_endpoint_fails_fatally_naming_the_setting(broker: Broker) -> None:
    settings = broker.settings.with_(llm=LLMSettings(base_url=None, api_key=None))
    [job] = await run_jobs(broker, settings, ["x"], JobState.DEAD, max_attempts=3)
    assert job.attempts == 1 and "HIVEQ_LLM_BASE_URL" in (job.reason or "")


async def test_llm_agent_refused_key_is_fatal(broker: Broker, fake: FakeOpenAI) -> None:
    fake.script(Reply(status=401))
    [job] = await run_jobs(broker, with_llm(broker.settings, fake), ["x"], JobState.DEAD, max_attempts=3)
    assert "HIVEQ_LLM_API_KEY" in (job.reason or "") and len(fake.requests) == 1


async def test_llm_calls_per_worker_are_bounded(broker: Broker, fake: FakeOpenAI) -> None:
    fake.script(*[Reply(delay_s=0.3) for _ in range(6)])
    settings = with_llm(broker.settings, fake, max_concurrency=2)
    jobs = await run_jobs(broker, settings, [f"p{i}" for i in range(6)], JobState.SUCCEEDED)
    assert len(jobs) == 6 and len(fake.requests) == 6
    assert fake.max_in_flight == 2
