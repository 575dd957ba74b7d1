"""The `tiered` model: notional brackets (or dYdX liquidity tiers) for futures and perpetuals.

Initial margin = notional / leverage (leverage capped by the bracket's maximum); maintenance margin
= notional × rate_b − amount_b with the bracket b of the notional and the amount from the `cum`
recursion; liquidation and bankruptcy prices per position, isolated or cross, one-way or hedge.
Methods: Binance USDⓈ-M/COIN-M leverage brackets and liquidation price FAQ, Bybit's liquidation
price articles (linear, inverse 2024/2026 and legacy cross), dYdX v4 x/perpetuals liquidity tiers
(reference/crypto-venues.md (a), (b), (f)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.book import CROSS, FUTURE, PERPETUAL, PORTFOLIO, Book, sum_by_account
from marginkit.collateral import collateral_value, position_value_in
from marginkit.io.profile_file import Profile, built_once
from marginkit.models import dydx_arithmetic as dydx
from marginkit.models.coverage import refuse_positions, settlement_margin_assets
from marginkit.models.requirements import PositionFigures, Requirements
from marginkit.models.rounding import round_to_step
from marginkit.models.tiered_kernels import (
    BRACKET_LINES,
    FIXED_LINE,
    account_rest,
    adverse_root,
    bracket_lookup,
    choose,
    choose_or,
    positive_prices,
)
from marginkit.models.tiered_parameters import (
    LiquidityTier,
    TieredParameters,
    effective_settings,
    maintenance_amounts,
    parse_tiered_parameters,
)

MODEL = "tiered"
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
BASIS_CODES = {"liquidation_price": 0, "entry": 1, "mark": 2}


@dataclass(frozen=True)
class CompiledTables:
    """Every bracket table of a profile as padded arrays (one row per table), with its settings."""

    keys: tuple[str, ...]
    caps: F64
    rates: F64
    amounts: F64
    leverages: F64
    counts: I64
    notional_unit: tuple[str, ...]
    settings: tuple[dict[str, Any], ...]
    liquidity_tier: tuple[LiquidityTier | None, ...]
    atomic_resolution: tuple[int | None, ...]
    price_exponent: tuple[int, ...]


def compile_tables(parameters: TieredParameters) -> CompiledTables:
    """Pad each underlying's brackets (or its dYdX tier as one bracket) into (tables × brackets) arrays."""
    tiers = {tier.id: tier for tier in parameters.liquidity_tiers}
    keys = tuple(parameters.underlyings)
    width = max((len(t.brackets or [None]) for t in parameters.underlyings.values()), default=1)
    caps = np.full((len(keys), width), np.inf)
    rates = np.zeros((len(keys), width))
    amounts = np.zeros((len(keys), width))
    leverages = np.ones((len(keys), width))
    counts = np.ones(len(keys), dtype=np.int64)
    for t, key in enumerate(keys):
        table = parameters.underlyings[key]
        if table.brackets is not None:
            counts[t] = len(table.brackets)
            for b, (bracket, amount) in enumerate(zip(table.brackets, maintenance_amounts(table.brackets),
                                                      strict=True)):
                caps[t, b] = np.inf if bracket.max_notional is None else bracket.max_notional
                rates[t, b] = bracket.maintenance_rate
                amounts[t, b] = amount
                leverages[t, b] = bracket.max_leverage
        else:
            assert table.liquidity_tier is not None
            tier = tiers[table.liquidity_tier]
            rates[t, 0] = dydx.maintenance_fraction_ppm(tier.initial_margin_ppm, tier.maintenance_fraction_ppm) / 1e6
            leverages[t, 0] = 1e6 / tier.initial_margin_ppm
    return CompiledTables(
        keys=keys, caps=caps, rates=rates, amounts=amounts, leverages=leverages, counts=counts,
        notional_unit=tuple((t.notional_unit or "quote") for t in parameters.underlyings.values()),
        settings=tuple(effective_settings(parameters.defaults, t) for t in parameters.underlyings.values()),
        liquidity_tier=tuple(tiers[t.liquidity_tier] if t.liquidity_tier is not None else None
                             for t in parameters.underlyings.values()),
        atomic_resolution=tuple(t.atomic_resolution for t in parameters.underlyings.values()),
        price_exponent=tuple(t.price_exponent for t in parameters.underlyings.values()),
    )


def _compiled(profile: Profile) -> CompiledTables:
    """The profile's validated bracket tables (built once per profile: `built_once`)."""
    return compile_tables(parse_tiered_parameters(profile))


def _refuse(book: Book, bad: NDArray[np.bool_], reason: str) -> None:
    refuse_positions(book, MODEL, bad, reason)


def _table_of_positions(book: Book, tables: CompiledTables) -> I64:
    index = {key: t for t, key in enumerate(tables.keys)}
    per_instrument = np.array(
        [index.get(i.id, index.get(i.underlying, -1)) for i in book.instruments], dtype=np.int64
    )
    table: I64 = per_instrument[book.position_instrument] if book.position_count else np.zeros(0, np.int64)
    if (per_instrument < 0).any():
        _refuse(book, table < 0, "the profile has no table for this underlying")
    linear_units = np.array([u == "quote" for u in tables.notional_unit], dtype=bool)
    # (Past the check above every held instrument has a table, so linear_units is not empty here.)
    if table.size and (book.inverse == linear_units[np.maximum(per_instrument, 0)]).any():
        inverse = book.inverse[book.position_instrument]
        _refuse(book, inverse & linear_units[table], "brackets in quote currency cannot margin an inverse contract")
        _refuse(book, ~inverse & ~linear_units[table], "brackets in coin cannot margin a linear contract")
    return table


def _hedge_partners(book: Book) -> I64:
    """For the two legs of one instrument in a cross hedge-mode account, each other's index; else −1."""
    partner = np.full(book.position_count, -1, dtype=np.int64)
    shared = ((book.account_mode == CROSS) & book.hedge_mode)[book.position_account]
    candidates = np.flatnonzero(shared)
    if candidates.size:
        key = book.position_account[candidates].astype(np.int64) * len(book.instruments) + \
            book.position_instrument[candidates]
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        same = sorted_key[1:] == sorted_key[:-1]
        first, second = candidates[order[:-1][same]], candidates[order[1:][same]]
        partner[first] = second
        partner[second] = first
    return partner


def _partner_term(values: F64, legs: I64, other: I64) -> F64:
    """Each hedge leg's partner's value (values[other] at legs), 0 for positions without a partner."""
    term = np.zeros(values.shape[0])
    term[legs] = values[other]
    return term


def _dydx_requirements(book: Book, tables: CompiledTables, table: I64, size: F64, mark: F64,
                       im: F64, mm: F64, leverage: F64) -> None:
    """Replace IM/MM (quote units) of positions on dYdX tiers by the exact quote-quantum integer results."""
    for t, tier in enumerate(tables.liquidity_tier):
        if tier is None:
            continue
        rows = np.flatnonzero(table == t)
        if not rows.size:
            continue
        atomic = tables.atomic_resolution[t]
        assert atomic is not None
        exponent = tables.price_exponent[t]
        base = np.rint(size[rows] / 10.0**atomic)
        off_grid = np.abs(base * 10.0**atomic - size[rows]) > 1e-9 * np.maximum(size[rows], 1e-300)
        bad = np.zeros(book.position_count, dtype=bool)
        bad[rows[off_grid]] = True
        _refuse(book, bad, f"quantity × contract_size is not a whole number of base quantums (1e{atomic})")
        price = np.rint(mark[rows] / 10.0**exponent)
        shift = atomic + exponent + 6
        notional = base.astype(np.int64).astype(object) * price.astype(np.int64).astype(object)
        notional = notional * 10**shift if shift >= 0 else notional // 10**(-shift)
        instruments = np.unique(book.position_instrument[rows])
        for i in instruments:
            inst_rows = rows[book.position_instrument[rows] == i]
            oi_base = int(np.rint(book.open_interest[i] * book.contract_size[i] / 10.0**atomic))
            oi_price = int(np.rint(book.mark[i] / 10.0**exponent))
            oi = oi_base * oi_price
            oi = oi * 10**shift if shift >= 0 else oi // 10**(-shift)
            sel = np.isin(rows, inst_rows)
            required = dydx.initial_margin_quote_quantums(
                notional[sel], tier.initial_margin_ppm, oi, tier.open_interest_lower_cap,
                tier.open_interest_upper_cap)
            im[inst_rows] = np.asarray(required, dtype=np.float64) / 1e6
        mm[rows] = np.asarray(dydx.maintenance_margin_quote_quantums(
            notional, tier.initial_margin_ppm, tier.maintenance_fraction_ppm), dtype=np.float64) / 1e6
        notional_float = np.asarray(notional, dtype=np.float64) / 1e6
        with np.errstate(divide="ignore", invalid="ignore"):
            leverage[rows] = np.where(im[rows] > 0, notional_float / np.where(im[rows] > 0, im[rows], 1), 0.0)


def margin(book: Book, profile: Profile) -> Requirements:
    """Tiered initial and maintenance margin, liquidation and bankruptcy prices for every position.

    Amounts are in each account's margin currency (USD for linear contracts, the coin for inverse
    ones); prices in quote currency per unit. See the module docstring for the method and sources.
    """
    tables = built_once(profile, MODEL, _compiled)
    # Each refusal looks at the positions only when some instrument or account could fail it.
    other_kind = (book.kind != FUTURE) & (book.kind != PERPETUAL)
    if other_kind.any():
        _refuse(book, other_kind[book.position_instrument], "covers futures and perpetuals only")
    portfolio = book.account_mode == PORTFOLIO
    if portfolio.any():
        _refuse(book, portfolio[book.position_account], "covers isolated and cross accounts, not portfolio mode")
    table = _table_of_positions(book, tables)
    one_way_only = np.array([s["position_modes"] == ["one-way"] for s in tables.settings], dtype=bool)
    if one_way_only.any() and book.hedge_mode.any():
        _refuse(book, one_way_only[table] & book.hedge_mode[book.position_account],
                "the venue nets positions per instrument: hedge mode is not offered")
    margin_asset = settlement_margin_assets(book, MODEL)

    account = book.position_account
    instrument = book.position_instrument
    inverse = book.inverse[instrument]
    cross = book.account_mode[account] == CROSS
    quantity = book.quantity
    sign = np.sign(quantity)
    size = np.abs(quantity) * book.contract_size[instrument]
    mark = book.mark[instrument]
    entry = np.where(book.entry_price > 0, book.entry_price, mark)
    margin_price = book.asset_price[margin_asset][account]
    if inverse.any():
        y_mark = np.where(inverse, 1.0 / mark, mark)
        y_entry = np.where(inverse, 1.0 / entry, entry)
        unit_asset = np.where(inverse, book.underlying[instrument], book.quote[instrument])
        fx = book.asset_price[unit_asset] / margin_price
        slope = sign * size * np.where(inverse, -1.0, 1.0) * fx
    else:  # linear contracts only: the same numbers without the inverse branches (y = price, unit = quote)
        y_mark = mark
        y_entry = entry
        fx = book.asset_price[book.quote][instrument] / margin_price
        slope = sign * size * fx

    basis = np.array([BASIS_CODES[s["mm_basis"]] for s in tables.settings], dtype=np.int64)[table]
    taker = np.array([s["taker_fee_rate"] for s in tables.settings])[table]
    closing_fee = np.array([s["closing_fee"] == "at_bankruptcy_price" for s in tables.settings], dtype=bool)[table]
    extra_net = np.array([s["extra_margin_net_of_fee"] for s in tables.settings], dtype=bool)[table]

    y_basis = np.where(basis == BASIS_CODES["entry"], y_entry, y_mark)
    notional = size * y_basis
    bracket, rate, amount, leverage = bracket_lookup(notional, table, tables.caps, tables.counts, tables.rates,
                                                     tables.amounts, tables.leverages, book.leverage)
    im_unit = notional / leverage
    mm_unit = np.maximum(notional * rate - amount, 0.0)
    _dydx_requirements(book, tables, table, size, mark, im_unit, mm_unit, leverage)
    initial = im_unit * fx
    maintenance = mm_unit * fx

    # Isolated wallets: the assigned collateral, else the initial margin at entry (what the venue moves).
    wallet_default = size * y_entry / leverage * fx
    wallet = choose(book.has_isolated_wallet, book.isolated_wallet_usd / margin_price, wallet_default)
    if extra_net.any():
        extra = wallet - wallet_default
        wallet = np.where(extra_net, wallet_default + extra / (1.0 + sign * taker), wallet)

    value = position_value_in(book, margin_asset)
    equity = collateral_value(book, margin_asset) + sum_by_account(account, value, book.account_count)
    partner = _hedge_partners(book)
    legs = np.flatnonzero(partner >= 0)
    other = partner[legs]
    group_value = value + _partner_term(value, legs, other)
    k_entry = slope * y_entry
    group_k_entry = k_entry + _partner_term(k_entry, legs, other)

    # Bankruptcy price: equity(y) = the fee to close there (if the profile counts it), others' margin aside.
    equity_rest = account_rest(cross, equity, account, group_value, wallet)
    zeros = np.zeros(book.position_count)
    any_closing_fee = bool(closing_fee.any())
    fee_alpha = np.where(closing_fee, fx * taker * size, 0.0) if any_closing_fee else zeros
    fixed = np.full(book.position_count, FIXED_LINE, dtype=np.int64)
    constant = equity_rest - group_k_entry
    y_bankrupt = adverse_root(constant, slope, partner, fixed, fx, size, tables.rates,
                              tables.amounts, tables.counts, table, fee_alpha, zeros, bracket, y_mark)
    bankruptcy = _to_price(y_bankrupt, inverse)
    bankruptcy, bankruptcy_defined = _round_prices(book, tables, table, bankruptcy, mark, "bankruptcy_price")
    if any_closing_fee:
        fee_at_bankruptcy = np.where(closing_fee & bankruptcy_defined,
                                     fee_alpha * _to_y(bankruptcy, inverse, bankruptcy_defined), 0.0)
    else:
        fee_at_bankruptcy = zeros
    maintenance = maintenance + fee_at_bankruptcy

    # Liquidation price: equity(y) = the account's maintenance margin with this position's at y.
    account_maintenance = sum_by_account(account, maintenance, book.account_count)
    group_maintenance = maintenance + _partner_term(maintenance, legs, other)
    maintenance_rest = account_rest(cross, account_maintenance, account, group_maintenance, zeros)
    line_kind = np.where(basis == BASIS_CODES["liquidation_price"], BRACKET_LINES, FIXED_LINE).astype(np.int64)
    fixed_beta = np.where(line_kind == FIXED_LINE, maintenance, fee_at_bankruptcy)
    constant = np.subtract(equity_rest, maintenance_rest, out=constant)
    constant -= group_k_entry
    y_liquidation = adverse_root(constant, slope, partner, line_kind, fx,
                                 size, tables.rates, tables.amounts, tables.counts, table, zeros, fixed_beta,
                                 bracket, y_mark)
    liquidation = _to_price(y_liquidation, inverse)
    liquidation, liquidation_defined = _round_prices(book, tables, table, liquidation, mark, "liquidation_price")

    initial = _round_amounts(tables, table, initial)
    maintenance = _round_amounts(tables, table, maintenance)
    flat = quantity == 0
    liquidation_defined &= ~flat
    bankruptcy_defined &= ~flat
    return Requirements(
        model=MODEL,
        profile=profile.name,
        profile_version=profile.version,
        margin_asset=margin_asset,
        initial_margin=sum_by_account(account, initial, book.account_count),
        maintenance_margin=sum_by_account(account, maintenance, book.account_count),
        components={},
        positions=PositionFigures(
            initial_margin=initial,
            maintenance_margin=maintenance,
            liquidation_price=choose_or(liquidation_defined, liquidation, 0.0),
            liquidation_price_defined=liquidation_defined,
            bankruptcy_price=choose_or(bankruptcy_defined, bankruptcy, 0.0),
            bankruptcy_price_defined=bankruptcy_defined,
            details={
                "notional": notional,
                "bracket": bracket + 1,
                "maintenance_rate": rate,
                "maintenance_amount": amount,
                "leverage": leverage,
            },
            isolated_wallet=choose_or(~cross, wallet, 0.0),
        ),
    )


def _to_price(y: F64, inverse: NDArray[np.bool_]) -> F64:
    if not inverse.any():
        return y
    with np.errstate(divide="ignore", invalid="ignore"):
        result: F64 = np.where(inverse, 1.0 / y, y)
    return result


def _to_y(price: F64, inverse: NDArray[np.bool_], defined: NDArray[np.bool_]) -> F64:
    safe = np.where(defined, price, 1.0)
    result: F64 = np.where(inverse, 1.0 / safe, safe)
    return result


def _round_prices(book: Book, tables: CompiledTables, table: I64, price: F64, mark: F64,
                  which: str) -> tuple[F64, NDArray[np.bool_]]:
    """Round prices by each table's rule (to the instrument's tick or to decimals); NaN marks undefined."""
    result, defined = positive_prices(price)
    rounded = False
    for t, settings in enumerate(tables.settings):
        rule = settings["rounding"].price_rule(which)
        if rule.mode == "none":
            continue
        rounded = True
        rows = np.flatnonzero((table == t) & defined)
        if rule.decimals is None:
            step = book.tick_size[book.position_instrument[rows]]
        else:
            step = np.full(rows.size, 10.0 ** -rule.decimals)
        result[rows] = round_to_step(result[rows], step, rule.mode, mark[rows])
    if rounded:  # (unrounded, result > 0 exactly where defined)
        defined &= result > 0
    return result, defined


def _round_amounts(tables: CompiledTables, table: I64, amounts: F64) -> F64:
    result = amounts.copy()
    for t, settings in enumerate(tables.settings):
        rounding = settings["rounding"]
        if rounding.decimals is None:
            continue
        rows = np.flatnonzero(table == t)
        result[rows] = round_to_step(amounts[rows], 10.0 ** -rounding.decimals, rounding.amounts)
    return result
