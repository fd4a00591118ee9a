"""mark_archived.lua and expire_finished.lua with an archive: a finished task leaves Redis after
the tail only once its mark is later than its finish (the archive has its final state)."""

from __future__ import annotations

from hiveq.queue import archiving, maintain
from hiveq.queue.cancel import cancel_task
from hiveq.server import ServerProcess
from tests.conftest import _broker
from tests.queue.helpers import enqueue_task, st


async def test_only_tasks_marked_after_their_finish_expire_after_the_tail(server: ServerProcess) -> None:
    async for b in _broker(server.url, redis_retention_s=0):
        await archiving.lease(b, "archiver", "take", 60_000, "sqlite")
        done = [await enqueue_task(b, st("x")) for _ in range(3)]
        for t in done:
            await cancel_task(b, t.task_id)
        finished = [int(await b.redis.zscore(b.keys.finished, t.task_id) or 0) for t in done]
        fresh, stale, never = done
        assert await archiving.mark_archived(b, finished[0] + 1, [fresh.task_id, "t0000000000000000"]) == 1
        assert await archiving.mark_archived(b, finished[1], [stale.task_id]) == 1  # same ms: not enough
        assert await maintain.expire_finished(b) == 1
        assert not await b.redis.exists(b.keys.task(fresh.task_id))
        for t in (stale, never):
            assert await b.redis.exists(b.keys.task(t.task_id))
