"""Ledger tests run on SQLite (a file in tmp_path) and on PostgreSQL (a fresh schema of database `test`).

PostgreSQL: 127.0.0.1:5432, trust authentication (MARGINKIT_TEST_POSTGRES_URL overrides). If no server
answers, the set-up starts the local cluster; if that fails the PostgreSQL half is skipped visibly,
except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

POSTGRES_URL = os.environ.get("MARGINKIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START_COMMAND = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


def _reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An engine on the test database, starting the local server if it is down."""
    engine = create_engine(POSTGRES_URL, pool_pre_ping=True)
    if not _reachable(engine):
        subprocess.run(START_COMMAND, shell=True, capture_output=True, timeout=60, check=False)
        for _ in range(30):
            if _reachable(engine):
                break
            time.sleep(0.5)
        else:
            message = f"no PostgreSQL at {POSTGRES_URL} (tried: {START_COMMAND})"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message)
            pytest.skip(message)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for an empty ledger: a SQLite file, or a fresh PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    admin: Engine = request.getfixturevalue("postgres_admin")
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
