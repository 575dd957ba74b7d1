"""Clearing tests run the ledger on SQLite and PostgreSQL with the ledger tests' fixtures (not duplicated here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marginkit.ledger import Ledger
from tests.ledger.conftest import backend, postgres_admin

__all__ = ["backend", "postgres_admin"]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """An empty ledger in a SQLite file."""
    return Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
