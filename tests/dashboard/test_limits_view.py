"""The dashboard's limits card shows each key's live usage and its holders, and a held job's page
names the limit that holds it."""

from __future__ import annotations

from playwright.async_api import expect

from hiveq.contract.limit_rules import LimitRule
from hiveq.queue.broker import Broker
from hiveq.queue.fetch import claim
from hiveq.queue.limits import set_limit
from tests.dashboard.conftest import OpenDashboard
from tests.dashboard.test_dashboard import post_task


async def test_the_limits_card_shows_usage_and_the_job_page_says_what_holds_a_job(
    open_dashboard: OpenDashboard, broker: Broker
) -> None:
    await set_limit(broker, "tenant:*", LimitRule(concurrency=1))
    d = await open_dashboard()
    page = d.page
    sub = {"agent": "demo", "limits": ["tenant:acme"]}
    made = await post_task(
        d, {"description": "two", "planner": "explicit", "subtasks": [{"id": "a", **sub}, {"id": "b", **sub}]}
    )
    [running] = await claim(broker, "w", ["demo"], 5)
    row = page.locator('#limits-body tr[data-limit="tenant:acme"]')
    await expect(row.locator("td[data-in-use]")).to_have_text("1/1")  # live: refreshed on the claim
    await expect(row).to_contain_text(running.id.split(".")[-1])
    held = f"{made['task_id']}.{'b' if running.id.endswith('.a') else 'a'}"
    await page.goto(f"{d.base_url}/dashboard/#/jobs/{held}")
    await expect(page.locator("#job-why")).to_contain_text(
        "waiting: tenant:acme at its concurrency limit 1/1"
    )
