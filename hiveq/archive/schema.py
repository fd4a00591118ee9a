"""The archive's tables (SQLAlchemy Core), one set for every namespace that writes to a database.

Records are kept as the JSON of their Redis hashes (`record`), so a reader decodes an archived
task or job with the same code as a live one (queue/inspect.py decode_task / decode_job); the
columns beside it are what the reads filter and sort on. The migrations in migrations/versions
create exactly these tables; tests/archive/test_schema.py checks that they agree.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

tasks = Table(
    "hiveq_tasks",
    metadata,
    Column("ns", String(80), primary_key=True),  # "app:env"
    Column("id", String(40), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("planner", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),  # enqueue sequence: order within one ms
    Column("finished_ms", BigInteger),
    Column("idem", String(200)),
    Column("record", Text, nullable=False),  # the task hash, as JSON
    Column("snap_ms", BigInteger, nullable=False),  # Redis time of the read that gave `record`
    Index("hiveq_tasks_list", "ns", "created_ms", "seq"),
    Index("hiveq_tasks_status", "ns", "status", "created_ms", "seq"),
    Index("hiveq_tasks_finished", "ns", "finished_ms"),
    Index("hiveq_tasks_idem", "ns", "idem"),
)

jobs = Table(
    "hiveq_jobs",
    metadata,
    Column("ns", String(80), primary_key=True),
    Column("id", String(120), primary_key=True),
    Column("task_id", String(40), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("record", Text, nullable=False),  # the job hash, as JSON
    Column("snap_ms", BigInteger, nullable=False),
    Index("hiveq_jobs_task", "ns", "task_id"),
    Index("hiveq_jobs_agent", "ns", "agent", "task_id"),
)

# One row per event as readers see it: an enqueue stream entry expands into one task event and
# one job event per job (queue/events.py), all with the entry's id; `subject` tells them apart.
events = Table(
    "hiveq_events",
    metadata,
    Column("ns", String(80), primary_key=True),
    Column("ms", BigInteger, primary_key=True),  # stream id "<ms>-<seq>"
    Column("seq", BigInteger, primary_key=True),
    Column("subject", String(130), primary_key=True),  # job id, "task:<id>", or "" (one event)
    Column("n", Integer, nullable=False),  # position within the stream entry
    Column("type", String(16), nullable=False),
    Column("job_id", String(120)),
    Column("task_id", String(40)),
    Column("body", Text, nullable=False),  # the event as JSON (contract/models.py Event)
    Index("hiveq_events_job", "ns", "job_id", "ms", "seq"),
    Index("hiveq_events_task", "ns", "task_id", "ms", "seq"),
)

# Top-level scalar metadata entries of a task, for `GET /tasks?meta=key:value` on an index.
task_meta = Table(
    "hiveq_task_meta",
    metadata,
    Column("ns", String(80), primary_key=True),
    Column("task_id", String(40), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("value", String(500), nullable=False),
    Index("hiveq_task_meta_kv", "ns", "key", "value"),
)
