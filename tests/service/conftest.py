"""A service over a fresh SQLite ledger at the usd-perpetuals market: alice and bob with 20,000 USDC each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from marginkit.ledger import Ledger
from marginkit.profiles import shipped_profile
from marginkit.service import create_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KEYS = {"op-key": "operator", "alice-key": "alice", "bob-key": "bob"}
OPERATOR = {"X-API-Key": "op-key"}
ALICE = {"Authorization": "Bearer alice-key"}
BOB = {"X-API-Key": "bob-key"}


def market_spec() -> dict[str, Any]:
    book = yaml.safe_load((EXAMPLES / "usd-perpetuals.yaml").read_text())
    del book["accounts"]
    return dict(book)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.add_asset("BTC-USD-PERP", 0, "instrument")
    ledger.deposit("alice", "USDC", "20000", key="d1")
    ledger.deposit("bob", "USDC", "20000", key="d2")
    app = create_app(ledger, market_spec(), shipped_profile("binance-usdm"), KEYS)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    ledger.close()
