"""Alembic environment: runs on the connection db.upgrade hands it (no alembic.ini, no URL here)."""

from __future__ import annotations

from alembic import context

from hiveq.archive.db import VERSION_TABLE
from hiveq.archive.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
