"""The task list falls through without a seam: pages by cursor across the archive and the tasks
Redis holds that the archive has not yet, each item once, newest first, with live status; the
search filters (text, status, agent, time, metadata) answer the same from both sides."""

from __future__ import annotations

import httpx

from hiveq.api.app import create_app
from hiveq.archive.archiver import Archiver
from hiveq.archive.read import Archive, list_tasks, parse_filter
from hiveq.contract.errors import ValidationFailed
from hiveq.contract.models import SubtaskSpec, TaskSubmission
from hiveq.contract.states import TaskStatus
from hiveq.queue.broker import Broker
from hiveq.queue.cancel import cancel_task
from hiveq.queue.enqueue import enqueue
from tests.api.live import asgi_client
from tests.archive.conftest import drain


async def seed(
    b: Broker, n: int, agent: str = "a", word: str = "plain", meta: dict[str, object] | None = None
) -> list[str]:
    subs = [SubtaskSpec(id="x", agent=agent)]
    batch = [TaskSubmission(description=f"{word} {i}", subtasks=subs, metadata=meta or {}) for i in range(n)]
    return [e.task_id for e in await enqueue(b, batch)]


async def pages(api: httpx.AsyncClient, **params: str | int) -> list[list[str]]:
    out: list[list[str]] = []
    cursor = None
    while True:
        q: dict[str, str | int] = {**params, **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/tasks", params=q)).json()
        out.append([t["id"] for t in body["items"]])
        cursor = body.get("next_cursor")
        if not cursor:
            return out


async def test_pages_cover_archived_and_unarchived_tasks_once_newest_first(
    stack: tuple[Broker, Archiver], reader: Archive
) -> None:
    b, a = stack
    old = await seed(b, 25, word="old")
    await drain(a)
    new = await seed(b, 8, word="new", agent="b")  # not archived yet
    await cancel_task(b, old[0])  # archived as queued, now cancelled in Redis
    async with asgi_client(create_app(b.settings)) as api:
        got = await pages(api, limit=10)
        got_cursor = (await api.get("/tasks", params={"limit": 10})).json()["next_cursor"]
        assert [len(p) for p in got] == [10, 10, 10, 3]
        flat = [t for p in got for t in p]
        assert flat == list(reversed(old + new))
        first = (await api.get("/tasks", params={"limit": 50})).json()
        assert first["total"] == 33
        assert {t["id"]: t["status"] for t in first["items"]}[old[0]] == "cancelled"  # live status
        assert [t for p in await pages(api, q="NEW", limit=3) for t in p] == list(reversed(new))
        assert [t for p in await pages(api, agent="b") for t in p] == list(reversed(new))
        assert (await api.get("/tasks", params={"cursor": "???"})).status_code == 422
        by_offset = (
            await api.get("/tasks", params={"offset": 5, "limit": 10})
        ).json()  # the dashboard's pager
        assert [t["id"] for t in by_offset["items"]] == flat[5:15]
        deep = (await api.get("/tasks", params={"offset": 30, "limit": 10})).json()
        assert [t["id"] for t in deep["items"]] == flat[30:] and deep["total"] == 33
        assert (await api.get("/tasks", params={"offset": 5, "cursor": got_cursor})).status_code == 422
        assert (await api.get("/tasks", params={"meta": "nokey"})).status_code == 422


async def test_filters_by_status_time_and_metadata_on_both_sides(
    stack: tuple[Broker, Archiver], reader: Archive
) -> None:
    b, a = stack
    acme = await seed(b, 3, meta={"customer": "acme", "vip": True})
    await drain(a)
    other = await seed(b, 2, meta={"customer": "other"})
    f = parse_filter(meta=["customer:acme", "vip:true"])
    page = await list_tasks(b, reader, f, cursor=None, limit=10)
    assert [t.id for t in page.items] == list(reversed(acme))
    page = await list_tasks(b, reader, parse_filter(meta=["customer:other"]), cursor=None, limit=10)
    assert [t.id for t in page.items] == list(reversed(other))
    await cancel_task(b, acme[1])
    await cancel_task(b, other[0])
    await drain(a)
    cancelled = await list_tasks(b, reader, parse_filter(TaskStatus.CANCELLED), cursor=None, limit=10)
    assert [t.id for t in cancelled.items] == [other[0], acme[1]]
    everything = await list_tasks(b, reader, parse_filter(), cursor=None, limit=10)
    created = [t.created_ms or 0 for t in everything.items]
    since = await list_tasks(b, reader, parse_filter(since_ms=max(created)), cursor=None, limit=10)
    assert all((t.created_ms or 0) >= max(created) for t in since.items) and since.items
    try:
        parse_filter(meta=["no-colon"])
    except ValidationFailed as exc:
        assert exc.field == "meta"
    else:
        raise AssertionError("a meta filter without a colon was accepted")


async def test_without_an_archive_the_search_reads_redis_alone(broker: Broker) -> None:
    ids = await seed(broker, 4, word="solo")
    async with asgi_client(create_app(broker.settings)) as api:
        got = (await api.get("/tasks", params={"q": "SOLO", "limit": 3})).json()  # the dashboard's search
        assert [t["id"] for t in got["items"]] == list(reversed(ids))[:3] and got["total"] == 4
        rest = (await api.get("/tasks", params={"q": "solo", "offset": 3})).json()
        assert [t["id"] for t in rest["items"]] == [ids[0]]
        by_agent = (await api.get("/tasks", params={"agent": "a", "limit": 3})).json()  # bounded scan
        assert [t["id"] for t in by_agent["items"]] == list(reversed(ids))[:3] and by_agent["next_cursor"]
        more = (await api.get("/tasks", params={"agent": "a", "cursor": by_agent["next_cursor"]})).json()
        assert [t["id"] for t in more["items"]] == [ids[0]]
        plain = (await api.get("/tasks", params={"limit": 2, "offset": 1})).json()  # as before
        assert plain["total"] == 4 and [t["id"] for t in plain["items"]] == [ids[2], ids[1]]
