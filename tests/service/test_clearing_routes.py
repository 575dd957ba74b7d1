"""The clearing house in the service: member keys see their own member only; the operator novates and settles.

The house is examples/ccp (members M1 with a house and an individually segregated client account, M2, M3) on a
fresh SQLite ledger; its first cycle is examples/ccp/prices-day1.yaml, whose variation margin is restated here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from marginkit.clearing.house import ClearingHouse
from marginkit.clearing.spec import load_clearing
from marginkit.ledger import Ledger
from marginkit.profiles import shipped_profile
from marginkit.service import EventBus, create_app
from tests.service.conftest import EXAMPLES, market_spec

CLEARING_FILE = EXAMPLES / "ccp" / "clearing-house.yaml"
KEYS = {"op-key": "operator", "m1-key": "M1", "m2-key": "M2", "m3-key": "M3"}
OPERATOR = {"X-API-Key": "op-key"}
M1 = {"X-API-Key": "m1-key"}
M3 = {"Authorization": "Bearer m3-key"}


def day(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A cycle file of examples/ccp as the two requests: (POST /clearing/trades, POST /clearing/cycles)."""
    cycle = yaml.safe_load((EXAMPLES / "ccp" / name).read_text())
    trades = cycle.pop("trades")
    return {"trades": trades}, cycle


@dataclass
class Service:
    client: TestClient
    house: ClearingHouse
    bus: EventBus


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    house = ClearingHouse.open(load_clearing(CLEARING_FILE), ledger)
    bus = EventBus()
    app = create_app(ledger, market_spec(), shipped_profile("binance-usdm"), KEYS, bus=bus, clearing=house)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Service(client, house, bus)
    ledger.close()


def settle_day1(client: TestClient) -> dict[str, Any]:
    trades, cycle = day("prices-day1.yaml")
    assert client.post("/clearing/trades", headers=OPERATOR, json=trades).status_code == 200
    response = client.post("/clearing/cycles", headers=OPERATOR, json=cycle)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def clearing_paths(client: TestClient) -> list[tuple[str, str]]:
    document = client.app.openapi()  # type: ignore[attr-defined]
    return [(method, path) for path, methods in document["paths"].items() for method in methods
            if path.startswith(("/members", "/clearing"))]


def test_a_member_key_is_refused_on_every_route_of_another_member(service: Service) -> None:
    client = service.client
    routes = clearing_paths(client)
    member_routes = [(m, p) for m, p in routes if "{member_id}" in p]

    for method, path in routes:
        url = path.replace("{member_id}", "M2").replace("{account_id}", "M2.house")
        refused = client.request(method.upper(), url, headers=M1, json={})
        anonymous = client.request(method.upper(), url, json={})

        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["error"]["message"]
        assert anonymous.status_code == 401, (method, path)
    assert len(member_routes) >= 4 and len(routes) >= 9
    for method, path in member_routes:  # M1's own GET routes answer
        if method == "get":
            assert client.get(path.replace("{member_id}", "M1"), headers=M1).status_code == 200, path


def test_the_member_view_shows_accounts_models_margin_and_ledger_collateral(service: Service) -> None:
    response = service.client.get("/members/M1", headers=M1)

    assert response.status_code == 200, response.text
    view = response.json()
    accounts = {row["account"]: row for row in view["accounts"]}
    house, client = accounts["M1.house"], accounts["M1.C1"]
    assert (house["kind"], house["segregation"], house["model"], house["profile"]) == \
        ("house", None, "span", "span-crypto")
    assert (client["kind"], client["segregation"], client["model"], client["profile"]) == \
        ("client", "individual", "portfolio", "deribit-pm")
    # collateral as the example's book deposits it; positions as its book holds them
    assert house["collateral"] == {"USD": "400000"} and client["collateral"] == {"USD": "150000"}
    assert house["positions"] == {"BTC-FUT-DEC26": "10", "ETH-FUT-DEC26": "-100"}
    assert client["positions"] == {"BTC-PERP": "5"}
    assert view["collateral_value"] == 550_000.0  # 400,000 + 150,000
    assert house["initial_margin"] > 0 and client["initial_margin"] > 0
    assert view["initial_margin"] == pytest.approx(house["initial_margin"] + client["initial_margin"])
    assert view["maintenance_margin"] == pytest.approx(house["maintenance_margin"] + client["maintenance_margin"])
    assert (view["in_default"], view["default"], view["open_calls"]) == (False, None, [])
    assert service.client.get("/members", headers=OPERATOR).json()["members"][0] == {
        "member": "M1", "affiliate_group": "M1", "accounts": ["M1.house", "M1.C1"], "open_calls": 0,
        "in_default": False}


def test_the_operator_settles_a_cycle_and_each_member_sees_its_settlement(service: Service) -> None:
    cycle = settle_day1(service.client)
    settlements = service.client.get("/members/M1/settlements", headers=M1)
    house = service.client.get("/clearing/house", headers=OPERATOR).json()

    # Day 1 (DEC 95,400 → 96,100, MAR 96,500 → 97,150, PERP 95,010 → 95,630, ETH 3,315 → 3,281; funding 0.0001,
    # longs pay; T-0001: M1.C1 buys 2 PERP from M3.house at 95,250.5):
    # M1.house  +10 DEC × 700 + (−100) ETH × (−34)                            = +7,000 + 3,400 = +10,400
    # M1.C1     +5 × 620 + 2 × (95,630 − 95,250.5) − 7 × 95,630 × 0.0001      = 3,100 + 759 − 66.941 = +3,792.059
    # M2.house  −6 × 700 + 6 × 650 − 5 × 620 + 5 × 95,630 × 0.0001            = −3,352.185
    # M3.house  −4 × 700 − 6 × 650 + 100 × (−34) − 759 + 2 × 9.563            = −10,839.874
    # journalled rounded down: 10,400 + 3,792.05 − 3,352.19 − 10,839.88 = −0.02, kept by the rounding account
    assert settlements.status_code == 200
    [mine] = settlements.json()["settlements"]
    assert (mine["house"], mine["client"], mine["net"]) == ("10400", "3792.05", "14192.05")
    assert (mine["gross_paid"], mine["gross_received"]) == ("0", "14192.06")  # 7,000 + 3,400 + 3,792.059 cells
    assert mine["payments"] == {"M1.C1": "3792.05", "M1.house": "10400"}
    assert cycle["paid"] == cycle["collected"] == "14192.07"  # 10,400 + 3,792.05 + 0.02 = 3,352.19 + 10,839.88
    assert cycle["rounding"] == "0.02" and house["rounding_balance"] == "0.02"
    # gross = 14,192.059 (M1) + 7,252.185 + 3,900 (M2) + 10,839.874 (M3) = 36,184.118; Σ|net| = 28,384.118
    assert mine["netting_efficiency"] == pytest.approx(1 - 28_384.118 / 36_184.118, abs=1e-9)
    assert house["flat"] and set(house["net_position"].values()) == set(house["ledger_net_position"].values()) \
        == {"0"}
    assert house["cycles"] == 1 and house["trades"] == 1
    # events: the operator's summary, and each member its own settlement (a member key's stream filters on it)
    kinds = {(e["kind"], e["account"]) for e in service.bus.since(0)}
    assert {("cycle", None), ("settlement", "M1"), ("settlement", "M2"), ("settlement", "M3"),
            ("margin_call", "M3"), ("novation", "M1"), ("novation", "M3")} <= kinds
    assert [e["data"]["house"] for e in service.bus.since(0, "M1") if e["kind"] == "settlement"] == ["10400"]


def test_a_call_is_met_through_the_payments_route(service: Service) -> None:
    cycle = settle_day1(service.client)
    [call] = cycle["calls"]
    # M3.house's collateral after day 1: 250,000 − 10,839.88 = 239,160.12, below its initial margin
    assert (call["account"], call["collateral"], call["status"]) == ("M3.house", "239160.12", "open")
    assert call["deadline"] == "2026-11-24T17:00:00Z"  # the cycle + im_call_deadline_seconds 3,600
    due = call["amount"]

    part = service.client.post("/members/M3/calls/M3.house/payments", headers=M3,
                               json={"amount": "10000", "time": "2026-11-24T16:30:00Z"})
    rest = service.client.post("/members/M3/calls/M3.house/payments", headers=OPERATOR,
                               json={"amount": str(float(due) - 10_000)})
    again = service.client.post("/members/M3/calls/M3.house/payments", headers=M3, json={"amount": "1"})
    view = service.client.get("/members/M3", headers=M3).json()

    assert part.status_code == 200, part.text
    assert part.json()["call"]["status"] == "open"
    assert float(part.json()["call"]["amount"]) == pytest.approx(float(due) - 10_000)
    assert rest.status_code == 200 and rest.json()["call"]["status"] == "met"
    assert rest.json()["call"]["collateral"] == call["initial_margin"]  # 239,160.12 + the amount due
    assert again.status_code == 422 and again.json()["error"]["field"] == "account_id"  # no open call left
    assert view["open_calls"] == [] and view["accounts"][0]["collateral"] == {"USD": call["initial_margin"]}
    calls = service.client.get("/members/M3/calls", headers=M3, params={"status": "met"}).json()["calls"]
    assert [c["id"] for c in calls] == [call["id"]]


def test_a_call_missed_past_its_deadline_is_a_default(service: Service) -> None:
    settle_day1(service.client)

    late = service.client.post("/members/M3/calls/M3.house/payments", headers=M3,
                               json={"amount": "100000", "time": "2026-11-24T17:00:01Z"})
    clock = service.client.post("/clearing/clock", headers=OPERATOR, json={"time": "2026-11-24T17:00:01Z"})
    view = service.client.get("/members/M3", headers=M3).json()

    assert late.status_code == 422 and late.json()["error"]["field"] == "time"
    assert clock.status_code == 200
    assert [d["member"] for d in clock.json()["defaults"]] == ["M3"]
    assert view["in_default"] and view["default"]["calls"] == ["M3.house@2026-11-24T16:00:00Z"]
    assert ("default", "M3") in {(e["kind"], e["account"]) for e in service.bus.since(0)}


DAY1_PRICES = {"BTC-FUT-DEC26": 96100, "BTC-FUT-MAR27": 97150, "BTC-PERP": 95630, "ETH-FUT-DEC26": 3281}
TRADE = {"id": "T-9", "buyer": "M1.house", "seller": "M2.house", "instrument": "BTC-PERP", "quantity": "1",
         "price": "95000"}


@pytest.mark.parametrize(("route", "body", "field"), [
    ("/clearing/trades", {"trades": [{**TRADE, "buyer": "M9.house"}]}, "trades[0].buyer"),
    ("/clearing/trades", {"trades": [{**TRADE, "quantity": "-1"}]}, "trades[0].quantity"),
    ("/clearing/trades", {"trades": [{**TRADE, "quantity": "abc"}]}, "trades[0].quantity"),
    ("/clearing/trades", {"trades": [{**TRADE, "price": "1e999999999999999999"}]}, "trades.0.price"),
    ("/clearing/trades", {"trades": [{**TRADE, "quantity": "1e-999999999999999999"}]}, "trades.0.quantity"),
    ("/clearing/trades", {"trades": [TRADE, {**TRADE, "id": "T-10", "instrument": "NOPE"}]}, "trades[1].instrument"),
    ("/clearing/trades", {"trades": []}, "trades"),
    ("/clearing/cycles", {"time": "yesterday", "prices": DAY1_PRICES}, "time"),
    ("/clearing/cycles", {"time": "0001-01-01T00:00:00+01:00", "prices": DAY1_PRICES}, "time"),
    ("/clearing/cycles", {"time": "2026-11-24T08:00:00Z", "prices": DAY1_PRICES}, "time"),  # not after as_of
    ("/clearing/cycles", {"time": "2026-11-24T16:00:00Z", "prices": {"BTC-PERP": 95630}}, "prices.BTC-FUT-DEC26"),
    ("/clearing/cycles", {"time": "2026-11-24T16:00:00Z", "prices": {**DAY1_PRICES, "NOPE": 1}}, "prices.NOPE"),
    ("/clearing/cycles", {"time": "2026-11-24T16:00:00Z", "prices": {**DAY1_PRICES, "BTC-PERP": -1}},
     "prices.BTC-PERP"),
    ("/clearing/cycles", {"time": "2026-11-24T16:00:00Z", "prices": DAY1_PRICES,
                          "funding_rates": {"BTC-FUT-DEC26": 0.001}}, "funding_rates.BTC-FUT-DEC26"),
    ("/clearing/cycles", {"time": "2026-11-24T16:00:00Z", "prices": DAY1_PRICES, "index": {"BTC": 0}}, "index.BTC"),
    ("/clearing/cycles", {"prices": DAY1_PRICES}, "time"),
    ("/clearing/clock", {"time": "2026-11-24T07:00:00Z"}, "time"),  # before the clock
    ("/members/M3/calls/M3.house/payments", {"amount": "10"}, "account_id"),  # no open call
    ("/members/M3/calls/M3.house/payments", {"amount": True}, "amount"),
    ("/members/M3/calls/M3.house/payments", {"amount": "1e-999999999999999999"}, "amount"),
])
def test_bad_input_is_422_naming_the_field_and_changes_nothing(service: Service, route: str, body: dict[str, Any],
                                                                field: str) -> None:
    response = service.client.post(route, headers=OPERATOR, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field, response.json()
    house = service.client.get("/clearing/house", headers=OPERATOR).json()
    assert (house["cycles"], house["trades"], house["time"]) == (0, 0, "2026-11-24T08:00:00Z")


def test_unknown_members_and_accounts_are_404(service: Service) -> None:
    assert service.client.get("/members/M9", headers=OPERATOR).json()["error"]["field"] == "member_id"
    assert service.client.get("/members/M9", headers=OPERATOR).status_code == 404
    assert service.client.get("/members/M9", headers=M1).status_code == 403  # a member learns nothing of others
    wrong = service.client.post("/members/M1/calls/M2.house/payments", headers=M1, json={"amount": "1"})
    assert wrong.status_code == 404 and wrong.json()["error"]["field"] == "account_id"


def test_no_5xx_on_generated_clearing_requests(service: Service) -> None:
    settle_day1(service.client)  # an open call, settled prices: generated requests meet a house with state
    schema = schemathesis.openapi.from_asgi("/openapi.json", service.client.app).include(
        path_regex="^/(members|clearing)")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    seen: set[str] = set()

    @given(case=st.one_of([operation.as_strategy() for operation in operations]))
    @settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call(headers=OPERATOR)
        seen.add(f"{case.method} {case.path}")
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)
        assert "json" in str(response.headers.get("content-type"))

    check()
    assert len(seen) >= 5


def test_serve_with_a_clearing_file_installs_the_member_routes(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from marginkit.cli import app as cli

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **_options: served.append(application))
    keys = tmp_path / "keys.yaml"
    keys.write_text(yaml.safe_dump(KEYS))
    database = f"sqlite:///{tmp_path / 'serve.sqlite3'}"

    started = CliRunner().invoke(cli, ["serve", "--db", database, "--keys", str(keys), "--clearing",
                                       str(CLEARING_FILE)])
    refused = CliRunner().invoke(cli, ["serve", "--db", database, "--keys", str(keys), "--clearing",
                                       str(tmp_path / "missing.yaml")])

    assert started.exit_code == 0, started.output
    with TestClient(served[0]) as client:
        assert client.get("/members/M1", headers=M1).json()["accounts"][0]["collateral"] == {"USD": "400000"}
        assert client.get("/members/M2", headers=M1).status_code == 403
    assert refused.exit_code == 2 and "missing.yaml" in refused.output


def test_the_market_feed_and_the_dashboard_leave_the_clearing_accounts_to_the_house(service: Service) -> None:
    # Arrange: a venue account beside the clearing house on the same ledger
    client = service.client
    ledger = service.house.ledger
    ledger.deposit("alice", "USDC", "20000", key="venue-d1")

    # Act
    moved = client.post("/market", headers=OPERATOR, json={"marks": {"BTC-USD-PERP": 96000.0}})
    rows = client.get("/dashboard/accounts", headers=OPERATOR)

    # Assert: the clearing accounts (unknown to the venue's market) are neither margined nor liquidated there
    assert moved.status_code == 200, moved.text
    assert rows.status_code == 200, rows.text
    assert [row["account"] for row in rows.json()["accounts"]] == ["alice"]
