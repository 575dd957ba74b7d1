"""`marginkit import ccxt`: ccxt-style position and balance dumps into a book, round-tripped through `margin`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from marginkit.cli import app
from marginkit.errors import InputError
from marginkit.io import load_book, parse_book
from marginkit.io.ccxt_import import ccxt_book, parse_symbol

STAMP = 1795507200000  # 2026-11-24T08:00:00Z in milliseconds


def _position(symbol: str, contracts: float, side: str, **fields: Any) -> dict[str, Any]:
    """A ccxt unified position structure with the usual fields (ccxt's names)."""
    base = {"info": {}, "id": None, "symbol": symbol, "timestamp": STAMP, "datetime": "2026-11-24T08:00:00.000Z",
            "contracts": contracts, "contractSize": 1.0, "side": side, "entryPrice": 94000.0,
            "markPrice": 95000.0, "notional": None, "leverage": None, "marginMode": "cross", "hedged": False,
            "initialMargin": None, "maintenanceMargin": None, "liquidationPrice": None, "collateral": None,
            "unrealizedPnl": None, "percentage": None, "marginRatio": None}
    return {**base, **fields}


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _import(tmp_path: Path, positions: list[dict[str, Any]], balances: dict[str, Any] | None = None,
            *extra: str) -> tuple[Path, dict[str, Any]]:
    args = ["import", "ccxt", str(_write(tmp_path, "positions.json", positions)), "--output",
            str(tmp_path / "book.yaml"), *extra]
    if balances is not None:
        args += ["--balances", str(_write(tmp_path, "balances.json", balances))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return tmp_path / "book.yaml", yaml.safe_load((tmp_path / "book.yaml").read_text(encoding="utf-8"))


def _margin(book: Path, profile: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["margin", str(book), "--profile", profile, "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.parametrize(("symbol", "expected"), [
    ("BTC/USDT:USDT", ("perpetual", "BTC", "USDT", "USDT", False, None, None, None)),
    ("BTC/USD:BTC", ("perpetual", "BTC", "USD", "BTC", True, None, None, None)),
    ("BTC/USDT:USDT-261226", ("future", "BTC", "USDT", "USDT", False, "2026-12-26T08:00:00+00:00", None, None)),
    ("BTC/USD:BTC-261226-100000-C", ("option", "BTC", "USD", "BTC", True, "2026-12-26T08:00:00+00:00", 100000.0,
                                     "call")),
    ("ETH/USDC:USDC-270326-2500.5-P", ("option", "ETH", "USDC", "USDC", False, "2027-03-26T08:00:00+00:00",
                                       2500.5, "put")),
    ("BTC/USDT", ("spot", "BTC", "USDT", "USDT", False, None, None, None)),
])
def test_unified_symbols_parse_into_contract_terms(symbol: str, expected: tuple[Any, ...]) -> None:
    c = parse_symbol(symbol)
    assert (c.type, c.underlying, c.quote, c.settlement, c.inverse, c.expiry.isoformat() if c.expiry else None,
            c.strike, c.option_type) == expected


def test_linear_perpetual_with_balances_round_trips_through_margin(tmp_path: Path) -> None:
    positions = [_position("BTC/USDT:USDT", 2.5, "long", contractSize=0.001 * 1000, leverage=20.0,
                           initialMargin=11875.0, maintenanceMargin=950.0, liquidationPrice=85916.5,
                           notional=237500.0)]
    balances = {"info": {}, "USDT": {"free": 15000.0, "used": 5000.0, "total": 20000.0},
                "free": {"USDT": 15000.0}, "used": {"USDT": 5000.0}, "total": {"USDT": 20000.0, "BNB": None}}

    book, data = _import(tmp_path, positions, balances)

    assert data["as_of"] == "2026-11-24T08:00:00Z"
    assert data["instruments"] == [{"id": "BTC/USDT:USDT", "type": "perpetual", "underlying": "BTC",
                                    "quote": "USDT", "settlement": "USDT", "inverse": False, "contract_size": 1.0}]
    assert data["market"]["index"] == {"BTC": 95000.0, "USDT": 1.0}
    (account,) = data["accounts"]
    assert account["collateral"] == {"USDT": 20000.0}
    assert account["positions"] == [{"instrument": "BTC/USDT:USDT", "quantity": 2.5, "entry_price": 94000.0,
                                     "leverage": 20.0}]
    # the venue's own figures stay beside the book: a comment on top, and BOOK.venue.json
    text = book.read_text(encoding="utf-8")
    assert text.startswith("# Imported from ccxt dump positions.json")
    assert "11875" in text and "85916.5" in text
    venue = json.loads((tmp_path / "book.venue.json").read_text(encoding="utf-8"))
    assert venue["positions"][0]["initial_margin"] == 11875.0
    assert venue["positions"][0]["liquidation_price"] == 85916.5
    # round trip: IM = notional / leverage = 2.5 × 95,000 / 20; equity = 20,000 + 2.5 × (95,000 − 94,000)
    margined = _margin(book, "binance-usdm")["accounts"][0]
    assert margined["initial_margin"] == pytest.approx(2.5 * 95000 / 20)
    assert margined["equity"] == pytest.approx(22500.0)


def test_inverse_perpetual_and_coin_option_round_trip(tmp_path: Path) -> None:
    positions = [
        _position("BTC/USD:BTC", 1000, "short", contractSize=10.0, entryPrice=96000.0, markPrice=95000.0),
        _position("BTC/USD:BTC-261226-100000-C", 3, "short", contractSize=1.0, entryPrice=0.021, markPrice=0.02,
                  info={"index_price": "95100"}),
    ]
    book, data = _import(tmp_path, positions, {"total": {"BTC": 1.5}})

    instruments = {i["id"]: i for i in data["instruments"]}
    assert instruments["BTC/USD:BTC"]["inverse"] is True and instruments["BTC/USD:BTC"]["contract_size"] == 10.0
    option = instruments["BTC/USD:BTC-261226-100000-C"]
    assert (option["type"], option["option_type"], option["strike"], option["expiry"], option["settlement"]) == (
        "option", "call", 100000.0, "2026-12-26T08:00:00Z", "BTC")
    assert data["market"]["index"]["BTC"] == 95000.0  # the perpetual's mark wins over the option's index
    assert data["market"]["marks"]["BTC/USD:BTC-261226-100000-C"] == 0.02
    (account,) = data["accounts"]
    assert [p["quantity"] for p in account["positions"]] == [-1000.0, -3.0]
    margined = _margin(book, "deribit-standard-2022-01-11")["accounts"][0]
    assert margined["currency"] == "BTC"
    assert margined["initial_margin"] > 0


def test_an_option_alone_takes_its_underlying_from_the_info_index_price(tmp_path: Path) -> None:
    positions = [_position("BTC/USD:BTC-261226-100000-C", 3, "short", entryPrice=0.021, markPrice=0.02,
                           info={"index_price": "95100"})]
    _, data = _import(tmp_path, positions)
    assert data["market"]["index"] == {"BTC": 95100.0}


def test_hedge_long_and_short_legs(tmp_path: Path) -> None:
    positions = [
        _position("BTC/USDT:USDT", 40, "long", entryPrice=90000.0, hedged=True),
        _position("BTC/USDT:USDT", 10, "short", entryPrice=97000.0, hedged=True),
    ]
    book, data = _import(tmp_path, positions, {"total": {"USDT": 150000.0}})

    (account,) = data["accounts"]
    assert account["position_mode"] == "hedge"
    assert [(p["position_side"], p["quantity"]) for p in account["positions"]] == [("long", 40.0), ("short", -10.0)]
    margined = _margin(book, "binance-usdm")["accounts"][0]
    assert [p["position_side"] for p in margined["positions"]] == ["long", "short"]


def test_isolated_positions_get_their_collateral(tmp_path: Path) -> None:
    positions = [
        _position("BTC/USDT:USDT", 0.5, "short", entryPrice=96000.0, marginMode="isolated", collateral=1000.0,
                  leverage=50.0),
        _position("ETH/USDT:USDT", 3, "long", entryPrice=3300.0, markPrice=3350.0),
    ]
    book, data = _import(tmp_path, positions, {"total": {"USDT": 6000.0}})

    cross, isolated = data["accounts"]
    assert (cross["id"], cross["mode"], cross["collateral"]) == ("ccxt", "cross", {"USDT": 5000.0})
    assert (isolated["id"], isolated["mode"], isolated["collateral"]) == ("ccxt-isolated", "isolated",
                                                                           {"USDT": 1000.0})
    assert isolated["isolated_margin"] == {"BTC/USDT:USDT": {"USDT": 1000.0}}
    margined = _margin(book, "binance-usdm")
    bob = margined["accounts"][1]
    assert bob["positions"][0]["bankruptcy_price"] == pytest.approx(96000.0 + 1000.0 / 0.5)


def test_contracts_settled_in_different_currencies_go_to_separate_accounts(tmp_path: Path) -> None:
    positions = [_position("BTC/USDT:USDT", 1, "long"),
                 _position("BTC/USD:BTC", 100, "short", contractSize=10.0)]
    _, data = _import(tmp_path, positions, {"total": {"USDT": 1000.0, "BTC": 0.1}})
    assert [(a["id"], a["collateral"]) for a in data["accounts"]] == [("ccxt-USDT", {"USDT": 1000.0}),
                                                                       ("ccxt-BTC", {"BTC": 0.1})]


def test_closed_positions_are_skipped_and_the_result_validates() -> None:
    positions = [_position("BTC/USDT:USDT", 0, "long"), _position("ETH/USDT:USDT", 2, "long", markPrice=3300.0)]
    result = ccxt_book(positions, as_of=datetime(2026, 11, 24, 8, tzinfo=UTC))
    parse_book(result.book)
    assert [i["id"] for i in result.book["instruments"]] == ["ETH/USDT:USDT"]


def test_stdout_yaml_loads_as_a_book(tmp_path: Path) -> None:
    path = _write(tmp_path, "positions.json", [_position("BTC/USDT:USDT", 1, "long")])
    result = CliRunner().invoke(app, ["import", "ccxt", str(path), "--as-of", "2026-11-25T00:00:00Z"])
    assert result.exit_code == 0, result.output
    (tmp_path / "out.yaml").write_text(result.stdout, encoding="utf-8")
    assert load_book(tmp_path / "out.yaml").as_of == datetime(2026, 11, 25, tzinfo=UTC)


@pytest.mark.parametrize(("change", "message"), [
    ({"contracts": "2"}, "positions.json: [1].contracts: must be a number"),
    ({"symbol": "BTCUSDT"}, "positions.json: [1].symbol: 'BTCUSDT' is not a ccxt unified symbol"),
    ({"side": "flat"}, "positions.json: [1].side: must be long or short"),
    ({"entryPrice": None}, "positions.json: [1].entryPrice: must be a number"),
    ({"contractSize": 0}, "positions.json: [1].contractSize: must be positive"),
    ({"marginMode": "portfolio"}, "positions.json: [1].marginMode: must be cross or isolated"),
    ({"symbol": "BTC/USD:BTC-251226-100000-C", "markPrice": None},
     "positions.json: [1].markPrice: an option needs its mark price"),
    ({"symbol": "BTC/USD:BTC-251226"}, "positions.json: [1].symbol: expired at 2025-12-26T08:00:00Z"),
])
def test_malformed_input_exits_2_naming_file_and_field(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    positions = [_position("BTC/USDT:USDT", 1, "long"), {**_position("ETH/USDT:USDT", 1, "long"), **change}]
    path = _write(tmp_path, "positions.json", positions)

    result = CliRunner().invoke(app, ["import", "ccxt", str(path)])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().startswith(str(tmp_path / message.split(":")[0]) + message[len("positions.json"):])


def test_bad_balances_name_the_balances_file(tmp_path: Path) -> None:
    positions = _write(tmp_path, "positions.json", [_position("BTC/USDT:USDT", 1, "long")])
    balances = _write(tmp_path, "balances.json", {"total": {"USDT": "lots"}})

    result = CliRunner().invoke(app, ["import", "ccxt", str(positions), "--balances", str(balances)])

    assert result.exit_code == 2
    assert result.stderr.strip() == f"{balances}: total.USDT: must be a number"


def test_a_currency_without_a_price_asks_for_index(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--index SOL=PRICE"):
        ccxt_book([_position("BTC/USDT:USDT", 1, "long")], {"total": {"SOL": 10.0}})
    result = ccxt_book([_position("BTC/USDT:USDT", 1, "long")], {"total": {"SOL": 10.0}}, index={"SOL": 150.0})
    assert result.book["market"]["index"]["SOL"] == 150.0
