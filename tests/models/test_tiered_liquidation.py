"""Hand-computed liquidation and bankruptcy prices of the tiered model.

Every expected value below is derived in the comments from the equation that defines it:

    liquidation price LP:  equity(P) = maintenance margin(P)     (Binance's FAQ formula, mm_basis liquidation_price)
    bankruptcy price BP:   equity(P) = 0                         (the same equation with mmr = cum = 0)

Linear (USDⓈ-M), one-way, solved for P (reference: crypto-venues.md (a)):

    LP = (WB − TMM₁ + UPNL₁ + cum − side·|q|·EP) / (|q|·mmr − side·|q|)

with WB the wallet (cross: the account's collateral; isolated: the position's wallet), TMM₁ and UPNL₁ the
maintenance margin and unrealised P&L of every *other* position at its own mark (0 in isolated mode), and mmr, cum
taken from the bracket of the notional |q|·LP (not the one at the mark). Inverse (COIN-M), amounts in coin,
Q = |contracts| × contract_size (USD):

    LP = (Q·mmr + side·Q) / (WB − TMM₁ + UPNL₁ + cum + side·Q/EP)

The profiles are written here, small enough for the arithmetic to be done by hand. Nothing is read from
the shared reference at test time.
"""

from __future__ import annotations

from typing import Any

import pytest

from marginkit.book import Book, resolve
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import Profile, parse_profile
from marginkit.models.requirements import PositionFigures, Requirements
from marginkit.models.tiered import margin

AS_OF = "2026-11-24T08:00:00Z"
REL = 1e-9  # the model solves exactly; only floating-point noise is allowed

# Linear brackets (caps in USD). cum by the recursion cum_n = cum_(n-1) + cap_(n-1)·(mmr_n − mmr_(n-1)):
#   BTC  (0, 50,000]        mmr 0.4 %  cum 0
#        (50,000, 250,000]  mmr 0.5 %  cum 0 + 50,000 × 0.001        = 50
#        (250,000, ∞)       mmr 1 %    cum 50 + 250,000 × 0.005      = 1,300
#   ETH  one bracket        mmr 0.5 %  cum 0
#   SOL  one bracket        mmr 1 %    cum 0
LINEAR_UNDERLYINGS: dict[str, Any] = {
    "BTC": {"notional_unit": "quote", "brackets": [
        {"max_notional": 50_000, "maintenance_rate": 0.004, "max_leverage": 125},
        {"max_notional": 250_000, "maintenance_rate": 0.005, "max_leverage": 100},
        {"maintenance_rate": 0.01, "max_leverage": 50},
    ]},
    "ETH": {"notional_unit": "quote", "brackets": [{"maintenance_rate": 0.005, "max_leverage": 100}]},
    "SOL": {"notional_unit": "quote", "brackets": [{"maintenance_rate": 0.01, "max_leverage": 50}]},
}

# Coin brackets (caps in BTC of notional Q/P):
#   (0, 5]   mmr 0.4 %  cum 0
#   (5, 10]  mmr 0.5 %  cum 0 + 5 × 0.001       = 0.005
#   (10, ∞)  mmr 1 %    cum 0.005 + 10 × 0.005  = 0.055
COIN_UNDERLYINGS: dict[str, Any] = {
    "BTC": {"notional_unit": "coin", "brackets": [
        {"max_notional": 5, "maintenance_rate": 0.004, "max_leverage": 125},
        {"max_notional": 10, "maintenance_rate": 0.005, "max_leverage": 100},
        {"maintenance_rate": 0.01, "max_leverage": 50},
    ]},
}


def tiered_profile(underlyings: dict[str, Any], defaults: dict[str, Any] | None = None) -> Profile:
    return parse_profile({
        "model": "tiered",
        "name": "hand-computed",
        "version": "test",
        "source": "written in the test",
        "parameters": {"defaults": defaults or {"mm_basis": "liquidation_price"}, "underlyings": underlyings},
    })


LINEAR = tiered_profile(LINEAR_UNDERLYINGS)
COIN = tiered_profile(COIN_UNDERLYINGS)


def linear_perp(symbol: str) -> dict[str, Any]:
    return {"id": f"{symbol}-USDT", "type": "perpetual", "underlying": symbol, "quote": "USD",
            "settlement": "USDT", "inverse": False, "contract_size": 1.0}


def inverse_perp(contract_size: float = 100.0) -> dict[str, Any]:
    return {"id": "BTCUSD", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "BTC",
            "inverse": True, "contract_size": contract_size}


INVERSE_FUTURE = {"id": "BTCUSD-26DEC26", "type": "future", "underlying": "BTC", "quote": "USD",
                  "settlement": "BTC", "inverse": True, "contract_size": 100.0, "expiry": "2026-12-26T08:00:00Z"}

LINEAR_INDEX = {"BTC": 95_000.0, "ETH": 3_300.0, "SOL": 200.0, "USDT": 1.0}


def account(account_id: str, mode: str, collateral: dict[str, float], positions: list[dict[str, Any]],
            **extra: Any) -> dict[str, Any]:
    return {"id": account_id, "mode": mode, "collateral": collateral, "positions": positions, **extra}


def position(instrument: str, quantity: float, entry: float, **extra: Any) -> dict[str, Any]:
    return {"instrument": instrument, "quantity": quantity, "entry_price": entry, **extra}


def run(instruments: list[dict[str, Any]], index: dict[str, float], marks: dict[str, float],
        accounts: list[dict[str, Any]], profile: Profile) -> tuple[Book, Requirements, PositionFigures]:
    book = resolve(parse_book({"as_of": AS_OF, "instruments": instruments,
                               "market": {"index": index, "marks": marks}, "accounts": accounts}))
    requirements = margin(book, profile)
    assert requirements.positions is not None
    return book, requirements, requirements.positions


def row(book: Book, account_id: str, instrument_id: str, side: int = 0) -> int:
    """The position row of (account, instrument[, side code: 0 both, 1 long, 2 short])."""
    a = book.account_ids.index(account_id)
    i = book.instrument_ids.index(instrument_id)
    rows = [p for p in range(book.position_count)
            if book.position_account[p] == a and book.position_instrument[p] == i and book.position_side[p] == side]
    assert len(rows) == 1
    return rows[0]


def liquidation(figures: PositionFigures, p: int) -> float:
    assert figures.liquidation_price_defined[p], "expected a liquidation price"
    return float(figures.liquidation_price[p])


def bankruptcy(figures: PositionFigures, p: int) -> float:
    assert figures.bankruptcy_price_defined[p], "expected a bankruptcy price"
    return float(figures.bankruptcy_price[p])


# ---------------------------------------------------------------------------------------------------------------
# Cross margin, linear
# ---------------------------------------------------------------------------------------------------------------


def test_cross_linear_two_positions_btc_long_eth_short() -> None:
    # Arrange: WB 10,000 USDT; BTC long 0.5 @ 94,000 (mark 95,000); ETH short 2 @ 3,400 (mark 3,300).
    positions = [position("BTC-USDT", 0.5, 94_000.0), position("ETH-USDT", -2.0, 3_400.0)]
    # Act
    book, _, figures = run([linear_perp("BTC"), linear_perp("ETH")], LINEAR_INDEX,
                           {"BTC-USDT": 95_000.0, "ETH-USDT": 3_300.0},
                           [account("a", "cross", {"USDT": 10_000.0}, positions)], LINEAR)
    btc, eth = row(book, "a", "BTC-USDT"), row(book, "a", "ETH-USDT")
    # Assert
    # BTC (side +1): other position ETH: uPnL₁ = −2 × (3,300 − 3,400) = 200; TMM₁ = 2 × 3,300 × 0.005 = 33.
    #   LP = (10,000 − 33 + 200 + 0 − 1 × 0.5 × 94,000) / (0.5 × 0.004 − 0.5)
    #      = (10,167 − 47,000) / (−0.498) = −36,833 / −0.498 = 73,961.847389...
    #   notional at LP = 0.5 × 73,961.85 = 36,980.9 ≤ 50,000: bracket 1 (mmr 0.004, cum 0), as assumed.
    assert liquidation(figures, btc) == pytest.approx(36_833 / 0.498, rel=REL)
    assert liquidation(figures, btc) == pytest.approx(73_961.847389558, rel=REL)
    # ETH (side −1): other position BTC: uPnL₁ = 0.5 × (95,000 − 94,000) = 500; TMM₁ = 0.5 × 95,000 × 0.004 = 190
    #   (notional 47,500: bracket 1).
    #   LP = (10,000 − 190 + 500 + 0 + 2 × 3,400) / (2 × 0.005 + 2) = 17,110 / 2.01 = 8,512.437810...
    assert liquidation(figures, eth) == pytest.approx(17_110 / 2.01, rel=REL)
    assert liquidation(figures, eth) == pytest.approx(8_512.437810945, rel=REL)
    # Maintenance margin at the marks: 190 + 33 = 223.
    assert figures.maintenance_margin[btc] == pytest.approx(190.0, rel=REL)
    assert figures.maintenance_margin[eth] == pytest.approx(33.0, rel=REL)


def test_cross_linear_three_positions() -> None:
    # Arrange: WB 12,000 USDT;
    #   BTC long 0.4 @ 96,000, mark 95,000: uPnL 0.4 × (95,000 − 96,000) = −400; MM 38,000 × 0.004 = 152
    #   ETH short 3 @ 3,200,  mark 3,300:   uPnL −3 × (3,300 − 3,200)   = −300; MM  9,900 × 0.005 = 49.5
    #   SOL long 100 @ 180,   mark 200:     uPnL 100 × (200 − 180)      = 2,000; MM 20,000 × 0.01 = 200
    positions = [position("BTC-USDT", 0.4, 96_000.0), position("ETH-USDT", -3.0, 3_200.0),
                 position("SOL-USDT", 100.0, 180.0)]
    # Act
    book, requirements, figures = run(
        [linear_perp("BTC"), linear_perp("ETH"), linear_perp("SOL")], LINEAR_INDEX,
        {"BTC-USDT": 95_000.0, "ETH-USDT": 3_300.0, "SOL-USDT": 200.0},
        [account("a", "cross", {"USDT": 12_000.0}, positions)], LINEAR)
    btc, eth, sol = (row(book, "a", f"{s}-USDT") for s in ("BTC", "ETH", "SOL"))
    # Assert
    # BTC: TMM₁ = 49.5 + 200 = 249.5; UPNL₁ = −300 + 2,000 = 1,700.
    #   LP = (12,000 − 249.5 + 1,700 − 0.4 × 96,000) / (0.4 × 0.004 − 0.4) = (13,450.5 − 38,400) / (−0.3984)
    #      = −24,949.5 / −0.3984 = 62,624.246987...;  notional 0.4 × 62,624 = 25,050 → bracket 1, as assumed.
    assert liquidation(figures, btc) == pytest.approx(24_949.5 / 0.3984, rel=REL)
    assert liquidation(figures, btc) == pytest.approx(62_624.246987952, rel=REL)
    # ETH (short): TMM₁ = 152 + 200 = 352; UPNL₁ = −400 + 2,000 = 1,600.
    #   LP = (12,000 − 352 + 1,600 + 3 × 3,200) / (3 × 0.005 + 3) = 22,848 / 3.015 = 7,578.109452...
    assert liquidation(figures, eth) == pytest.approx(22_848 / 3.015, rel=REL)
    # SOL: TMM₁ = 152 + 49.5 = 201.5; UPNL₁ = −400 − 300 = −700.
    #   LP = (12,000 − 201.5 − 700 − 100 × 180) / (100 × 0.01 − 100) = −6,901.5 / −99 = 69.712121...
    assert liquidation(figures, sol) == pytest.approx(6_901.5 / 99, rel=REL)
    # Account MM at the marks = 152 + 49.5 + 200 = 401.5.
    assert requirements.maintenance_margin[0] == pytest.approx(401.5, rel=REL)


def test_cross_hedge_mode_long_and_short_leg_share_one_liquidation_price() -> None:
    # Arrange: hedge mode, WB 30,000 USDT; BTC long leg 1 @ 90,000 and short leg 0.4 @ 98,000 (mark 95,000);
    # ETH short leg 2 @ 3,400 (mark 3,300).
    positions = [
        position("BTC-USDT", 1.0, 90_000.0, position_side="long"),
        position("BTC-USDT", -0.4, 98_000.0, position_side="short"),
        position("ETH-USDT", -2.0, 3_400.0, position_side="short"),
    ]
    # Act
    book, _, figures = run([linear_perp("BTC"), linear_perp("ETH")], LINEAR_INDEX,
                           {"BTC-USDT": 95_000.0, "ETH-USDT": 3_300.0},
                           [account("h", "cross", {"USDT": 30_000.0}, positions, position_mode="hedge")], LINEAR)
    long_leg, short_leg = row(book, "h", "BTC-USDT", 1), row(book, "h", "BTC-USDT", 2)
    eth = row(book, "h", "ETH-USDT", 2)
    # Assert
    # Both BTC legs move with one price P: equity(P) = C + Σ side·|q|·(P − EP), MM(P) = Σ |q|·P·mmr − cum.
    #   C = WB + ETH uPnL = 30,000 + (−2) × (3,300 − 3,400) = 30,200; TMM₁ = ETH MM = 2 × 3,300 × 0.005 = 33.
    #   30,200 + 1 × (P − 90,000) − 0.4 × (P − 98,000) = 33 + 1 × P × 0.004 + 0.4 × P × 0.004
    #   LP = (WB − TMM₁ + UPNL₁ + cum_L + cum_S − |q_L|·EP_L + |q_S|·EP_S) / (|q_L|·mmr_L + |q_S|·mmr_S − |q_L| + |q_S|)
    #      = (30,000 − 33 + 200 + 0 + 0 − 90,000 + 0.4 × 98,000) / (0.004 + 0.0016 − 1 + 0.4)
    #      = (30,167 − 90,000 + 39,200) / (−0.5944) = −20,633 / −0.5944 = 34,712.314939...
    #   Brackets at the LP: long 34,712 ≤ 50,000 and short 13,885 ≤ 50,000 → both bracket 1 (mmr 0.004, cum 0).
    #   (At the mark the long leg, 95,000, is in bracket 2; the bracket at the LP is the one that counts.)
    expected = 20_633 / 0.5944
    assert liquidation(figures, long_leg) == pytest.approx(expected, rel=REL)
    assert liquidation(figures, short_leg) == pytest.approx(expected, rel=REL)
    assert liquidation(figures, long_leg) == pytest.approx(34_712.314939435, rel=REL)
    # ETH short leg alone: TMM₁ = BTC legs' MM at the mark = (95,000 × 0.005 − 50) + 38,000 × 0.004 = 425 + 152 = 577;
    #   UPNL₁ = 1 × (95,000 − 90,000) − 0.4 × (95,000 − 98,000) = 5,000 + 1,200 = 6,200.
    #   LP = (30,000 − 577 + 6,200 + 2 × 3,400) / (2 × 0.005 + 2) = 42,423 / 2.01 = 21,105.970149...
    assert liquidation(figures, eth) == pytest.approx(42_423 / 2.01, rel=REL)


# ---------------------------------------------------------------------------------------------------------------
# Isolated margin, linear
# ---------------------------------------------------------------------------------------------------------------


def test_isolated_linear_wallet_is_the_assigned_isolated_margin() -> None:
    # Arrange: isolated account, 5,000 USDT of which 1,000 is assigned to BTC and 500 to ETH.
    # BTC long 0.2 @ 95,000 (mark 96,000); ETH short 1 @ 3,300 (mark 3,250).
    positions = [position("BTC-USDT", 0.2, 95_000.0), position("ETH-USDT", -1.0, 3_300.0)]
    isolated = {"BTC-USDT": {"USDT": 1_000.0}, "ETH-USDT": {"USDT": 500.0}}
    # Act
    book, _, figures = run([linear_perp("BTC"), linear_perp("ETH")], LINEAR_INDEX,
                           {"BTC-USDT": 96_000.0, "ETH-USDT": 3_250.0},
                           [account("i", "isolated", {"USDT": 5_000.0}, positions, isolated_margin=isolated)],
                           LINEAR)
    btc, eth = row(book, "i", "BTC-USDT"), row(book, "i", "ETH-USDT")
    # Assert: in isolated mode WB = the position's wallet, TMM₁ = UPNL₁ = 0 (the other position does not count).
    # BTC: LP = (1,000 − 0.2 × 95,000) / (0.2 × 0.004 − 0.2) = −18,000 / −0.1992 = 90,361.445783...
    #   (notional 18,072 → bracket 1).  BP (mmr = cum = 0): 95,000 − 1,000 / 0.2 = 90,000.
    assert liquidation(figures, btc) == pytest.approx(18_000 / 0.1992, rel=REL)
    assert bankruptcy(figures, btc) == pytest.approx(90_000.0, rel=REL)
    # ETH: LP = (500 + 1 × 3,300) / (1 × 0.005 + 1) = 3,800 / 1.005 = 3,781.094527...;  BP = 3,300 + 500 = 3,800.
    assert liquidation(figures, eth) == pytest.approx(3_800 / 1.005, rel=REL)
    assert bankruptcy(figures, eth) == pytest.approx(3_800.0, rel=REL)
    assert figures.isolated_wallet is not None
    assert figures.isolated_wallet[btc] == pytest.approx(1_000.0, rel=REL)


def test_isolated_linear_without_assigned_margin_uses_initial_margin_at_entry() -> None:
    # Arrange: isolated BTC long 0.5 @ 95,000 opened at 20x, no isolated_margin entry.
    positions = [position("BTC-USDT", 0.5, 95_000.0, leverage=20)]
    # Act
    book, _, figures = run([linear_perp("BTC")], LINEAR_INDEX, {"BTC-USDT": 95_000.0},
                           [account("i", "isolated", {"USDT": 50_000.0}, positions)], LINEAR)
    p = row(book, "i", "BTC-USDT")
    # Assert: wallet = IM at entry = 0.5 × 95,000 / 20 = 2,375.
    #   LP = (2,375 − 0.5 × 95,000) / (0.5 × 0.004 − 0.5) = −45,125 / −0.498 = 90,612.449799...
    #   (notional 45,306 → bracket 1).   BP = EP × (1 − 1/lev) = 95,000 × 0.95 = 90,250.
    assert liquidation(figures, p) == pytest.approx(45_125 / 0.498, rel=REL)
    assert bankruptcy(figures, p) == pytest.approx(90_250.0, rel=REL)


# ---------------------------------------------------------------------------------------------------------------
# Inverse (coin-margined)
# ---------------------------------------------------------------------------------------------------------------


def test_cross_inverse_two_positions_perp_long_future_short() -> None:
    # Arrange: cross, WB 0.5 BTC. Contracts are 100 USD.
    #   BTCUSD perp long 1,000 contracts (Q = 100,000) @ 50,000, mark 52,000
    #   BTCUSD future short 600 contracts (Q = 60,000) @ 53,000, mark 52,500
    positions = [position("BTCUSD", 1_000.0, 50_000.0), position("BTCUSD-26DEC26", -600.0, 53_000.0)]
    # Act
    book, _, figures = run([inverse_perp(), INVERSE_FUTURE], {"BTC": 52_000.0},
                           {"BTCUSD": 52_000.0, "BTCUSD-26DEC26": 52_500.0},
                           [account("c", "cross", {"BTC": 0.5}, positions)], COIN)
    perp, future = row(book, "c", "BTCUSD"), row(book, "c", "BTCUSD-26DEC26")
    # Assert (all amounts in BTC; P&L in coin = q·size·(1/EP − 1/P), MM = Q/P·mmr − cum):
    #   perp:   uPnL = 100,000 × (1/50,000 − 1/52,000) = 2 − 1.9230769 = 0.0769231;
    #           MM at mark = 100,000/52,000 × 0.004 = 1.9230769 × 0.004 = 0.0076923
    #   future: uPnL = −60,000 × (1/53,000 − 1/52,500) = −1.1320755 + 1.1428571 = 0.0107817;
    #           MM at mark = 60,000/52,500 × 0.004 = 1.1428571 × 0.004 = 0.0045714
    perp_upnl = 100_000 * (1 / 50_000 - 1 / 52_000)
    perp_mm = 100_000 / 52_000 * 0.004
    future_upnl = -60_000 * (1 / 53_000 - 1 / 52_500)
    future_mm = 60_000 / 52_500 * 0.004
    # perp (side +1): LP = (Q·mmr + Q) / (WB − TMM₁ + UPNL₁ + cum + Q/EP)
    #   = 100,000 × 1.004 / (0.5 − 0.0045714 + 0.0107817 + 0 + 2) = 100,400 / 2.5062103 = 40,060.49 (≈)
    #   notional at LP = 100,000 / 40,060 = 2.496 BTC ≤ 5 → bracket 1, as assumed.
    assert liquidation(figures, perp) == pytest.approx(100_400 / (0.5 - future_mm + future_upnl + 2.0), rel=REL)
    assert liquidation(figures, perp) == pytest.approx(40_060.4858658, rel=1e-9)
    # future (side −1): LP = (Q·mmr − Q) / (WB − TMM₁ + UPNL₁ + cum − Q/EP)
    #   = (240 − 60,000) / (0.5 − 0.0076923 + 0.0769231 − 60,000/53,000)
    #   = −59,760 / (0.5692308 − 1.1320755) = −59,760 / −0.5628447 = 106,174.94 (≈)
    #   notional at LP = 60,000 / 106,175 = 0.565 BTC → bracket 1.
    assert liquidation(figures, future) == pytest.approx(
        -59_760 / (0.5 - perp_mm + perp_upnl - 60_000 / 53_000), rel=REL)
    assert liquidation(figures, future) == pytest.approx(106_174.9355338, rel=1e-9)


def test_isolated_inverse_short_and_long() -> None:
    # Arrange: isolated; short 300 × 100 USD (Q = 30,000) @ 60,000 with 0.1 BTC assigned (mark 59,000);
    # in a second account a long 600 × 100 USD (Q = 60,000) @ 50,000 with 0.12 BTC assigned (mark 50,000).
    short = account("s", "isolated", {"BTC": 1.0}, [position("BTCUSD", -300.0, 60_000.0)],
                    isolated_margin={"BTCUSD": {"BTC": 0.1}})
    long = account("l", "isolated", {"BTC": 1.0}, [position("BTCUSD", 600.0, 50_000.0)],
                   isolated_margin={"BTCUSD": {"BTC": 0.12}})
    # Act
    book, _, figures = run([inverse_perp()], {"BTC": 59_000.0}, {"BTCUSD": 59_000.0}, [short, long], COIN)
    s, lg = row(book, "s", "BTCUSD"), row(book, "l", "BTCUSD")
    # Assert
    # short: LP = (Q·mmr − Q) / (WB + cum − Q/EP) = (30,000 × 0.004 − 30,000) / (0.1 + 0 − 30,000/60,000)
    #             = −29,880 / −0.4 = 74,700   (notional 30,000/74,700 = 0.40 BTC → bracket 1)
    #        check: equity 0.1 − 30,000 × (1/60,000 − 1/74,700) = 0.1 − 0.5 + 0.4016064 = 0.0016064
    #               = MM 30,000/74,700 × 0.004 = 0.0016064 ✓
    #        BP: 0.1 − 0.5 + 30,000/P = 0 → P = 30,000/0.4 = 75,000
    assert liquidation(figures, s) == pytest.approx(74_700.0, rel=REL)
    assert bankruptcy(figures, s) == pytest.approx(75_000.0, rel=REL)
    # long: LP = (Q·mmr + Q) / (WB + cum + Q/EP) = 60,000 × 1.004 / (0.12 + 1.2) = 60,240 / 1.32 = 45,636.36...
    #        BP = Q / (Q/EP + WB) = 60,000 / (1.2 + 0.12) = 45,454.545...
    assert liquidation(figures, lg) == pytest.approx(60_240 / 1.32, rel=REL)
    assert bankruptcy(figures, lg) == pytest.approx(60_000 / 1.32, rel=REL)


def test_linear_and_inverse_same_exposure_differ() -> None:
    # Arrange: the same USD exposure and the same margin in value, isolated, mmr 0.4 %:
    #   linear:  long 1.2 BTC @ 50,000 (60,000 USD), wallet 6,000 USDT
    #   inverse: long 600 × 100 USD (Q = 60,000) @ 50,000, wallet 0.12 BTC (6,000 USD at 50,000)
    linear = account("lin", "isolated", {"USDT": 6_000.0}, [position("BTC-USDT", 1.2, 50_000.0)],
                     isolated_margin={"BTC-USDT": {"USDT": 6_000.0}})
    inverse = account("inv", "isolated", {"BTC": 0.12}, [position("BTCUSD", 600.0, 50_000.0)],
                      isolated_margin={"BTCUSD": {"BTC": 0.12}})
    # Act
    book_l, _, fig_l = run([linear_perp("BTC")], {"BTC": 50_000.0, "USDT": 1.0}, {"BTC-USDT": 50_000.0},
                           [linear], LINEAR)
    book_i, _, fig_i = run([inverse_perp()], {"BTC": 50_000.0}, {"BTCUSD": 50_000.0}, [inverse], COIN)
    # Assert
    # linear:  LP = (6,000 − 1.2 × 50,000) / (1.2 × 0.004 − 1.2) = −54,000 / −1.1952 = 45,180.72...
    #          (notional 54,217 > 50,000 → bracket 2, mmr 0.005, cum 50: redo)
    #          LP = (6,000 + 50 − 60,000) / (1.2 × 0.005 − 1.2) = −53,950 / −1.194 = 45,184.25...
    #          notional 1.2 × 45,184 = 54,221 → bracket 2 ✓
    # inverse: LP = 60,000 × 1.004 / (0.12 + 1.2) = 45,636.36...   (coin losses accelerate as P falls)
    assert liquidation(fig_l, row(book_l, "lin", "BTC-USDT")) == pytest.approx(53_950 / 1.194, rel=REL)
    assert liquidation(fig_i, row(book_i, "inv", "BTCUSD")) == pytest.approx(60_240 / 1.32, rel=REL)


# ---------------------------------------------------------------------------------------------------------------
# The bracket at the liquidation price, not at the mark
# ---------------------------------------------------------------------------------------------------------------


def test_linear_long_bracket_at_liquidation_price_is_lower_than_at_mark() -> None:
    # Arrange: cross, WB 60,000 USDT; BTC long 3 @ 95,000, mark 95,000 (notional 285,000 → bracket 3).
    positions = [position("BTC-USDT", 3.0, 95_000.0)]
    # Act
    book, _, figures = run([linear_perp("BTC")], LINEAR_INDEX, {"BTC-USDT": 95_000.0},
                           [account("a", "cross", {"USDT": 60_000.0}, positions)], LINEAR)
    p = row(book, "a", "BTC-USDT")
    # Assert
    # With the mark's bracket 3 (mmr 0.01, cum 1,300):
    #   (60,000 + 1,300 − 285,000) / (0.03 − 3) = −223,700 / −2.97 = 75,319.87 → notional 225,960 is bracket 2: wrong.
    # With bracket 2 (mmr 0.005, cum 50):
    #   LP = (60,000 + 50 − 3 × 95,000) / (3 × 0.005 − 3) = −224,950 / −2.985 = 75,360.134003...
    #   notional 3 × 75,360.13 = 226,080 ∈ (50,000, 250,000] → bracket 2, stable.
    assert figures.details["bracket"][p] == 3
    assert liquidation(figures, p) == pytest.approx(224_950 / 2.985, rel=REL)
    assert liquidation(figures, p) != pytest.approx(223_700 / 2.97, rel=1e-6)


def test_linear_short_bracket_at_liquidation_price_is_higher_than_at_mark() -> None:
    # Arrange: cross, WB 80,000 USDT; BTC short 2 @ 95,000, mark 95,000 (notional 190,000 → bracket 2).
    positions = [position("BTC-USDT", -2.0, 95_000.0)]
    # Act
    book, _, figures = run([linear_perp("BTC")], LINEAR_INDEX, {"BTC-USDT": 95_000.0},
                           [account("a", "cross", {"USDT": 80_000.0}, positions)], LINEAR)
    p = row(book, "a", "BTC-USDT")
    # Assert
    # With the mark's bracket 2 (mmr 0.005, cum 50):
    #   (80,000 + 50 + 190,000) / (0.01 + 2) = 270,050 / 2.01 = 134,353.23 → notional 268,706 is bracket 3: wrong.
    # With bracket 3 (mmr 0.01, cum 1,300):
    #   LP = (80,000 + 1,300 + 2 × 95,000) / (2 × 0.01 + 2) = 271,300 / 2.02 = 134,306.930693...
    #   notional 268,613.9 > 250,000 → bracket 3, stable.
    assert figures.details["bracket"][p] == 2
    assert liquidation(figures, p) == pytest.approx(271_300 / 2.02, rel=REL)


def test_inverse_long_bracket_at_liquidation_price_is_higher_than_at_mark() -> None:
    # Arrange: cross, WB 4 BTC; BTCUSD long 4,000 × 100 USD (Q = 400,000) @ 50,000, mark 50,000
    # (coin notional 400,000 / 50,000 = 8 BTC → bracket 2). As the price falls the coin notional grows.
    positions = [position("BTCUSD", 4_000.0, 50_000.0)]
    # Act
    book, _, figures = run([inverse_perp()], {"BTC": 50_000.0}, {"BTCUSD": 50_000.0},
                           [account("c", "cross", {"BTC": 4.0}, positions)], COIN)
    p = row(book, "c", "BTCUSD")
    # Assert
    # With the mark's bracket 2 (mmr 0.005, cum 0.005):
    #   400,000 × 1.005 / (4 + 0.005 + 8) = 402,000 / 12.005 = 33,486.05 → notional 11.945 BTC is bracket 3: wrong.
    # With bracket 3 (mmr 0.01, cum 0.055):
    #   LP = 400,000 × 1.01 / (4 + 0.055 + 8) = 404,000 / 12.055 = 33,513.065118...
    #   notional 400,000 / 33,513.07 = 11.936 BTC > 10 → bracket 3, stable.
    assert figures.details["bracket"][p] == 2
    assert liquidation(figures, p) == pytest.approx(404_000 / 12.055, rel=REL)


# ---------------------------------------------------------------------------------------------------------------
# No liquidation price
# ---------------------------------------------------------------------------------------------------------------


def test_linear_long_with_more_collateral_than_notional_has_no_liquidation_price() -> None:
    # Arrange: cross, WB 200,000 USDT; BTC long 1 @ 95,000.
    positions = [position("BTC-USDT", 1.0, 95_000.0)]
    # Act
    book, _, figures = run([linear_perp("BTC")], LINEAR_INDEX, {"BTC-USDT": 95_000.0},
                           [account("rich", "cross", {"USDT": 200_000.0}, positions)], LINEAR)
    p = row(book, "rich", "BTC-USDT")
    # Assert: LP = (200,000 − 95,000) / (1 × 0.004 − 1) = 105,000 / −0.996 < 0 in bracket 1, and no bracket gives a
    # positive root either (bracket 2: 105,050 / −0.995; bracket 3: 106,300 / −0.99) → not defined (null).
    # BP = 95,000 − 200,000 / 1 < 0 → not defined either.
    assert not figures.liquidation_price_defined[p]
    assert not figures.bankruptcy_price_defined[p]
    assert figures.liquidation_price[p] == 0.0


def test_inverse_short_with_collateral_above_its_coin_value_has_no_liquidation_price() -> None:
    # Arrange: cross, WB 1.5 BTC; BTCUSD short 500 × 100 USD (Q = 50,000) @ 50,000 (Q/EP = 1 BTC).
    positions = [position("BTCUSD", -500.0, 50_000.0)]
    # Act
    book, _, figures = run([inverse_perp()], {"BTC": 50_000.0}, {"BTCUSD": 50_000.0},
                           [account("c", "cross", {"BTC": 1.5}, positions)], COIN)
    p = row(book, "c", "BTCUSD")
    # Assert: LP = (Q·mmr − Q) / (WB + cum − Q/EP) = (200 − 50,000) / (1.5 + 0 − 1) = −49,800 / 0.5 < 0 (and
    # −49,750 / 0.505, −49,500 / 0.555 in brackets 2, 3): the short holds more coin than it can lose in coin
    # (its coin loss Q·(1/EP − 1/P) never exceeds Q/EP = 1 < 1.5), so it cannot be liquidated.
    # BP = −Q / (WB − Q/EP) = −50,000 / 0.5 < 0: undefined likewise.
    assert not figures.liquidation_price_defined[p]
    assert not figures.bankruptcy_price_defined[p]


# ---------------------------------------------------------------------------------------------------------------
# Bankruptcy prices (mmr = cum = 0)
# ---------------------------------------------------------------------------------------------------------------


def test_bankruptcy_prices_cross_linear() -> None:
    # Arrange: the two-position cross account of the first test (WB 10,000; BTC long 0.5 @ 94,000, mark 95,000;
    # ETH short 2 @ 3,400, mark 3,300).
    positions = [position("BTC-USDT", 0.5, 94_000.0), position("ETH-USDT", -2.0, 3_400.0)]
    # Act
    book, _, figures = run([linear_perp("BTC"), linear_perp("ETH")], LINEAR_INDEX,
                           {"BTC-USDT": 95_000.0, "ETH-USDT": 3_300.0},
                           [account("a", "cross", {"USDT": 10_000.0}, positions)], LINEAR)
    btc, eth = row(book, "a", "BTC-USDT"), row(book, "a", "ETH-USDT")
    # Assert: equity(P) = 0 with every mmr and cum 0 (so the other position's MM is 0 too, its uPnL stays):
    #   BTC: (10,000 + 200 − 0.5 × 94,000) / (0 − 0.5) = −36,800 / −0.5 = 73,600
    #   ETH: (10,000 + 500 + 2 × 3,400) / (0 + 2) = 17,300 / 2 = 8,650
    assert bankruptcy(figures, btc) == pytest.approx(73_600.0, rel=REL)
    assert bankruptcy(figures, eth) == pytest.approx(8_650.0, rel=REL)


def test_bankruptcy_price_isolated_linear_short_default_wallet() -> None:
    # Arrange: isolated ETH short 10 @ 3,000 at 25x, no isolated_margin entry: wallet = 10 × 3,000 / 25 = 1,200.
    positions = [position("ETH-USDT", -10.0, 3_000.0, leverage=25)]
    # Act
    book, _, figures = run([linear_perp("ETH")], LINEAR_INDEX, {"ETH-USDT": 3_000.0},
                           [account("i", "isolated", {"USDT": 2_000.0}, positions)], LINEAR)
    p = row(book, "i", "ETH-USDT")
    # Assert: BP = EP × (1 + 1/lev) = 3,000 × 1.04 = 3,120  (= (1,200 + 10 × 3,000) / 10)
    #         LP = (1,200 + 10 × 3,000) / (10 × 0.005 + 10) = 31,200 / 10.05 = 3,104.477612...
    assert bankruptcy(figures, p) == pytest.approx(3_120.0, rel=REL)
    assert liquidation(figures, p) == pytest.approx(31_200 / 10.05, rel=REL)


# ---------------------------------------------------------------------------------------------------------------
# Bybit inverse (UTA) formula versions, crypto-venues.md (b)
# ---------------------------------------------------------------------------------------------------------------

# One bracket, mmr 0.5 %, no deduction. $60,000 face (600 × 100 USD) @ 50,000 at 10x, isolated.
BYBIT_UNDERLYINGS: dict[str, Any] = {
    "BTC": {"notional_unit": "coin", "brackets": [{"maintenance_rate": 0.005, "max_leverage": 100}]},
}


def bybit_isolated(version: str, quantity: float, isolated_btc: float | None = None) -> tuple[float, float]:
    profile = tiered_profile(BYBIT_UNDERLYINGS, {"formula_version": version, "taker_fee_rate": 0.00075})
    extra = {"isolated_margin": {"BTCUSD": {"BTC": isolated_btc}}} if isolated_btc is not None else {}
    book, _, figures = run([inverse_perp()], {"BTC": 50_000.0}, {"BTCUSD": 50_000.0},
                           [account("b", "isolated", {"BTC": 1.0},
                                    [position("BTCUSD", quantity, 50_000.0, leverage=10)], **extra)], profile)
    p = row(book, "b", "BTCUSD")
    return liquidation(figures, p), bankruptcy(figures, p)


def test_bybit_inverse_2024_long_and_short() -> None:
    # These values are computed from the 2024 formula, not published by Bybit (no published result is known).
    # Q = 60,000; PV = Q/EP = 1.2 BTC; IM = PV/10 = 0.12; MM = PV × 0.005 − 0 = 0.006 (at the ENTRY value).
    # Act
    long_lp, _ = bybit_isolated("bybit-inverse-uta-2024", 600.0)
    short_lp, _ = bybit_isolated("bybit-inverse-uta-2024", -600.0)
    # Assert
    #   LP_long  = Q / (PV + IM − MM) = 60,000 / (1.2 + 0.114) = 60,000 / 1.314 = 45,662.100456...
    #   LP_short = Q / (PV − (IM − MM)) = 60,000 / (1.2 − 0.114) = 60,000 / 1.086 = 55,248.618784...
    assert long_lp == pytest.approx(60_000 / 1.314, rel=REL)
    assert round(long_lp, 2) == 45_662.10
    assert short_lp == pytest.approx(60_000 / 1.086, rel=REL)


def test_bybit_inverse_2026_long_and_short() -> None:
    # These values are computed from the 2026 formula, not published by Bybit (no published result is known).
    # Q = 60,000; Q/EP = 1.2; Q/(EP·lev) = 0.12; MMR 0.005; deduction 0; no extra margin.
    # Act
    long_lp, _ = bybit_isolated("bybit-inverse-uta-2026", 600.0)
    short_lp, _ = bybit_isolated("bybit-inverse-uta-2026", -600.0)
    # Assert
    #   LP_long  = Q(1 + MMR) / (Q/EP + Q/(EP·lev) + extra/(1 + taker) + deduction) = 60,300 / 1.32 = 45,681.818181...
    #   LP_short = Q(1 − MMR) / (Q/EP − Q/(EP·lev) − extra/(1 − taker) − deduction) = 59,700 / 1.08 = 55,277.777777...
    assert long_lp == pytest.approx(60_300 / 1.32, rel=REL)
    assert round(long_lp, 2) == 45_681.82
    assert short_lp == pytest.approx(59_700 / 1.08, rel=REL)


def test_bybit_inverse_2026_extra_margin_is_net_of_the_taker_fee() -> None:
    # Computed from the 2026 formula, not published. 0.15 BTC assigned, IM 0.12 → extra = 0.03 BTC, taker 0.075 %.
    # Act
    long_lp, _ = bybit_isolated("bybit-inverse-uta-2026", 600.0, isolated_btc=0.15)
    short_lp, _ = bybit_isolated("bybit-inverse-uta-2026", -600.0, isolated_btc=0.15)
    # Assert
    #   LP_long  = 60,300 / (1.2 + 0.12 + 0.03/1.00075) = 60,300 / 1.3499775 = 44,667.41...
    #   LP_short = 59,700 / (1.2 − 0.12 − 0.03/0.99925) = 59,700 / 1.0499775 = 56,858.36...
    assert long_lp == pytest.approx(60_300 / (1.32 + 0.03 / 1.00075), rel=1e-9)
    assert short_lp == pytest.approx(59_700 / (1.08 - 0.03 / 0.99925), rel=1e-9)


def test_bybit_2024_and_2026_differ_for_the_same_position() -> None:
    # 45,662.10 (2024) vs 45,681.82 (2026): both computed from the formulas in crypto-venues.md (b), not published.
    # Act
    lp_2024, bp_2024 = bybit_isolated("bybit-inverse-uta-2024", 600.0)
    lp_2026, bp_2026 = bybit_isolated("bybit-inverse-uta-2026", 600.0)
    # Assert: the gap is 45,681.82 − 45,662.10 ≈ 19.72; the bankruptcy price (equity 0, no MM) is the same:
    #   BP = Q / (PV + IM) = 60,000 / 1.32 = 45,454.545...
    assert lp_2026 - lp_2024 == pytest.approx(60_300 / 1.32 - 60_000 / 1.314, rel=1e-9)
    assert bp_2024 == pytest.approx(60_000 / 1.32, rel=REL)
    assert bp_2026 == pytest.approx(60_000 / 1.32, rel=REL)
