"""The archive's health (`archive`: attached, an archiver running, its lag, the database
reachable) and the archive's part of `data loss` (diagnose/loss_check.py): accepted tasks
unfinished in the archive and missing from Redis (hiveq/archive/loss.py), by id."""

from __future__ import annotations

from hiveq.contract.errors import HiveqError
from hiveq.diagnose.report import Check, fail, ok, warn
from hiveq.queue import archiving
from hiveq.queue.broker import Broker

LAG_WARN_S = 30.0
LAG_FAIL_S = 600.0
LOST_SHOWN = 50


async def archive_check(b: Broker) -> Check:
    name = "archive"
    lag = await archiving.lag(b)
    url = b.settings.archive.archive_url
    if not lag.attached and not url:
        return ok(name, "no archive configured (finished tasks stay in Redis for HIVEQ_RETENTION_SECONDS)")
    evidence = {
        "archiver": lag.holder or "none",
        "lag": f"{lag.seconds:.1f} s",
        "read, not written yet": lag.pending,
        "not read yet": "unknown" if lag.undelivered is None else lag.undelivered,
        "stream entries": lag.stream_length,
    }
    if not lag.attached:
        return warn(
            name,
            "HIVEQ_ARCHIVE_URL is set here but no archiver has attached to this namespace",
            evidence,
            fix="Start one: `hiveq archiver` (workers with HIVEQ_ARCHIVE_URL run one too).",
        )
    if not lag.holder:
        return fail(
            name,
            f"an archive is attached but no archiver is running: the event stream grows "
            f"({lag.stream_length} entries) and finished tasks stay in Redis until it is back",
            evidence,
            fix="Start `hiveq archiver` (or workers with HIVEQ_ARCHIVE_URL); or, to stop archiving, "
            "`hiveq archiver --detach`.",
        )
    if lag.seconds >= LAG_WARN_S:
        verdict = fail if lag.seconds >= LAG_FAIL_S else warn
        return verdict(
            name,
            f"the archive is {lag.seconds:.0f} s behind the event stream (nothing is lost: unarchived "
            "entries are kept)",
            evidence,
            fix="Check the archive database (`hiveq archiver --status`) and the archiver's log.",
        )
    return ok(name, f"archiver {lag.holder} is {lag.seconds:.1f} s behind", evidence)


async def archive_losses(b: Broker) -> list[str] | str | None:
    """The archive's part of `data loss` (diagnose/loss_check.py): accepted tasks unfinished in the
    archive and missing from Redis, one line each; a string when the archive cannot tell; None
    without an archive."""
    if not b.settings.archive.archive_url:
        return None
    from hiveq.archive.loss import lost_tasks  # here: SQLAlchemy loads only where an archive is set
    from hiveq.archive.read import Archive

    archive = Archive.of(b.settings)
    if archive is None:
        return None
    try:
        lost = await lost_tasks(b, archive)
    except HiveqError as exc:
        return f"the archive cannot tell what Redis lost: {exc}"
    finally:
        archive.close()
    shown = [f"{t.task_id} ({t.status}, {t.subtasks} subtask(s))" for t in lost[:LOST_SHOWN]]
    if len(lost) > LOST_SHOWN:
        shown.append(f"… and {len(lost) - LOST_SHOWN} more (`hiveq recover --from-archive` lists them all)")
    return shown
