"""The dashboard lists schedules with their next run, live: a schedule put over the API appears
(its `schedule` event), a fire shows its last task (linked), a removal takes it away; a task with
a run_at shows when it starts."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from hiveq.contract.views import ScheduleRequest
from hiveq.queue.broker import Broker
from hiveq.schedule import store
from hiveq.schedule.fire import fire_due
from tests.dashboard.conftest import OpenDashboard


async def test_schedules_card_lists_next_run_and_follows_fires_and_removal(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    d = await open_dashboard()
    page = d.page
    await expect(page.locator("#live")).to_have_attribute("data-live", "yes")
    await expect(page.locator("#schedules-body")).to_contain_text("No schedules")
    view, _ = await store.put(
        broker,
        "nightly",
        ScheduleRequest(cron="0 9 * * *", tz="Europe/Berlin", task={"description": "report"}),
    )
    row = page.locator('#schedules-body tr[data-schedule="nightly"]')
    await expect(row).to_contain_text("0 9 * * *")
    await expect(row).to_contain_text("Europe/Berlin")
    await expect(row.locator(".next-run")).to_contain_text("in ")
    await expect(row.locator(".next-run")).to_have_attribute("title", view.next_run or "")
    await expect(row.locator(".last-fired")).to_have_text("never")

    assert view.next_run_ms is not None
    [fired] = await fire_due(broker, now_ms=view.next_run_ms)  # a test clock: the tick came
    assert fired.task_id
    link = row.locator(f'a[href="#task={fired.task_id}"]')
    await expect(link).to_have_text(fired.task_id)
    await link.click()
    await expect(page.locator("#detail .fired-by")).to_contain_text("fired by schedule nightly")

    await store.remove(broker, "nightly")
    await expect(row).to_have_count(0)


async def test_a_delayed_task_shows_when_it_starts(open_dashboard: OpenDashboard) -> None:
    d = await open_dashboard()
    await expect(d.page.locator("#live")).to_have_attribute("data-live", "yes")
    async with httpx.AsyncClient(base_url=d.base_url) as http:
        r = await http.post("/tasks", json={"description": "later", "delay_s": 3600})
    assert r.status_code == 201, r.text
    tid = r.json()["task_id"]
    await d.page.locator(f'#tasks-body tr[data-task-id="{tid}"]').click()
    await expect(d.page.locator("#detail .run-at")).to_contain_text("starts ")
    await expect(d.page.locator("#detail .run-at")).to_contain_text("(in ")
    await expect(d.page.locator('#dag .node[data-state="delayed"]')).to_have_count(1)
