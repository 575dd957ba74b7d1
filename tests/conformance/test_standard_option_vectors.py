"""Published Deribit standard-margin and Derive Standard Manager figures (shared/vectors/crypto-venues.json).

Restated here with their sources; book → resolve → `deribit-standard` model, several through the CLI.
Venue figures (which include a short option's mark) are compared with `venue_initial_margin` /
`venue_maintenance_margin`; the requirements themselves are on the equity footing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from marginkit.book import resolve
from marginkit.cli import app
from marginkit.io.book_file import parse_book
from marginkit.models.deribit_standard import margin
from marginkit.profiles import shipped_profile

AS_OF = "2026-11-24T08:00:00Z"


def run_margin(tmp_path: Path, book: dict[str, Any], profile: str) -> dict[str, Any]:
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(book))
    result = CliRunner().invoke(app, ["margin", str(path), "--profile", profile, "--json"])
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.parametrize(
    ("vector_id", "size_btc", "rate", "expected_btc"),
    [
        # im_rate = 2 % + 25 × 0.005 % = 2.125 %; IM = 0.02125 × 25 = 0.53125 BTC
        ("deribit.std.future_im.size_25btc", 25, 0.02125, 0.53125),
        # im_rate = 2 % + 350 × 0.005 % = 3.75 %; IM = 0.0375 × 350 = 13.125 BTC
        ("deribit.std.future_im.size_350btc", 350, 0.0375, 13.125),
    ],
)
@pytest.mark.parametrize("profile", ["deribit-standard-2022-01-11", "deribit-standard-legacy"])
def test_deribit_future_initial_margin(tmp_path: Path, vector_id: str, size_btc: float, rate: float,
                                       expected_btc: float, profile: str) -> None:
    # Source: https://test.deribit.com/pages/docs/futures (initial margin examples). A $10 inverse future at
    # 100,000: size_btc BTC = size_btc × 100,000 / 10 contracts.
    book = {
        "as_of": AS_OF,
        "instruments": [{"id": "BTC-26DEC26", "type": "future", "underlying": "BTC", "quote": "USD",
                         "settlement": "BTC", "inverse": True, "contract_size": 10,
                         "expiry": "2026-12-26T08:00:00Z"}],
        "market": {"index": {"BTC": 100000.0}, "marks": {"BTC-26DEC26": 100000.0}},
        "accounts": [{"id": "trader", "mode": "cross", "collateral": {"BTC": 50.0},
                      "positions": [{"instrument": "BTC-26DEC26", "quantity": size_btc * 10000,
                                     "entry_price": 100000}]}],
    }

    account = run_margin(tmp_path, book, profile)["accounts"][0]

    assert account["currency"] == "BTC"
    assert account["initial_margin"] == pytest.approx(expected_btc, abs=1e-12), vector_id
    assert account["initial_margin"] / size_btc == pytest.approx(rate, abs=1e-12)


def test_deribit_future_maintenance_margin_by_version() -> None:
    # venue-parameters.md §5, 25 BTC: 2022-01-11 MM rate 1 % + 25 × 0.005 % = 1.125 % → 0.28125 BTC (the help
    # centre's worked value); legacy docs 1.5 % + 0.125 % = 1.625 % → 0.40625 BTC.
    spec = parse_book({
        "as_of": AS_OF,
        "instruments": [{"id": "BTC-PERPETUAL", "type": "perpetual", "underlying": "BTC", "quote": "USD",
                         "settlement": "BTC", "inverse": True, "contract_size": 10}],
        "market": {"index": {"BTC": 100000.0}, "marks": {"BTC-PERPETUAL": 100000.0}},
        "accounts": [{"id": "t", "mode": "cross", "collateral": {"BTC": 5.0},
                      "positions": [{"instrument": "BTC-PERPETUAL", "quantity": -250000, "entry_price": 100000}]}],
    })
    book = resolve(spec)

    current = margin(book, shipped_profile("deribit-standard-2022-01-11"))
    legacy = margin(book, shipped_profile("deribit-standard-legacy"))

    assert current.maintenance_margin[0] == pytest.approx(0.28125, abs=1e-12)
    assert legacy.maintenance_margin[0] == pytest.approx(0.40625, abs=1e-12)


# Derive vectors: derivexyz/v2-core test/risk-managers/unit-tests/StandardManager/TestStandardManager_Option.t.sol
# @ 7736900d (params from test/config-test.sol); the upstream assertions use a 1 % relative tolerance, and marks
# are intrinsic (the test's vol feed is unset). ETH spot = forward = 1,500.
DERIVE_CASES = [
    # call K 1400 (ITM, OTM 0): IM = max(0.15 − 0, 0.10)·1500 + 100 = 325; MM = 0.075·1500 + 100 = 212.5
    ("derive.srm.isolated.short_call_atm", "call", 1400, 100.0, 325.0, 212.5),
    # call K 400: IM = 225 + 1100 = 1325; MM = 112.5 + 1100 = 1212.5 (upstream asserts 1212 at 1 %)
    ("derive.srm.isolated.short_call_itm", "call", 400, 1100.0, 1325.0, 1212.0),
    # call K 1600, OTM 100: IM = max(0.15 − 100/1500, 0.10)·1500 + 0 = 150; MM = 112.5
    ("derive.srm.isolated.short_call_otm", "call", 1600, 0.0, 150.0, 112.5),
    # put K 1600 (ITM 100): MM = max(0.075·1500, 0.075·100) + 100 = 212.5; IM = max(225 + 100, 1.05 × 212.5) = 325
    ("derive.srm.isolated.short_put_atm", "put", 1600, 100.0, 325.0, 212.0),
    # put K 3000: MM = 112.5 + 1500 = 1612.5; IM = max(225 + 1500, 1.05 × 1612.5 = 1693.1) = 1725
    ("derive.srm.isolated.short_put_itm", "put", 3000, 1500.0, 1725.0, 1612.0),
    # put K 1400, OTM 100: IM = max(max(0.0833, 0.10)·1500 + 0, 1.05 × 112.5 = 118.1) = 150; MM = 112.5
    ("derive.srm.isolated.short_put_otm", "put", 1400, 0.0, 150.0, 112.5),
]


def derive_book(option_type: str, strike: float, mark: float, quantity: float) -> dict[str, Any]:
    return {
        "as_of": AS_OF,
        "instruments": [{"id": "ETH-OPT", "type": "option", "option_type": option_type, "strike": strike,
                         "expiry": "2026-12-26T08:00:00Z", "underlying": "ETH", "quote": "USD",
                         "settlement": "USDC", "inverse": False, "contract_size": 1}],
        "market": {"index": {"ETH": 1500.0, "USDC": 1.0}, "marks": {"ETH-OPT": mark}},
        "accounts": [{"id": "isolated", "mode": "cross", "collateral": {"USDC": 10000.0},
                      "positions": [{"instrument": "ETH-OPT", "quantity": quantity, "entry_price": max(mark, 1.0)}]}],
    }


@pytest.mark.parametrize(("vector_id", "option_type", "strike", "mark", "initial", "maintenance"), DERIVE_CASES)
def test_derive_standard_manager_short_option(tmp_path: Path, vector_id: str, option_type: str, strike: float,
                                              mark: float, initial: float, maintenance: float) -> None:
    account = run_margin(tmp_path, derive_book(option_type, strike, mark, -1), "derive-standard")["accounts"][0]

    assert account["currency"] == "USD"
    assert account["components"]["venue_initial_margin"] == pytest.approx(initial, rel=0.01), vector_id
    assert account["components"]["venue_maintenance_margin"] == pytest.approx(maintenance, rel=0.01), vector_id
    # on the equity footing the short option's mark (already −mark in equity) is taken out
    assert account["initial_margin"] == pytest.approx(account["components"]["venue_initial_margin"] - mark, abs=1e-9)


@pytest.mark.parametrize(("vector_id", "option_type"), [("derive.srm.isolated.long_call_zero", "call"),
                                                         ("derive.srm.isolated.long_put_zero", "put")])
def test_derive_standard_manager_long_option_needs_nothing(vector_id: str, option_type: str) -> None:
    # K 1000 at spot 1500: the call's intrinsic mark is 500, the put's 0; a long option has no requirement.
    mark = 500.0 if option_type == "call" else 0.0
    book = resolve(parse_book(derive_book(option_type, 1000, mark, 1)))

    requirements = margin(book, shipped_profile("derive-standard"))

    assert requirements.components["venue_initial_margin"][0] == 0.0, vector_id
    assert requirements.components["venue_maintenance_margin"][0] == 0.0, vector_id
    assert requirements.initial_margin[0] == 0.0


def test_deribit_coin_settled_short_options_in_coin() -> None:
    # crypto-venues.md (c), per unit in coin, S = 100,000, two short BTC options of 1 BTC each:
    # call K 110,000 (OTM 10,000), mark 0.01: IM = max(0.15 − 0.1, 0.10) + 0.01 = 0.11; MM = 0.075 + 0.01 = 0.085
    # put K 90,000 (OTM 10,000), mark 0.02: MM = max(0.075, 0.075×0.02) + 0.02 = 0.095;
    #   IM = max(max(0.15 − 0.1, 0.10) + 0.02, 0.095) = 0.12
    spec = parse_book({
        "as_of": AS_OF,
        "instruments": [
            {"id": "C", "type": "option", "option_type": "call", "strike": 110000, "expiry": "2026-12-26T08:00:00Z",
             "underlying": "BTC", "quote": "USD", "settlement": "BTC", "inverse": True, "contract_size": 1},
            {"id": "P", "type": "option", "option_type": "put", "strike": 90000, "expiry": "2026-12-26T08:00:00Z",
             "underlying": "BTC", "quote": "USD", "settlement": "BTC", "inverse": True, "contract_size": 1},
        ],
        "market": {"index": {"BTC": 100000.0}, "marks": {"C": 0.01, "P": 0.02}},
        "accounts": [{"id": "t", "mode": "cross", "collateral": {"BTC": 1.0},
                      "positions": [{"instrument": "C", "quantity": -1, "entry_price": 0.01},
                                    {"instrument": "P", "quantity": -1, "entry_price": 0.02}]}],
    })

    requirements = margin(resolve(spec), shipped_profile("deribit-standard-2022-01-11"))

    assert requirements.components["venue_initial_margin"][0] == pytest.approx(0.11 + 0.12, abs=1e-15)
    assert requirements.components["venue_maintenance_margin"][0] == pytest.approx(0.085 + 0.095, abs=1e-15)
    # equity footing: less the marks 0.01 + 0.02
    assert requirements.initial_margin[0] == pytest.approx(0.23 - 0.03, abs=1e-15)
