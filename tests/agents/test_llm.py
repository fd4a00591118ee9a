"""The llm agent against a local OpenAI-compatible stand-in (a real HTTP server)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hiveq.contract.models import JobRecord
from hiveq.contract.states import JobState
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_task
from hiveq.queue.events import job_history
from hiveq.queue.output import read_output
from hiveq.settings import LLMSettings, Settings
from tests.support.fake_openai import FakeOpenAI, Reply, fake_openai
from tests.support.waiting import until
from tests.support.worker import spawn_worker, stop_proc, submit, worker_in_process


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


async def test_llm_agent_streams_its_tokens_into_the_job_output(broker: Broker, fake: FakeOpenAI) -> None:
    fake.script(Reply(text="one two three", usage=(9, 3)))
    [job] = await run_jobs(broker, with_llm(broker.settings, fake), ["count"], JobState.SUCCEEDED)
    assert job.result == {
        "text": "one two three",
        "model": "fake-1",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
    body = fake.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (await read_output(broker, job.id)).text == "one two three"
    steps = [e for e in await job_history(broker, job.id) if e.type == "step"]
    assert [e.reason for e in steps] == ["completion"]  # a redelivered job does not pay again


@pytest.mark.slow
async def test_a_cancel_aborts_a_slow_streaming_call_within_a_second(
    broker: Broker, fake: FakeOpenAI
) -> None:
    fake.script(Reply(text=" ".join(f"t{i}" for i in range(2000)), stream_delay_s=0.05))  # 100 s of tokens
    enq = await submit(broker, "llm", ["a long answer"])
    [jid] = enq.job_ids
    env = {"HIVEQ_LLM_BASE_URL": fake.base_url, "HIVEQ_LLM_API_KEY": "k", "HIVEQ_LLM_MAX_RETRIES": "0"}
    proc = spawn_worker(broker.settings, "llm", concurrency=4, processes=1, log=None, **env)
    try:

        async def streaming() -> bool:
            return (await inspect.get_job(broker, jid)).output_bytes > 0

        await until(streaming, 30, "tokens to stream into the job's output")
        cancelled_at = time.monotonic()
        await cancel_task(broker, enq.task_id, reason="cancelled by a test")
        await until(lambda: fake.disconnects, 5, "the worker to hang up on the model")
        took = fake.disconnects[0] - cancelled_at
    finally:
        assert stop_proc(proc) == 0
    print(f"\ncancel -> the model's HTTP request aborted after {took * 1000:.0f} ms")
    assert took < 1.0
    assert fake.chunks_sent < 1000  # it did not stream on to the end
    assert (await inspect.get_job(broker, jid)).state == JobState.CANCELLED


async def test_a_429_after_the_sdks_retries_cools_the_model_key_and_the_job_runs_again_unpenalised(
    broker: Broker, fake: FakeOpenAI
) -> None:
    fake.script(Reply(status=429, headers={"Retry-After": "1"}), Reply(text="done", usage=(30, 10)))
    settings = with_llm(broker.settings, fake, max_retries=0)
    [job] = await run_jobs(broker, settings, ["go"], JobState.SUCCEEDED)
    assert job.result["text"] == "done" and job.attempts == 1 and job.failures == 0
    t = [r.at for r in fake.requests]
    assert len(t) == 2 and t[1] - t[0] >= 0.95  # the key cooled down for Retry-After
    counters = broker.keys.limit_counters("model:fake-1")
    assert await broker.redis.hget(counters, "cool")  # paused for every worker, not this one only
    assert job.estimate_tokens is None  # enqueued directly: no estimate; its usage still counts
    assert await broker.redis.hget(counters, "bt") == "40"
