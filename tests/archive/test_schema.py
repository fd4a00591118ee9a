"""The migrations build exactly the tables schema.py declares, on SQLite and PostgreSQL, and
running them again changes nothing."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from hiveq.archive import db
from hiveq.archive.schema import metadata


def test_migrations_match_the_declared_schema_and_are_idempotent(archive_url: str) -> None:
    engine = db.open_engine(archive_url)
    try:
        db.upgrade(engine)
        db.upgrade(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": db.VERSION_TABLE})
            assert compare_metadata(ctx, metadata) == []
            assert ctx.get_current_revision() == "0001"
        names = set(inspect(engine).get_table_names())
        assert {t.name for t in metadata.sorted_tables} | {db.VERSION_TABLE} <= names
    finally:
        engine.dispose()


def test_urls_are_shown_without_their_password() -> None:
    url = "postgresql://hiveq:s3cret@db:5432/history"
    assert "s3cret" not in db.redacted(url) and "db:5432/history" in db.redacted(url)
    assert db.driver_url(url).startswith("postgresql+psycopg://")
    assert db.secret_of(url) == "s3cret" and db.secret_of("sqlite:///x.db") is None
