"""The ledger's pure domain: exact amounts, refusals, balanced postings, rounding at the boundary."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marginkit.ledger import DEFAULT_ASSETS, Asset, LedgerRefusal, make_operation, round_credit, round_requirement
from marginkit.ledger.journal import format_decimal, parse_decimal, postings, to_minor

ASSETS = {name: Asset(name, decimals) for name, decimals in DEFAULT_ASSETS.items()} | {
    "BTC-PERP": Asset("BTC-PERP", 3, "instrument")}


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e", "", "1,5", "0x10", " ", "1.2.3"])
def test_non_numbers_are_refused(value: str) -> None:
    with pytest.raises(LedgerRefusal, match="amount"):
        parse_decimal(value, "amount")


@pytest.mark.parametrize("value", [1.5, True, None, [1], Decimal("NaN"), Decimal("Infinity")])
def test_floats_and_non_finite_values_are_refused(value: object) -> None:
    with pytest.raises(LedgerRefusal):
        parse_decimal(value, "amount")


@pytest.mark.parametrize("value", ["1e-999999999999999999", "1e41", "-3E+999999"])
def test_amounts_beyond_the_ledgers_range_are_refused_before_any_arithmetic(value: str) -> None:
    with pytest.raises(LedgerRefusal, match="range") as caught:
        parse_decimal(value, "amount")
    assert caught.value.field == "amount"


def test_an_amount_whose_scaling_underflows_is_refused_not_written_as_zero() -> None:
    with pytest.raises(LedgerRefusal, match="decimals"):
        to_minor(Decimal("1e-999999999999999999"), ASSETS["USDC"], "amount")


def test_too_many_decimals_is_refused_and_exact_amounts_are_minor_units() -> None:
    usd = ASSETS["USD"]
    assert to_minor(Decimal("100.25"), usd, "amount") == 10025
    assert to_minor(Decimal("1E+3"), usd, "amount") == 100000
    with pytest.raises(LedgerRefusal, match="more than 2 decimals"):
        to_minor(Decimal("0.001"), usd, "amount")
    with pytest.raises(LedgerRefusal, match="too large"):
        to_minor(Decimal("1e30"), usd, "amount")


@pytest.mark.parametrize(("fields", "field"), [
    ({"account": "a", "asset": "USD", "amount": "-1"}, "amount"),
    ({"account": "a", "asset": "USD", "amount": "0"}, "amount"),
    ({"account": "a", "asset": "USD"}, "amount"),
    ({"account": "@external", "asset": "USD", "amount": "1"}, "account"),
    ({"account": "a b", "asset": "USD", "amount": "1"}, "account"),
    ({"account": "a", "asset": "USD", "amount": "1", "extra": 1}, "extra"),
])
def test_bad_deposits_name_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(LedgerRefusal) as refusal:
        make_operation("deposit", "k", fields)
    assert refusal.value.field == field


def test_bad_keys_and_kinds_are_refused() -> None:
    with pytest.raises(LedgerRefusal, match="key"):
        make_operation("deposit", "", {"account": "a", "asset": "USD", "amount": "1"})
    with pytest.raises(LedgerRefusal, match="op"):
        make_operation("mint", "k", {})


def test_unknown_asset_and_instrument_are_refused() -> None:
    with pytest.raises(LedgerRefusal, match="unknown asset 'XYZ'"):
        postings(make_operation("deposit", "k", {"account": "a", "asset": "XYZ", "amount": "1"}), ASSETS)
    trade = make_operation("trade", "t", {"buyer": "a", "seller": "b", "instrument": "USD", "quantity": "1",
                                          "price": "10"})
    with pytest.raises(LedgerRefusal, match="unknown instrument 'USD'"):
        postings(trade, ASSETS)


@pytest.mark.parametrize(("kind", "fields"), [
    ("deposit", {"account": "a", "asset": "USD", "amount": "10.5"}),
    ("withdraw", {"account": "a", "asset": "BTC", "amount": "0.00000001"}),
    ("transfer", {"from": "a", "to": "b", "asset": "USDT", "amount": "3"}),
    ("trade", {"buyer": "a", "seller": "b", "instrument": "BTC-PERP", "quantity": "0.5", "price": "95000",
               "cash_asset": "USD", "cash_amount": "12.34"}),
    ("fee", {"account": "a", "asset": "USD", "amount": "0.01"}),
    ("funding", {"account": "a", "asset": "USD", "amount": "-2.5", "instrument": "BTC-PERP"}),
    ("realised_pnl", {"account": "a", "asset": "USD", "amount": "7"}),
    ("variation_margin", {"asset": "USD", "payments": {"a": "5", "b": "-3", "c": "-2"}}),
    ("liquidation_transfer", {"from": "a", "to": "b", "asset": "USD", "amount": "1"}),
    ("insurance_fund", {"account": "a", "asset": "USD", "amount": "-4"}),
])
def test_every_operation_posts_balanced_legs_per_asset(kind: str, fields: dict[str, object]) -> None:
    legs = postings(make_operation(kind, "k", fields), ASSETS)

    assert legs
    for asset in {leg.asset for leg in legs}:
        assert sum(leg.amount for leg in legs if leg.asset == asset) == 0


def test_variation_margin_must_sum_to_zero() -> None:
    with pytest.raises(LedgerRefusal, match="sum to zero"):
        make_operation("variation_margin", "k", {"asset": "USD", "payments": {"a": "5", "b": "-4"}})


def test_same_content_same_hash_whatever_the_spelling() -> None:
    a = make_operation("deposit", "k", {"account": "a", "asset": "USD", "amount": "1.50"})
    b = make_operation("deposit", "k", {"account": "a", "asset": "USD", "amount": Decimal("1.5")})
    c = make_operation("deposit", "k", {"account": "a", "asset": "USD", "amount": "1.51"})

    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_requirements_round_up_and_credits_round_down() -> None:
    usd = ASSETS["USD"]
    # 10.001 owed is 10.01; 10.009 paid out is 10.00 (never lose a unit to the venue's counterparty)
    assert round_requirement(Decimal("10.001"), usd) == Decimal("10.01")
    assert round_credit(Decimal("10.009"), usd) == Decimal("10.00")
    assert round_requirement(-0.001, usd) == Decimal("0.00")
    assert format_decimal(Decimal("-0.00")) == "0"
