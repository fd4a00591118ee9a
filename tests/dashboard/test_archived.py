"""The dashboard shows a task the archive holds after Redis let it go: in the list, with its
subtask graph, states and results, on the same API routes as live work."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from hiveq.archive.archiver import Archiver
from hiveq.queue import maintain
from hiveq.queue.broker import Broker
from tests.archive.conftest import clock_passes, drain
from tests.dashboard.conftest import OpenDashboard
from tests.dashboard.test_dashboard import post_task, run_jobs_until_done


async def test_a_task_past_the_redis_tail_is_still_listed_with_its_graph_and_results(
    open_dashboard: OpenDashboard, broker: Broker, tmp_path: Path
) -> None:
    d = await open_dashboard(archive_url=f"sqlite:///{tmp_path / 'archive.db'}", redis_retention_s=1)
    b = await Broker.connect(d.settings, role="test")
    a = Archiver(d.settings, block_ms=10)
    await a.connect()
    try:
        assert await a.take()
        subtasks = [
            {"id": "draft", "agent": "demo"},
            {"id": "review", "agent": "demo", "depends_on": ["draft"]},
        ]
        made = await post_task(
            d, {"description": "archived report", "planner": "explicit", "subtasks": subtasks}
        )
        task_id = made["task_id"]
        await run_jobs_until_done(b, task_id)
        await drain(a)
        await clock_passes(b, int(await b.redis.zscore(b.keys.finished, task_id) or 0) + 1000)
        assert await maintain.expire_finished(b) == 1
        assert not await b.redis.exists(b.keys.task(task_id))

        page = d.page
        await page.reload()
        row = page.locator(f'#tasks-body tr[data-task-id="{task_id}"]')
        await expect(row).to_have_attribute("data-status", "succeeded")
        await row.click()
        await expect(page.locator("#detail")).to_have_attribute("data-status", "succeeded")
        await expect(page.locator('#dag .node[data-state="succeeded"]')).to_have_count(2)
        await expect(page.locator("#dag path.edge.done")).to_have_count(1)
        await expect(page.locator("#detail")).to_contain_text("review")
    finally:
        await a.close()
        a.engine.dispose()
        await b.close()
