"""Database URLs and schema migration of the local ledger.

The gateway calls ``await migrate(settings.effective_database_url)`` at start. Alembic runs
synchronously, so the async URL is turned into its sync twin (aiosqlite → pysqlite; psycopg is
both). The migration scripts ship inside the package, so no alembic.ini is needed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import URL, Connection, make_url

from ticket_client.base import PlatformUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30
PG_CONNECT_TIMEOUT_S = 10
MIGRATION_LOCK_KEY = 0x12345_0001  # pg_advisory_xact_lock key held while migrating

# Driver errors that mean "the database cannot be reached right now" rather than a bug.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    OSError,
)


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def async_url(database_url: str) -> URL:
    """The async flavour of a URL: plain ``sqlite``/``postgresql`` URLs are accepted too."""
    url = make_url(database_url)
    if _is_sqlite(url):
        return url.set(drivername="sqlite+aiosqlite")
    if url.get_backend_name() in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


def sync_url(database_url: str) -> URL:
    """The sync flavour used by Alembic (psycopg 3 serves both modes)."""
    url = make_url(database_url)
    if _is_sqlite(url):
        return url.set(drivername="sqlite")
    if url.get_backend_name() in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


def ensure_sqlite_dir(url: URL) -> None:
    """Create the folder of a file-backed SQLite database (SQLite creates only the file)."""
    if (
        _is_sqlite(url)
        and url.database
        and url.database != ":memory:"
        and not url.database.startswith("file:")
    ):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def connect_args(url: URL) -> dict[str, object]:
    """Bounded waits: a locked SQLite file or an unreachable PostgreSQL fails instead of hanging."""
    if _is_sqlite(url):
        return {"timeout": SQLITE_BUSY_TIMEOUT_S}
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        return {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return {}


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _serialize_migrations(conn: Connection) -> None:
    """Keep two workers starting at once from creating the same tables twice."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite DDL is transactional; take the write lock now


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (head by default); safe to call on every start."""
    url = sync_url(database_url)
    try:
        ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args=connect_args(url))
        try:
            with engine.begin() as conn:
                _serialize_migrations(conn)
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
        finally:
            engine.dispose()
    except UNAVAILABLE_ERRORS as err:
        raise PlatformUnavailable(f"cannot migrate the ticket ledger database: {err}") from err


async def migrate(database_url: str) -> None:
    """Async wrapper of ``upgrade_database``: runs Alembic in a thread so the loop stays free."""
    await asyncio.to_thread(upgrade_database, database_url)
