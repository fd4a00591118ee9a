"""The job page of a durable agent: what a suspended job waits for with a form that sends the
signal, its stored steps, and its streamed output appended live (each line once)."""

from __future__ import annotations

from playwright.async_api import expect

from hiveq.contract.states import JobState
from hiveq.queue import inspect, registry
from hiveq.queue.broker import Broker
from tests.dashboard.conftest import OpenDashboard
from tests.support.agents import GATE
from tests.support.waiting import until
from tests.support.worker import submit, worker_in_process


async def test_the_job_page_sends_the_signal_a_job_waits_for_and_streams_its_output_live(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    async with worker_in_process(broker.settings, ["t.emitter"]):
        await until(lambda: registry.list_workers(broker), 20, "the worker to register")
        [jid] = (await submit(broker, "t.emitter", [{"n": 3}])).job_ids

        async def suspended() -> bool:
            return (await inspect.get_job(broker, jid)).state == JobState.SUSPENDED

        await until(suspended, 20, "the job to wait for `more`")
        d = await open_dashboard()
        page = d.page
        await page.goto(f"{d.base_url}/dashboard/#/jobs/{jid}")
        job_page = page.locator("#job-page")
        await expect(job_page).to_have_attribute("data-state", "suspended")
        await expect(job_page.locator("#job-wait h2")).to_have_text("Waiting for signal more")
        await expect(job_page.locator("#job-why")).to_contain_text("waiting for signal 'more'")
        output = job_page.locator("#job-output-text")
        await expect(output).to_have_text("line 0\nline 1\nline 2\n")
        await expect(job_page.locator('#job-steps tr[data-step="count"]')).to_contain_text("ms")
        await job_page.locator("#signal-data").fill('{"from": "the dashboard"}')
        await job_page.locator("#signal-send").click()
        await expect(job_page).to_have_attribute("data-state", "succeeded")
        await expect(output).to_have_text("".join(f"line {i}\n" for i in range(6)))  # appended, once each
        history = await inspect.get_job(broker, jid)
        assert history.state == JobState.SUCCEEDED and history.output_bytes == 6 * len("line 0\n")


async def test_output_events_are_appended_to_the_open_panel_without_reloading_it(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    async with worker_in_process(broker.settings, ["t.gated"]):
        await until(lambda: registry.list_workers(broker), 20, "the worker to register")
        [jid] = (await submit(broker, "t.gated", [None])).job_ids

        async def first_line() -> bool:
            return (await inspect.get_job(broker, jid)).output_bytes > 0

        await until(first_line, 20, "the first line of output")
        d = await open_dashboard()
        page = d.page
        await page.goto(f"{d.base_url}/dashboard/#/jobs/{jid}")
        output = page.locator("#job-output-text")
        await expect(output).to_have_text("line 0\n")
        await output.evaluate("e => { e.dataset.marked = 'yes'; }")  # gone if the panel were rebuilt
        GATE.set()
        await expect(output).to_have_text("line 0\nline 1\n")
        await expect(page.locator("#job-output-text[data-marked=yes]")).to_have_count(1)
        GATE.set()
        await expect(output).to_have_text("line 0\nline 1\nline 2\n")
        GATE.set()
        await expect(page.locator("#job-page")).to_have_attribute("data-state", "succeeded")
