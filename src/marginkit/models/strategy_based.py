"""The `strategy-based` model: CBOE / FINRA 4210 margin for stock and equity or index options.

Long options are paid in full and long stock needs 50 % (Reg T); a short option needs its premium +
max(rate·U − OTM, minimum·(U for a call, X for a put)), rate 20 % for equity and narrow-based index
options, 15 % broad-based, × the leverage factor; vertical spreads, short straddles and strangles,
covered calls and covered puts are recognised by the pairing that minimises the total (an integer
programme, models/strategy_pairing.py). Maintenance per FINRA 4210 (long stock 25 %, short stock 30 %).
Requirements are net of option proceeds, the equity footing; the gross figure is
`components.venue_initial_margin` (reference/strategy-based.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.book import OPTION, PORTFOLIO, SPOT, Book, sum_by_account
from marginkit.io.profile_file import Profile
from marginkit.models.coverage import refuse_positions, settlement_margin_assets
from marginkit.models.requirements import Requirements
from marginkit.models.strategy_pairing import Pair, best_pairing
from marginkit.models.strategy_parameters import RequirementLevel, parse_strategy_parameters

MODEL = "strategy-based"
F64 = NDArray[np.float64]


def _short_option_rate(book: Book, level: RequirementLevel, instrument: NDArray[np.int32]) -> F64:
    rates = level.short_option
    by_class = {"equity": rates.equity, "narrow": rates.narrow, "broad": rates.broad, None: rates.equity}
    per_instrument = np.array([by_class[i.index_class] * i.leverage_factor for i in book.instruments])
    result: F64 = per_instrument[instrument]
    return result


def _standalone(book: Book, level: RequirementLevel) -> F64:
    """Each leg's requirement per unit when unpaired, net of proceeds: per contract (options) or per share."""
    instrument = book.position_instrument
    option = book.kind[instrument] == OPTION
    price = book.mark[instrument]
    spot = book.underlying_price[instrument]
    multiplier = book.contract_size[instrument]
    strike = book.strike[instrument]
    call = book.is_call[instrument]
    long = book.quantity > 0
    leverage = np.array([i.leverage_factor for i in book.instruments])[instrument]
    # stock, per share
    low = price < level.low_price_threshold
    short_stock = np.where(
        low,
        np.maximum(level.low_price_short_stock_rate * leverage * price, level.low_price_short_stock_minimum_per_share),
        np.maximum(level.short_stock * leverage * price, level.short_stock_minimum_per_share),
    )
    stock = np.where(long, level.long_stock * leverage * price, short_stock)
    # options, per contract
    underlying_value = spot * multiplier
    out_of_money = np.where(call, np.maximum(strike - spot, 0.0), np.maximum(spot - strike, 0.0)) * multiplier
    minimum = np.where(call, level.short_option.minimum_call * underlying_value,
                       level.short_option.minimum_put * strike * multiplier) * leverage
    naked = np.maximum(_short_option_rate(book, level, instrument) * underlying_value - out_of_money, minimum)
    option_charge = np.where(long, price * multiplier, naked)
    result: F64 = np.where(option, option_charge, stock)
    return result


def _units(book: Book) -> F64:
    """Contracts for options, shares (units of underlying) for stock."""
    instrument = book.position_instrument
    option = book.kind[instrument] == OPTION
    result: F64 = np.where(option, np.abs(book.quantity), np.abs(book.quantity) * book.contract_size[instrument])
    return result


def _candidate_pairs(book: Book, legs: NDArray[np.intp], per_unit: F64) -> list[Pair]:
    """Every vertical spread, short straddle/strangle, covered call and covered put among `legs` (one underlying)."""
    instrument = book.position_instrument[legs]
    option = book.kind[instrument] == OPTION
    quantity = book.quantity[legs]
    call = book.is_call[instrument]
    strike = book.strike[instrument]
    years = book.years[instrument]
    multiplier = book.contract_size[instrument]
    mark = book.mark[instrument]
    pairs: list[Pair] = []
    long_option = option & (quantity > 0)
    short_option = option & (quantity < 0)

    # Vertical (and diagonal) spreads: same type and multiplier, the long leg expiring no earlier.
    a, b = np.nonzero(long_option[:, None] & short_option[None, :] & (call[:, None] == call[None, :])
                      & (multiplier[:, None] == multiplier[None, :]) & (years[:, None] >= years[None, :]))
    risk = np.where(call[a], strike[a] - strike[b], strike[b] - strike[a])
    spread = np.maximum(np.maximum(risk, 0.0) + mark[a] - mark[b], 0.0) * multiplier[a]
    pairs += [Pair("vertical_spread", int(i), int(j), float(r)) for i, j, r in zip(a, b, spread, strict=True)]

    # Short straddles and strangles: the greater gross side plus the other's premium, less both premiums.
    a, b = np.nonzero(short_option[:, None] & short_option[None, :] & call[:, None] & ~call[None, :]
                      & (multiplier[:, None] == multiplier[None, :]))
    gross_call = per_unit[legs[a]] + mark[a] * multiplier[a]
    gross_put = per_unit[legs[b]] + mark[b] * multiplier[b]
    gross = np.where(gross_call >= gross_put, gross_call + mark[b] * multiplier[b], gross_put + mark[a] * multiplier[a])
    straddle = gross - (mark[a] + mark[b]) * multiplier[a]
    pairs += [Pair("straddle", int(i), int(j), float(r)) for i, j, r in zip(a, b, straddle, strict=True)]

    # Covered calls (long stock) and covered puts (short stock): the stock's requirement less the proceeds.
    stock = ~option
    for option_side, stock_sign, name in ((call, 1.0, "covered_call"), (~call, -1.0, "covered_put")):
        a, b = np.nonzero((short_option & option_side)[:, None] & (stock & (np.sign(quantity) == stock_sign))[None, :])
        covered = np.maximum(per_unit[legs[b]] * multiplier[a] - mark[a] * multiplier[a], 0.0)
        shares = multiplier[a]
        pairs += [Pair(name, int(i), int(j), float(r), float(s))
                  for i, j, r, s in zip(a, b, covered, shares, strict=True)]
    return pairs


def _pair_groups(book: Book) -> list[NDArray[np.intp]]:
    """Position indices per (account, underlying) where pairing could lower the total (a short option and a leg)."""
    instrument = book.position_instrument
    key = book.position_account.astype(np.int64) * (len(book.assets) + 1) + book.underlying[instrument]
    short_option = (book.kind[instrument] == OPTION) & (book.quantity < 0)
    groups: list[NDArray[np.intp]] = []
    order = np.argsort(key, kind="stable")
    boundaries = np.flatnonzero(np.diff(key[order])) + 1
    for members in np.split(order, boundaries):
        if members.size >= 2 and short_option[members].any():
            groups.append(members)
    return groups


def _level_total(book: Book, per_unit: F64, units: F64, groups: list[NDArray[np.intp]]
                 ) -> tuple[F64, list[tuple[NDArray[np.intp], list[Pair], F64]]]:
    """Per-position standalone charges summed per account, improved by the best pairing in each group."""
    total = sum_by_account(book.position_account, per_unit * units, book.account_count)
    chosen: list[tuple[NDArray[np.intp], list[Pair], F64]] = []
    for legs in groups:
        pairs = _candidate_pairs(book, legs, per_unit)
        if not pairs:
            continue
        available = units[legs]
        integral = bool(np.all(np.abs(available - np.round(available)) < 1e-9))
        pairing = best_pairing(available, per_unit[legs], pairs, integral)
        account = int(book.position_account[legs[0]])
        total[account] += pairing.total - float(np.dot(available, per_unit[legs]))
        chosen.append((legs, pairs, pairing.contracts))
    return total, chosen


def _explanations(book: Book, chosen: list[tuple[NDArray[np.intp], list[Pair], F64]]
                  ) -> tuple[Mapping[str, Any], ...]:
    per_account: list[list[dict[str, Any]]] = [[] for _ in range(book.account_count)]
    for legs, pairs, contracts in chosen:
        account = int(book.position_account[legs[0]])
        for pair, count in zip(pairs, contracts, strict=True):
            if count > 0:
                names = [book.instruments[int(book.position_instrument[legs[i]])].id for i in (pair.first, pair.second)]
                per_account[account].append({"strategy": pair.strategy, "legs": names, "contracts": float(count),
                                             "initial_margin_per_contract": pair.requirement})
    return tuple({"strategies": rows} for rows in per_account)


def margin(book: Book, profile: Profile) -> Requirements:
    """Strategy-based initial (CBOE / Reg T) and maintenance (FINRA 4210) margin per account, net of proceeds."""
    parameters = parse_strategy_parameters(profile)
    instrument = book.position_instrument
    kind = book.kind[instrument]
    refuse_positions(book, MODEL, (kind != OPTION) & (kind != SPOT), "covers stock (spot) and options only")
    refuse_positions(book, MODEL, book.inverse[instrument], "covers USD-settled (linear) contracts only")
    refuse_positions(book, MODEL, book.account_mode[book.position_account] == PORTFOLIO,
                     "covers margin accounts, not portfolio mode")
    margin_asset = settlement_margin_assets(book, MODEL)
    to_margin = book.asset_price[book.settlement[instrument]] / book.asset_price[margin_asset[book.position_account]]
    units = _units(book)
    groups = _pair_groups(book)
    initial_unit = _standalone(book, parameters.initial) * to_margin
    maintenance_unit = _standalone(book, parameters.maintenance) * to_margin * parameters.house_multiplier
    initial, chosen = _level_total(book, initial_unit, units, groups)
    maintenance, _ = _level_total(book, maintenance_unit, units, groups)
    short_option = (kind == OPTION) & (book.quantity < 0)
    proceeds = sum_by_account(book.position_account,
                              np.where(short_option, -book.position_value, 0.0) * to_margin, book.account_count)
    standalone = sum_by_account(book.position_account, initial_unit * units, book.account_count)
    return Requirements(
        model=MODEL,
        profile=profile.name,
        profile_version=profile.version,
        margin_asset=margin_asset,
        initial_margin=initial,
        maintenance_margin=maintenance,
        components={
            "venue_initial_margin": initial + proceeds,
            "venue_maintenance_margin": maintenance + proceeds,
            "option_proceeds": proceeds,
            "pairing_savings": standalone - initial,
        },
        explanations=_explanations(book, chosen),
    )
