"""`data loss`: the one check that says what Redis lost, from both views.

- The namespace epoch (hiveq/queue/epoch.py): a worker or API process that knew the epoch and
  found another, or none, recorded the loss in `meta` (when, why: restarted empty, flushed, a
  failover; the jobs live workers held that are gone).
- The archive (hiveq/archive/loss.py), when one is configured: accepted tasks unfinished there
  and missing from Redis, by id.

A loss recorded within LOSS_FAILS_S fails the check; an older one is shown as history.
"""

from __future__ import annotations

from hiveq.diagnose.archive_check import archive_losses
from hiveq.diagnose.report import Check, fail, ok, warn, when
from hiveq.diagnose.settings_check import config_get
from hiveq.queue.broker import Broker
from hiveq.queue.epoch import Loss, read_loss

NAME = "data loss"
LOSS_FAILS_S = 24 * 3600  # a recorded loss fails the doctor for a day
JOBS_SHOWN = 50


async def persistence(b: Broker) -> str:
    """How this Redis keeps data across a restart, in a few words."""
    inf = await b.guard(b.redis.info("persistence"))
    if str(inf.get("aof_enabled", "0")) == "1":
        return "persistence is on (AOF)"
    save = await config_get(b, "save")
    if save:
        return f"persistence is RDB snapshots only (save {save}): a restart loses the writes since the last"
    if save is None:
        return "AOF is off (RDB save points unknown: CONFIG not allowed)"
    return "persistence is off"


def _loss_lines(loss: Loss) -> list[str]:
    lines = [f"lost epoch {loss.lost_epoch}; the namespace is epoch {loss.epoch} since"]
    lines.append(f"reported by {', '.join(loss.reported_by[:20]) or '?'} at {when(loss.detected_ms)}")
    lines += [f"{j}: held by a live worker, gone with the data" for j in loss.jobs[:JOBS_SHOWN]]
    if len(loss.jobs) > JOBS_SHOWN:
        lines.append(f"… and {len(loss.jobs) - JOBS_SHOWN} more jobs")
    return lines


async def data_loss_check(b: Broker) -> Check:
    loss = await read_loss(b)
    archived = await archive_losses(b)
    now = await b.guard(b.redis.time())
    now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
    recent = loss is not None and now_ms - max(loss.at_ms, loss.detected_ms) < LOSS_FAILS_S * 1000
    evidence = _loss_lines(loss) if loss is not None else []
    if isinstance(archived, list) and archived:
        evidence += archived  # "<task id> (<status>, N subtask(s))", as the archive check always said
    parts: list[str] = []
    if loss is not None and recent:
        parts.append(
            f"Redis lost this namespace's data at {when(loss.at_ms)} ({loss.cause}); {len(loss.jobs)} "
            f"jobs that live workers held are gone; {await persistence(b)}"
        )
    if isinstance(archived, list) and archived:
        parts.append(
            f"{len(archived)} accepted task(s) are unfinished in the archive and missing from Redis: "
            "Redis lost them (a restart without persistence, a failover, a flush)"
        )
    if parts:
        fix = "Turn persistence on (`appendonly yes`) so a restart keeps the queue. "
        fix += (
            "Resubmit the lost tasks with their ids and idempotency keys: `hiveq recover --from-archive`."
            if archived is not None
            else "Without an archive (HIVEQ_ARCHIVE_URL) the lost tasks cannot be rebuilt: resubmit them."
        )
        return fail(NAME, "; ".join(parts), evidence, fix=fix)
    if isinstance(archived, str):
        return warn(NAME, archived, evidence)
    if loss is not None:
        return ok(
            NAME, f"no data loss in the last {LOSS_FAILS_S // 3600} h; the last: {when(loss.at_ms)}", evidence
        )
    tail = "; every task the archive knows as unfinished is in Redis" if archived is not None else ""
    return ok(NAME, f"no data loss recorded since the namespace began{tail}")
