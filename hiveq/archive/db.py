"""Open an archive database from HIVEQ_ARCHIVE_URL and bring its schema up to date.

SQLAlchemy Core gives one code path for SQLite and PostgreSQL (psycopg 3 as the driver);
Alembic keeps the schema's history in migrations/versions, shipped inside the package and run
by the archiver when it starts (`upgrade`). Readers (API, CLI) never migrate.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from hiveq.contract.errors import ConfigError
from hiveq.contract.redact import redact

# The version table has our prefix, so an archive can share a database with other applications.
VERSION_TABLE = "hiveq_alembic_version"
# A PostgreSQL advisory lock key: two archivers (of two namespaces) never migrate at once.
MIGRATE_LOCK = 0x68697665


def driver_url(url: str) -> str:
    """HIVEQ_ARCHIVE_URL as SQLAlchemy wants it: postgresql:// and postgres:// go through psycopg 3."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


def redacted(url: str) -> str:
    """The URL without its password, for logs and errors (the one redaction function)."""
    return redact(url)


def kind_of(url: str) -> str:
    """'sqlite' or 'postgresql': what the namespace's meta says the archive is (never the URL)."""
    return "sqlite" if url.startswith("sqlite") else "postgresql"


# The archiver's page cache (KiB): its indexes on task and job ids take inserts at random places,
# and past SQLite's default 2 MB each insert reads its pages back from the file.
WRITER_CACHE_KIB = 65536


def _sqlite_pragmas(writer: bool) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers never block the archiver, nor it them
        # FULL: a commit is on disk before the archiver acknowledges its entries (XACK). One commit
        # per batch of thousands of rows makes its fsync cheap (no measurable cost in bench/archive.py).
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=10000")
        if writer:
            cur.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        cur.close()

    return on_connect


def open_engine(url: str, *, writer: bool = False) -> Engine:
    """An engine for the archive at `url` (a SQLite file's folder is created when missing);
    `writer`: the archiver's (a larger SQLite page cache)."""
    target = driver_url(url)
    try:
        parsed = make_url(target)
    except Exception:
        raise ConfigError("HIVEQ_ARCHIVE_URL cannot be parsed; see docs/archive.md for its form") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(target, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas(writer))
        return engine
    return create_engine(
        target, pool_pre_ping=True, pool_size=4, max_overflow=4, connect_args={"connect_timeout": 3}
    )


def alembic_config() -> Config:
    # Alembic logs each plugin and step at INFO on every start: keep the terminal for hiveq's lines.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("hiveq.archive") / "migrations"))
    return cfg


def upgrade(engine: Engine) -> None:
    """`alembic upgrade head`, in one transaction (under an advisory lock on PostgreSQL)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def secret_of(url: str) -> str | None:
    """The password in `url`, to mask it wherever a driver's message repeats it."""
    try:
        return make_url(driver_url(url)).password or None
    except Exception:  # an unparsable URL: nothing to mask
        return None
