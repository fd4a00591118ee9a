"""spawn: a running durable agent adds subtasks to its task, atomically (spawn.lua)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial

from hiveq.contract.codec import dumps, dumps_bounded
from hiveq.contract.errors import Code, ValidationFailed
from hiveq.contract.lease import Lease, LeaseLost
from hiveq.contract.models import SubtaskSpec
from hiveq.contract.protocol import job_prefix, task_of
from hiveq.contract.validate import validate_spawn
from hiveq.queue.broker import Broker
from hiveq.queue.enqueue import INPUT_FIELD, job_options


async def spawn(b: Broker, lease: Lease, key: str, subtasks: Sequence[SubtaskSpec]) -> list[str]:
    """Add `subtasks` to the lease holder's task as children of its job; their job ids, in order.

    `key` is the spawn's step key: a second call with the same key (a redelivered run) returns the
    stored ids and creates nothing. Raises ValidationFailed (ids taken, a dependency that has not
    succeeded, HIVEQ_MAX_SUBTASKS), PayloadTooLarge (an input) or LeaseLost."""
    s = b.settings
    validate_spawn(subtasks, s.limits.max_subtasks)
    prefix = job_prefix(task_of(lease.job_id))
    new = {st.id for st in subtasks}
    dependents: dict[str, list[str]] = {}
    for st in subtasks:
        for dep in dict.fromkeys(st.depends_on):
            if dep in new:
                dependents.setdefault(dep, []).append(prefix + st.id)
    rows = []
    for i, st in enumerate(subtasks):
        text = dumps_bounded(st.input, partial(INPUT_FIELD.format, i), s.limits.max_payload_bytes)
        opts = job_options(st, prefix, dependents.get(st.id))
        rows.append([st.id, st.agent, text] if opts is None else [st.id, st.agent, text, opts])
    res = await b.run(
        "spawn",
        [
            lease.worker_id,
            lease.job_id,
            lease.token,
            key,
            dumps(rows),
            s.limits.max_subtasks,
            s.retry.max_deliveries,
            s.retry.max_attempts,
            s.retry.job_timeout_s,
        ],
    )
    code = Code(int(res[0]))
    if code == Code.WRONG_STATE:
        raise ValidationFailed("subtasks", str(res[1]))
    if code != Code.OK:
        raise LeaseLost(lease, "spawn")
    return [str(x) for x in json.loads(res[1])]
