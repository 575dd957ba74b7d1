"""The `deribit-standard` model: Deribit's standard margin in coin and Derive's Standard Manager in USD.

Futures and perpetuals: rate = base + slope × s, margin = rate × s (s the size in coin, Deribit
"Futures" initial-margin examples and the 2022-01-11 notice). Short options by the published per-unit
formulas (crypto-venues.md (c)); long options need no venue margin. Requirements are on the equity
footing: a short option's venue figure includes its mark, which equity already counts (−mark), so the
requirement is the venue figure less the mark value; the venue figures are reported as
`venue_initial_margin` / `venue_maintenance_margin`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from marginkit.book import FUTURE, OPTION, PERPETUAL, PORTFOLIO, Book, sum_by_account
from marginkit.io.profile_file import Profile
from marginkit.models.coverage import refuse_positions, settlement_margin_assets
from marginkit.models.deribit_standard_parameters import parse_deribit_standard_parameters
from marginkit.models.requirements import PositionFigures, Requirements

MODEL = "deribit-standard"
F64 = NDArray[np.float64]

FUTURE_FIELDS = ("initial_base", "initial_slope", "maintenance_base", "maintenance_slope")
OPTION_FIELDS = ("initial_rate", "minimum_initial_rate", "call_maintenance_rate", "put_maintenance_rate",
                 "put_maintenance_mark_rate", "put_initial_floor_scale")


def _instrument_columns(book: Book, table: dict[str, dict[str, float]], fields: tuple[str, ...]) -> dict[str, F64]:
    """Per-instrument arrays of each field, looked up by the instrument's underlying (NaN where absent)."""
    columns = {f: np.full(len(book.instruments), np.nan) for f in fields}
    for i, instrument in enumerate(book.instruments):
        row = table.get(instrument.underlying)
        if row is not None:
            for f in fields:
                columns[f][i] = row[f]
    return columns


def _refuse_instruments(book: Book, bad: NDArray[np.bool_], reason: str) -> None:
    """Refuse the first position that holds an instrument where `bad` (per instrument) is True."""
    if bad.any():
        refuse_positions(book, MODEL, bad[book.position_instrument], reason)


def _refuse_accounts(book: Book, bad: NDArray[np.bool_], reason: str) -> None:
    """Refuse the first position of an account where `bad` (per account) is True."""
    if bad.any():
        refuse_positions(book, MODEL, bad[book.position_account], reason)


def _option_unit_margins(book: Book, options: dict[str, F64]) -> tuple[F64, F64]:
    """A short option's venue IM and MM per unit of underlying in the settlement currency, per instrument.

    S is one coin for coin-settled options (the premium, `mark`, is in coin too). NaN for instruments whose
    underlying has no option constants (futures and perpetuals among them).
    """
    inverse = book.inverse
    mark = book.mark
    spot = book.underlying_price
    strike = book.strike
    call = book.is_call
    spot_unit = np.where(inverse, 1.0, spot * book.asset_price[book.quote] / book.asset_price[book.settlement])
    out_of_money = np.where(call, np.maximum(strike - spot, 0.0), np.maximum(spot - strike, 0.0))
    base_initial = np.maximum(options["initial_rate"] - out_of_money / spot, options["minimum_initial_rate"])
    call_maintenance = options["call_maintenance_rate"] * spot_unit + mark
    put_maintenance = np.maximum(options["put_maintenance_rate"] * spot_unit,
                                 options["put_maintenance_mark_rate"] * mark) + mark
    short_maintenance = np.where(call, call_maintenance, put_maintenance)
    short_initial = base_initial * spot_unit + mark
    short_initial = np.where(call, short_initial,
                             np.maximum(short_initial, options["put_initial_floor_scale"] * put_maintenance))
    return short_initial, short_maintenance


def margin(book: Book, profile: Profile) -> Requirements:
    """Deribit / Derive standard margin per position, summed per account, in each account's margin currency.

    Everything that depends only on the instrument (parameters, a short option's margin per unit, the
    conversion to the margin currency) is computed once per instrument and gathered; per position there is
    only the scaling by size and side, and futures' size-dependent rates on the futures positions alone.
    """
    parameters = parse_deribit_standard_parameters(profile)
    is_option = book.kind == OPTION  # per instrument
    is_delta_one = (book.kind == FUTURE) | (book.kind == PERPETUAL)
    _refuse_instruments(book, ~(is_option | is_delta_one), "covers futures, perpetuals and options only")
    _refuse_accounts(book, book.account_mode == PORTFOLIO,
                     "covers standard (cross or isolated) accounts, not portfolio mode")
    _refuse_accounts(book, book.hedge_mode, "the venue nets positions per instrument: hedge mode is not offered")
    futures_table = {k: v.futures.model_dump() for k, v in parameters.underlyings.items() if v.futures}
    options_table = {k: v.options.model_dump() for k, v in parameters.underlyings.items() if v.options}
    futures = _instrument_columns(book, futures_table, FUTURE_FIELDS)
    options = _instrument_columns(book, options_table, OPTION_FIELDS)
    _refuse_instruments(book, is_delta_one & np.isnan(futures["initial_base"]),
                        "the profile has no futures rates for this underlying")
    _refuse_instruments(book, is_option & np.isnan(options["initial_rate"]),
                        "the profile has no option constants for this underlying")
    margin_asset = settlement_margin_assets(book, MODEL)
    # settlement_margin_assets gives every account the asset all its contracts margin in (the settlement coin of
    # coin-settled contracts, else USD), so the conversion into the margin currency is one per instrument.
    instrument_margin_asset = np.where(book.inverse, book.settlement, book.asset_index["USD"])
    instrument_to_margin = book.asset_price[book.settlement] / book.asset_price[instrument_margin_asset]

    instrument = book.position_instrument.astype(np.intp)  # gathers with a native index are faster
    quantity = book.quantity
    size = np.abs(quantity) * book.contract_size[instrument]

    # Options, per unit of underlying by side (long, then short) and instrument: the venue figures (a long needs
    # nothing) and the equity footing (a short's mark value, which equity already counts as −mark, is taken off
    # the venue figure; a long's counts toward equity unless it has no loan value). Per position: one gather each.
    short_initial, short_maintenance = _option_unit_margins(book, options)
    nothing = np.zeros(len(book.instruments))
    long_footing = nothing if parameters.defaults.long_option_loan_value else book.mark
    side_instrument = instrument + len(book.instruments) * (quantity < 0)
    venue_initial = np.concatenate([nothing, short_initial])[side_instrument] * size
    venue_maintenance = np.concatenate([nothing, short_maintenance])[side_instrument] * size
    footing = np.concatenate([long_footing, -book.mark])[side_instrument] * size

    # Futures and perpetuals, on their positions only: s in coin, margin = (base + slope·s)·s, in coin (inverse)
    # or quote (linear).
    delta_one = np.flatnonzero(is_delta_one[instrument]) if is_delta_one.any() else np.zeros(0, dtype=np.intp)
    if delta_one.size:
        held = instrument[delta_one]
        inverse = book.inverse[held]
        held_size = size[delta_one]
        mark = book.mark[held]
        coins = np.where(inverse, held_size / mark, held_size)
        unit_value = np.where(book.inverse, 1.0, book.mark * book.asset_price[book.quote]
                              / book.asset_price[book.settlement])[held]
        rate = {f: futures[f][held] for f in FUTURE_FIELDS}
        future_initial = (rate["initial_base"] + rate["initial_slope"] * coins) * coins * unit_value
        future_maintenance = (rate["maintenance_base"] + rate["maintenance_slope"] * coins) * coins * unit_value
        venue_initial[delta_one] = np.nan_to_num(future_initial)
        venue_maintenance[delta_one] = np.nan_to_num(future_maintenance)
        footing[delta_one] = 0.0

    if not np.all(instrument_to_margin == 1.0):  # × 1.0 changes nothing (every account margined in its coin)
        to_margin = instrument_to_margin[instrument]
        venue_initial *= to_margin
        venue_maintenance *= to_margin
        footing *= to_margin
    initial = venue_initial + footing
    maintenance = venue_maintenance + footing
    account = book.position_account
    count = book.account_count
    venue_initial_total = sum_by_account(account, venue_initial, count)
    if delta_one.size:
        options_only = venue_initial.copy()
        options_only[delta_one] = 0.0
        options_initial_total = sum_by_account(account, options_only, count)
    else:
        options_initial_total = venue_initial_total.copy()
    undefined = np.zeros(book.position_count, dtype=bool)
    return Requirements(
        model=MODEL,
        profile=profile.name,
        profile_version=profile.version,
        margin_asset=margin_asset,
        initial_margin=sum_by_account(account, initial, count),
        maintenance_margin=sum_by_account(account, maintenance, count),
        components={
            "venue_initial_margin": venue_initial_total,
            "venue_maintenance_margin": sum_by_account(account, venue_maintenance, count),
            "futures_initial_margin": sum_by_account(account[delta_one], venue_initial[delta_one], count),
            "options_initial_margin": options_initial_total,
        },
        positions=PositionFigures(
            initial_margin=initial,
            maintenance_margin=maintenance,
            liquidation_price=np.zeros(book.position_count),
            liquidation_price_defined=undefined,
            bankruptcy_price=np.zeros(book.position_count),
            bankruptcy_price_defined=undefined,
            details={"venue_initial_margin": venue_initial, "venue_maintenance_margin": venue_maintenance},
        ),
    )
