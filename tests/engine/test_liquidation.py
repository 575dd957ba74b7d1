"""Hand-computed liquidations: bankruptcy price, fee, surplus, deficit, ADL ranking, partial steps, staleness.

Profile: one bracket, maintenance margin 1 % of the notional at the mark, initial 10 %. Liquidation fee
0.5 % of the notional closed; clips of 25 % of a position (a position under 1,000 USDT closes whole).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from marginkit.engine import AdlEvent, InsuranceFundMove, Liquidation, PriceEvent, StatusChange
from marginkit.ledger import Ledger
from tests.engine.helpers import T0, book_spec, engine

ISOLATED_LONG = {"id": "iso", "mode": "isolated", "collateral": {"USDT": 2_000.0},
                 "isolated_margin": {"BTC-USDT": {"USDT": 1_000.0}},
                 "positions": [{"instrument": "BTC-USDT", "quantity": 0.1, "entry_price": 100_000.0}]}


def ledger_at(tmp_path: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")


def of(kind: type, events: list[object]) -> list[object]:
    return [e for e in events if isinstance(e, kind)]


def test_isolated_long_is_taken_over_at_the_mark_fee_and_surplus_to_the_fund(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        monitor = engine(book_spec([ISOLATED_LONG]), ledger, fund="1000")
        # 91,000: wallet 1,000 + P&L 0.1 × (91,000 − 100,000) = 100 ≥ MM 0.1 × 91,000 × 1 % = 91, < IM 910.
        first = monitor.process([PriceEvent(91_000.0, T0 + 1, instrument="BTC-USDT")])
        assert first == [StatusChange("iso", "healthy", "margin_call", T0 + 1, T0 + 1 + 600.0)]
        # 90,500: equity 1,000 − 950 = 50 < MM 90.5: the isolated position is taken over whole.
        events = monitor.process([PriceEvent(90_500.0, T0 + 2, instrument="BTC-USDT")])
        [fill] = of(Liquidation, events)
        assert isinstance(fill, Liquidation)
        # Bankruptcy price: 90,500 − 50 / 0.1 = 90,000 (the wallet, 10,000 per BTC, below the entry).
        assert fill.bankruptcy_price == pytest.approx(90_000.0)
        assert (fill.quantity, fill.price, fill.realised_pnl) == (0.1, 90_500.0, -950.0)
        # Fee 0.5 % × 9,050 = 45.25; the fill is 500 per BTC better than bankruptcy: 50 − 45.25 = 4.75 surplus.
        assert fill.fee == pytest.approx(45.25)
        assert fill.surplus == pytest.approx(4.75)
        assert fill.deficit == 0.0
        moves = of(InsuranceFundMove, events)
        assert [(m.reason, m.amount) for m in moves] == [("fee", 45.25), ("surplus", 4.75)]  # type: ignore[attr-defined]
        # Ledger: 2,000 − 950 − 45.25 − 4.75 = 1,000 left (the free collateral); the fund 1,000 + 50.
        assert ledger.balances("iso") == {"iso": {"USDT": Decimal("1000")}}
        assert ledger.balances("@insurance")["@insurance"]["USDT"] == Decimal("1050")
        assert ledger.verify() == []
        assert [e.new for e in of(StatusChange, events)] == ["liquidation", "healthy"]  # type: ignore[attr-defined]


def test_a_deficit_is_paid_by_the_insurance_fund(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        monitor = engine(book_spec([ISOLATED_LONG]), ledger, fund="1000")
        # A gap to 85,000: equity 1,000 − 1,500 = −500; BP = 85,000 + 500 / 0.1 = 90,000; no fee.
        events = monitor.process([PriceEvent(85_000.0, T0 + 1, instrument="BTC-USDT")])
        [fill] = of(Liquidation, events)
        assert isinstance(fill, Liquidation)
        assert fill.bankruptcy_price == pytest.approx(90_000.0)
        assert (fill.fee, fill.surplus, fill.deficit) == (0.0, 0.0, 500.0)
        assert [(m.reason, m.amount, m.balance) for m in of(InsuranceFundMove, events)] == [  # type: ignore[attr-defined]
            ("deficit", -500.0, 500.0)]
        # The account keeps its free 1,000: 2,000 − 1,500 + 500.
        assert ledger.balances("iso") == {"iso": {"USDT": Decimal("1000")}}
        assert ledger.verify() == []


def test_adl_by_pnl_percent_times_effective_leverage_at_the_bankruptcy_price(tmp_path: Path) -> None:
    shorts = [
        # s1: short 0.1 @ 95,000, 10,000 USDT. At 85,000: P&L 1,000, PnL% = 10,000/95,000 = 0.10526;
        #     MV 8,500, equity 11,000, EffLev = 8,500/11,000 = 0.77273; rank 0.08134.
        {"id": "s1", "mode": "cross", "collateral": {"USDT": 10_000.0},
         "positions": [{"instrument": "BTC-USDT", "quantity": -0.1, "entry_price": 95_000.0}]},
        # s2: short 0.2 @ 100,000, 2,000 USDT. P&L 3,000, PnL% 0.15; MV 17,000, equity 5,000, EffLev 3.4;
        #     rank 0.51: first.
        {"id": "s2", "mode": "cross", "collateral": {"USDT": 2_000.0},
         "positions": [{"instrument": "BTC-USDT", "quantity": -0.2, "entry_price": 100_000.0}]},
    ]
    with ledger_at(tmp_path) as ledger:
        monitor = engine(book_spec([ISOLATED_LONG, *shorts]), ledger, fund="100")
        events = monitor.process([PriceEvent(85_000.0, T0 + 1, instrument="BTC-USDT")])
        # Deficit 500: the fund pays its 100, 400 is deleveraged at BP 90,000: 5,000 per BTC from the mark, so
        # s2 gives up 0.08 BTC: closed at the mark (P&L 0.08 × 15,000 = 1,200) and pays 400 (a fill at 90,000).
        [adl] = of(AdlEvent, events)
        assert isinstance(adl, AdlEvent)
        assert (adl.account, adl.counterparty, adl.price, adl.mark) == ("s2", "iso", pytest.approx(90_000.0), 85_000.0)
        assert adl.quantity == pytest.approx(-0.08)
        assert adl.amount == pytest.approx(400.0)
        assert adl.rank == pytest.approx(0.15 * 17_000 / 5_000)
        state = monitor.state
        assert state.quantity[2] == pytest.approx(-0.12)
        # s2: 2,000 + 1,200 − 400 = 2,800; iso: 2,000 − 1,500 + 100 + 400 = 1,000; the fund 0.
        assert ledger.balances("s2") == {"s2": {"USDT": Decimal("2800")}}
        assert ledger.balances("iso") == {"iso": {"USDT": Decimal("1000")}}
        assert ledger.balances("@insurance", include_zero=True)["@insurance"]["USDT"] == Decimal("0")
        assert monitor.liquidation is not None and monitor.liquidation.totals.uncovered == 0.0
        assert ledger.verify() == []


def test_partial_liquidation_stops_once_back_above_maintenance(tmp_path: Path) -> None:
    cross = {"id": "c", "mode": "cross", "collateral": {"USDT": 12_000.0},
             "positions": [{"instrument": "BTC-USDT", "quantity": 1.0, "entry_price": 100_000.0}]}
    with ledger_at(tmp_path) as ledger:
        monitor = engine(book_spec([cross]), ledger)
        # 88,700: equity 12,000 − 11,300 = 700 < MM 887.
        events = monitor.process([PriceEvent(88_700.0, T0 + 1, instrument="BTC-USDT")])
        fills = [e for e in events if isinstance(e, Liquidation)]
        # Step 1: 0.25 BTC, fee 0.5 % × 22,175 = 110.875 (USDT has 6 decimals: exact); equity 589.125 < MM of
        #   0.75 BTC 665.25. BP = 88,700 − 700 / 1 = 88,000.
        # Step 2: 0.1875 BTC, fee 0.5 % × 16,631.25 = 83.15625; equity 505.96875 ≥ MM of 0.5625 BTC 498.94.
        assert [f.quantity for f in fills] == [0.25, 0.1875]
        assert [f.fee for f in fills] == [110.875, 83.15625]
        assert fills[0].bankruptcy_price == pytest.approx(88_000.0)
        assert fills[1].bankruptcy_price == pytest.approx(88_700.0 - 589.125 / 0.75)
        assert monitor.state.quantity[0] == pytest.approx(0.5625)
        equity, _, maintenance = monitor.state.scope_figures(monitor.state.position_scope[:1])
        assert equity[0] == pytest.approx(505.96875) and equity[0] >= maintenance[0]
        assert [(e.old, e.new) for e in events if isinstance(e, StatusChange)] == [
            ("healthy", "liquidation"), ("liquidation", "margin_call")]
        assert ledger.verify() == []


def test_an_expired_margin_call_reduces_the_account_until_healthy(tmp_path: Path) -> None:
    cross = {"id": "c", "mode": "cross", "collateral": {"USDT": 12_000.0},
             "positions": [{"instrument": "BTC-USDT", "quantity": 1.0, "entry_price": 100_000.0}]}
    with ledger_at(tmp_path) as ledger:
        monitor = engine(book_spec([cross]), ledger)
        # 95,000: equity 7,000 ≥ MM 950, < IM 9,500: margin call, deadline 600 s later.
        [call] = monitor.process([PriceEvent(95_000.0, T0 + 10, instrument="BTC-USDT")])
        assert call == StatusChange("c", "healthy", "margin_call", T0 + 10, T0 + 610)
        assert not [e for e in monitor.process([PriceEvent(95_000.0, T0 + 300, instrument="ETH-USDT")])]
        events = monitor.process([PriceEvent(4_000.0, T0 + 611, instrument="ETH-USDT")])
        assert any(isinstance(e, Liquidation) and e.reason == "margin_call_expired" for e in events)
        assert events[-1] == StatusChange("c", "margin_call", "healthy", T0 + 611)
        assert ledger.verify() == []


def test_a_stale_price_freezes_liquidation(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        monitor = engine(book_spec([ISOLATED_LONG]), ledger)
        monitor.process([PriceEvent(4_000.0, T0 + 200, instrument="ETH-USDT")])  # the clock is at T0 + 200
        # A BTC price from T0 + 150 is 50 s old (> 10 s): the account is below maintenance but not liquidated.
        events = monitor.process([PriceEvent(90_500.0, T0 + 150, instrument="BTC-USDT")])
        assert events == [StatusChange("iso", "healthy", "liquidation", T0 + 200, None, frozen=True)]
        assert monitor.state.quantity[0] == 0.1
        # A fresh price liquidates.
        events = monitor.process([PriceEvent(90_500.0, T0 + 201, instrument="BTC-USDT")])
        assert [type(e).__name__ for e in events if isinstance(e, Liquidation)] == ["Liquidation"]
        assert monitor.state.quantity[0] == 0.0


def test_replaying_the_same_events_into_the_same_ledger_writes_nothing_new(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        for _ in range(2):  # a restart replays the stream: every key is the same, every operation a duplicate
            monitor = engine(book_spec([ISOLATED_LONG]), ledger, fund="1000")
            monitor.process([PriceEvent(85_000.0, T0 + 1, instrument="BTC-USDT")])
        assert ledger.balances("iso") == {"iso": {"USDT": Decimal("1000")}}
        assert ledger.balances("@insurance")["@insurance"]["USDT"] == Decimal("500")
        assert len(list(ledger.journal())) == 5  # deposit, fund seed (deposit + contribution), P&L, payout
        assert ledger.verify() == []
