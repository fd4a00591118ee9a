"""The demo agent: deterministic, offline, honest, with progress events."""

from __future__ import annotations

from hiveq.agents.demo import artefact
from hiveq.agents.registry import AgentContext
from hiveq.contract.states import JobState
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.events import job_history
from tests.support.waiting import until
from tests.support.worker import submit, worker_in_process


def test_demo_artefact_is_deterministic_and_says_it_is_a_demo() -> None:
    def ctx() -> AgentContext:
        return AgentContext(
            job_id="t.design",
            task_id="t",
            subtask_id="design",
            agent="demo",
            input={
                "task": "Build a user authentication system",
                "step": "design",
                "instructions": "Design the solution",
            },
            dependency_results={"plan": {"x": 1}},
        )

    a, b = artefact(ctx()), artefact(ctx())
    assert a == b
    assert a["demo"] is True and "no model was called" in a["note"]
    assert a["kind"] == "design notes" and "user authentication" in a["artefact"]
    assert a["uses"] == ["plan"]


async def test_demo_agent_reports_progress_then_its_artefact(broker: Broker) -> None:
    settings = broker.settings.with_(demo_delay_s=0.15)
    inp = {"task": "Write a report", "step": "write", "instructions": "Write it"}
    enq = await submit(broker, "demo", [inp])
    async with worker_in_process(settings, ["demo"]):

        async def done() -> bool:
            return (await inspect.get_job(broker, enq.job_ids[0])).state == JobState.SUCCEEDED

        await until(done, 15, "the demo job")
    job = await inspect.get_job(broker, enq.job_ids[0])
    assert job.result["demo"] is True and job.result["kind"] == "report draft"
    progress = [e.reason for e in await job_history(broker, job.id) if e.type == "progress"]
    assert progress == ["reading the subtask", "drafting", "checking against the request"]
