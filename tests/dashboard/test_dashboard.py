"""The dashboard in a real browser against a real API, Redis and worker: live, safe and actionable."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from playwright.async_api import Browser, expect
from redis.asyncio import Redis

from hiveq.contract.states import TERMINAL_TASK_STATUSES, JobState, TaskStatus
from hiveq.queue import fetch, inspect, registry, retry
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion
from hiveq.queue.complete import complete as complete_jobs
from hiveq.queue.retry import Failure
from hiveq.server import ServerProcess, free_port
from hiveq.settings import Settings
from hiveq.worker.main import run_worker
from tests.dashboard.conftest import UI_TIMEOUT_MS, Dashboard, OpenDashboard, running_api
from tests.support.waiting import until

SCREENSHOT = "/tmp/hiveq-dashboard.png"


async def post_task(d: Dashboard, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=d.base_url, headers=headers, timeout=20) as http:
        res = await http.post("/tasks", json=body)
    assert res.status_code == 201, res.text
    data: dict[str, Any] = res.json()
    return data


@contextlib.asynccontextmanager
async def worker_running(settings: Settings, worker_id: str) -> AsyncIterator[None]:
    """The real worker loop in-process, stopped through its stop event."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(settings, agents=["demo"], concurrency=4, stop=stop, worker_id=worker_id)
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def run_jobs_until_done(b: Broker, task_id: str, worker_id: str = "w-engine") -> None:
    """Claim and complete on the engine calls until one task finishes (no worker picks up later work)."""
    await registry.register_worker(b, worker_id, ["demo"], 4)
    async with asyncio.timeout(30):
        while (await inspect.get_task(b, task_id)).status not in TERMINAL_TASK_STATUSES:
            jobs = await fetch.claim(b, worker_id, ["demo"], 4)
            if not jobs:
                await fetch.wait_for_work(b, ["demo"], 0.2)
                continue
            await complete_jobs(b, [Completion(j.lease, {"done": j.subtask_id}) for j in jobs])


async def dead_letter(b: Broker, job_id: str) -> None:
    """Claim one job and fail it fatally, so it lands in the dead-letter set."""
    jobs = await fetch.claim(b, "w-dlq", ["demo"], 1)
    assert [j.id for j in jobs] == [job_id]
    await retry.fail(b, [Failure(jobs[0].lease, "boom: agent crashed", fatal=True)])
    assert (await inspect.get_job(b, job_id)).state == JobState.DEAD


async def test_task_reaches_succeeded_live_with_its_subtask_graph(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    d = await open_dashboard()
    page = d.page
    await expect(page.locator("#live")).to_have_attribute("data-live", "yes")
    await page.evaluate("window.__sameDocument = true")

    made = await post_task(d, {"description": "Build a user authentication system", "priority": 1})
    task_id, subtasks = made["task_id"], made["plan"]["subtasks"]
    assert len(subtasks) >= 2

    row = page.locator(f'#tasks-body tr[data-task-id="{task_id}"]')
    await expect(row).to_have_attribute("data-status", "queued")  # arrived live, over SSE
    await row.click()
    nodes = page.locator("#dag .node")
    await expect(nodes).to_have_count(len(subtasks))
    assert sorted(await nodes.evaluate_all("ns => ns.map(n => n.dataset.subtask)")) == sorted(
        s["id"] for s in subtasks
    )
    edges = sum(len(s["depends_on"]) for s in subtasks)
    await expect(page.locator("#dag path.edge")).to_have_count(edges)
    roots = [s["id"] for s in subtasks if not s["depends_on"]]
    for s in subtasks:
        state = page.locator(f'#dag .node[data-subtask="{s["id"]}"]')
        await expect(state).to_have_attribute("data-state", "waiting" if s["id"] in roots else "blocked")

    async with worker_running(broker.settings.with_(demo_delay_s=0.5), "w-dash"):
        await expect(row).to_have_attribute("data-status", "running")
        await expect(row).to_have_attribute("data-status", "succeeded")
        await expect(page.locator("#detail")).to_have_attribute("data-status", "succeeded")
        await expect(page.locator('#dag .node[data-state="succeeded"]')).to_have_count(len(subtasks))
        await expect(page.locator("#dag path.edge.done")).to_have_count(edges)
        await expect(page.locator("#dag .node[data-subtask] >> text=w-dash")).to_have_count(len(subtasks))
        await expect(page.locator('#workers-body tr[data-worker="w-dash"]')).to_be_visible()
    await expect(page.locator("#rate-detail")).to_contain_text(f"{len(subtasks)} jobs completed")
    assert await page.evaluate("window.__sameDocument") is True  # no reload happened
    await page.screenshot(path=SCREENSHOT, full_page=True)


async def test_dead_letter_is_listed_and_retry_moves_it_back_to_waiting(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    d = await open_dashboard()
    page = d.page
    made = await post_task(
        d,
        {
            "description": "two independent jobs",
            "planner": "explicit",
            "subtasks": [{"id": "a", "agent": "demo"}, {"id": "b", "agent": "demo"}],
        },
    )
    job_a, job_b = (f"{made['task_id']}.{s}" for s in ("a", "b"))
    await dead_letter(broker, job_a)
    await dead_letter(broker, job_b)

    item_a = page.locator(f'#dlq-list .dlq-item[data-job="{job_a}"]')
    item_b = page.locator(f'#dlq-list .dlq-item[data-job="{job_b}"]')
    await expect(item_a).to_contain_text("boom: agent crashed")
    await expect(item_b).to_be_visible()

    await item_a.locator('button[data-action="retry"]').click()
    await expect(item_a).to_have_count(0)
    assert (await inspect.get_job(broker, job_a)).state == JobState.WAITING

    discard = item_b.locator('button[data-action="discard"]')
    await discard.click()
    await expect(discard).to_have_text("Confirm discard")  # one click never discards
    assert (await inspect.get_job(broker, job_b)).state == JobState.DEAD
    await discard.click()
    await expect(item_b).to_have_count(0)
    assert (await inspect.get_job(broker, job_b)).state == JobState.CANCELLED


async def test_html_in_a_description_is_shown_as_literal_text(open_dashboard: OpenDashboard) -> None:
    d = await open_dashboard()
    page = d.page
    evil = '<img src=x onerror="window.__pwned=1"><b>bold</b> & <script>window.__pwned=2</script>'
    await page.fill("#submit-description", evil)
    await page.select_option("#submit-priority", "2")
    await page.click("#submit-button")
    await expect(page.locator("#submit-msg")).to_contain_text("queued")

    row = page.locator("#tasks-body tr[data-task-id]").first
    await expect(row.locator(".desc-text")).to_have_text(evil)
    await expect(page.locator(".detail-title")).to_have_text(evil)
    assert await page.locator("#tasks-body img, #tasks-body b, #detail img, #detail b").count() == 0
    assert await page.evaluate("window.__pwned") is None
    task_id = await row.get_attribute("data-task-id")
    assert task_id
    async with httpx.AsyncClient(base_url=d.base_url, timeout=20) as http:
        stored = (await http.get(f"/tasks/{task_id}")).json()
    assert stored["description"] == evil and stored["priority"] == 2


async def test_token_is_asked_for_once_and_used_for_api_and_event_stream(
    open_dashboard: OpenDashboard,
) -> None:
    d = await open_dashboard(api_tokens=("s3cret-token",))
    page = d.page
    await expect(page.locator("#token-dialog")).to_be_visible()
    await page.fill("#token-input", "s3cret-token")
    await page.click("#token-save")
    await expect(page.locator("#live")).to_have_attribute("data-live", "yes")
    assert await page.evaluate("localStorage.getItem('hiveq.token')") == "s3cret-token"

    made = await post_task(d, {"description": "behind a token"}, token="s3cret-token")
    row = page.locator(f'#tasks-body tr[data-task-id="{made["task_id"]}"]')
    await expect(row).to_have_attribute("data-status", "queued")  # live: the SSE stream got in
    await expect(page.locator("#token-dialog")).to_be_hidden()


async def test_root_redirects_to_the_dashboard_and_serves_its_files(open_dashboard: OpenDashboard) -> None:
    d = await open_dashboard()
    async with httpx.AsyncClient(base_url=d.base_url, timeout=20) as http:
        root = await http.get("/")
        assert root.status_code in (302, 307) and root.headers["location"] == "/dashboard/"
        for name, kind in (("", "text/html"), ("app.js", "javascript"), ("style.css", "text/css")):
            res = await http.get(f"/dashboard/{name}")
            assert res.status_code == 200 and kind in res.headers["content-type"]
    assert await d.page.title() == "hiveq dashboard"


async def test_status_filter_shows_only_tasks_in_that_status(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    d = await open_dashboard()
    page = d.page
    done = await post_task(
        d, {"description": "finishes", "planner": "explicit", "subtasks": [{"id": "only", "agent": "demo"}]}
    )
    await run_jobs_until_done(broker, done["task_id"])
    waiting = await post_task(
        d,
        {"description": "stays queued", "planner": "explicit", "subtasks": [{"id": "only", "agent": "demo"}]},
    )
    assert (await inspect.get_task(broker, waiting["task_id"])).status == TaskStatus.QUEUED
    await expect(page.locator("#tasks-body tr[data-task-id]")).to_have_count(2)
    await page.select_option("#tasks-status", "succeeded")
    await expect(page.locator("#tasks-body tr[data-task-id]")).to_have_count(1)
    await expect(page.locator(f'#tasks-body tr[data-task-id="{done["task_id"]}"]')).to_be_visible()


async def test_foreign_consumer_from_doctor_is_flagged_red(
    open_dashboard: OpenDashboard, server: ServerProcess
) -> None:
    thief = Redis.from_url(server.url, client_name="celery-thief", socket_timeout=None)  # blocks for long

    async def steal() -> object:  # what the incident's foreign worker did: BRPOP a generic name
        return await thief.brpop(["work_queue"], timeout=60)

    popping = asyncio.create_task(steal())
    observer = Redis.from_url(server.url, decode_responses=True)
    try:

        async def thief_blocked() -> bool:
            clients = await observer.client_list()
            return any(c["name"] == "celery-thief" and c["cmd"] == "brpop" for c in clients)

        await until(thief_blocked, 20, "the foreign client to block in BRPOP")
        d = await open_dashboard()
        check = d.page.locator('#doctor .check[data-check="foreign consumers"]')
        await expect(check).to_have_class(re.compile(r"\bforeign\b"))
        await expect(check.locator(".foreign-item")).to_contain_text("celery-thief")
        assert await d.page.locator("#doctor .check").first.get_attribute("data-check") == "foreign consumers"
        colour = await check.locator(".foreign-item").first.evaluate("e => getComputedStyle(e).color")
        assert colour == await d.page.evaluate(
            "(() => { const e = document.createElement('span'); e.style.color = 'var(--fail)';"
            " document.body.append(e); const c = getComputedStyle(e).color; e.remove(); return c; })()"
        )
    finally:
        await observer.lpush("work_queue", "release")  # unblocks the BRPOP, which pops it: no key left
        await asyncio.wait_for(popping, 20)
        await observer.aclose()
        await thief.aclose()


async def test_live_view_resumes_from_the_last_event_after_the_api_restarts(
    browser: Browser, broker: Broker
) -> None:
    port = free_port()
    context = await browser.new_context()
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    live = page.locator("#live")
    try:
        async with running_api(broker.settings, port=port) as base:
            await page.goto(f"{base}/dashboard/")
            await expect(live).to_have_attribute("data-live", "yes")
            await page.evaluate("window.__sameDocument = true")
            async with httpx.AsyncClient(base_url=base, timeout=20) as http:
                res = await http.post(
                    "/tasks",
                    json={
                        "description": "finished while the API was down",
                        "planner": "explicit",
                        "subtasks": [{"id": "only", "agent": "demo"}],
                    },
                )
            task_id = res.json()["task_id"]
            row = page.locator(f'#tasks-body tr[data-task-id="{task_id}"]')
            await expect(row).to_have_attribute("data-status", "queued")
        await expect(live).to_have_attribute("data-live", "no")

        await run_jobs_until_done(broker, task_id)  # its events happen while nobody streams them

        async with running_api(broker.settings, port=port):
            # Only a stream resumed after the last event seen delivers the missed completion;
            # one started from "now" would count 0 jobs.
            await expect(live).to_have_attribute("data-live", "yes")
            await expect(page.locator("#rate-detail")).to_contain_text("1 jobs completed")
            await expect(row).to_have_attribute("data-status", "succeeded")
            assert await page.evaluate("window.__sameDocument") is True  # caught up without a reload
            await context.close()
    finally:
        await context.close()
