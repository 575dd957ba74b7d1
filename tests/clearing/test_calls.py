"""Initial-margin calls after a cycle: the deadline, meeting a call, and a missed deadline as a member's default.

A.house is long 1 BTC-PERP with 20,000 USD; B.house short it with 1,000,000. deribit-pm's initial margin on one
BTC perpetual at 95,000 is 16,150 (17 % of the notional), the same figure the model gives on its own.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from marginkit.clearing.house import ClearingHouse
from marginkit.clearing.novation import Trade
from marginkit.errors import InputError
from marginkit.ledger import Ledger
from tests.clearing.helpers import HOUR, T0, account, clearing_spec, house

SECOND = HOUR / 3600


def called(ledger: Ledger) -> ClearingHouse:
    spec = clearing_spec([house("A"), house("B")], [account("A.house", 20_000, {"BTC-PERP": 1}),
                                                    account("B.house", 1_000_000, {"BTC-PERP": -1})])
    clearing_house = ClearingHouse.open(spec, ledger)
    # BTC falls to 95,000: A pays 1 × (95,000 − 100,000) = −5,000 and holds 15,000 < IM 16,150.
    clearing_house.settle({"BTC-PERP": 95_000}, None, T0 + HOUR, index={"BTC": 95_000})
    return clearing_house


def test_a_shortfall_after_a_cycle_is_a_call_due_by_the_deadline(ledger: Ledger) -> None:
    clearing_house = called(ledger)

    [call] = clearing_house.cycles[-1].calls

    assert clearing_house.margins is not None
    assert clearing_house.margins.initial_margin.tolist() == pytest.approx([16_150.0, 16_150.0])
    assert (call.account, call.member, call.status) == ("A.house", "A", "open")
    assert (call.initial_margin, call.collateral, call.amount) == (Decimal("16150"), Decimal("15000"), Decimal("1150"))
    assert call.deadline == T0 + 2 * HOUR  # issued at the cycle, + im_call_deadline_seconds 3,600
    assert ledger.balances("A.house")["A.house"]["USD"] == Decimal("15000")


def test_a_missed_deadline_is_a_default(ledger: Ledger) -> None:
    clearing_house = called(ledger)

    at_deadline = clearing_house.advance(T0 + 2 * HOUR)
    [event] = clearing_house.advance(T0 + 2 * HOUR + SECOND)

    assert at_deadline == ()  # the deadline itself is still in time
    assert (event.member, event.calls, event.shortfall) == ("A", ("A.house@2026-11-24T09:00:00Z",), Decimal("1150"))
    assert clearing_house.defaults == (event,)
    assert [c.status for c in clearing_house.calls] == ["defaulted"]
    with pytest.raises(InputError) as late:
        clearing_house.meet_call("A.house", 1_150, time=T0 + 3 * HOUR)
    assert late.value.field == "account"  # the call is no longer open
    with pytest.raises(InputError) as refused:
        clearing_house.novate([Trade("T1", "A.house", "B.house", "BTC-PERP", 1, 95_000)])
    assert refused.value.field == "trades[0].buyer"
    assert "in default" in refused.value.message


def test_a_call_met_in_time_is_no_default(ledger: Ledger) -> None:
    clearing_house = called(ledger)

    call = clearing_house.meet_call("A.house", "1150", time=T0 + HOUR + 30 * 60 * SECOND)
    defaults = clearing_house.advance(T0 + 5 * HOUR)

    assert (call.status, call.collateral, call.amount) == ("met", Decimal("16150"), Decimal("0"))
    assert defaults == ()
    assert clearing_house.defaults == ()
    assert ledger.verify() == []


def test_a_partial_deposit_leaves_the_call_open_until_topped_up(ledger: Ledger) -> None:
    clearing_house = called(ledger)

    partial = clearing_house.meet_call("A.house", 1_000, time=T0 + HOUR + 10 * 60 * SECOND)
    full = clearing_house.meet_call("A.house", 150, time=T0 + HOUR + 20 * 60 * SECOND)

    assert (partial.status, partial.collateral, partial.amount) == ("open", Decimal("16000"), Decimal("150"))
    assert full.status == "met"


def test_a_deposit_after_the_deadline_is_refused(ledger: Ledger) -> None:
    clearing_house = called(ledger)
    operations = len(list(ledger.journal()))

    with pytest.raises(InputError) as refusal:
        clearing_house.meet_call("A.house", 1_150, time=T0 + 2 * HOUR + SECOND)

    assert refusal.value.field == "time"
    assert len(list(ledger.journal())) == operations


def test_a_deposit_made_in_the_ledger_directly_counts(ledger: Ledger) -> None:
    clearing_house = called(ledger)
    ledger.deposit("A.house", "USD", "2000", key="wire-1")

    defaults = clearing_house.advance(T0 + 3 * HOUR)

    assert defaults == ()
    assert [c.status for c in clearing_house.calls] == ["met"]


def test_a_cycle_before_the_deadline_can_meet_a_call(ledger: Ledger) -> None:
    clearing_house = called(ledger)

    # Back to 100,000 half an hour later: A receives 5,000 and holds 20,000 ≥ IM 17,000 at 100,000.
    report = clearing_house.settle({"BTC-PERP": 100_000}, None, T0 + HOUR + 30 * 60 * SECOND, index={"BTC": 100_000})

    assert report.calls == ()
    assert [c.status for c in clearing_house.calls] == ["met"]


def test_a_cycle_after_the_deadline_reports_the_default(ledger: Ledger) -> None:
    clearing_house = called(ledger)

    report = clearing_house.settle({"BTC-PERP": 95_000}, None, T0 + 24 * HOUR, index={"BTC": 95_000})

    assert [d.member for d in report.defaults] == ["A"]
    assert report.calls == ()  # a member in default gets no new call


@pytest.mark.parametrize(("account_id", "amount", "field"), [
    ("nobody", 1, "account"), ("B.house", 1, "account"), ("A.house", 0, "amount"), ("A.house", float("nan"), "amount"),
])
def test_bad_call_deposits_are_refused_by_field(ledger: Ledger, account_id: str, amount: float, field: str) -> None:
    clearing_house = called(ledger)

    with pytest.raises(InputError) as refusal:
        clearing_house.meet_call(account_id, amount, time=T0 + HOUR + SECOND)

    assert refusal.value.field == field
