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

from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.contract.states import TERMINAL_TASK_STATUSES, JobState, TaskStatus
from hiveq.queue import events, fetch, inspect, registry, retry
from hiveq.queue.broker import Broker
from hiveq.queue.complete import Completion
from hiveq.queue.complete import complete as complete_jobs
from hiveq.queue.enqueue import enqueue
from hiveq.queue.retry import Failure
from hiveq.server import ServerProcess, free_port
from hiveq.settings import Settings
from hiveq.worker.main import run_worker
from tests.dashboard.conftest import UI_TIMEOUT_MS, Dashboard, OpenDashboard, running_api
from tests.support.waiting import until
from tests.support.worker import worker_in_process

SCREENSHOT = "/tmp/hiveq-dashboard.png"
JOB_SCREENSHOT = "/tmp/hiveq-job.png"


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
        [me] = [w for w in await registry.list_workers(broker) if w.id == "w-dash"]
        await expect(page.locator('#workers-body tr[data-worker="w-dash"] td.client')).to_have_text(me.client)
    n = len(subtasks)
    await expect(page.locator("#rate-detail")).to_contain_text(
        f"{n} jobs finished in the last 60 s: {n} succeeded"
    )
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

        newest = await events.last_event_id(broker)
        async with running_api(broker.settings, port=port):
            # Only a stream resumed after the last event seen delivers the missed events; one
            # started from "now" would leave the page at the last event before the restart.
            await expect(live).to_have_attribute("data-live", "yes")
            await expect(live).to_have_attribute("data-last-event", newest)
            await expect(row).to_have_attribute("data-status", "succeeded")
            assert await page.evaluate("window.__sameDocument") is True  # caught up without a reload
            await context.close()
    finally:
        await context.close()


async def enqueue_tasks(b: Broker, descriptions: list[str]) -> list[str]:
    """One single-job task per description, in this order (the last one is the newest)."""
    subs = [SubtaskSpec(id="only", agent="demo")]
    done = await enqueue(b, [TaskSubmission(description=d, subtasks=subs) for d in descriptions])
    return [e.task_id for e in done]


async def test_the_task_list_pages_through_every_task_and_searches_descriptions(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    names = [f"chore {i:02d}" for i in range(27)] + [
        "Deploy the NEEDLE",
        "needle in a haystack",
        "more chores",
    ]
    ids = await enqueue_tasks(broker, names)
    newest_first = ids[::-1]
    d = await open_dashboard()
    page = d.page
    rows = page.locator("#tasks-body tr[data-task-id]")
    await expect(page.locator("#tasks-range")).to_have_text("1–25 of 30")
    assert await rows.evaluate_all("rs => rs.map(r => r.dataset.taskId)") == newest_first[:25]
    await expect(page.locator("#tasks-prev")).to_be_disabled()

    await page.click("#tasks-next")
    await expect(page.locator("#tasks-range")).to_have_text("26–30 of 30")
    assert await rows.evaluate_all("rs => rs.map(r => r.dataset.taskId)") == newest_first[25:]
    await expect(page.locator("#tasks-next")).to_be_disabled()
    await page.click("#tasks-prev")
    await expect(page.locator("#tasks-range")).to_have_text("1–25 of 30")

    await page.fill("#tasks-search", "NeEdLe")  # any case
    await expect(page.locator("#tasks-total")).to_have_text("2 matching")
    assert await rows.evaluate_all("rs => rs.map(r => r.dataset.taskId)") == [ids[28], ids[27]]
    await page.fill("#tasks-search", "no such words")
    await expect(page.locator("#tasks-body")).to_have_text("No task matches.")
    await page.fill("#tasks-search", "")
    await expect(page.locator("#tasks-range")).to_have_text("1–25 of 30")


async def test_clicking_a_row_brings_the_task_detail_into_view(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    ids = await enqueue_tasks(broker, [f"task number {i}" for i in range(25)])
    d = await open_dashboard()
    page = d.page
    detail = page.locator("#detail")
    row = page.locator(f'#tasks-body tr[data-task-id="{ids[-1]}"]')  # the newest: the top row
    await expect(row).to_be_in_viewport()
    await expect(detail).not_to_be_in_viewport()  # 25 rows push the detail below the fold
    await row.click()
    await expect(page.locator("#detail .detail-title")).to_have_text("task number 24")
    await expect(detail).to_be_in_viewport(ratio=1)  # the whole (short) detail is on screen
    top = await detail.evaluate("e => e.getBoundingClientRect().top")
    header = await page.locator("header.top").evaluate("e => e.getBoundingClientRect().bottom")
    assert top >= header, (top, header)  # not hidden under the sticky header
    await page.click("#detail-up")
    await expect(row).to_be_in_viewport()


async def test_the_job_page_shows_timestamps_input_traceback_history_why_and_retries(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    settings = broker.settings.with_(backoff_base_s=0.01)
    evil = "<img src=x onerror=window.__pwned=1><b>bold</b>"
    async with worker_in_process(settings, ["t.flaky"], worker_id="w-flaky"):
        await until(lambda: registry.list_workers(broker), 20, "the worker to register")
        d = await open_dashboard()
        made = await post_task(
            d,
            {
                "description": "fails twice",
                "planner": "explicit",
                "subtasks": [{"id": "boom", "agent": "t.flaky", "input": {"note": evil}, "max_attempts": 2}],
            },
        )
        job_id = f"{made['task_id']}.boom"

        async def dead() -> bool:
            return (await inspect.get_job(broker, job_id)).state == JobState.DEAD

        await until(dead, 20, "the job to be dead-lettered")
    page = d.page
    letter = page.locator(f'#dlq-list .dlq-item[data-job="{job_id}"]')
    await expect(letter.locator("details.traceback summary")).to_have_text("traceback of attempt 2")
    await expect(letter.locator("details.traceback pre")).to_contain_text(
        "RuntimeError: flaky failure on attempt 2"
    )
    await page.locator(f'#tasks-body tr[data-task-id="{made["task_id"]}"]').click()
    await page.locator('#detail details[data-key="boom"] summary').click()
    await page.locator(f'#detail a.job-link[data-job="{job_id}"]').click()

    job_page = page.locator("#job-page")
    await expect(job_page).to_have_attribute("data-state", "dead")
    assert page.url.endswith(f"#/jobs/{job_id}")
    await expect(page.locator("#overview")).to_be_hidden()
    for field in ("created", "started", "finished"):
        await expect(job_page.locator(f'dd[data-field="{field}"]')).to_contain_text(" UTC (")
    await expect(job_page.locator("#job-input pre")).to_contain_text(evil)  # as text, never as HTML
    await expect(job_page.locator("#job-result")).to_have_count(0)  # a dead job has no result
    stray = "e => [...e.childNodes].filter(n => n.nodeType === 3 && n.textContent.trim()).length"
    assert await job_page.evaluate(stray) == 0  # no stray text (a skipped section is no "null")
    assert await job_page.locator("img, b").count() == 0 and await page.evaluate("window.__pwned") is None
    await expect(job_page.locator("#job-error")).to_contain_text("RuntimeError: flaky failure on attempt 2")
    tracebacks = job_page.locator("#job-tracebacks details.traceback")
    await expect(tracebacks).to_have_count(2)
    newest = tracebacks.nth(1).locator("pre")
    await expect(newest).to_be_visible()  # the newest is open
    await expect(newest).to_contain_text("Traceback (most recent call last):")
    await expect(newest).to_contain_text("in flaky")
    await expect(newest).to_contain_text("RuntimeError: flaky failure on attempt 2")
    await expect(job_page.locator("#job-why")).to_contain_text("dead-lettered at")

    history = await events.job_history(broker, job_id)
    rows = job_page.locator("#job-history tbody tr")
    await expect(rows).to_have_count(len(history))
    claimed = next(e for e in history if e.to == "active")
    assert claimed.client
    first_claim = job_page.locator('#job-history tr[data-to="active"]').first
    await expect(first_claim).to_contain_text("w-flaky")
    await expect(first_claim).to_contain_text(claimed.client)

    await page.screenshot(path=JOB_SCREENSHOT, full_page=True)
    await job_page.locator("#job-retry").click()
    await expect(job_page).to_have_attribute("data-state", "waiting")
    assert (await inspect.get_job(broker, job_id)).state == JobState.WAITING
    await expect(job_page.locator("#job-retry")).to_have_count(0)
    await expect(job_page.locator('#job-history tr[data-to="waiting"]').last).to_contain_text(
        "retried by api"
    )
    await expect(job_page.locator("#job-why")).not_to_contain_text("dead-lettered")

    await page.locator("#job-back").click()  # back to its task, in view
    await expect(page.locator("#overview")).to_be_visible()
    await expect(page.locator("#detail")).to_have_attribute("data-task-id", made["task_id"])


async def test_doctor_and_dead_letter_cards_agree_and_move_together(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    d = await open_dashboard()
    page = d.page
    doctor_dead = page.locator('#doctor .check[data-check="dead letters"] .summary')
    await expect(doctor_dead).to_contain_text("no dead-lettered")
    made = await post_task(
        d,
        {
            "description": "three independent jobs",
            "planner": "explicit",
            "subtasks": [{"id": s, "agent": "demo"} for s in "abc"],
        },
    )
    for s in "abc":
        await dead_letter(broker, f"{made['task_id']}.{s}")
    await expect(page.locator("#dlq-total")).to_have_text("3")
    await expect(doctor_dead).to_contain_text("3 dead-lettered")  # live, not 30 s later
    await page.locator(
        f'#dlq-list .dlq-item[data-job="{made["task_id"]}.a"] button[data-action="retry"]'
    ).click()
    await expect(page.locator("#dlq-total")).to_have_text("2")
    await expect(doctor_dead).to_contain_text("2 dead-lettered")
    assert await broker.redis.exists(broker.keys.key("doctor")) == 0  # live runs keep the CLI's baseline


async def test_throughput_shows_jobs_that_finished_before_the_page_opened(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    [task_id] = await enqueue_tasks(broker, ["finished before anyone looked"])
    await run_jobs_until_done(broker, task_id)
    d = await open_dashboard()  # events from before the page loaded never reach it: the count is the server's
    await expect(d.page.locator("#rate-detail")).to_contain_text(
        "1 jobs finished in the last 60 s: 1 succeeded"
    )
    await expect(d.page.locator("#rate-source")).to_contain_text("Counted in Redis")
