"""Hand-computed settlement cycles: variation margin (from the last settlement and from trade prices), perpetual
funding, inverse contracts, the rounding rule, netting per member and origin, and netting efficiency."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from marginkit.clearing.house import ClearingHouse
from marginkit.clearing.novation import Trade
from marginkit.clearing.positions import LOTS_PER_CONTRACT, PositionCells
from marginkit.clearing.settlement import InstrumentTerms, cell_flows, journal_amounts, net, trade_adjustment
from marginkit.errors import InputError
from marginkit.ledger import Ledger
from tests.clearing.helpers import HOUR, T0, account, clearing_spec, house

TWO_MEMBERS = [
    {"id": "A", "accounts": [{"id": "A.house", "kind": "house", "profile": "deribit-pm"},
                             {"id": "A.C1", "kind": "client", "segregation": "individual", "profile": "deribit-pm"}]},
    house("B"),
]


def two_member_house(ledger: Ledger) -> ClearingHouse:
    # A.house long 2 BTC-FUT and A's client long 1 BTC-PERP; B.house short both (the book is flat).
    spec = clearing_spec(TWO_MEMBERS, [account("A.house", 1_000_000, {"BTC-FUT": 2}),
                                       account("A.C1", 1_000_000, {"BTC-PERP": 1}),
                                       account("B.house", 1_000_000, {"BTC-FUT": -2, "BTC-PERP": -1})])
    return ClearingHouse.open(spec, ledger)


def test_a_two_member_cycle_by_hand(ledger: Ledger) -> None:
    clearing_house = two_member_house(ledger)
    clearing_house.novate([Trade("T1", "A.house", "B.house", "BTC-FUT", 1, 100_500)])

    report = clearing_house.settle({"BTC-FUT": 101_000, "BTC-PERP": 99_000, "ETH-FUT": 4_000},
                                   {"BTC-PERP": 0.0001}, T0 + 8 * HOUR)

    # A.house BTC-FUT: 2 × (101,000 − 100,000) on the old position + 1 × (101,000 − 100,500) on the trade = 2,500.
    # A.C1 BTC-PERP: 1 × (99,000 − 100,000) = −1,000; funding −1 × 99,000 × 0.0001 = −9.90 (longs pay): −1,009.90.
    # B.house: −2,500 on BTC-FUT, +1,009.90 on BTC-PERP: −1,490.10.
    assert report.payments == {"A.house": Decimal("2500.00"), "A.C1": Decimal("-1009.90"),
                               "B.house": Decimal("-1490.10")}
    # The CCP pays out 2,500 and collects 1,009.90 + 1,490.10 = 2,500: nothing to round.
    assert (report.paid, report.collected, report.rounding) == (Decimal("2500"), Decimal("2500"), Decimal("0"))
    a, b = report.members
    # A: house +2,500 and client −1,009.90 settle apart (segregation): pays 1,009.90, receives 2,500, net +1,490.10.
    assert (a.house, a.client, a.pays, a.receives, a.net) == (
        Decimal("2500.00"), Decimal("-1009.90"), Decimal("1009.90"), Decimal("2500.00"), Decimal("1490.10"))
    assert (b.house, b.client, b.pays, b.receives, b.net) == (
        Decimal("-1490.10"), Decimal("0"), Decimal("1490.10"), Decimal("0"), Decimal("-1490.10"))
    # Gross, position by position: A pays 1,009.90 (PERP) and receives 2,500 (FUT); B the mirror.
    assert (a.gross_paid, a.gross_received) == (Decimal("1009.90"), Decimal("2500.00"))
    assert (b.gross_paid, b.gross_received) == (Decimal("2500.00"), Decimal("1009.90"))
    assert report.gross == Decimal("7019.80")  # 2 × (2,500 + 1,009.90)
    # Settled apart: 1 − (2,500 + 1,009.90 + 1,490.10) / 7,019.80 = 1 − 5,000 / 7,019.80.
    assert report.netting_efficiency == pytest.approx(1 - 5_000 / 7_019.80)
    # Netted together: 1 − (1,490.10 + 1,490.10) / 7,019.80.
    assert report.netting_efficiency_full == pytest.approx(1 - 2_980.20 / 7_019.80)
    assert report.variation_margin == Decimal("7000.00")  # |2,500| + |−1,000| + |−2,500| + |1,000|
    assert report.funding == Decimal("19.80")  # |−9.90| + |9.90|
    # Ledger: collateral moved by the payments; the clearing house stays flat in every instrument.
    balances = ledger.balances()
    assert balances["A.house"]["USD"] == Decimal("1002500")
    assert balances["A.C1"]["USD"] == Decimal("998990.10")
    assert balances["B.house"]["USD"] == Decimal("998509.90")
    assert balances["A.house"]["BTC-FUT"] == Decimal(3)
    assert "ccp" not in balances
    assert ledger.verify() == []
    assert report.key == "ccp:vm:USD:2026-11-24T16:00:00Z"
    assert report.ledger_status == "applied"


def test_the_next_cycle_settles_from_the_last_settlement_price(ledger: Ledger) -> None:
    clearing_house = two_member_house(ledger)
    clearing_house.novate([Trade("T1", "A.house", "B.house", "BTC-FUT", 1, 100_500)])
    clearing_house.settle({"BTC-FUT": 101_000, "BTC-PERP": 99_000}, None, T0 + 8 * HOUR)

    report = clearing_house.settle({"BTC-FUT": 100_800, "BTC-PERP": 99_000}, None, T0 + 32 * HOUR)

    # A.house holds 3 from 101,000 (the trade price no longer matters): 3 × (100,800 − 101,000) = −600.
    assert report.payments == {"A.house": Decimal("-600.00"), "B.house": Decimal("600.00")}
    assert report.cycle == 2


def test_the_rounding_rule_floors_each_account_and_the_clearing_house_keeps_the_residual(ledger: Ledger) -> None:
    spec = clearing_spec([house("A"), house("B")], [account("A.house", 1_000_000, {"BTC-FUT": 1}),
                                                    account("B.house", 1_000_000, {"BTC-FUT": -1})])
    clearing_house = ClearingHouse.open(spec, ledger)

    report = clearing_house.settle({"BTC-FUT": 100_000.004}, None, T0 + HOUR)

    # A receives 0.004 → 0.00 (a credit rounds down); B pays 0.004 → 0.01 (a debit rounds up);
    # the clearing house's rounding account collects the 0.01 left over.
    assert report.payments == {"B.house": Decimal("-0.01"), "ccp.rounding": Decimal("0.01")}
    assert (report.paid, report.collected, report.rounding) == (Decimal("0.01"), Decimal("0.01"), Decimal("0.01"))
    assert ledger.verify() == []


def test_journal_amounts_survive_float_noise_on_an_exact_cent() -> None:
    # 0.1 + 0.2 = 0.30000000000000004 and 12.34 − 1e-12 must stay 30 and 1,234 cents; −0.004 pays a cent.
    minor = journal_amounts(np.array([0.1 + 0.2, 12.34 - 1e-12, -0.004, 0.0]), 2)
    assert minor.tolist() == [30, 1234, -1, 0]


def inverse_terms(perpetual: bool) -> InstrumentTerms:
    # One inverse contract of 100 USD, settled in BTC (asset 0); the house currency is USD.
    return InstrumentTerms(("BTC-INV",), np.array([100.0]), np.array([True]), np.array([perpetual]),
                           np.array([False]), np.array([0], dtype=np.int32))


def test_inverse_variation_margin_and_funding_are_in_coin_converted_at_the_new_index() -> None:
    cells = PositionCells(1)
    cells.add(np.array([0]), np.array([0]), np.array([10 * LOTS_PER_CONTRACT]), np.array([0.0]))

    flows = cell_flows(cells, inverse_terms(True), np.array([50_000.0]), np.array([40_000.0]), np.array([0.0001]),
                       np.array([40_000.0]))

    # Coin P&L of 10 long: 10 × 100 × (1/50,000 − 1/40,000) = −0.005 BTC; at 40,000 USD per BTC: −200 USD.
    assert flows.variation_margin[0] == pytest.approx(-200.0)
    # Funding: −10 × 100 × 0.0001 / 40,000 BTC = −2.5e-6 BTC = −0.10 USD (a long pays a positive rate).
    assert flows.funding[0] == pytest.approx(-0.10)


def test_an_inverse_trade_settles_from_its_own_price() -> None:
    cells = PositionCells(1)
    adjustment = trade_adjustment(np.array([10.0]), np.array([45_000.0]), np.array([50_000.0]), np.array([True]))
    cells.add(np.array([0]), np.array([0]), np.array([10 * LOTS_PER_CONTRACT]), adjustment)

    flows = cell_flows(cells, inverse_terms(False), np.array([50_000.0]), np.array([40_000.0]), np.array([0.0]),
                       np.array([1.0]))

    # Bought 10 at 45,000, settled at 40,000: 10 × 100 × (1/45,000 − 1/40,000) BTC, whatever the last settlement.
    assert flows.variation_margin[0] == pytest.approx(1_000 * (1 / 45_000 - 1 / 40_000))
    assert flows.funding[0] == 0.0


def test_net_with_house_and_client_of_one_member_on_opposite_sides() -> None:
    # Member 0: house +100.00, client −40.00; member 1: house −60.00 (flows per cell = per account here).
    netting = net(np.array([100.0, -40.0, -60.0]), np.array([0, 1, 2]), np.array([0, 0, 1]),
                  np.array([False, True, False]), 2, 2)

    assert netting.origin_minor.tolist() == [[10_000, -4_000], [-6_000, 0]]
    assert (netting.paid_minor, netting.collected_minor, netting.rounding_minor) == (10_000, 10_000, 0)
    # Apart: 1 − (100 + 40 + 60) / 200 = 0; together: 1 − (60 + 60) / 200 = 0.4.
    assert netting.netting_efficiency() == pytest.approx(0.0)
    assert netting.netting_efficiency(house_and_client_netted=True) == pytest.approx(0.4)


def test_no_flow_is_an_empty_cycle_with_zero_efficiency(ledger: Ledger) -> None:
    clearing_house = two_member_house(ledger)
    operations = len(list(ledger.journal()))

    report = clearing_house.settle({"BTC-FUT": 100_000, "BTC-PERP": 100_000}, None, T0 + HOUR)

    assert (report.ledger_status, report.payments, report.netting_efficiency) == ("empty", {}, 0.0)
    assert len(list(ledger.journal())) == operations


def test_an_inverse_perpetual_settles_in_coin_converted_at_the_new_index(ledger: Ledger) -> None:
    inverse = {"id": "BTC-USD-PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "BTC",
               "inverse": True, "contract_size": 10}
    spec = clearing_spec([house("A"), house("B")], [account("A.house", 20_000, {"BTC-USD-PERP": 100}),
                                                    account("B.house", 20_000, {"BTC-USD-PERP": -100})],
                         instruments=(inverse,), marks={"BTC-USD-PERP": 100_000.0})
    clearing_house = ClearingHouse.open(spec, ledger)

    report = clearing_house.settle({"BTC-USD-PERP": 80_000}, {"BTC-USD-PERP": 0.001}, T0 + HOUR,
                                   index={"BTC": 80_000})

    # 100 × 10 × (1/100,000 − 1/80,000) = −0.0025 BTC → −200 USD at 80,000; funding −100 × 10 × 0.001 / 80,000
    # = −0.0000125 BTC → −1 USD: A pays 201.
    assert report.payments == {"A.house": Decimal("-201.00"), "B.house": Decimal("201.00")}


def test_netting_efficiency_stays_in_range_when_rounding_moves_a_cent(ledger: Ledger) -> None:
    spec = clearing_spec([house("A"), house("B")], [account("A.house", 1_000_000, {"BTC-FUT": 1}),
                                                    account("B.house", 1_000_000, {"BTC-FUT": -1})])

    report = ClearingHouse.open(spec, ledger).settle({"BTC-FUT": 100_000.004}, None, T0 + HOUR)

    # Gross 0.004 + 0.004, nets +0.004 and −0.004 before rounding: nothing nets (0), though B pays a whole cent.
    assert report.netting_efficiency == 0.0


def test_a_margin_review_that_refuses_leaves_the_cycle_journalled_and_reported(ledger: Ledger) -> None:
    # S.house is margined by SPAN, which does not margin perpetuals, yet opens with one.
    spec = clearing_spec([house("A"), house("S", "span-crypto")],
                         [account("A.house", 1_000_000, {"BTC-PERP": -1}),
                          account("S.house", 1_000_000, {"BTC-PERP": 1}, mode="cross")])
    clearing_house = ClearingHouse.open(spec, ledger)

    with pytest.raises(InputError) as refusal:
        clearing_house.settle({"BTC-PERP": 101_000}, None, T0 + HOUR)

    assert "perpetuals" in refusal.value.message
    assert clearing_house.cycles[-1].payments == {"A.house": Decimal("-1000.00"), "S.house": Decimal("1000.00")}
    assert ledger.balances("S.house")["S.house"]["USD"] == Decimal("1001000")
