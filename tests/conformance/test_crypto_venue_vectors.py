"""Published crypto-venue figures for the tiered model (shared/vectors/crypto-venues.json, restated here).

Each test names its vector id and source; the shared folder is not read at test time. Vectors with
positions go book → resolve → model, several through `marginkit margin --json`; parameter-only
vectors (bracket recursions, dYdX fractions) go through the profile loader and the model's functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from marginkit.accounts import account_state
from marginkit.book import resolve
from marginkit.cli import app
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import parse_profile
from marginkit.models import dydx_arithmetic as dydx
from marginkit.models.tiered import compile_tables, margin
from marginkit.models.tiered_parameters import maintenance_amounts, parse_tiered_parameters
from marginkit.profiles import shipped_profile

AS_OF = "2026-11-24T08:00:00Z"


def run_margin(tmp_path: Path, book: dict[str, Any], params: dict[str, Any] | None = None,
               profile: str | None = None) -> dict[str, Any]:
    """`marginkit margin BOOK --json` in-process; returns the parsed document."""
    book_path = tmp_path / "book.yaml"
    book_path.write_text(yaml.safe_dump(book))
    arguments = ["margin", str(book_path), "--json"]
    if params is not None:
        params_path = tmp_path / "params.yaml"
        params_path.write_text(yaml.safe_dump(params, allow_unicode=True))
        arguments += ["--params", str(params_path)]
    if profile is not None:
        arguments += ["--profile", profile]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def tiered_profile(brackets: list[dict[str, Any]], unit: str = "quote", underlying: str = "BTC",
                   **settings: Any) -> dict[str, Any]:
    return {
        "model": "tiered", "name": "test", "version": "test", "source": "test",
        "parameters": {"defaults": settings,
                       "underlyings": {underlying: {"notional_unit": unit, "brackets": brackets}}},
    }


# --- Binance bracket recursions (parameter-only) ---------------------------------------------------


def test_binance_usdm_ada_busd_cum_recursion() -> None:
    # Vector binance.tiers.usdm.ada_busd.cum_recursion; source: freqtrade tests/exchange/test_binance.py
    # (leverage-tier fixture for ADA/BUSD). Caps and rates from the vector; max_leverage does not enter
    # the recursion and is set to values satisfying rate < 1/leverage.
    caps_rates = [(100000, 0.025), (500000, 0.05), (1000000, 0.1), (2000000, 0.15), (5000000, 0.25),
                  (30000000, 0.5)]
    brackets = [{"max_notional": cap, "maintenance_rate": rate, "max_leverage": 1} for cap, rate in caps_rates]
    parameters = parse_tiered_parameters(parse_profile(tiered_profile(brackets, underlying="ADA")))

    amounts = maintenance_amounts(parameters.underlyings["ADA"].brackets or [])

    # cum_2 = 100000×(0.05−0.025) = 2500; cum_3 = 2500 + 500000×0.05 = 27500; cum_4 = 27500 + 1e6×0.05 = 77500;
    # cum_5 = 77500 + 2e6×0.1 = 277500; cum_6 = 277500 + 5e6×0.25 = 1527500
    assert amounts == pytest.approx([0, 2500, 27500, 77500, 277500, 1527500], abs=1e-6)


def test_binance_usdm_btcusdt_2021_03_18_cum_recursion() -> None:
    # Vector binance.tiers.usdm.btcusdt_2021_03_18.cum_recursion; source: Binance announcement "Updates to
    # Leverage and Margin Tiers of Binance Futures Contracts" (2021-03-18) and the cum values of Binance's
    # front end (gist highfestiva/b71e76f51eed84d56c1be8ebbcc286b5). The published cums are stated in the
    # profile, so the loader itself checks them against the recursion.
    rows = [(50000, 0.004, 125, 0), (250000, 0.005, 100, 50), (1000000, 0.01, 50, 1300),
            (10000000, 0.025, 20, 16300), (20000000, 0.05, 10, 266300), (50000000, 0.1, 5, 1266300),
            (100000000, 0.125, 4, 2516300), (200000000, 0.15, 3, 5016300), (300000000, 0.25, 2, 25016300),
            (500000000, 0.5, 1, 100016300)]
    brackets = [{"max_notional": c, "maintenance_rate": r, "max_leverage": lev, "maintenance_amount": cum}
                for c, r, lev, cum in rows]

    parameters = parse_tiered_parameters(parse_profile(tiered_profile(brackets)))
    amounts = maintenance_amounts(parameters.underlyings["BTC"].brackets or [])

    # cum_2 = 50000×0.001 = 50; cum_3 = 50 + 250000×0.005 = 1300; cum_4 = 1300 + 1e6×0.015 = 16300; …
    assert amounts == pytest.approx([row[3] for row in rows], abs=1e-6)


def test_binance_coinm_cum_step_level5() -> None:
    # Vector binance.tiers.coinm.btcusd.cum_step_level5; source: Binance FAQ on COIN-M maintenance amount.
    tables = compile_tables(parse_tiered_parameters(shipped_profile("binance-coinm")))
    level5 = 4  # zero-based row of level 5

    # cum_5 = floor_5 × (mmr_5 − mmr_4) + cum_4 = 50 × (0.05 − 0.025) + 0.56 = 1.81 BTC
    assert tables.amounts[0, level5] == pytest.approx(1.81, abs=1e-12)
    assert tables.amounts[0, level5 - 1] == pytest.approx(0.56, abs=1e-12)


def test_binance_coinm_position_300btc(tmp_path: Path) -> None:
    # Vector binance.tiers.coinm.btcusd.position_300btc (reconstructed table, published expected values);
    # source: Binance COIN-M maintenance-amount FAQ: a 300 BTC position is in the 0.125 bracket, cum 11.81 BTC.
    # Arrange: BTCUSD perpetual, $100 contracts; 150,000 contracts at mark 50,000 = 15,000,000/50,000 = 300 BTC.
    book = {
        "as_of": AS_OF,
        "instruments": [{"id": "BTCUSD_PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD",
                         "settlement": "BTC", "inverse": True, "contract_size": 100}],
        "market": {"index": {"BTC": 50000.0}, "marks": {"BTCUSD_PERP": 50000.0}},
        "accounts": [{"id": "faq", "mode": "cross", "collateral": {"BTC": 100.0},
                      "positions": [{"instrument": "BTCUSD_PERP", "quantity": 150000, "entry_price": 50000}]}],
    }

    document = run_margin(tmp_path, book, profile="binance-coinm")
    position = document["accounts"][0]["positions"][0]

    assert position["notional"] == pytest.approx(300.0, abs=1e-9)
    assert position["maintenance_rate"] == pytest.approx(0.125, abs=1e-9)
    assert position["maintenance_amount"] == pytest.approx(11.81, abs=1e-9)
    # MM = 300 × 0.125 − 11.81 = 25.69 BTC, the account's currency is the coin
    assert position["maintenance_margin"] == pytest.approx(25.69, abs=1e-9)
    assert document["accounts"][0]["currency"] == "BTC"


# --- Binance USDⓈ-M liquidation price ---------------------------------------------------------------

# Brackets for ETHUSDT whose sixth bracket (2M–5M notional) has mmr 0.1 and cum 135,365, the bracket
# the FAQ example uses at its liquidation notional (3683.979 × 1114.78 ≈ 4.11M). Brackets 1–5 are
# chosen so that the recursion gives exactly 135,365 there: 0 → 15 → 365 → 5,365 → 35,365 → 135,365.
ETH_BRACKETS = [
    {"max_notional": 10000, "maintenance_rate": 0.005, "max_leverage": 100},
    {"max_notional": 100000, "maintenance_rate": 0.0065, "max_leverage": 75},
    {"max_notional": 500000, "maintenance_rate": 0.01, "max_leverage": 50},
    {"max_notional": 1000000, "maintenance_rate": 0.02, "max_leverage": 25},
    {"max_notional": 2000000, "maintenance_rate": 0.05, "max_leverage": 10},
    {"max_notional": 5000000, "maintenance_rate": 0.1, "max_leverage": 5, "maintenance_amount": 135365},
    {"max_notional": 10000000, "maintenance_rate": 0.125, "max_leverage": 4},
]


def test_binance_usdm_isolated_ethusdt_liquidation_price(tmp_path: Path) -> None:
    # Vector binance.liq.usdm.official.isolated_ethusdt; source: Binance FAQ "How to Calculate Liquidation
    # Price of USDⓈ-M Contracts" (b3c689c1f50a44cabb3a84e663b81d93), same numbers in freqtrade's
    # test_liquidation_price_binance. Isolated one-way long, the whole wallet is the isolated wallet.
    book = {
        "as_of": AS_OF,
        "instruments": [{"id": "ETHUSDT", "type": "perpetual", "underlying": "ETH", "quote": "USDT",
                         "settlement": "USDT", "inverse": False, "contract_size": 1, "tick_size": 0.01}],
        "market": {"index": {"ETH": 1335.18, "USDT": 1.0}, "marks": {"ETHUSDT": 1335.18}},
        "accounts": [{"id": "faq", "mode": "isolated", "collateral": {"USDT": 1535443.01},
                      "isolated_margin": {"ETHUSDT": {"USDT": 1535443.01}},
                      "positions": [{"instrument": "ETHUSDT", "quantity": 3683.979, "entry_price": 1456.84}]}],
    }
    params = tiered_profile(ETH_BRACKETS, underlying="ETH", mm_basis="liquidation_price")

    document = run_margin(tmp_path, book, params=params)
    position = document["accounts"][0]["positions"][0]

    # LP = (WB + cum − |q|·EP)/(|q|·mmr − |q|) = (1535443.01 + 135365 − 3683.979×1456.84)/(3683.979×(0.1 − 1))
    #    = (1670808.01 − 5366968.96…)/(−3315.5811) = 1114.78 (published, 2 dp)
    assert position["liquidation_price"] == pytest.approx(1114.78, abs=0.005)
    assert position["bracket"] == 6


# --- Bybit ----------------------------------------------------------------------------------------------


def test_bybit_usdt_isolated_long_1btc_20000_50x(tmp_path: Path) -> None:
    # Vector bybit.usdt.isolated.long_1btc_20000_50x; source: Bybit help "Liquidation Price (USDT Contract)"
    # Example 1. Isolated long 1 BTC at 20,000 with 50x: position margin = IM = 20,000/50 = 400 USDT.
    book = {
        "as_of": AS_OF,
        "instruments": [{"id": "BTCUSDT", "type": "perpetual", "underlying": "BTC", "quote": "USDT",
                         "settlement": "USDT", "inverse": False, "contract_size": 1, "tick_size": 0.5}],
        "market": {"index": {"BTC": 20000.0, "USDT": 1.0}, "marks": {"BTCUSDT": 20000.0}},
        "accounts": [{"id": "example1", "mode": "isolated", "collateral": {"USDT": 400.0},
                      "positions": [{"instrument": "BTCUSDT", "quantity": 1, "entry_price": 20000,
                                     "leverage": 50}]}],
    }

    position = run_margin(tmp_path, book, profile="bybit-linear")["accounts"][0]["positions"][0]

    # IM = 20000/50 = 400; MM = 20000 × 0.005 − 0 = 100; LP = 20000 − (400 − 100)/1 = 19700
    assert position["initial_margin"] == pytest.approx(400.0, abs=1e-9)
    assert position["maintenance_margin"] == pytest.approx(100.0, abs=1e-9)
    assert position["liquidation_price"] == pytest.approx(19700.0, abs=1e-9)


def test_bybit_inverse_cross_legacy_long_10000_contracts_at_8000(tmp_path: Path) -> None:
    # Vector bybit.inverse.cross.legacy_long_10000c_8000; source: Bybit help 360039261334 "How to calculate
    # Liquidation Price (Inverse Contract)", cross-margin example. The legacy formula: the fee to close at
    # the bankruptcy price (rounded to 2 dp, as the page does) is part of maintenance margin, and the
    # published LP is the solution rounded up to the 0.5 tick (toward the mark).
    book = {
        "as_of": AS_OF,
        "instruments": [{"id": "BTCUSD", "type": "perpetual", "underlying": "BTC", "quote": "USD",
                         "settlement": "BTC", "inverse": True, "contract_size": 1, "tick_size": 0.5}],
        "market": {"index": {"BTC": 8000.0}, "marks": {"BTCUSD": 8000.0}},
        "accounts": [{"id": "example", "mode": "cross", "collateral": {"BTC": 0.5},
                      "positions": [{"instrument": "BTCUSD", "quantity": 10000, "entry_price": 8000}]}],
    }
    shipped = shipped_profile("bybit-inverse")
    params = {
        "model": "tiered", "name": "bybit-inverse-legacy", "version": "legacy", "source": shipped.source,
        "parameters": {**shipped.parameters, "defaults": {
            "formula_version": "bybit-inverse-legacy", "taker_fee_rate": 0.00075,
            "rounding": {"bankruptcy_price": {"mode": "nearest", "decimals": 2}, "liquidation_price": "toward_mark"},
        }},
    }

    position = run_margin(tmp_path, book, params=params)["accounts"][0]["positions"][0]

    # BP = (1 + 0.00075)·10000/(10000/8000 + 0.5) = 10007.5/1.75 = 5718.571… → 5718.57
    assert position["bankruptcy_price"] == pytest.approx(5718.57, abs=0.005)
    # 0.5 + 1.25 − 10000/LP = 1.25×0.005 + 10000×0.00075/5718.57 = 0.00625 + 0.0013115…
    # → 10000/LP = 1.7424385… → LP = 5739.08…, rounded up to the 0.5 tick: 5739.5
    assert position["liquidation_price"] == pytest.approx(5739.5, abs=1e-9)


# --- Deribit inverse P&L ----------------------------------------------------------------------------------


def test_deribit_inverse_pnl_long_600_to_700() -> None:
    # Vector deribit.inverse_pnl.long_600_to_700; source: https://www.deribit.com/docs/example-futures/
    # Buy 100 × $10 contracts at 600; marked at the exit price 700.
    spec = parse_book({
        "as_of": AS_OF,
        "instruments": [{"id": "BTC-PERPETUAL", "type": "perpetual", "underlying": "BTC", "quote": "USD",
                         "settlement": "BTC", "inverse": True, "contract_size": 10}],
        "market": {"index": {"BTC": 700.0}, "marks": {"BTC-PERPETUAL": 700.0}},
        "accounts": [{"id": "trader", "mode": "cross", "collateral": {"BTC": 0.0},
                      "positions": [{"instrument": "BTC-PERPETUAL", "quantity": 100, "entry_price": 600}]}],
    })
    profile = parse_profile(tiered_profile(
        [{"maintenance_rate": 0.0, "max_leverage": 25}], unit="coin", mm_basis="entry"))

    book = resolve(spec)
    requirements = margin(book, profile)
    state = account_state(book, requirements)

    # P&L = 1000 × (1/600 − 1/700) = 1000 × 100/420000 = 0.238095238 BTC
    assert book.position_value[0] == pytest.approx(0.238095238, abs=5e-7)
    # in USD at the exit price: 0.238095238 × 700 = 166.6667
    assert state.equity[0] * book.asset_price[book.asset_index["BTC"]] == pytest.approx(166.6667, abs=0.01)
    # IM 4 % of the coin notional at entry: 1000/600 × 0.04 = 0.0666667 BTC (the page truncates to 0.0666)
    assert requirements.initial_margin[0] == pytest.approx(0.0666667, abs=5e-7)


# --- dYdX v4 (parameter-only) --------------------------------------------------------------------------------

# Source of every dYdX vector: dydxprotocol/v4-chain protocol/x/perpetuals/types/liquidity_tier_test.go.


@pytest.mark.parametrize(
    ("vector_id", "initial_ppm", "fraction_ppm", "expected"),
    [
        ("dydx.v4.mmf_ppm.150000_800000", 150000, 800000, 120000),  # ⌊150000×800000/1e6⌋ = 120000
        ("dydx.v4.mmf_ppm.450000_770000", 450000, 770000, 346500),  # ⌊450000×770000/1e6⌋ = 346500
        ("dydx.v4.mmf_ppm.637239_289284", 637239, 289284, 184343),  # ⌊184343.3…⌋ = 184343
    ],
)
def test_dydx_maintenance_fraction_ppm(vector_id: str, initial_ppm: int, fraction_ppm: int, expected: int) -> None:
    assert dydx.maintenance_fraction_ppm(initial_ppm, fraction_ppm) == expected, vector_id


@pytest.mark.parametrize(
    ("vector_id", "notional", "initial_ppm", "open_interest", "lower", "upper", "expected"),
    [
        ("dydx.v4.imr_quote_quantums.base_20pct", 500000, 200000, 0, 0, 0, 100000),
        ("dydx.v4.imr_quote_quantums.base_50pct", 1000000, 500000, 0, 0, 0, 500000),
        ("dydx.v4.imr_quote_quantums.round_up_tiny", 1, 100000, 0, 0, 0, 1),  # ⌈0.1⌉ = 1
        ("dydx.v4.imr_quote_quantums.round_up_56_7243pct", 123456, 567243, 0, 0, 0, 70030),  # ⌈70029.…⌉
        ("dydx.v4.imr_quote_quantums.caps_zero_disable_scaling", 500000, 200000, 1500000000000, 0, 0, 100000),
        # IMF = 0.2 + (1.5e12 − 1e12)/(2e12 − 1e12) × 0.8 = 0.6 → 300000
        ("dydx.v4.imr_quote_quantums.oi_midway", 500000, 200000, 1500000000000, 1000000000000, 2000000000000,
         300000),
        ("dydx.v4.imr_quote_quantums.oi_above_upper_cap", 500000, 200000, 80000000000000, 25000000000000,
         50000000000000, 500000),
        ("dydx.v4.imr_quote_quantums.oi_at_lower_cap", 500000, 200000, 25000000000000, 25000000000000,
         50000000000000, 100000),
        # IMF = 0.2 + 3123456789123/35e12 × 0.8 = 0.27139329…; × 500000 = 135696.6… → 135697
        ("dydx.v4.imr_quote_quantums.oi_realistic", 500000, 200000, 28123456789123, 25000000000000,
         60000000000000, 135697),
    ],
)
def test_dydx_initial_margin_quote_quantums(vector_id: str, notional: int, initial_ppm: int, open_interest: int,
                                            lower: int, upper: int, expected: int) -> None:
    required = dydx.initial_margin_quote_quantums(notional, initial_ppm, open_interest, lower, upper)
    assert required == expected, vector_id


@pytest.mark.parametrize(
    ("vector_id", "open_interest", "lower", "upper", "expected"),
    [
        ("dydx.v4.adjusted_imf_ppm.oi_zero", 0, 1000000, 2000000, 200000),
        ("dydx.v4.adjusted_imf_ppm.oi_within", 1500000, 1000000, 2000000, 600000),
        # 200000 + 234567/1e6 × 800000 = 387653.6 → 387653
        ("dydx.v4.adjusted_imf_ppm.oi_within_rounded", 1234567, 1000000, 2000000, 387653),
        ("dydx.v4.adjusted_imf_ppm.oi_at_lower", 1000000, 1000000, 2000000, 200000),
        ("dydx.v4.adjusted_imf_ppm.oi_at_upper", 2000000, 1000000, 2000000, 1000000),
        ("dydx.v4.adjusted_imf_ppm.oi_above_upper", 2500000, 1000000, 2000000, 1000000),
        ("dydx.v4.adjusted_imf_ppm.no_caps", 1500000, 0, 0, 200000),
    ],
)
def test_dydx_adjusted_initial_margin_ppm(vector_id: str, open_interest: int, lower: int, upper: int,
                                          expected: int) -> None:
    assert dydx.adjusted_initial_margin_ppm(200000, open_interest, lower, upper) == expected, vector_id


def test_dydx_profile_tiers_give_the_published_maintenance_fractions() -> None:
    # dYdX genesis (venue-parameters.md §4): Large-Cap 20,000 × 600,000 → 12,000 ppm; Small-Cap 100,000 × 500,000
    # → 50,000 ppm; Safety 1,000,000 × 200,000 → 200,000 ppm.
    parameters = parse_tiered_parameters(shipped_profile("dydx-v4"))
    tiers = {tier.name: tier for tier in parameters.liquidity_tiers}

    fractions = {name: dydx.maintenance_fraction_ppm(t.initial_margin_ppm, t.maintenance_fraction_ppm)
                 for name, t in tiers.items()}

    assert fractions["Large-Cap"] == 12000
    assert fractions["Small-Cap"] == 50000
    assert fractions["Safety"] == 200000


def test_dydx_book_position_through_the_cli(tmp_path: Path) -> None:
    # Hand-computed: 0.1 BTC long at oracle 50,000 on the Large-Cap tier (IMF 2 %, maintenance fraction 60 %).
    book = {
        "as_of": AS_OF,
        "instruments": [{"id": "BTC-USD", "type": "perpetual", "underlying": "BTC", "quote": "USD",
                         "settlement": "USDC", "inverse": False, "contract_size": 1}],
        "market": {"index": {"BTC": 50000.0, "USDC": 1.0}, "marks": {"BTC-USD": 50000.0}},
        "accounts": [{"id": "subaccount-0", "mode": "cross", "collateral": {"USDC": 1000.0},
                      "positions": [{"instrument": "BTC-USD", "quantity": 0.1, "entry_price": 50000}]}],
    }

    account = run_margin(tmp_path, book, profile="dydx-v4")["accounts"][0]
    position = account["positions"][0]

    # notional = 0.1 × 50,000 = 5,000 USDC = 5e9 quote quantums; IMR = ⌈5e9 × 20000/1e6⌉ = 1e8 → 100 USDC;
    # MMR = ⌈1e8 × 600000/1e6⌉ = 6e7 → 60 USDC
    assert position["initial_margin"] == 100.0
    assert position["maintenance_margin"] == 60.0
    # cross LP (dYdX docs): p' = (e − s·p − MMR_o)/(|s|·MMF − s) = (1000 − 0.1×50000 − 0)/(0.1×0.012 − 0.1)
    #   = −4000/−0.0988 = 40485.83…
    assert position["liquidation_price"] == pytest.approx(4000 / 0.0988, rel=1e-12)
