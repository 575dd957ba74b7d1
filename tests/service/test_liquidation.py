"""The service's live engine: /market drives the monitor and the liquidation engine through the ledger.

Market: examples/usd-perpetuals (BTC-USD-PERP, 0.001 BTC a contract, USDC-settled; binance-usdm brackets: 0.4 %
maintenance up to 300,000 notional). The ledger journals BTC-USD-PERP in whole contracts (0 decimals). The
partial-liquidation test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marginkit.ledger import Ledger
from marginkit.profiles import shipped_profile
from marginkit.service import create_app
from marginkit.service.liquidator import LIQUIDATOR
from tests.ledger.conftest import backend, postgres_admin  # noqa: F401  (fixtures)
from tests.service.conftest import KEYS, OPERATOR, market_spec


def start(url: str, engine: dict[str, Any]) -> tuple[Ledger, TestClient]:
    ledger = Ledger.open(url)
    ledger.add_asset("BTC-USD-PERP", 0, "instrument")
    ledger.add_asset("ETH-USD-PERP", 0, "instrument")
    profile = dataclasses.replace(shipped_profile("binance-usdm"), engine=engine)
    app = create_app(ledger, market_spec(), profile, KEYS)
    return ledger, TestClient(app, raise_server_exceptions=False)


def events(client: TestClient, kind: str, account: str) -> list[dict[str, Any]]:
    bus = client.app.state.events  # type: ignore[attr-defined]
    return [e["data"] for e in bus.since(0, account) if e["kind"] == kind]


@pytest.fixture
def short_alice(backend: str) -> Iterator[tuple[Ledger, TestClient]]:  # noqa: F811
    """alice short 2,500 contracts (2.5 BTC) from 94,000 with 20,000 USDC; bob long; fee 0.1 %."""
    ledger, client = start(backend, {"liquidation_fee_rate": 0.001, "stale_after_seconds": 3600})
    ledger.deposit("alice", "USDC", "20000", key="d1")
    ledger.deposit("bob", "USDC", "200000", key="d2")
    ledger.trade("bob", "alice", "BTC-USD-PERP", "2500", "94000", key="t1")
    with client:
        yield ledger, client
    ledger.close()


def test_a_price_event_liquidates_alice_in_clips_until_she_is_above_maintenance(
        short_alice: tuple[Ledger, TestClient]) -> None:
    # Arrange
    ledger, client = short_alice

    # Act: BTC to 101,700
    response = client.post("/market", headers=OPERATOR, json={"marks": {"BTC-USD-PERP": 101700.0}})

    # Assert. Equity = 20,000 − 2.5 × 7,700 = 750 < MM = 0.004 × 254,250 = 1,017: liquidation.
    # Clip 1: 25 % of 2,500 = 625 contracts at 101,700: realised −0.625 × 7,700 = −4,812.5; fee 0.001 × 63,562.5
    #   = 63.5625; equity 750 − 63.5625 = 686.4375 < MM 0.004 × 190,687.5 = 762.75.
    # Clip 2: 25 % of 1,875 = 468.75 → 468 whole contracts: realised −0.468 × 7,700 = −3,603.6; fee 0.001 ×
    #   47,595.6 = 47.5956; equity 686.4375 − 47.5956 = 638.8419 ≥ MM 0.004 × 143,091.9 = 572.3676: stop.
    assert response.status_code == 200, response.text
    assert response.json()["engine"]["liquidations"] == 2
    assert ledger.positions()["alice"]["BTC-USD-PERP"][0] == Decimal(-1407)
    assert ledger.positions()[LIQUIDATOR]["BTC-USD-PERP"][0] == Decimal(-1093)  # took over 625 + 468
    # 20,000 − 4,812.5 − 3,603.6 − 63.5625 − 47.5956 = 11,472.7419
    assert ledger.balances("alice")["alice"]["USDC"] == Decimal("11472.7419")
    assert ledger.balances("@insurance")["@insurance"]["USDC"] == Decimal("111.1581")  # 63.5625 + 47.5956
    assert ledger.verify() == []
    fills = events(client, "liquidation", "alice")
    assert [f["quantity"] for f in fills] == [-625.0, -468.0] and {f["reason"] for f in fills} == {"maintenance"}
    moves = [(s["from"], s["to"]) for s in events(client, "status", "alice")]
    # 638.84 is below IM (the bracket's 1/150 of 143,091.9 = 953.95): a margin call with a deadline follows
    assert moves[:2] == [("healthy", "liquidation"), ("liquidation", "margin_call")]
    assert events(client, "status", "alice")[1]["deadline"] is not None
    history = client.get("/accounts/alice/liquidations", headers=OPERATOR).json()["liquidations"]
    assert {h["kind"] for h in history} == {"trade", "realised_pnl", "insurance_fund"}


def test_an_expired_margin_call_is_reduced_until_initial_margin_is_covered(tmp_path: Path) -> None:
    # Arrange: margin calls last 0.3 s
    ledger, client = start(f"sqlite:///{tmp_path / 'l.sqlite3'}", {"margin_call_seconds": 0.3,
                                                                     "liquidation_fee_rate": 0.001})
    ledger.deposit("alice", "USDC", "20000", key="d1")
    ledger.deposit("bob", "USDC", "200000", key="d2")
    ledger.trade("bob", "alice", "BTC-USD-PERP", "2500", "94000", key="t1")
    with client:
        # 101,450: equity 20,000 − 2.5 × 7,450 = 1,375, between MM 1,014.5 and IM 101,450 × 2.5 / 150 = 1,690.8
        client.post("/market", headers=OPERATOR, json={"marks": {"BTC-USD-PERP": 101450.0}})
        called = events(client, "status", "alice")
        time.sleep(0.4)

        # Act: the next price after the deadline
        client.post("/market", headers=OPERATOR, json={"marks": {"BTC-USD-PERP": 101450.0}})

        # Assert
        assert [(s["from"], s["to"]) for s in called] == [("healthy", "margin_call")]
        fills = events(client, "liquidation", "alice")
        assert fills and {f["reason"] for f in fills} == {"margin_call_expired"}
        margin = client.get("/accounts/alice/margin", headers=OPERATOR).json()
        assert margin["equity"] >= margin["initial_margin"]
        assert ledger.verify() == []
    ledger.close()


def test_a_stale_price_freezes_liquidation_until_it_is_fresh(tmp_path: Path) -> None:
    # Arrange: prices go stale after 0.3 s; alice: 0.1 BTC short at the mark and 30 ETH long from 3,300, 4,000 USDC
    ledger, client = start(f"sqlite:///{tmp_path / 'l.sqlite3'}", {"stale_after_seconds": 0.3})
    ledger.deposit("alice", "USDC", "4000", key="d1")
    ledger.deposit("bob", "USDC", "200000", key="d2")
    ledger.trade("bob", "alice", "BTC-USD-PERP", "100", "95012.5", key="t1")
    ledger.trade("alice", "bob", "ETH-USD-PERP", "3000", "3300", key="t2")
    with client:
        time.sleep(0.4)  # the BTC mark (set at start) is now stale

        # Act: ETH to 3,180: equity 4,000 − 30 × 120 = 400 < MM 0.004 × (95,400 + 9,501.25) = 419.6
        frozen = client.post("/market", headers=OPERATOR, json={"marks": {"ETH-USD-PERP": 3180.0}}).json()
        fresh = client.post("/market", headers=OPERATOR, json={"marks": {"BTC-USD-PERP": 95012.5}}).json()

        # Assert: no fill while BTC's price is stale; the fresh BTC price lets the liquidation run
        assert frozen["engine"]["liquidations"] == 0
        status = events(client, "status", "alice")
        assert status[0]["to"] == "liquidation" and status[0]["frozen"] is True
        assert fresh["engine"]["liquidations"] >= 1
        assert ledger.verify() == []
    ledger.close()


def test_a_closing_trade_realises_its_pnl_once(tmp_path: Path) -> None:
    # Arrange: alice buys 1,000 contracts (1 BTC) from bob at 95,000
    ledger, client = start(f"sqlite:///{tmp_path / 'l.sqlite3'}", {})
    ledger.deposit("alice", "USDC", "20000", key="d1")
    ledger.deposit("bob", "USDC", "20000", key="d2")
    with client:
        client.post("/accounts/alice/trades", headers=OPERATOR, json={
            "counterparty": "bob", "instrument": "BTC-USD-PERP", "quantity": "1000", "price": "95000", "key": "a"})
        close = {"counterparty": "bob", "instrument": "BTC-USD-PERP", "quantity": "-400", "price": "96000",
                 "key": "b"}

        # Act: alice sells 400 back at 96,000, twice with the same key
        first = client.post("/accounts/alice/trades", headers=OPERATOR, json=close)
        again = client.post("/accounts/alice/trades", headers=OPERATOR, json=close)

        # Assert: 0.4 BTC × 1,000 = +400 to alice, −400 to bob (short from 95,000 bought back at 96,000)
        assert first.json()["status"] == "applied" and again.json()["status"] == "duplicate"
        balances = ledger.balances()
        assert balances["alice"]["USDC"] == Decimal(20400) and balances["bob"]["USDC"] == Decimal(19600)
        assert ledger.positions()["alice"]["BTC-USD-PERP"] == (Decimal(600), Decimal(95000))
        assert ledger.verify() == []
    ledger.close()
