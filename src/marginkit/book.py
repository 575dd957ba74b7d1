"""resolve: bind accounts × instruments to one market snapshot as columnar arrays, once.

The Book holds per-instrument arrays (terms and resolved prices), per-account arrays (mode,
collateral balances per asset) and per-position arrays sorted by account, plus the sparse
accounts × instruments matrix of net quantities. Models are pure functions of a Book.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import scipy.sparse as sparse
from numpy.typing import NDArray

from marginkit.domain import (
    Account,
    BookSpec,
    Instrument,
    InstrumentType,
    MarginMode,
    MarketSnapshot,
    OptionType,
    PositionMode,
    PositionSide,
)
from marginkit.errors import InputError
from marginkit.pricing import black76_price, implied_volatility_with_mask, svi_volatility

F64 = NDArray[np.float64]
I32 = NDArray[np.int32]
I8 = NDArray[np.int8]
B = NDArray[np.bool_]

SECONDS_PER_YEAR = 365.0 * 86400.0
KIND_CODES = {InstrumentType.SPOT: 0, InstrumentType.FUTURE: 1, InstrumentType.PERPETUAL: 2, InstrumentType.OPTION: 3}
SPOT, FUTURE, PERPETUAL, OPTION = 0, 1, 2, 3
MODE_CODES = {MarginMode.ISOLATED: 0, MarginMode.CROSS: 1, MarginMode.PORTFOLIO: 2}
ISOLATED, CROSS, PORTFOLIO = 0, 1, 2
SIDE_CODES = {PositionSide.BOTH: 0, PositionSide.LONG: 1, PositionSide.SHORT: 2}


@dataclass(frozen=True, eq=False)
class Book:
    """A resolved book: columnar arrays of instruments, accounts and positions at `as_of`.

    Prices are quote currency per unit of underlying (options: premium per unit in the settlement
    currency); `asset_price` is the USD value of one unit of each asset; positions are sorted by
    account and `position_value` is each position's value in its settlement currency (futures and
    perpetuals: unrealised P&L against entry at the mark; spot and options: quantity × size × mark).
    """

    as_of: datetime
    assets: tuple[str, ...]
    asset_price: F64
    instruments: tuple[Instrument, ...]
    kind: I8
    inverse: B
    contract_size: F64
    tick_size: F64
    strike: F64
    is_call: B
    years: F64
    underlying: I32
    quote: I32
    settlement: I32
    mark: F64
    underlying_price: F64
    open_interest: F64
    account_ids: tuple[str, ...]
    account_mode: I8
    hedge_mode: B
    collateral: F64
    position_account: I32
    position_instrument: I32
    quantity: F64
    entry_price: F64
    leverage: F64
    position_side: I8
    isolated_wallet_usd: F64
    has_isolated_wallet: B
    position_value: F64
    position_matrix: sparse.csr_matrix
    # Option terms bound at resolve (per instrument): forward of the expiry (futures: their price; perpetuals
    # and spot: the index), annualised volatility (given, from the smile, or implied from the mark; 0 for
    # non-options) and the premium currency's discount factor. None only in books built by hand without them.
    forward: F64 | None = None
    volatility: F64 | None = None
    discount: F64 | None = None
    account_class: tuple[str | None, ...] = ()  # per account: speculator | hedger | member, None if unstated
    # Collateral by chain (docs/collateral.md). A lot is one (account, asset, chain) balance; the part of an
    # account's balance on no chain is a lot with chain -1. None only in books built by hand (then every
    # nonzero `collateral` entry is one lot on no chain). Deposits point at their lot, with their age at as_of.
    credit_tier: tuple[str | None, ...] = ()  # per account, None if unstated
    chains: tuple[str, ...] = ()
    chain_halted: B | None = None  # per chain: market.chain_status is halted
    lot_account: I32 | None = None
    lot_asset: I32 | None = None
    lot_chain: I32 | None = None
    lot_amount: F64 | None = None
    deposit_lot: I32 | None = None
    deposit_amount: F64 | None = None
    deposit_age: F64 | None = None  # seconds from the deposit's time to as_of
    # Set by marginkit.collateral.apply_collateral under a collateral profile: each account's collateral value
    # in USD with initial and maintenance haircuts, and its credit tier's initial-margin multiplier.
    collateral_initial_usd: F64 | None = None
    collateral_maintenance_usd: F64 | None = None
    initial_margin_multiplier: F64 | None = None
    collateral_profile: tuple[str, str] | None = None  # (name, version) of the collateral profile applied

    @property
    def instrument_ids(self) -> tuple[str, ...]:
        """Instrument ids in array order."""
        return tuple(i.id for i in self.instruments)

    @property
    def asset_index(self) -> dict[str, int]:
        """Asset name -> column of `collateral` and index into `asset_price`."""
        return {name: i for i, name in enumerate(self.assets)}

    @property
    def account_count(self) -> int:
        return len(self.account_ids)

    @property
    def position_count(self) -> int:
        return int(self.quantity.shape[0])

    def usd_per_settlement(self) -> F64:
        """USD value of one unit of each position's settlement currency."""
        result: F64 = self.asset_price[self.settlement[self.position_instrument]]
        return result


def with_positions(book: Book, keep: NDArray[np.bool_]) -> Book:
    """The same book (instruments, market, accounts and collateral) holding only the positions where `keep`."""
    account = book.position_account[keep]
    instrument = book.position_instrument[keep]
    quantity = book.quantity[keep]
    return replace(
        book, position_account=account, position_instrument=instrument, quantity=quantity,
        entry_price=book.entry_price[keep], leverage=book.leverage[keep], position_side=book.position_side[keep],
        isolated_wallet_usd=book.isolated_wallet_usd[keep], has_isolated_wallet=book.has_isolated_wallet[keep],
        position_value=book.position_value[keep],
        position_matrix=sparse.csr_matrix((quantity, (account, instrument)), shape=book.position_matrix.shape))


def sum_by_account(account: I32, values: F64, account_count: int) -> F64:
    """Σ values per account (positions' account index), as float64."""
    result: F64 = np.bincount(account, weights=values, minlength=account_count).astype(np.float64, copy=False)
    return result


def position_values(
    kind: I8, inverse: B, contract_size: F64, mark: F64, quote_to_settlement: F64,
    instrument: I32, quantity: F64, entry_price: F64,
) -> F64:
    """Each position's value in its settlement currency (book format, "Equity and currency").

    Linear futures and perpetuals: q·size·(mark − entry) (quote, converted); inverse:
    q·size·(1/entry − 1/mark) in coin; spot: q·size·mark; options: q·size·mark (premium already in
    the settlement currency).
    """
    k = kind[instrument]
    size = contract_size[instrument]
    price = mark[instrument]
    inv = inverse[instrument]
    delta_one = (k == FUTURE) | (k == PERPETUAL)
    safe_price = np.where(price > 0, price, 1.0)  # only an option's premium may be 0
    safe_entry = np.where(entry_price > 0, entry_price, safe_price)
    linear_pnl = quantity * size * (price - safe_entry) * quote_to_settlement[instrument]
    inverse_pnl = quantity * size * (1.0 / safe_entry - 1.0 / safe_price)
    held_value = quantity * size * price * np.where(k == OPTION, 1.0, quote_to_settlement[instrument])
    result: F64 = np.where(delta_one, np.where(inv, inverse_pnl, linear_pnl), held_value)
    return result


def _usd(market: MarketSnapshot, asset: str) -> float:
    price = market.usd_price(asset)
    if price is None:
        raise InputError(f"{asset!r} has no index price", field=f"market.index.{asset}")
    return price


def _years(as_of: datetime, expiry: datetime | None) -> float:
    return 0.0 if expiry is None else max((expiry - as_of).total_seconds(), 0.0) / SECONDS_PER_YEAR


def _forward(spec: BookSpec, instrument: Instrument, years: float) -> float:
    """Forward of an expiry: `forwards`, else index × exp((r_quote − r_underlying)·T), in quote currency."""
    market = spec.market
    if instrument.expiry is not None and (instrument.underlying, instrument.expiry) in market.forwards:
        return market.forwards[(instrument.underlying, instrument.expiry)]
    spot = _usd(market, instrument.underlying) / _usd(market, instrument.quote)
    carry = market.rates.get(instrument.quote, 0.0) - market.rates.get(instrument.underlying, 0.0)
    return spot * math.exp(carry * years)


def _given_volatility(spec: BookSpec, instrument: Instrument, forward: float, years: float) -> float | None:
    """An option's vol from `vols`, else from its SVI smile, else None."""
    market = spec.market
    if instrument.id in market.vols:
        return market.vols[instrument.id]
    if instrument.expiry is not None and instrument.expiry in market.surfaces.get(instrument.underlying, {}):
        assert instrument.strike is not None
        smile = market.surfaces[instrument.underlying][instrument.expiry]
        vol = float(svi_volatility(instrument.strike, forward, max(years, 1e-12), smile.a, smile.b, smile.rho,
                                   smile.m, smile.sigma))
        if not vol > 0 or not math.isfinite(vol):
            raise InputError("the SVI smile gives no positive variance at this strike",
                             field=f"market.surfaces.{instrument.underlying}")
        return vol
    return None


def _discount(spec: BookSpec, instrument: Instrument, years: float) -> float:
    """Discount factor of the premium's currency (the coin for coin-settled options), `rates` absent = 0."""
    premium_currency = instrument.underlying if instrument.inverse else instrument.settlement
    return math.exp(-spec.market.rates.get(premium_currency, 0.0) * years)


def _option_mark(spec: BookSpec, instrument: Instrument, index: int, years: float) -> float:
    """Premium per unit of underlying in the settlement currency by Black-76 on the forward."""
    market = spec.market
    forward = _forward(spec, instrument, years)
    assert instrument.strike is not None and instrument.expiry is not None
    vol = _given_volatility(spec, instrument, forward, years)
    if vol is None:
        raise InputError(
            "an option needs a mark, a vol in market.vols or an SVI smile in market.surfaces",
            field=f"market.marks.{instrument.id}",
        )
    price = float(black76_price(forward, instrument.strike, years, vol,
                                instrument.option_type == OptionType.CALL, _discount(spec, instrument, years)))
    if instrument.inverse:
        return price / forward
    return price * _usd(market, instrument.quote) / _usd(market, instrument.settlement)


def _option_terms(spec: BookSpec, instruments: tuple[Instrument, ...], years: F64, mark: F64
                  ) -> tuple[F64, F64, F64]:
    """Forward, volatility and discount per instrument; an option with only a mark gets its implied vol.

    A mark with no implied vol (at or below the discounted intrinsic value) gets vol 0: intrinsic value.
    """
    forward = np.array([_forward(spec, inst, float(years[i])) if inst.type in (InstrumentType.OPTION,
                        InstrumentType.FUTURE) else _usd(spec.market, inst.underlying) / _usd(spec.market, inst.quote)
                        for i, inst in enumerate(instruments)], dtype=np.float64)
    discount = np.array([_discount(spec, inst, float(years[i])) for i, inst in enumerate(instruments)])
    volatility = np.zeros(len(instruments))
    implied: list[int] = []
    for i, inst in enumerate(instruments):
        if inst.type == InstrumentType.OPTION:
            given = _given_volatility(spec, inst, float(forward[i]), float(years[i]))
            if given is None:
                implied.append(i)
            else:
                volatility[i] = given
    if implied:
        rows = np.array(implied)
        linear_premium = np.array([
            mark[i] if instruments[i].inverse else
            mark[i] * _usd(spec.market, instruments[i].settlement) / _usd(spec.market, instruments[i].quote)
            for i in implied])
        solved = implied_volatility_with_mask(
            linear_premium, forward[rows], np.array([instruments[i].strike for i in implied]),
            np.maximum(years[rows], 1e-12), np.array([instruments[i].option_type == OptionType.CALL for i in implied]),
            discount[rows], inverse=np.array([instruments[i].inverse for i in implied]))
        volatility[rows] = np.where(solved.valid, solved.volatility, 0.0)
    return forward, volatility, discount


def _instrument_mark(spec: BookSpec, instrument: Instrument, index: int, years: float) -> float:
    market = spec.market
    if instrument.id in market.marks:
        return market.marks[instrument.id]
    if instrument.type == InstrumentType.OPTION:
        return _option_mark(spec, instrument, index, years)
    if instrument.type == InstrumentType.FUTURE:
        return _forward(spec, instrument, years)
    return _usd(market, instrument.underlying) / _usd(market, instrument.quote)


def resolve(spec: BookSpec) -> Book:
    """Bind a BookSpec's accounts and instruments to its market: columnar arrays and a sparse matrix."""
    market = spec.market
    assets: list[str] = list(market.index)
    if "USD" not in assets:
        assets.append("USD")
    asset_of = {name: i for i, name in enumerate(assets)}
    asset_price = np.array([_usd(market, a) for a in assets], dtype=np.float64)

    instruments = spec.instruments
    instrument_of = {inst.id: i for i, inst in enumerate(instruments)}
    years = np.array([_years(spec.as_of, inst.expiry) for inst in instruments], dtype=np.float64)
    mark = np.array(
        [_instrument_mark(spec, inst, i, float(years[i])) for i, inst in enumerate(instruments)], dtype=np.float64
    )
    forward, volatility, discount = _option_terms(spec, instruments, years, mark)
    quote = np.array([asset_of[i.quote] for i in instruments], dtype=np.int32)
    settlement = np.array([asset_of[i.settlement] for i in instruments], dtype=np.int32)
    underlying = np.array([asset_of[i.underlying] for i in instruments], dtype=np.int32)
    kind = np.array([KIND_CODES[i.type] for i in instruments], dtype=np.int8)
    inverse = np.array([i.inverse for i in instruments], dtype=bool)
    contract_size = np.array([i.contract_size for i in instruments], dtype=np.float64)

    accounts: tuple[Account, ...] = spec.accounts
    rows: list[int] = []
    columns: list[int] = []
    quantities: list[float] = []
    entries: list[float] = []
    leverages: list[float] = []
    sides: list[int] = []
    wallets: list[float] = []
    has_wallet: list[bool] = []
    collateral = np.zeros((len(accounts), len(assets)), dtype=np.float64)
    for a, account in enumerate(accounts):
        for asset, balance in account.collateral.items():
            collateral[a, asset_of[asset]] += balance
        for position in account.positions:
            rows.append(a)
            columns.append(instrument_of[position.instrument])
            quantities.append(position.quantity)
            entries.append(position.entry_price or 0.0)
            leverages.append(position.leverage or 0.0)
            sides.append(SIDE_CODES[position.position_side])
            assigned = account.isolated_margin.get(position.instrument)
            has_wallet.append(assigned is not None)
            wallets.append(sum(v * asset_price[asset_of[k]] for k, v in (assigned or {}).items()))

    lots = _collateral_lots(spec, asset_of)
    position_account = np.array(rows, dtype=np.int32)
    position_instrument = np.array(columns, dtype=np.int32)
    quantity = np.array(quantities, dtype=np.float64)
    entry_price = np.array(entries, dtype=np.float64)
    quote_to_settlement = asset_price[quote] / asset_price[settlement]
    return Book(
        as_of=spec.as_of,
        assets=tuple(assets),
        asset_price=asset_price,
        instruments=instruments,
        kind=kind,
        inverse=inverse,
        contract_size=contract_size,
        tick_size=np.array([i.tick_size or 0.0 for i in instruments], dtype=np.float64),
        strike=np.array([i.strike or 0.0 for i in instruments], dtype=np.float64),
        is_call=np.array([i.option_type == OptionType.CALL for i in instruments], dtype=bool),
        years=years,
        underlying=underlying,
        quote=quote,
        settlement=settlement,
        mark=mark,
        underlying_price=asset_price[underlying] / asset_price[quote],
        open_interest=np.array([market.open_interest.get(i.id, 0.0) for i in instruments], dtype=np.float64),
        account_ids=tuple(a.id for a in accounts),
        account_mode=np.array([MODE_CODES[a.mode] for a in accounts], dtype=np.int8),
        hedge_mode=np.array([a.position_mode == PositionMode.HEDGE for a in accounts], dtype=bool),
        collateral=collateral,
        position_account=position_account,
        position_instrument=position_instrument,
        quantity=quantity,
        entry_price=entry_price,
        leverage=np.array(leverages, dtype=np.float64),
        position_side=np.array(sides, dtype=np.int8),
        isolated_wallet_usd=np.array(wallets, dtype=np.float64),
        has_isolated_wallet=np.array(has_wallet, dtype=bool),
        position_value=position_values(kind, inverse, contract_size, mark, quote_to_settlement,
                                       position_instrument, quantity, entry_price),
        position_matrix=sparse.csr_matrix(
            (quantity, (position_account, position_instrument)), shape=(len(accounts), len(instruments))
        ),
        forward=forward,
        volatility=volatility,
        discount=discount,
        account_class=tuple(a.account_class for a in accounts),
        credit_tier=tuple(a.credit_tier for a in accounts),
        chains=lots.chains,
        chain_halted=lots.chain_halted,
        lot_account=lots.account,
        lot_asset=lots.asset,
        lot_chain=lots.chain,
        lot_amount=lots.amount,
        deposit_lot=lots.deposit_lot,
        deposit_amount=lots.deposit_amount,
        deposit_age=lots.deposit_age,
    )


@dataclass(frozen=True, eq=False)
class _Lots:
    chains: tuple[str, ...]
    chain_halted: B
    account: I32
    asset: I32
    chain: I32
    amount: F64
    deposit_lot: I32
    deposit_amount: F64
    deposit_age: F64


def _collateral_lots(spec: BookSpec, asset_of: dict[str, int]) -> _Lots:
    """One lot per (account, asset, chain) balance, the rest of each balance on no chain (-1); deposits by lot."""
    names = {chain for a in spec.accounts for chains in a.collateral_chains.values() for chain in chains}
    chains = tuple(sorted(names | set(spec.market.chain_status)))
    chain_of = {name: i for i, name in enumerate(chains)}
    account: list[int] = []
    asset: list[int] = []
    chain: list[int] = []
    amount: list[float] = []
    deposit_lot: list[int] = []
    deposit_amount: list[float] = []
    deposit_age: list[float] = []
    for a, holder in enumerate(spec.accounts):
        lot_of: dict[tuple[str, str], int] = {}
        for name, balance in holder.collateral.items():
            on_chains = holder.collateral_chains.get(name, {})
            for chain_name, held in on_chains.items():
                lot_of[(name, chain_name)] = len(amount)
                account.append(a)
                asset.append(asset_of[name])
                chain.append(chain_of[chain_name])
                amount.append(held)
            rest = balance - sum(on_chains.values())
            if abs(rest) > 1e-12 * abs(balance):
                account.append(a)
                asset.append(asset_of[name])
                chain.append(-1)
                amount.append(rest)
        for deposit in holder.deposits:
            deposit_lot.append(lot_of[(deposit.asset, deposit.chain)])
            deposit_amount.append(deposit.amount)
            deposit_age.append((spec.as_of - deposit.time).total_seconds())
    return _Lots(
        chains=chains,
        chain_halted=np.array([spec.market.chain_status.get(c) == "halted" for c in chains], dtype=bool),
        account=np.array(account, dtype=np.int32),
        asset=np.array(asset, dtype=np.int32),
        chain=np.array(chain, dtype=np.int32),
        amount=np.array(amount, dtype=np.float64),
        deposit_lot=np.array(deposit_lot, dtype=np.int32),
        deposit_amount=np.array(deposit_amount, dtype=np.float64),
        deposit_age=np.array(deposit_age, dtype=np.float64),
    )
