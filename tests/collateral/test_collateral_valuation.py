"""Collateral valuation (docs/collateral.md): schedules, loans, stablecoins at index, chains, credit tiers.

Published vectors restated from crypto-venues.md (g) / vectors `bitget.collateral.*` and `bit.collateral.*`;
every other expected figure is computed by hand in the comment above its assertion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from marginkit.book import Book, resolve
from marginkit.collateral import (
    CollateralSchedule,
    CollateralValuation,
    load_collateral_schedule,
    parse_collateral_profile,
    value_collateral,
)
from marginkit.errors import InputError
from marginkit.io import parse_book
from marginkit.io.profile_file import Profile

Data = dict[str, Any]
AS_OF = "2026-11-24T08:00:00Z"


def book(index: dict[str, float], *accounts: Data, chain_status: dict[str, str] | None = None) -> Book:
    market: Data = {"index": index}
    if chain_status:
        market["chain_status"] = chain_status
    return resolve(parse_book({"as_of": AS_OF, "instruments": [], "market": market, "accounts": list(accounts)}))


def account(account_id: str = "a", **fields: Any) -> Data:
    return {"id": account_id, "mode": "cross", **fields}


def schedule(parameters: Data, name: str = "test-collateral") -> CollateralSchedule:
    return parse_collateral_profile(Profile("collateral", name, "test", "written for this test", parameters))


def lot_value(valuation: CollateralValuation, resolved: Book, account_index: int, asset: str,
              chain: str | None = None, field: str = "maintenance_value") -> float:
    chain_index = -1 if chain is None else resolved.chains.index(chain)
    mask = ((valuation.lot_account == account_index) & (valuation.lot_asset == resolved.asset_index[asset])
            & (valuation.lot_chain == chain_index))
    assert mask.sum() == 1
    return float(getattr(valuation, field)[mask][0])


# --- Published vectors -------------------------------------------------------------------------------------

def bands(rows: list[tuple[float, float | None, float]]) -> list[Data]:
    """The vector's {from, to, ratio} bands as profile bands (each starts where the previous ends)."""
    return [{"up_to": to, "ratio": ratio} for _, to, ratio in rows]


def test_bitget_btc_plus_apt_vector() -> None:
    # bitget.collateral.btc_plus_apt (published: Bitget cross-margin collateral ratio page, examples 1 and 2):
    # 1 BTC @ 50,000 (ratio 1 up to $5M) + 60,000 APT @ 1 (0.8 up to $50k, then 0)
    # → 50,000 + 50,000 × 0.8 = 90,000 USD.
    profile = schedule({"assets": {
        "BTC": {"schedule": "banded", "bands": bands([(0, 5_000_000, 1.0)])},
        "APT": {"schedule": "banded", "bands": bands([(0, 50_000, 0.8), (50_000, None, 0.0)])},
    }})
    resolved = book({"BTC": 50_000, "APT": 1}, account(collateral={"BTC": 1, "APT": 60_000}))

    valuation = value_collateral(resolved, profile)

    assert valuation.account_initial_value[0] == pytest.approx(90_000, abs=1e-6)
    assert valuation.account_maintenance_value[0] == pytest.approx(90_000, abs=1e-6)


def test_bitget_usdt_11m_vector() -> None:
    # bitget.collateral.usdt_11m (published, same page): 11M USDT → 5M × 1 + 5M × 0.98 + 1M × 0.975 = 10,875,000.
    profile = schedule({"assets": {"USDT": {"schedule": "banded", "bands": bands(
        [(0, 5_000_000, 1.0), (5_000_000, 10_000_000, 0.98), (10_000_000, 20_000_000, 0.975)])}}})
    resolved = book({"USDT": 1}, account(collateral={"USDT": 11_000_000}))

    assert value_collateral(resolved, profile).account_initial_value[0] == pytest.approx(10_875_000, abs=1e-6)


def test_bitget_vectors_with_the_shipped_profile() -> None:
    # The shipped bitget-collateral profile carries the same published bands: 90,000 and 10,875,000.
    resolved = book({"BTC": 50_000, "APT": 1, "USDT": 1}, account("x", collateral={"BTC": 1, "APT": 60_000}),
                    account("y", collateral={"USDT": 11_000_000}))

    valuation = value_collateral(resolved, load_collateral_schedule("bitget-collateral"))

    assert valuation.account_maintenance_value == pytest.approx([90_000, 10_875_000], abs=1e-6)


BIT_INDEX = {"BTC": 37496.76318, "FLOKI": 3.2118265e-05, "IOTX": 0.02507838032, "PEPE": 1.109749128e-06,
             "RSS3": 0.1497739099, "USDT": 1.000296667}
BIT_BALANCES = {"BTC": 3.136088934, "FLOKI": 14000, "IOTX": 5, "PEPE": 100000, "RSS3": 4, "USDT": 347974.9709}


def test_bit_um_account_vector() -> None:
    # bit.collateral.um_account (published: BIT help center 'What is Haircut Ratio?', table example):
    # value = quantity × USD index × (1 − haircut): BTC 3.136088934 × 37,496.76318 × 0.98 = 115,241.3204;
    # USDT 347,974.9709 × 1.000296667 × 0.999 = 347,730.1252 (page; recomputed 347,730.12539); haircut 1 → 0;
    # total 462,971.4456 (tolerance 0.001, the vector's).
    resolved = book(BIT_INDEX, account(collateral=BIT_BALANCES))

    valuation = value_collateral(resolved, load_collateral_schedule("bit-collateral"))

    expected = {"BTC": 115241.3204, "FLOKI": 0, "IOTX": 0, "PEPE": 0, "RSS3": 0, "USDT": 347730.1252}
    for asset, value in expected.items():
        assert lot_value(valuation, resolved, 0, asset) == pytest.approx(value, abs=1e-3)
        assert lot_value(valuation, resolved, 0, asset, field="initial_value") == pytest.approx(value, abs=1e-3)
    assert valuation.account_initial_value[0] == pytest.approx(462971.4456, abs=1e-3)


# --- Hand-computed schedules --------------------------------------------------------------------------------

def test_tiered_by_quantity_tax_bracket() -> None:
    # bybit-uta-collateral BTC bands by quantity: 0–10: 0.98, 10–20: 0.95, 20–50: 0.90 (illustrative), >50: 0.
    # 25 BTC → 10 × 0.98 + 10 × 0.95 + 5 × 0.90 = 23.8 BTC × 40,000 = 952,000.
    # 60 BTC → 9.8 + 9.5 + 30 × 0.9 = 46.3 BTC (the 10 above 50 count 0) × 40,000 = 1,852,000.
    resolved = book({"BTC": 40_000, "USDT": 1}, account("x", collateral={"BTC": 25}),
                    account("y", collateral={"BTC": 60}))

    valuation = value_collateral(resolved, load_collateral_schedule("bybit-uta-collateral"))

    assert valuation.account_maintenance_value == pytest.approx([952_000, 1_852_000], rel=1e-12)


def test_banded_above_the_last_cap_counts_nothing() -> None:
    # USD bands 0–100: 1.0, 100–300: 0.5 and no band above 300: 500 USD of XYZ @ 2 (250 coins)
    # → 100 + 200 × 0.5 = 200.
    profile = schedule({"assets": {"XYZ": {"schedule": "banded", "bands": [
        {"up_to": 100, "ratio": 1.0}, {"up_to": 300, "ratio": 0.5}]}}})
    resolved = book({"XYZ": 2}, account(collateral={"XYZ": 250}))

    assert value_collateral(resolved, profile).account_initial_value[0] == pytest.approx(200, rel=1e-12)


def test_flat_with_separate_initial_and_maintenance_haircuts() -> None:
    # XYZ flat, initial haircut 0.3, maintenance 0.1: 1,000 XYZ @ 2 → IM 2,000 × 0.7 = 1,400; MM 2,000 × 0.9 = 1,800.
    profile = schedule({"assets": {"XYZ": {"schedule": "flat", "initial_haircut": 0.3, "maintenance_haircut": 0.1}}})
    resolved = book({"XYZ": 2}, account(collateral={"XYZ": 1000}))

    valuation = value_collateral(resolved, profile)

    assert valuation.account_initial_value[0] == pytest.approx(1400, rel=1e-12)
    assert valuation.account_maintenance_value[0] == pytest.approx(1800, rel=1e-12)


def test_unlisted_assets_use_the_default_schedule_or_full_value() -> None:
    # default flat haircut 0.5: 100 ABC @ 3 → 150; without a default, ABC counts at 300.
    resolved = book({"ABC": 3}, account(collateral={"ABC": 100}))

    with_default = schedule({"default": {"schedule": "flat", "haircut": 0.5}})
    without = schedule({})

    assert value_collateral(resolved, with_default).account_initial_value[0] == pytest.approx(150)
    assert value_collateral(resolved, without).account_initial_value[0] == pytest.approx(300)


def test_a_loan_counts_at_full_value() -> None:
    # bit-collateral: BTC haircut 0.02 applies to the positive balance only (Bybit, Binance PM: liabilities at
    # 100%): −1 BTC @ 37,496.76318 → −37,496.76318 (not × 0.98); +10,000 USDT @ 1 → 10,000 × 0.999 = 9,990.
    resolved = book({"BTC": 37496.76318, "USDT": 1.0}, account(collateral={"BTC": -1, "USDT": 10_000}))

    valuation = value_collateral(resolved, load_collateral_schedule("bit-collateral"))

    assert lot_value(valuation, resolved, 0, "BTC", field="initial_value") == pytest.approx(-37496.76318)
    assert lot_value(valuation, resolved, 0, "BTC") == pytest.approx(-37496.76318)
    assert valuation.account_initial_value[0] == pytest.approx(9990 - 37496.76318)


def test_a_depegged_stablecoin_is_valued_at_its_index() -> None:
    # USDT at 0.97: 100,000 USDT under bit-collateral → 100,000 × 0.97 × 0.999 = 96,903 (not 99,900).
    resolved = book({"USDT": 0.97}, account(collateral={"USDT": 100_000}))

    valuation = value_collateral(resolved, load_collateral_schedule("bit-collateral"))

    assert valuation.account_market_value[0] == pytest.approx(97_000)
    assert valuation.account_initial_value[0] == pytest.approx(96_903)


def test_no_profile_values_every_balance_at_index() -> None:
    # Without a collateral profile: Σ balance × index, chains without effect: 2 × 50,000 − 1,000 = 99,000.
    resolved = book({"BTC": 50_000, "USDT": 1}, account(collateral={"BTC": 2, "USDT": -1000},
                                                        collateral_chains={"BTC": {"bitcoin": 2}}),
                    chain_status={"bitcoin": "halted"})

    valuation = value_collateral(resolved)

    assert valuation.account_initial_value[0] == valuation.account_maintenance_value[0] == pytest.approx(99_000)


# --- Chains --------------------------------------------------------------------------------------------------

def chain_book(deposit_age_seconds: float, status: str = "active") -> Book:
    """10,000 USDT: 4,000 on tron, 5,000 on ethereum (2,000 of it a deposit), 1,000 on no chain."""
    moment = np.datetime64("2026-11-24T08:00:00") - np.timedelta64(int(deposit_age_seconds), "s")
    return book({"USDT": 1.0}, account(
        collateral={"USDT": 10_000},
        collateral_chains={"USDT": {"tron": 4000, "ethereum": 5000}},
        deposits=[{"asset": "USDT", "chain": "ethereum", "amount": 2000, "time": f"{moment}Z"}]),
        chain_status={"tron": status})


def test_chains_finality_halt_and_add_on() -> None:
    # example-cross-chain-collateral: USDT initial haircut 0.01, maintenance 0; tron add-on 0.01, ethereum
    # finality 768 s. The 2,000 deposited 100 s ago is not final; tron is halted.
    # IM: no chain 1,000 × 0.99 = 990; ethereum 3,000 × 0.99 = 2,970; tron halted 0 → 3,960.
    # MM: 1,000 + 3,000 + tron 4,000 × (1 − 0.01) = 3,960 → 7,960.
    resolved = chain_book(100, status="halted")

    valuation = value_collateral(resolved, load_collateral_schedule("example-cross-chain-collateral"))

    assert lot_value(valuation, resolved, 0, "USDT", "ethereum", "pending") == 2000
    assert lot_value(valuation, resolved, 0, "USDT", "tron", "initial_value") == 0
    assert lot_value(valuation, resolved, 0, "USDT", "tron") == pytest.approx(3960)
    assert valuation.account_initial_value[0] == pytest.approx(3960)
    assert valuation.account_maintenance_value[0] == pytest.approx(7960)


def test_a_final_deposit_counts_and_an_active_chain_counts_for_initial_margin() -> None:
    # Deposit 1,000 s old (> 768 s): final. Tron active: IM = (1,000 + 5,000) × 0.99 + 4,000 × 0.99 × 0.99
    # = 5,940 + 3,920.4 = 9,860.4; MM = 6,000 + 3,960 = 9,960.
    resolved = chain_book(1000)

    valuation = value_collateral(resolved, load_collateral_schedule("example-cross-chain-collateral"))

    assert valuation.account_initial_value[0] == pytest.approx(9860.4)
    assert valuation.account_maintenance_value[0] == pytest.approx(9960)


def test_a_banded_schedule_applies_to_the_total_across_chains() -> None:
    # example-cross-chain-collateral ETH banded by USD (maintenance 0–10M: 0.95, 10M–50M: 0.85): 5,000 ETH @ 3,000
    # = 15M across ethereum (3,000) and arbitrum (2,000). Account total: 10M × 0.95 + 5M × 0.85 = 13.75M, ratio
    # 13.75/15; ethereum 9M × 13.75/15 = 8.25M; arbitrum 6M × 13.75/15 × (1 − 0.005) = 5,472,500.
    resolved = book({"ETH": 3000.0}, account(collateral={"ETH": 5000},
                                             collateral_chains={"ETH": {"ethereum": 3000, "arbitrum": 2000}}))

    valuation = value_collateral(resolved, load_collateral_schedule("example-cross-chain-collateral"))

    assert lot_value(valuation, resolved, 0, "ETH", "ethereum") == pytest.approx(8_250_000)
    assert lot_value(valuation, resolved, 0, "ETH", "arbitrum") == pytest.approx(5_472_500)
    assert valuation.account_maintenance_value[0] == pytest.approx(13_722_500)


def test_a_chain_unknown_to_the_profile_names_the_field() -> None:
    resolved = book({"USDT": 1.0}, account(collateral={"USDT": 10}, collateral_chains={"USDT": {"base": 10}}))

    with pytest.raises(InputError) as caught:
        value_collateral(resolved, load_collateral_schedule("example-cross-chain-collateral"))

    assert caught.value.field == "accounts[0].collateral_chains.USDT.base"


# --- Credit tiers ---------------------------------------------------------------------------------------------

def test_concentration_limit_of_the_default_tier() -> None:
    # example-cross-chain-collateral, default tier standard: concentration limit 0.6, USDT exempt.
    # BTC 1 @ 50,000, tiered IM ratio 0.95 → 47,500; USDT 10,000 × 0.99 = 9,900; total 57,400.
    # BTC may contribute 0.6 × 57,400 = 34,440: cut 13,060 → IM 34,440 + 9,900 = 44,340.
    # MM is not limited: 50,000 × 0.97 + 10,000 = 58,500.
    resolved = book({"BTC": 50_000.0, "USDT": 1.0}, account(collateral={"BTC": 1, "USDT": 10_000}))

    valuation = value_collateral(resolved, load_collateral_schedule("example-cross-chain-collateral"))

    assert valuation.credit_tier == ("standard",)
    assert lot_value(valuation, resolved, 0, "BTC", field="concentration_cut") == pytest.approx(13_060)
    assert valuation.account_initial_value[0] == pytest.approx(44_340)
    assert valuation.account_maintenance_value[0] == pytest.approx(58_500)


def test_credit_tier_multiplier_and_limit() -> None:
    # restricted: IM multiplier 1.5, limit 0.4: BTC may contribute 0.4 × 57,400 = 22,960 → IM 22,960 + 9,900.
    # prime: no limit → 57,400.
    resolved = book({"BTC": 50_000.0, "USDT": 1.0},
                    account("r", credit_tier="restricted", collateral={"BTC": 1, "USDT": 10_000}),
                    account("p", credit_tier="prime", collateral={"BTC": 1, "USDT": 10_000}))

    valuation = value_collateral(resolved, load_collateral_schedule("example-cross-chain-collateral"))

    assert valuation.initial_margin_multiplier == pytest.approx([1.5, 1.0])
    assert valuation.account_initial_value == pytest.approx([32_860, 57_400])


def test_an_unknown_credit_tier_names_the_field() -> None:
    resolved = book({"USDT": 1.0}, account(credit_tier="gold", collateral={"USDT": 1}))

    with pytest.raises(InputError) as caught:
        value_collateral(resolved, load_collateral_schedule("example-cross-chain-collateral"))

    assert caught.value.field == "accounts[0].credit_tier"


def test_valuation_is_vectorised_over_many_accounts() -> None:
    # 2,000 accounts × the Bitget USDT bands: account i holds (i + 1) × 10,000 USDT (≤ 20M, all in stated bands);
    # each equals the scalar tax-bracket sum.
    accounts = [account(f"a{i}", collateral={"USDT": (i + 1) * 10_000.0}) for i in range(2000)]
    resolved = book({"USDT": 1.0}, *accounts)

    valuation = value_collateral(resolved, load_collateral_schedule("bitget-collateral"))

    def scalar(x: float) -> float:
        caps = [(0, 5e6, 1.0), (5e6, 1e7, 0.98), (1e7, 2e7, 0.975)]
        return sum(max(min(x, hi) - lo, 0.0) * ratio for lo, hi, ratio in caps)

    expected = [scalar((i + 1) * 10_000.0) for i in range(2000)]
    assert valuation.account_initial_value == pytest.approx(expected, rel=1e-12)

