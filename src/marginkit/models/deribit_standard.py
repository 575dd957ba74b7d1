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


def _gather(book: Book, table: dict[str, dict[str, float]], fields: tuple[str, ...]) -> dict[str, F64]:
    """Per-position arrays of each field, looked up by the instrument's underlying (NaN where absent)."""
    columns = {f: np.full(len(book.instruments), np.nan) for f in fields}
    for i, instrument in enumerate(book.instruments):
        row = table.get(instrument.underlying)
        if row is not None:
            for f in fields:
                columns[f][i] = row[f]
    return {f: c[book.position_instrument] for f, c in columns.items()}


def margin(book: Book, profile: Profile) -> Requirements:
    """Deribit / Derive standard margin per position, summed per account, in each account's margin currency."""
    parameters = parse_deribit_standard_parameters(profile)
    kind = book.kind[book.position_instrument]
    is_option = kind == OPTION
    is_delta_one = (kind == FUTURE) | (kind == PERPETUAL)
    refuse_positions(book, MODEL, ~(is_option | is_delta_one), "covers futures, perpetuals and options only")
    refuse_positions(book, MODEL, book.account_mode[book.position_account] == PORTFOLIO,
                     "covers standard (cross or isolated) accounts, not portfolio mode")
    refuse_positions(book, MODEL, book.hedge_mode[book.position_account],
                     "the venue nets positions per instrument: hedge mode is not offered")
    futures_table = {k: v.futures.model_dump() for k, v in parameters.underlyings.items() if v.futures}
    options_table = {k: v.options.model_dump() for k, v in parameters.underlyings.items() if v.options}
    futures = _gather(book, futures_table, FUTURE_FIELDS)
    options = _gather(book, options_table, OPTION_FIELDS)
    refuse_positions(book, MODEL, is_delta_one & np.isnan(futures["initial_base"]),
                     "the profile has no futures rates for this underlying")
    refuse_positions(book, MODEL, is_option & np.isnan(options["initial_rate"]),
                     "the profile has no option constants for this underlying")
    margin_asset = settlement_margin_assets(book, MODEL)

    instrument = book.position_instrument
    inverse = book.inverse[instrument]
    size = np.abs(book.quantity) * book.contract_size[instrument]
    mark = book.mark[instrument]
    to_margin = book.asset_price[book.settlement[instrument]] / book.asset_price[margin_asset[book.position_account]]

    # Futures and perpetuals: s in coin, margin = (base + slope·s)·s, in coin (inverse) or quote (linear).
    coins = np.where(inverse, size / np.where(is_delta_one, mark, 1.0), size)  # options: unused (their mark may be 0)
    unit_value = np.where(inverse, 1.0, mark * book.asset_price[book.quote[instrument]]
                          / book.asset_price[book.settlement[instrument]])
    future_initial = (futures["initial_base"] + futures["initial_slope"] * coins) * coins * unit_value
    future_maintenance = (futures["maintenance_base"] + futures["maintenance_slope"] * coins) * coins * unit_value

    # Options, per unit of underlying in the settlement currency; S is one coin for coin-settled options.
    spot = book.underlying_price[instrument]
    strike = book.strike[instrument]
    call = book.is_call[instrument]
    spot_unit = np.where(inverse, 1.0, spot * book.asset_price[book.quote[instrument]]
                         / book.asset_price[book.settlement[instrument]])
    out_of_money = np.where(call, np.maximum(strike - spot, 0.0), np.maximum(spot - strike, 0.0))
    base_initial = np.maximum(options["initial_rate"] - out_of_money / spot, options["minimum_initial_rate"])
    call_maintenance = options["call_maintenance_rate"] * spot_unit + mark
    put_maintenance = np.maximum(options["put_maintenance_rate"] * spot_unit,
                                 options["put_maintenance_mark_rate"] * mark) + mark
    short_maintenance = np.where(call, call_maintenance, put_maintenance)
    short_initial = base_initial * spot_unit + mark
    short_initial = np.where(call, short_initial,
                             np.maximum(short_initial, options["put_initial_floor_scale"] * put_maintenance))
    short = book.quantity < 0
    option_venue_initial = np.where(short, short_initial, 0.0) * size
    option_venue_maintenance = np.where(short, short_maintenance, 0.0) * size
    mark_value = mark * size
    loan_value = parameters.defaults.long_option_loan_value
    option_footing = np.where(short, -mark_value, 0.0 if loan_value else mark_value)

    venue_initial = np.where(is_option, option_venue_initial, np.nan_to_num(future_initial)) * to_margin
    venue_maintenance = np.where(is_option, option_venue_maintenance, np.nan_to_num(future_maintenance)) * to_margin
    footing = np.where(is_option, option_footing, 0.0) * to_margin
    initial = venue_initial + footing
    maintenance = venue_maintenance + footing
    account = book.position_account
    count = book.account_count
    undefined = np.zeros(book.position_count, dtype=bool)
    return Requirements(
        model=MODEL,
        profile=profile.name,
        profile_version=profile.version,
        margin_asset=margin_asset,
        initial_margin=sum_by_account(account, initial, count),
        maintenance_margin=sum_by_account(account, maintenance, count),
        components={
            "venue_initial_margin": sum_by_account(account, venue_initial, count),
            "venue_maintenance_margin": sum_by_account(account, venue_maintenance, count),
            "futures_initial_margin": sum_by_account(account, np.where(is_option, 0.0, venue_initial), count),
            "options_initial_margin": sum_by_account(account, np.where(is_option, venue_initial, 0.0), count),
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
