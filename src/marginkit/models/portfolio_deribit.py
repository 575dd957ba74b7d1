"""Deribit Portfolio Margin (PME) on the scenario kernel: the `portfolio` model with a `deribit-pm` profile.

Per currency pair (crypto-venues.md (d)): a standard grid of index moves
r_i = −price_range + i·price_range/buckets_count (i = 0…2·buckets_count) × volatility up / unchanged / down,
and an extended table of moves (−66 %, −33 %, +50 % … +500 %, volatility up) taken at the fraction
price_range/|move|, with its dampener. Inverse futures and perpetuals lose q·r/(1+r) coin (q the size in
coin, basis ignored, extended moves clamped to ±price_range); options are revalued by Black-76 at the
shocked forward and volatility σ·(1 ± range·(30/DTE)^p), the up shock floored at min_volatility_for_shock_up.
Positive aggregated entries count × pnl_offset, capped at max_offsetable_pnl; worst_case = −min(entries, 0);
risk_matrix_margin = worst_case + roll shock + delta shock (+ a correlation contingency, unpublished, 0);
IM = risk_matrix_margin (+ the venue's order add-ons, absent in a book), MM = mm_factor × risk_matrix_margin.
S:PM accounts margin in their coin; X:PM accounts (several coins, or stable collateral) in USD, with coin
collateral exposed to its pair's moves and haircuts on IM only. Choices where Deribit does not publish the
rule are listed in the `deribit-pm` profile's notes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.book import FUTURE, OPTION, PERPETUAL, PORTFOLIO, Book, sum_by_account
from marginkit.errors import ModelRefusal
from marginkit.io.profile_file import Profile
from marginkit.models.coverage import refuse_positions
from marginkit.models.portfolio_deribit_parameters import coin_settings, parse_deribit_pm_parameters
from marginkit.models.requirements import LazyRows, Requirements
from marginkit.pricing import black76_price
from marginkit.scenarios import group_positions, reduce_scenarios
from marginkit.scenarios.kernel import scenario_pnl

MODEL = "portfolio"
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
EXTENDED_MOVES = np.array([-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0])
# Kernel column order inside a bucket: unchanged first, so that equal losses (delta-one books) report the
# unchanged-volatility entry, as Deribit's published worst_case_bucket does; published slots are up,
# unchanged, down (index = 3·bucket + slot).
VOL_SLOTS = ("unchanged", "up", "down")
PUBLISHED_SLOT = {"up": 0, "unchanged": 1, "down": 2}
MINIMUM_DAYS = 1.0  # DTE floor of the (30/DTE)^p shock (unpublished; one day)


def _grid(settings: dict[str, Any]) -> tuple[F64, NDArray[np.int64], NDArray[np.bool_]]:
    """Each kernel column's index move, volatility slot (0 unchanged, 1 up, 2 down) and extended flag."""
    buckets = int(settings["buckets_count"])
    step = settings["price_range"] / buckets
    moves = -settings["price_range"] + step * np.arange(2 * buckets + 1)
    standard_moves = np.repeat(moves, 3)
    standard_slots = np.tile(np.arange(3), moves.size)
    all_moves = np.concatenate([standard_moves, EXTENDED_MOVES])
    slots = np.concatenate([standard_slots, np.ones(EXTENDED_MOVES.size, dtype=np.int64)])
    extended = np.arange(all_moves.size) >= standard_moves.size
    return all_moves, slots, extended


def _shocked_volatility(sigma: F64, years: F64, slots: NDArray[np.int64], settings: dict[str, Any]) -> F64:
    """σ per column: unchanged; up σ·(1 + up·(30/DTE)^p) floored at min_volatility_for_shock_up; down σ·(1 − …)."""
    days = np.maximum(years * 365.0, MINIMUM_DAYS)
    power = np.where(days < 30.0, settings["short_term_vega_power"], settings["long_term_vega_power"])
    factor = (30.0 / days) ** power
    up = np.maximum(sigma * (1.0 + settings["volatility_range_up"] * factor), settings["min_volatility_for_shock_up"])
    down = np.maximum(sigma * (1.0 - settings["volatility_range_down"] * factor), 0.0)
    choices = np.stack([sigma, up, down], axis=1)
    result: F64 = choices[:, slots]
    return result


def instrument_risk_vectors(book: Book, coins: dict[int, dict[str, Any]], column_count: int
                            ) -> tuple[F64, F64, F64]:
    """Per instrument and kernel column: P&L per contract in coin (inverse; 0 for linear), in USD, and the move.

    Columns are bucket-major with volatility unchanged, up, down in each bucket, then the extended moves.
    """
    count = len(book.instruments)
    coin_pnl = np.zeros((count, column_count))
    usd_pnl = np.zeros((count, column_count))
    moves = np.zeros((count, column_count))
    assert book.forward is not None and book.volatility is not None and book.discount is not None
    for underlying, settings in coins.items():
        rows = np.flatnonzero(book.underlying == underlying)
        if not rows.size:
            continue
        r, slots, extended = _grid(settings)
        moves[rows] = r
        spot = book.underlying_price[rows][:, None]
        size = book.contract_size[rows][:, None]
        mark = book.mark[rows][:, None]
        inverse = book.inverse[rows][:, None]
        option = (book.kind[rows] == OPTION)[:, None]
        clamped = np.where(extended, np.clip(r, -settings["price_range"], settings["price_range"]), r)
        safe_mark = np.where(option, 1.0, mark)
        delta_one_coin = size / safe_mark * clamped / (1.0 + clamped)
        delta_one_quote = size * mark * clamped
        option_rows = rows[book.kind[rows] == OPTION]
        option_coin = np.zeros((rows.size, column_count))
        option_quote = np.zeros((rows.size, column_count))
        if option_rows.size:
            local = np.flatnonzero(book.kind[rows] == OPTION)
            forward = book.forward[option_rows][:, None]
            shocked_forward = forward * (1.0 + r)
            sigma = _shocked_volatility(book.volatility[option_rows], book.years[option_rows], slots, settings)
            strike = book.strike[option_rows][:, None]
            years = book.years[option_rows][:, None]
            call = book.is_call[option_rows][:, None]
            discount = book.discount[option_rows][:, None]
            base = black76_price(forward, strike, years, book.volatility[option_rows][:, None], call, discount)
            shocked = black76_price(shocked_forward, strike, years, sigma, call, discount)
            option_coin[local] = size[local] * (shocked / shocked_forward - base / forward)
            option_quote[local] = size[local] * (shocked - base)
        coin = np.where(option, option_coin, delta_one_coin)
        quote = np.where(option, option_quote, delta_one_quote)
        usd_per_quote = book.asset_price[book.quote[rows]][:, None]
        coin_pnl[rows] = np.where(inverse, coin, 0.0)
        usd_pnl[rows] = np.where(inverse, coin * spot * (1.0 + r), quote * usd_per_quote)
    return coin_pnl, usd_pnl, moves


def initial_margin(risk_matrix_margin: F64 | float, mmp_margin: float = 0.0, open_orders_margin: float = 0.0,
                   spot_margin: float = 0.0, decimals: int = 9) -> Any:
    """IM = risk_matrix_margin + mmp_margin + open_orders_margin + spot_margin, rounded to `decimals` (Deribit)."""
    return np.round(np.asarray(risk_matrix_margin) + mmp_margin + open_orders_margin + spot_margin, decimals)


def pair_settings(parameters: Any, book: Book) -> dict[int, dict[str, Any]]:
    """The merged Deribit settings of every asset of the book that has a currency pair in the profile."""
    coins: dict[int, dict[str, Any]] = {}
    for asset_index, asset in enumerate(book.assets):
        settings = coin_settings(parameters, asset)
        if settings is not None:
            coins[asset_index] = settings
    return coins


def _margin_assets(book: Book) -> NDArray[np.int32]:
    """S:PM in a coin when the positions' settlement and the collateral are all that one coin; else X:PM in USD."""
    usd = book.asset_index["USD"]
    uses = book.collateral != 0
    settle_asset = book.settlement[book.position_instrument]
    uses[book.position_account, settle_asset] = True
    linear = ~book.inverse[book.position_instrument]
    uses[book.position_account[linear], usd] = True  # a linear contract's P&L is in USD terms
    single = uses.sum(axis=1) == 1
    only = np.argmax(uses, axis=1)
    coin = single & (only != usd) & np.isin(only, book.underlying)
    result: NDArray[np.int32] = np.where(coin, only, usd).astype(np.int32)
    return result


def margin(book: Book, profile: Profile) -> Requirements:
    """Deribit portfolio margin per account: S:PM in the settlement coin, X:PM in USD (see module docstring)."""
    parameters = parse_deribit_pm_parameters(profile)
    kind = book.kind[book.position_instrument]
    refuse_positions(book, MODEL, (kind != FUTURE) & (kind != PERPETUAL) & (kind != OPTION),
                     "covers futures, perpetuals and options only")
    refuse_positions(book, MODEL, book.account_mode[book.position_account] != PORTFOLIO,
                     "margins portfolio-mode accounts only")
    coins = pair_settings(parameters, book)
    covered = np.zeros(len(book.assets), dtype=bool)
    covered[list(coins)] = True
    refuse_positions(book, MODEL, ~covered[book.underlying[book.position_instrument]],
                     "the profile has no parameters for this underlying's currency pair")
    margin_asset = _margin_assets(book)
    first = next(iter(coins.values()), None)
    if first is None:
        raise ModelRefusal(f"{MODEL}: the profile has no currency pair", field="parameters.currency_pair")
    column_count = 3 * (2 * int(first["buckets_count"]) + 1) + EXTENDED_MOVES.size
    if any(3 * (2 * int(s["buckets_count"]) + 1) + EXTENDED_MOVES.size != column_count for s in coins.values()):
        raise ModelRefusal(f"{MODEL}: every currency pair must have the same buckets_count",
                           field="parameters.general.buckets_count")
    coin_pnl, usd_pnl, moves = instrument_risk_vectors(book, coins, column_count)
    instrument_count = len(book.instruments)
    asset_count = len(book.assets)

    # Position rows: coin-margined accounts read the coin matrix, X:PM accounts the USD one; X:PM coin
    # collateral is a row of its own (USD P&L per coin = S·r).
    account = book.position_account.astype(np.int64)
    coin_margined = margin_asset != book.asset_index["USD"]
    row = np.where(coin_margined[account], book.position_instrument, instrument_count + book.position_instrument)
    underlying = book.underlying[book.position_instrument].astype(np.int64)
    quantity = book.quantity.copy()
    collateral_account, collateral_asset = np.nonzero((book.collateral != 0) & covered[None, :]
                                                      & ~coin_margined[:, None])
    collateral_rows = np.zeros((asset_count, column_count))
    for asset_index in coins:
        moves_of_pair = moves[book.underlying == asset_index]
        if moves_of_pair.size:
            collateral_rows[asset_index] = book.asset_price[asset_index] * moves_of_pair[0]
        else:
            r, _, _ = _grid(coins[asset_index])
            collateral_rows[asset_index] = book.asset_price[asset_index] * np.where(
                np.arange(column_count) >= column_count - EXTENDED_MOVES.size,
                np.clip(r, -coins[asset_index]["price_range"], coins[asset_index]["price_range"]), r)
    all_rows = np.concatenate([row, 2 * instrument_count + collateral_asset])
    all_accounts = np.concatenate([account, collateral_account.astype(np.int64)])
    all_underlying = np.concatenate([underlying, collateral_asset.astype(np.int64)])
    all_quantity = np.concatenate([quantity, book.collateral[collateral_account, collateral_asset]])
    matrix = np.vstack([coin_pnl, usd_pnl, collateral_rows])

    key = all_accounts * asset_count + all_underlying
    group_keys, group = np.unique(key, return_inverse=True)
    group_account = group_keys // asset_count
    group_coin = group_keys % asset_count
    grouped = group_positions(group.astype(np.int64), all_rows, all_quantity, group_keys.size)

    spot = book.asset_price[group_coin]
    in_coin = coin_margined[group_account]
    usd_to_margin = np.where(in_coin, 1.0 / spot, 1.0)
    setting = {name: np.array([coins[int(c)][name] for c in group_coin], dtype=np.float64)
               for name in ("pnl_offset", "max_offsetable_pnl", "extended_dampener", "extended_table_factor",
                            "annualised_move_risk", "min_annualised_move", "max_delta_shock",
                            "delta_total_liq_shock_threshold", "haircut", "mm_factor", "buckets_count")}
    standard_columns = column_count - EXTENDED_MOVES.size
    gain_cap = setting["max_offsetable_pnl"] * usd_to_margin
    standard = reduce_scenarios(grouped, np.ascontiguousarray(matrix[:, :standard_columns]),
                                setting["pnl_offset"], gain_cap)
    # The extended table takes a fraction of the P&L, price_range / |move| (Deribit: "a fraction … then a
    # dampener", unpublished; the fraction is Paradex's published design, reference/crypto-venues.md (d)).
    row_range = np.ones(matrix.shape[0])
    for asset_index, settings in coins.items():
        on_pair = book.underlying == asset_index
        row_range[:instrument_count][on_pair] = settings["price_range"]
        row_range[instrument_count:2 * instrument_count][on_pair] = settings["price_range"]
        row_range[2 * instrument_count + asset_index] = settings["price_range"]
    fraction = row_range[:, None] / np.abs(EXTENDED_MOVES)[None, :]
    extended = reduce_scenarios(grouped, np.ascontiguousarray(matrix[:, standard_columns:] * fraction),
                                setting["pnl_offset"], gain_cap)
    dampener = setting["extended_dampener"] * usd_to_margin
    extended_worst = np.where(extended.worst_pnl < 0,
                              setting["extended_table_factor"] * np.minimum(extended.worst_pnl + dampener, 0.0), 0.0)
    decimals = parameters.rounding.decimals
    worst_case: F64 = np.round(-np.minimum(np.minimum(standard.worst_pnl, extended_worst), 0.0),
                               decimals).astype(np.float64)

    # Roll shock: Σ|q (coin)| × max(annualised_move_risk·T, min_annualised_move) over futures and perpetuals.
    delta_one = (kind == FUTURE) | (kind == PERPETUAL)
    instrument = book.position_instrument
    coin_size = np.abs(book.quantity) * book.contract_size[instrument] / np.where(
        book.inverse[instrument], np.where(delta_one, book.mark[instrument], 1.0), 1.0)
    # Positions net per instrument first (a venue holds one position per instrument); the sum is gross across them.
    position_group = group[: book.position_count]
    net_key = account * instrument_count + instrument
    unique_net, net_index = np.unique(net_key, return_inverse=True)
    signed_coin = np.where(book.quantity < 0, -coin_size, coin_size)
    net_coin = np.abs(np.bincount(net_index, weights=signed_coin, minlength=unique_net.size))
    net_instrument = unique_net % instrument_count
    net_group = np.zeros(unique_net.size, dtype=np.int64)
    net_group[net_index] = position_group
    net_delta_one = (book.kind[net_instrument] == FUTURE) | (book.kind[net_instrument] == PERPETUAL)
    roll_rate = np.maximum(setting["annualised_move_risk"][net_group] * book.years[net_instrument],
                           setting["min_annualised_move"][net_group])
    roll = np.where(net_delta_one, net_coin * roll_rate, 0.0) * np.where(in_coin[net_group], 1.0,
                                                                        book.underlying_price[net_instrument])
    roll_shock = np.bincount(net_group, weights=roll, minlength=group_keys.size).astype(np.float64)

    # Delta shock [unpublished]: the loss of a further max_delta_shock move on the USD delta beyond the threshold.
    buckets = setting["buckets_count"].astype(np.int64)
    step_up = 3 * (buckets + 1)
    step_down = 3 * (buckets - 1)
    up_down = scenario_pnl(grouped, matrix, np.arange(group_keys.size))
    rows_index = np.arange(group_keys.size)
    step = 1.0 / buckets * np.array([coins[int(c)]["price_range"] for c in group_coin])
    delta_margin = (up_down[rows_index, step_up] - up_down[rows_index, step_down]) / (2.0 * step)
    delta_usd = np.abs(delta_margin / usd_to_margin)
    delta_shock = setting["max_delta_shock"] * np.maximum(delta_usd - setting["delta_total_liq_shock_threshold"],
                                                          0.0) * usd_to_margin
    risk_matrix = worst_case + roll_shock + delta_shock
    count = book.account_count
    account_risk = sum_by_account(group_account, risk_matrix, count)

    # X:PM collateral haircut on IM only (USD).
    haircut_rate = np.zeros(asset_count)
    for asset_index, settings in coins.items():
        haircut_rate[asset_index] = settings["haircut"]
    haircut = np.where(coin_margined, 0.0, (np.maximum(book.collateral, 0.0) * book.asset_price * haircut_rate).sum(1))
    mm_factor = float(first["mm_factor"])
    initial = initial_margin(account_risk + haircut, decimals=decimals)
    maintenance = mm_factor * account_risk
    explanations = _worst_scenarios(book, group_account, group_coin, worst_case, standard, extended_worst,
                                    extended.worst_scenario, moves, count)
    return Requirements(
        model=MODEL,
        profile=profile.name,
        profile_version=profile.version,
        margin_asset=margin_asset,
        initial_margin=initial,
        maintenance_margin=maintenance,
        components={
            "worst_case": sum_by_account(group_account, worst_case, count),
            "roll_shock": sum_by_account(group_account, roll_shock, count),
            "delta_shock": sum_by_account(group_account, delta_shock, count),
            "correlation_contingency": np.zeros(count),
            "risk_matrix_margin": account_risk,
            "collateral_haircut": haircut,
        },
        explanations=explanations,
    )


def scenario_table(book: Book, profile: Profile, account: int) -> list[dict[str, Any]]:
    """The account's aggregated scenario P&L per currency pair (margin currency, before offsets), for explain.

    Each entry: underlying, the standard grid as rows of index moves × columns (up, unchanged, down), and the
    extended moves with their P&L.
    """
    parameters = parse_deribit_pm_parameters(profile)
    coins = pair_settings(parameters, book)
    first = next(iter(coins.values()))
    column_count = 3 * (2 * int(first["buckets_count"]) + 1) + EXTENDED_MOVES.size
    coin_pnl, usd_pnl, _ = instrument_risk_vectors(book, coins, column_count)
    margin_asset = _margin_assets(book)
    in_coin = margin_asset[account] != book.asset_index["USD"]
    rows = np.flatnonzero(book.position_account == account)
    tables: list[dict[str, Any]] = []
    for coin, settings in coins.items():
        held = rows[book.underlying[book.position_instrument[rows]] == coin]
        balance = 0.0 if in_coin else float(book.collateral[account, coin])
        if not held.size and balance == 0.0:
            continue
        matrix = coin_pnl if in_coin else usd_pnl
        vector = (book.quantity[held][:, None] * matrix[book.position_instrument[held]]).sum(axis=0)
        r, _, extended = _grid(settings)
        if balance:
            clamped = np.where(extended, np.clip(r, -settings["price_range"], settings["price_range"]), r)
            vector = vector + balance * book.asset_price[coin] * clamped
        standard = vector[~extended].reshape(-1, 3)
        tables.append({
            "underlying": book.assets[coin],
            "price_moves": [float(x) for x in r[~extended][::3]],
            "volatility": ["up", "unchanged", "down"],
            "standard": [[float(row[1]), float(row[0]), float(row[2])] for row in standard],
            "other": [{"label": f"{move:+.0%} vol up (extended, before its fraction and dampener)",
                       "pnl": float(value)} for move, value in zip(EXTENDED_MOVES, vector[extended], strict=True)],
        })
    return tables


def _worst_scenarios(book: Book, group_account: I64, group_coin: I64, worst_case: F64, standard: Any,
                     extended_worst: F64, extended_column: I64, moves: F64, count: int) -> LazyRows:
    """Each account's worst scenario: that of its pair with the largest worst case (rows built when read)."""
    order = np.lexsort((-worst_case, group_account))
    first = np.ones(order.size, dtype=bool)
    first[1:] = group_account[order][1:] != group_account[order][:-1]
    best_group = np.full(count, -1, dtype=np.int64)
    best_group[group_account[order][first]] = order[first]
    grid_row = {int(c): int(np.flatnonzero(book.underlying == c)[0]) for c in np.unique(group_coin)
                if np.any(book.underlying == c)}

    def row(account: int) -> dict[str, Any]:
        g = int(best_group[account])
        if g < 0 or worst_case[g] <= 0:
            return {"worst_scenario": None}
        coin = int(group_coin[g])
        grid = moves[grid_row[coin]] if coin in grid_row else None
        if standard.worst_pnl[g] <= extended_worst[g]:
            column = int(standard.worst_scenario[g])
            bucket, slot = divmod(column, 3)
            vol = VOL_SLOTS[slot]
            return {"worst_scenario": {
                "underlying": book.assets[coin], "source": "standard", "bucket": bucket + 1,
                "index": 3 * bucket + PUBLISHED_SLOT[vol], "vol_move": vol,
                "price_move": float(grid[column]) if grid is not None else None,
                "side": "left" if grid is not None and grid[column] < 0 else "right"}}
        column = int(extended_column[g])
        return {"worst_scenario": {
            "underlying": book.assets[coin], "source": "extended", "index": column, "vol_move": "up",
            "price_move": float(EXTENDED_MOVES[column]), "side": "left" if EXTENDED_MOVES[column] < 0 else "right"}}

    return LazyRows(count, row)
