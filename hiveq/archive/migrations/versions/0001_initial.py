"""The first archive schema: tasks, jobs, custody events and task metadata.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hiveq_tasks",
        sa.Column("ns", sa.String(80), primary_key=True),
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("planner", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("finished_ms", sa.BigInteger),
        sa.Column("idem", sa.String(200)),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("snap_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("hiveq_tasks_list", "hiveq_tasks", ["ns", "created_ms", "seq"])
    op.create_index("hiveq_tasks_status", "hiveq_tasks", ["ns", "status", "created_ms", "seq"])
    op.create_index("hiveq_tasks_finished", "hiveq_tasks", ["ns", "finished_ms"])
    op.create_index("hiveq_tasks_idem", "hiveq_tasks", ["ns", "idem"])
    op.create_table(
        "hiveq_jobs",
        sa.Column("ns", sa.String(80), primary_key=True),
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("task_id", sa.String(40), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("snap_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("hiveq_jobs_task", "hiveq_jobs", ["ns", "task_id"])
    op.create_index("hiveq_jobs_agent", "hiveq_jobs", ["ns", "agent", "task_id"])
    op.create_table(
        "hiveq_events",
        sa.Column("ns", sa.String(80), primary_key=True),
        sa.Column("ms", sa.BigInteger, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("subject", sa.String(130), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(120)),
        sa.Column("task_id", sa.String(40)),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("hiveq_events_job", "hiveq_events", ["ns", "job_id", "ms", "seq"])
    op.create_index("hiveq_events_task", "hiveq_events", ["ns", "task_id", "ms", "seq"])
    op.create_table(
        "hiveq_task_meta",
        sa.Column("ns", sa.String(80), primary_key=True),
        sa.Column("task_id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.String(500), nullable=False),
    )
    op.create_index("hiveq_task_meta_kv", "hiveq_task_meta", ["ns", "key", "value"])


def downgrade() -> None:
    for table in ("hiveq_task_meta", "hiveq_events", "hiveq_jobs", "hiveq_tasks"):
        op.drop_table(table)
