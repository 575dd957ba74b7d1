"""Novation: two legs facing the clearing house, which stays flat; idempotent replays; refusals that change nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from marginkit.clearing.house import ClearingHouse
from marginkit.clearing.novation import Trade
from marginkit.errors import InputError
from marginkit.ledger import Ledger
from tests.clearing.helpers import HOUR, T0, account, clearing_spec, house

MEMBERS = [house("A"), house("B"), house("S", "span-crypto")]


def opened(ledger: Ledger) -> ClearingHouse:
    spec = clearing_spec(MEMBERS, [account("A.house", 500_000, {"BTC-FUT": 2}),
                                   account("B.house", 500_000, {"BTC-FUT": -2}),
                                   account("S.house", 500_000, mode="cross")])
    return ClearingHouse.open(spec, ledger)


def snapshot(clearing_house: ClearingHouse, ledger: Ledger) -> tuple[Any, ...]:
    """Everything a refused input must leave unchanged, in memory and in the ledger."""
    return (clearing_house.time, clearing_house.positions(), clearing_house.settlement_price.tolist(),
            clearing_house.cells.adjustment.tolist(), len(clearing_house.cycles), len(list(ledger.journal())),
            ledger.balances(include_zero=True))


def test_a_trade_becomes_two_legs_facing_the_clearing_house(ledger: Ledger) -> None:
    clearing_house = opened(ledger)

    result = clearing_house.novate([Trade("T1", "B.house", "A.house", "BTC-PERP", "0.5", 99_900)])

    assert result.novated == ("T1",)
    legs = [(e.body["buyer"], e.body["seller"], e.body["quantity"]) for e in ledger.journal()
            if e.key.startswith("ccp:novation:T1")]
    assert legs == [("B.house", "ccp", "0.5"), ("ccp", "A.house", "0.5")]
    assert clearing_house.positions()["B.house"] == {"BTC-FUT": Decimal(-2), "BTC-PERP": Decimal("0.5")}
    assert clearing_house.house_position() == {"BTC-FUT": 0, "BTC-PERP": 0, "ETH-FUT": 0}
    assert "ccp" not in ledger.balances()  # flat in every instrument: no balance left
    assert ledger.verify() == []


def test_novating_the_same_trade_again_is_a_no_op_and_other_terms_under_its_id_are_refused(ledger: Ledger) -> None:
    clearing_house = opened(ledger)
    clearing_house.novate([Trade("T1", "B.house", "A.house", "BTC-FUT", 1, 99_900)])
    before = snapshot(clearing_house, ledger)

    again = clearing_house.novate([Trade("T1", "B.house", "A.house", "BTC-FUT", Decimal("1.0"), "99900")])
    with pytest.raises(InputError) as refusal:
        clearing_house.novate([Trade("T1", "B.house", "A.house", "BTC-FUT", 2, 99_900)])

    assert (again.novated, again.duplicates) == ((), 1)
    assert refusal.value.field == "trades[0].id"
    assert snapshot(clearing_house, ledger) == before


def test_a_second_house_replaying_the_same_inputs_changes_nothing_in_the_ledger(ledger: Ledger) -> None:
    first = opened(ledger)
    first.novate([Trade("T1", "B.house", "A.house", "BTC-FUT", 1, 99_900)])
    report = first.settle({"BTC-FUT": 100_200}, None, T0 + HOUR)
    journal = [e.key for e in ledger.journal()]
    balances = ledger.balances()

    second = opened(ledger)
    replayed = second.novate([Trade("T1", "B.house", "A.house", "BTC-FUT", 1, 99_900)])
    again = second.settle({"BTC-FUT": 100_200}, None, T0 + HOUR)

    assert replayed.replayed == 1
    assert (report.ledger_status, again.ledger_status) == ("applied", "duplicate")
    assert again.payments == report.payments
    assert [e.key for e in ledger.journal()] == journal
    assert ledger.balances() == balances
    assert second.positions() == first.positions()


def test_a_replayed_cycle_with_other_prices_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    opened(ledger).settle({"BTC-FUT": 100_200}, None, T0 + HOUR)
    second = opened(ledger)
    before = snapshot(second, ledger)

    with pytest.raises(InputError) as refusal:
        second.settle({"BTC-FUT": 100_300}, None, T0 + HOUR)

    assert refusal.value.field == "prices"
    assert "other payments" in refusal.value.message
    assert snapshot(second, ledger) == before


@pytest.mark.parametrize(("trade", "field", "message"), [
    (Trade("T9", "Z.house", "A.house", "BTC-FUT", 1, 100_000), "trades[1].buyer", "unknown clearing account"),
    (Trade("T9", "B.house", "nobody", "BTC-FUT", 1, 100_000), "trades[1].seller", "unknown clearing account"),
    (Trade("T9", "B.house", "A.house", "DOGE-FUT", 1, 100_000), "trades[1].instrument", "unknown instrument"),
    (Trade("T9", "B.house", "A.house", "BTC-FUT", 0, 100_000), "trades[1].quantity", "positive"),
    (Trade("T9", "B.house", "A.house", "BTC-FUT", float("nan"), 100_000), "trades[1].quantity", "finite"),
    (Trade("T9", "B.house", "A.house", "BTC-FUT", "0.000000001", 100_000), "trades[1].quantity", "decimals"),
    (Trade("T9", "B.house", "A.house", "BTC-FUT", 1, float("inf")), "trades[1].price", "finite"),
    (Trade("T9", "B.house", "A.house", "BTC-FUT", 1, -5), "trades[1].price", "positive"),
    (Trade("T9", "A.house", "A.house", "BTC-FUT", 1, 100_000), "trades[1].seller", "same account"),
    (Trade("T0", "B.house", "A.house", "BTC-FUT", 1, 100_000), "trades[1].id", "twice"),
    (Trade("T 9", "B.house", "A.house", "BTC-FUT", 1, 100_000), "trades[1].id", "printable"),
    (Trade("T9", "S.house", "A.house", "BTC-PERP", 1, 100_000), "trades[1].buyer", "cannot margin"),
])
def test_bad_trades_are_refused_by_field_and_change_nothing(ledger: Ledger, trade: Trade, field: str,
                                                             message: str) -> None:
    clearing_house = opened(ledger)
    before = snapshot(clearing_house, ledger)
    good = Trade("T0", "B.house", "A.house", "BTC-FUT", 1, 100_000)

    with pytest.raises(InputError) as refusal:
        clearing_house.novate([good, trade])

    assert refusal.value.field == field
    assert message in refusal.value.message
    assert snapshot(clearing_house, ledger) == before


@pytest.mark.parametrize(("prices", "funding", "time", "field", "message"), [
    ({"BTC-FUT": float("nan")}, None, T0 + HOUR, "prices.BTC-FUT", "finite"),
    ({"BTC-FUT": float("inf")}, None, T0 + HOUR, "prices.BTC-FUT", "finite"),
    ({"BTC-FUT": 0.0}, None, T0 + HOUR, "prices.BTC-FUT", "positive"),
    ({"BTC-FUT": True}, None, T0 + HOUR, "prices.BTC-FUT", "number"),
    ({"BTC-FUT": 100_000, "DOGE": 1.0}, None, T0 + HOUR, "prices.DOGE", "unknown instrument"),
    ({"BTC-PERP": 100_000}, None, T0 + HOUR, "prices.BTC-FUT", "missing"),
    ({"BTC-FUT": 100_000}, {"BTC-FUT": 0.001}, T0 + HOUR, "funding_rates.BTC-FUT", "perpetuals only"),
    ({"BTC-FUT": 100_000}, {"BTC-PERP": float("nan")}, T0 + HOUR, "funding_rates.BTC-PERP", "finite"),
    ({"BTC-FUT": 100_000}, None, T0, "time", "after the last settlement"),
    ({"BTC-FUT": 100_000}, None, "2026-11-24T09:00:00", "time", "time zone"),
])
def test_bad_cycle_inputs_are_refused_by_field_and_change_nothing(ledger: Ledger, prices: dict[str, Any],
                                                                  funding: dict[str, float] | None, time: Any,
                                                                  field: str, message: str) -> None:
    clearing_house = opened(ledger)
    clearing_house.novate([Trade("T1", "B.house", "A.house", "BTC-FUT", 1, 99_900)])
    before = snapshot(clearing_house, ledger)

    with pytest.raises(InputError) as refusal:
        clearing_house.settle(prices, funding, time)

    assert refusal.value.field == field
    assert message in refusal.value.message
    assert snapshot(clearing_house, ledger) == before


def test_a_bad_index_price_is_refused(ledger: Ledger) -> None:
    clearing_house = opened(ledger)
    before = snapshot(clearing_house, ledger)

    with pytest.raises(InputError) as refusal:
        clearing_house.settle({"BTC-FUT": 100_000}, None, T0 + HOUR, index={"BTC": -1.0})

    assert refusal.value.field == "index.BTC"
    assert snapshot(clearing_house, ledger) == before


def test_a_book_that_is_not_flat_is_refused(ledger: Ledger) -> None:
    spec = clearing_spec(MEMBERS, [account("A.house", 1, {"BTC-FUT": 2}), account("B.house", 1, {"BTC-FUT": -1}),
                                   account("S.house", 1, mode="cross")])

    with pytest.raises(InputError) as refusal:
        ClearingHouse(spec, ledger)

    assert refusal.value.field == "book.accounts"
    assert "BTC-FUT" in refusal.value.message


def test_instruments_a_batch_brings_are_probed_together_and_only_the_uncovered_one_is_refused(ledger: Ledger) -> None:
    clearing_house = opened(ledger)
    batch = [Trade("F1", "S.house", "A.house", "BTC-FUT", 1, 100_000),
             Trade("F2", "S.house", "B.house", "ETH-FUT", 1, 4_000),
             Trade("P1", "S.house", "A.house", "BTC-PERP", 1, 100_000)]

    with pytest.raises(InputError) as refusal:
        clearing_house.novate(batch)
    result = clearing_house.novate(batch[:2])

    # SPAN margins futures, not perpetuals: the third trade is refused, the two futures trades then go through.
    assert refusal.value.field == "trades[2].buyer"
    assert "perpetuals" in refusal.value.message
    assert result.novated == ("F1", "F2")


def test_an_opening_quantity_finer_than_the_lot_is_refused_by_field(ledger: Ledger) -> None:
    spec = clearing_spec(MEMBERS, [account("A.house", 1, {"BTC-FUT": 2}),
                                   account("B.house", 1, {"BTC-FUT": -2, "ETH-FUT": 1e-9}),
                                   account("S.house", 1, {"ETH-FUT": -1e-9}, mode="cross")])

    with pytest.raises(InputError) as refusal:
        ClearingHouse(spec, ledger)

    assert refusal.value.field == "book.accounts[1].positions[1].quantity"
