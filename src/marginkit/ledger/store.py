"""The ledger's tables (SQLAlchemy 2 Core) and opening a database: SQLite by default, PostgreSQL by URL.

SQLite: a file in the user's data directory (`$XDG_DATA_HOME/marginkit/ledger.sqlite3`, by default
`~/.local/share/marginkit/ledger.sqlite3`), WAL mode, every transaction `BEGIN IMMEDIATE` so a
withdrawal's check and debit are one atomic step. PostgreSQL: `postgresql://…` (driver psycopg 3);
account rows are locked `SELECT … FOR UPDATE` by the service. The schema is created and upgraded by
the Alembic migrations shipped in `marginkit/ledger/migrations` when a ledger is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import make_url

from marginkit.errors import InputError

DATABASE_ENV = "MARGINKIT_DATABASE_URL"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = "0001"

metadata = MetaData()

assets = Table(
    "ledger_assets", metadata,
    Column("name", String(64), primary_key=True),
    Column("decimals", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # asset | instrument
)
accounts = Table(
    "ledger_accounts", metadata,
    Column("id", String(64), primary_key=True),  # the row a writer locks (FOR UPDATE on PostgreSQL)
)
operations = Table(
    "ledger_operations", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("key", String(128), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON: replayed by verify
)
postings = Table(
    "ledger_postings", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("operation_id", BigInteger, ForeignKey("ledger_operations.id"), nullable=False),
    Column("account", String(64), nullable=False),
    Column("asset", String(64), ForeignKey("ledger_assets.name"), nullable=False),
    Column("amount", BigInteger, nullable=False),  # integer minor units of the asset
    Index("ix_ledger_postings_operation", "operation_id"),
    Index("ix_ledger_postings_account_asset", "account", "asset"),
)
balances = Table(
    "ledger_balances", metadata,  # Σ postings per (account, asset), kept in the same transaction; verify checks it
    Column("account", String(64), primary_key=True),
    Column("asset", String(64), ForeignKey("ledger_assets.name"), primary_key=True),
    Column("amount", BigInteger, nullable=False),
)


def default_sqlite_path() -> Path:
    """The default ledger file in the user's data directory (XDG base directory convention)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "marginkit" / "ledger.sqlite3"


def database_url(db: str | None = None) -> str:
    """The URL to open: `--db`, else MARGINKIT_DATABASE_URL, else the default SQLite file.

    A value without `://` is a SQLite file path; `postgresql://` and `postgres://` use psycopg 3.
    """
    value = db or os.environ.get(DATABASE_ENV) or ""
    if not value:
        path = default_sqlite_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix):]
    return value


def create_ledger_engine(db: str | None = None) -> Engine:
    """An engine for the ledger database (WAL and BEGIN IMMEDIATE on SQLite)."""
    url_text = database_url(db)
    try:
        url = make_url(url_text)
    except Exception:
        raise InputError(f"{url_text!r} is not a database URL", field="--db") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable against a killed process
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise InputError(f"unsupported database {backend!r} (sqlite or postgresql)", field="--db")


def upgrade(engine: Engine) -> None:
    """Bring the schema to the head revision with the shipped Alembic migrations (a no-op when current)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        connection.rollback()
    if current == HEAD:
        return
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # one process migrates; the others wait, then find it current
            connection.execute(text("SELECT pg_advisory_xact_lock(7702460)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
