"""A job stolen while the dashboard is open: a banner names it, the key and the suspect; the task
view shows the subtask vanished; the Recover button puts it back. Real browser, API and Redis."""

from __future__ import annotations

from playwright.async_api import expect
from redis.asyncio import Redis

from hiveq.queue.broker import Broker
from hiveq.queue.inspect import get_job
from tests.dashboard.conftest import OpenDashboard
from tests.queue.helpers import enqueue_task, st, zpopmin
from tests.support.waiting import until


async def test_a_stolen_job_raises_the_banner_and_the_recover_button_brings_it_back(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    b = broker
    res = await enqueue_task(b, st("design", agent="demo"), st("build", agent="demo", deps=("design",)))
    job_id = res.job_ids[0]
    d = await open_dashboard()
    page = d.page
    await expect(page.locator("#live")).to_have_attribute("data-live", "yes")
    await page.locator(f'#tasks-body tr[data-task-id="{res.task_id}"]').click()
    thief = Redis.from_url(b.settings.redis_url, decode_responses=True, client_name="rogue-thief")
    try:
        assert await zpopmin(thief, b.keys.queue("demo")) == [job_id]
        banner = page.locator("#vanished-banner")
        await expect(banner).to_be_visible()  # the API's own watch marked it; the stream said so
        await expect(banner).to_contain_text("1 job vanished")
        item = banner.locator(f'li[data-job="{job_id}"]')
        await expect(item).to_contain_text(b.keys.queue("demo"))
        await expect(item).to_contain_text("rogue-thief")
        await expect(page.locator('#dag .node[data-subtask="design"]')).to_have_attribute(
            "data-state", "vanished"
        )
        await expect(page.locator(f'#tasks-body tr[data-task-id="{res.task_id}"] .s-stalled')).to_be_visible()
        await expect(page.locator("#detail .problem")).to_contain_text("vanished from")
        await item.locator('button[data-action="recover"]').click()
        await expect(banner).to_be_hidden()
        await expect(page.locator('#dag .node[data-subtask="design"]')).to_have_attribute(
            "data-state", "waiting"
        )
    finally:
        await thief.aclose()

    async def waiting() -> bool:
        return (await get_job(b, job_id)).state == "waiting"

    await until(waiting, 10, "the job to be back in its queue")
