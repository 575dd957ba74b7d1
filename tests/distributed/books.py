"""Synthetic books for the cluster tests, built as domain objects (what `load_book` returns), seeded.

`portfolio_spec`: Deribit-style coin-settled BTC and ETH perpetuals, futures and options in portfolio-mode
accounts, some margined in one coin (S:PM), some across coins with USDC (X:PM). `perpetual_spec`: linear
USDT-settled BTC and ETH perpetuals in cross and isolated accounts, collateral in USDT, BTC and ETH.
`index_book`: S&P 500 index (spot) holders, for VaR with the `arch` sample history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from marginkit.domain import (
    Account,
    BookSpec,
    Instrument,
    InstrumentType,
    MarginMode,
    MarketSnapshot,
    OptionType,
    Position,
)

AS_OF = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
INDEX = {"BTC": 95_000.0, "ETH": 3_300.0, "USDC": 1.0, "USDT": 1.0}


def _coin_instruments() -> tuple[list[Instrument], dict[str, float], dict[tuple[str, datetime], float]]:
    instruments: list[Instrument] = []
    vols: dict[str, float] = {}
    forwards: dict[tuple[str, datetime], float] = {}
    for coin, size in (("BTC", 10.0), ("ETH", 1.0)):
        spot = INDEX[coin]
        instruments.append(Instrument(id=f"{coin}-PERPETUAL", type=InstrumentType.PERPETUAL, underlying=coin,
                                      quote="USD", settlement=coin, inverse=True, contract_size=size))
        for days in (30, 90):
            expiry = AS_OF + timedelta(days=days)
            code = expiry.strftime("%d%b%y").upper()
            forwards[(coin, expiry)] = spot * (1.0 + 0.05 * days / 365.0)
            instruments.append(Instrument(id=f"{coin}-{code}", type=InstrumentType.FUTURE, underlying=coin,
                                          quote="USD", settlement=coin, inverse=True, contract_size=size,
                                          expiry=expiry))
            for moneyness in (0.8, 0.9, 1.0, 1.1, 1.25):
                strike = round(spot * moneyness, -2 if coin == "BTC" else 0)
                for kind in (OptionType.CALL, OptionType.PUT):
                    identifier = f"{coin}-{code}-{strike:.0f}-{'C' if kind == OptionType.CALL else 'P'}"
                    vols[identifier] = 0.5 + 0.4 * (moneyness - 1.0) ** 2 + 0.02 * (days == 30)
                    instruments.append(Instrument(id=identifier, type=InstrumentType.OPTION, underlying=coin,
                                                  quote="USD", settlement=coin, inverse=True, contract_size=1.0,
                                                  expiry=expiry, option_type=kind, strike=strike))
    return instruments, vols, forwards


def portfolio_spec(accounts: int, seed: int = 20261124) -> BookSpec:
    """`accounts` portfolio-mode accounts of 1 to 6 positions on BTC and ETH coin-settled contracts."""
    rng = np.random.default_rng(seed)
    instruments, vols, forwards = _coin_instruments()
    ids = [i.id for i in instruments]
    coin_of = [i.underlying for i in instruments]
    is_option = np.array([i.type == InstrumentType.OPTION for i in instruments])
    counts = rng.integers(1, 7, accounts)
    total = int(counts.sum())
    chosen = rng.integers(0, len(instruments), total)
    quantity = np.where(is_option[chosen], np.round(rng.normal(0.0, 3.0, total), 1),
                        np.round(rng.normal(0.0, 2_000.0, total), -1))
    quantity[quantity == 0.0] = 1.0
    entry = rng.uniform(0.9, 1.1, total)
    kind = rng.random(accounts)
    balance = rng.lognormal(0.0, 1.0, (accounts, 3))
    built: list[Account] = []
    row = 0
    for a in range(accounts):
        positions = []
        first = row
        for r in range(row, row + int(counts[a])):
            i = int(chosen[r])
            coin = coin_of[i]
            price = INDEX[coin] * float(entry[r]) if not is_option[i] else 0.05 * float(entry[r])
            positions.append(Position(instrument=ids[i], quantity=float(quantity[r]), entry_price=price))
        row += int(counts[a])
        coins = {coin_of[int(chosen[r])] for r in range(first, row)}
        if kind[a] < 0.5 and len(coins) == 1:  # S:PM: one coin
            coin = coins.pop()
            collateral = {coin: float(balance[a, 0]) * (10.0 if coin == "BTC" else 150.0)}
        else:  # X:PM: coins and USDC
            collateral = {"BTC": float(balance[a, 0]), "ETH": float(balance[a, 1]) * 20.0,
                          "USDC": float(balance[a, 2]) * 50_000.0}
        built.append(Account(id=f"pm-{a:07d}", mode=MarginMode.PORTFOLIO, collateral=collateral,
                             positions=tuple(positions)))
    market = MarketSnapshot(index=dict(INDEX), vols=vols, forwards=forwards)
    return BookSpec(as_of=AS_OF, instruments=tuple(instruments), market=market, accounts=tuple(built))


def perpetual_spec(accounts: int, seed: int = 20261125) -> BookSpec:
    """`accounts` cross (three in four) and isolated accounts of 1 to 4 linear BTC/ETH USDT perpetuals."""
    rng = np.random.default_rng(seed)
    instruments = [Instrument(id=f"{coin}USDT", type=InstrumentType.PERPETUAL, underlying=coin, quote="USD",
                              settlement="USDT", inverse=False, contract_size=1.0, tick_size=0.1)
                   for coin in ("BTC", "ETH")]
    counts = rng.integers(1, 5, accounts)
    total = int(counts.sum())
    chosen = rng.integers(0, 2, total)
    size = np.where(chosen == 0, np.round(rng.lognormal(-1.0, 1.5, total), 3),
                    np.round(rng.lognormal(1.0, 1.5, total), 2))
    size = np.maximum(size, 0.01)
    quantity = np.where(rng.random(total) < 0.5, -size, size)
    entry = np.array([INDEX["BTC"], INDEX["ETH"]])[chosen] * rng.uniform(0.9, 1.1, total)
    leverage = rng.choice([5.0, 10.0, 20.0, 50.0], total)
    isolated = rng.random(accounts) < 0.25
    balance = rng.lognormal(0.0, 1.0, (accounts, 3))
    built: list[Account] = []
    row = 0
    for a in range(accounts):
        positions = []
        held: set[str] = set()
        for r in range(row, row + int(counts[a])):
            instrument = instruments[int(chosen[r])].id
            if instrument in held:  # one-way mode: one position per instrument
                continue
            held.add(instrument)
            positions.append(Position(instrument=instrument, quantity=float(quantity[r]),
                                      entry_price=round(float(entry[r]), 1), leverage=float(leverage[r])))
        row += int(counts[a])
        collateral = {"USDT": float(balance[a, 0]) * 5_000.0, "BTC": float(balance[a, 1]) * 0.05,
                      "ETH": float(balance[a, 2]) * 0.5}
        if isolated[a]:
            margin = {p.instrument: {"USDT": collateral["USDT"] / (2 * len(positions))} for p in positions}
            built.append(Account(id=f"perp-{a:07d}", mode=MarginMode.ISOLATED, collateral=collateral,
                                 isolated_margin=margin, positions=tuple(positions)))
        else:
            built.append(Account(id=f"perp-{a:07d}", mode=MarginMode.CROSS, collateral=collateral,
                                 positions=tuple(positions)))
    market = MarketSnapshot(index=dict(INDEX), marks={"BTCUSDT": 95_012.5, "ETHUSDT": 3_301.2})
    return BookSpec(as_of=AS_OF, instruments=tuple(instruments), market=market, accounts=tuple(built))


def index_book(accounts: int) -> BookSpec:
    """Accounts long or short the S&P 500 index (spot), as of the sample's last day."""
    spx = Instrument(id="SPX", type=InstrumentType.SPOT, underlying="SPX", quote="USD", settlement="USD",
                     inverse=False, contract_size=1.0)
    holders = tuple(Account(id=f"fund-{a:03d}", mode=MarginMode.CROSS, collateral={"USD": 1_000.0 * a},
                            positions=(Position("SPX", float((a % 7) - 3 or 1) * 10.0, 2_500.0),))
                    for a in range(accounts))
    return BookSpec(as_of=AS_OF.replace(year=2018, month=12, day=31, hour=21), instruments=(spx,),
                    market=MarketSnapshot(index={"SPX": 2_506.85}), accounts=holders)
