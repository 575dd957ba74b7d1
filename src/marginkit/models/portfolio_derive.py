"""Derive's Portfolio Margin Risk Manager 2.1: the `portfolio` model's `derive-pmrm` method (profile derive-pmrm-2.1).

Derive (ex-Lyra v2) margins a subaccount of one underlying by revaluing its options, perp and collateral under
a list of scenarios (spot multiplier x, vol rule Up/Down/None or a LINEAR/ABS skew, dampening λ), taking the
worst P&L L (never above the basis contingency B ≤ 0) and subtracting contingencies:

    MM = M + MM_LOSS_FACTOR·L − (perp, option and collateral MM parts)
    IM = M + f_IM·L − (MM parts) − (IM-only parts and the oracle-confidence add-on)

M is the portfolio's mark-to-market (cash + perp + options + collateral), and f_IM is IM_LOSS_FACTOR raised by a
stablecoin depeg. MM and IM are Derive's signed margin *balances* (≥ 0 passes). The core works on arrays:
option instruments × scenario columns are priced in one vectorised Black-76 pass with Derive's rules (no
time value at zero total vol, saturation at total vol 24, floor 0, caps D·F and D·K); holdings are aggregated
to (portfolio, expiry) groups by one sparse product; the per-expiry static discount applies to each group's
net value; groups sum to portfolios by a second sparse product. Amounts are in Derive's cash unit (USDC),
taken at par with USD as Derive does for options and perps.

Method: shared/reference/derive-pmrm-method.md (a clean-room description of derivexyz/v2-core PMRM_2, which
reproduces every public portfolio case); section numbers below refer to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sparse
from numpy.typing import NDArray

from marginkit.book import OPTION, PERPETUAL, PORTFOLIO, Book
from marginkit.errors import InputError, ModelRefusal
from marginkit.io.derive_cases import CaseInputs, CaseScenario
from marginkit.io.profile_file import Profile
from marginkit.models.coverage import refuse_positions
from marginkit.models.portfolio_derive_parameters import (
    DerivePmrmParameters,
    DeriveProfileParameters,
    parse_derive_parameters,
    parse_derive_profile_parameters,
)
from marginkit.models.requirements import Requirements
from marginkit.pricing import black76_price

MODEL = "portfolio"
METHOD = "derive-pmrm"
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

SECONDS_PER_YEAR = 31_536_000.0  # a 365-day year (§1)
SECONDS_PER_DAY = 86_400.0
FORWARD_SPLIT_SECONDS = 1_800.0  # inside 30 minutes only the fraction t/1800 of the forward moves with spot (§2)
SHORT_TERM_SECONDS = 30.0 * SECONDS_PER_DAY  # the vol shocks' 30-day reference; t ≤ 30 days is short-term (§3)
SATURATED_TOTAL_VOLATILITY = 24.0  # at vol·√T ≥ 24 a call is worth D·F and a put D·K (§2)
MAXIMUM_TOTAL_VARIANCE = 25.0  # SVI total variance cap (§2)
WING_CLAMP = 4.0  # SVI log-moneyness clamp: |k| ≤ 4·√(a + b·σ) (§2)

NONE, UP, DOWN, LINEAR, ABSOLUTE = 0, 1, 2, 3, 4
DIRECTION_CODES = {"None": NONE, "Up": UP, "Down": DOWN, "LINEAR": LINEAR, "ABS": ABSOLUTE}
DIRECTION_NAMES = {NONE: "none", UP: "up", DOWN: "down", LINEAR: "linear skew", ABSOLUTE: "absolute skew"}
BASIS_CONTINGENCY = -1  # `worst_scenario` when the basis contingency is the worst loss


@dataclass(frozen=True, eq=False)
class PmrmPortfolios:
    """Inputs of the PMRM for n portfolios (Derive subaccounts), as arrays in Derive's cash unit.

    Portfolios: cash C (face value), spot S (USD per unit of underlying), net perp size q (units of underlying,
    + long), perp exposure Σq·P (the perp's P&L per unit of x − 1; P the perp price), U = unrealised perp P&L
    + funding, stable price s, spot and perp confidences. Feeds (one per underlying expiry): seconds to expiry,
    forward, rate (before the zero floor) and min(forward, rate, vol confidences). Option instruments: feed,
    strike, call flag, annualised vol. Holdings: (portfolio, option instrument, signed amount). Collaterals:
    (portfolio, signed amount, USD price, confidence, risk-cancelling flag, MM and IM-only haircut rates).
    """

    cash: F64
    spot: F64
    spot_confidence: F64
    perps: F64
    perp_exposure: F64
    perp_confidence: F64
    perp_value: F64
    stable_price: F64
    feed_seconds: F64
    feed_forward: F64
    feed_rate: F64
    feed_confidence: F64
    option_feed: I64
    option_strike: F64
    option_is_call: B
    option_volatility: F64
    holding_portfolio: I64
    holding_option: I64
    holding_amount: F64
    collateral_portfolio: I64
    collateral_amount: F64
    collateral_price: F64
    collateral_confidence: F64
    collateral_risk_cancelling: B
    collateral_maintenance_haircut: F64
    collateral_initial_haircut: F64

    @property
    def portfolio_count(self) -> int:
        return int(self.cash.shape[0])


@dataclass(frozen=True, eq=False)
class PmrmFigures:
    """PMRM results per portfolio, in Derive's cash unit and sign conventions (§1).

    `maintenance_balance` and `initial_balance` are Derive's MM and IM (signed: ≥ 0 passes). `worst_loss` is
    L ≤ 0; `worst_scenario` its index in `Parameters.Scenarios` (−1: the basis contingency); `scenario_pnl`
    every scenario's P&L (portfolios × scenarios, + gain); `forward_contingency` B ≤ 0. Contingencies are
    positive amounts that are subtracted: `perp_*`, `option_*` and `collateral_*` (MM part and IM-only part),
    `oracle` (IM only). `portfolio_mtm` = cash + U + `option_mtm` + `collateral_mtm`.
    """

    maintenance_balance: F64
    initial_balance: F64
    portfolio_mtm: F64
    option_mtm: F64
    collateral_mtm: F64
    perp_value: F64
    worst_loss: F64
    worst_scenario: I64
    scenario_pnl: F64
    forward_contingency: F64
    perp_maintenance: F64
    perp_initial: F64
    option_maintenance: F64
    option_initial: F64
    collateral_maintenance: F64
    collateral_initial: F64
    oracle: F64
    initial_loss_factor: F64


def derive_svi_volatility(strike: F64, svi: F64) -> F64:
    """Annualised vol of each strike from Derive's SVI rows (a, b, ρ, m, σ, F_svi, τ years); NaN where invalid.

    k = ln(K/F_svi) clamped to ±4·√(a + b·σ); w = a + b·(ρ(k−m) + √((k−m)² + σ²)) capped at 25;
    vol = √(w/τ). A negative w (or a + b·σ < 0) is invalid input (§2).
    """
    a, b, rho, m, sigma, forward, tau = (svi[:, j] for j in range(7))
    with np.errstate(invalid="ignore", divide="ignore"):
        bound = WING_CLAMP * np.sqrt(a + b * sigma)
        k = np.clip(np.log(strike / forward), -bound, bound)
        total_variance = a + b * (rho * (k - m) + np.sqrt((k - m) ** 2 + sigma * sigma))
        valid = (a + b * sigma >= 0) & (total_variance >= 0) & (tau > 0)
        volatility: F64 = np.where(valid, np.sqrt(np.minimum(total_variance, MAXIMUM_TOTAL_VARIANCE) / tau), np.nan)
    return volatility


def derive_black76(forward: F64, strike: F64, years: F64, volatility: F64, is_call: B, discount: F64) -> F64:
    """Black-76 premium per unit of underlying with Derive's rules (§2), arrays broadcast together.

    Total vol v = vol·√T: v = 0 gives the discounted intrinsic value; v ≥ 24 saturates (call D·F, put D·K);
    otherwise D·(F·N(d1) − K·N(d2)) or D·(K·N(−d2) − F·N(−d1)), floored at 0 and capped at D·F (call), D·K (put).
    """
    price = black76_price(forward, strike, years, volatility, is_call, discount)
    cap = discount * np.where(is_call, forward, strike)
    total_volatility = volatility * np.sqrt(np.maximum(years, 0.0))
    result: F64 = np.where(total_volatility >= SATURATED_TOTAL_VOLATILITY, cap, np.clip(price, 0.0, cap))
    return result


def _skew_multiplier(k: F64, cap: F64, width: F64) -> F64:
    """1 + min(cap, k·cap/k*) for k ≥ 0, 1 + max(−cap, k·cap/k*) for k < 0 (§5)."""
    slope = k * cap / width
    result: F64 = 1.0 + np.where(k >= 0.0, np.minimum(cap, slope), np.maximum(-cap, slope))
    return result


def _sum_by(index: I64, values: F64, count: int) -> F64:
    """Σ values per index (a portfolio or an expiry group), as float64."""
    result: F64 = np.bincount(index, weights=values, minlength=count).astype(np.float64, copy=False)
    return result


def _confidence_add_on(confidence: F64, notional: F64, parameters: DerivePmrmParameters) -> F64:
    """φ(c, N) = (1 − c)·CONF_MARGIN·N where c < CONF_THRESHOLD, else 0 (§6)."""
    other = parameters.other_contingency
    result: F64 = np.where(confidence < other.confidence_threshold,
                           (1.0 - confidence) * other.confidence_margin * notional, 0.0)
    return result


def _naked_shorts(group: I64, strike: F64, amount: F64, group_count: int) -> F64:
    """Σ over strikes of max(0, −(call + put amount at that strike)) per expiry group (§3)."""
    if group.size == 0:
        return np.zeros(group_count)
    order = np.lexsort((strike, group))
    g, k = group[order], strike[order]
    starts = np.flatnonzero(np.concatenate([[True], (g[1:] != g[:-1]) | (k[1:] != k[:-1])]))
    net = np.add.reduceat(amount[order], starts)
    return _sum_by(g[starts], np.maximum(-net, 0.0), group_count)


def pmrm_margin(portfolios: PmrmPortfolios, parameters: DerivePmrmParameters) -> PmrmFigures:
    """Derive PMRM 2.1 MM and IM balances of every portfolio (method §2–§7), on arrays.

    Raises InputError (field relative to Derive's parameter block) where Derive's engine would revert:
    DTE_FLOOR = 0 with an expired option, or a skew width k* ≤ 0.
    """
    p = portfolios
    count = p.portfolio_count
    feed_count = int(p.feed_seconds.shape[0])
    vol_shock, factors = parameters.vol_shock, parameters.margin
    basis, skew_shock = parameters.basis_contingency, parameters.skew_shock

    # Holdings → (portfolio, expiry) groups.
    holding_feed = p.option_feed[p.holding_option]
    group_keys, group = np.unique(p.holding_portfolio * max(feed_count, 1) + holding_feed, return_inverse=True)
    group = group.reshape(-1).astype(np.int64)
    group_count = int(group_keys.shape[0])
    group_portfolio = (group_keys // max(feed_count, 1)).astype(np.int64)
    group_feed = (group_keys % max(feed_count, 1)).astype(np.int64)
    used_feed = np.zeros(feed_count, dtype=bool)
    used_feed[group_feed] = True

    # Per-feed constants (§2, §3).
    seconds = np.maximum(p.feed_seconds, 0.0)
    years = seconds / SECONDS_PER_YEAR
    root_years = np.sqrt(years)
    fixed = np.where(seconds < FORWARD_SPLIT_SECONDS,
                     p.feed_forward * (FORWARD_SPLIT_SECONDS - seconds) / FORWARD_SPLIT_SECONDS, 0.0)
    linked = p.feed_forward - fixed
    rate = np.maximum(p.feed_rate, 0.0)
    discount = np.exp(-rate * years)
    shock_days = np.maximum(seconds, vol_shock.days_to_expiry_floor * SECONDS_PER_DAY)
    if np.any(used_feed & (shock_days <= 0.0)):
        raise InputError("is 0 and an option has expired: the vol shock divides by zero (Derive reverts)",
                         field="VolShock.DTE_FLOOR")
    power = np.where(seconds <= SHORT_TERM_SECONDS, vol_shock.short_term_power, vol_shock.long_term_power)
    shock_scale = (SHORT_TERM_SECONDS / np.where(shock_days > 0.0, shock_days, 1.0)) ** power
    up_multiplier = 1.0 + vol_shock.volatility_range_up * shock_scale
    down_multiplier = np.maximum(0.0, 1.0 - vol_shock.volatility_range_down * shock_scale)
    positive_discount = factors.base_static_discount * np.exp(
        -years * (rate * factors.long_rate_multiplier + factors.long_rate_addend))
    negative_discount = np.minimum(1.0 / discount, factors.base_static_discount_negative * np.exp(
        years * (rate * factors.short_rate_multiplier + factors.short_rate_addend)))
    linear_cap = skew_shock.linear_cap_base * root_years + skew_shock.linear_scale_cap
    absolute_cap = skew_shock.absolute_cap_base * root_years + skew_shock.absolute_scale_cap
    width = np.maximum(skew_shock.minimum_width, root_years * skew_shock.minimum_width_scale
                       * (skew_shock.volatility_static + root_years * skew_shock.volatility_scale))

    # Scenario columns: 0 the mark, 1–2 the basis moves (identity vol), then Parameters.Scenarios in order.
    shock = np.array([s.spot_shock for s in parameters.scenarios])
    code = np.array([DIRECTION_CODES[s.direction] for s in parameters.scenarios], dtype=np.int64)
    dampening = np.array([s.dampening for s in parameters.scenarios])
    is_skew = code >= LINEAR
    if is_skew.any() and np.any(used_feed & (width <= 0.0)):
        raise InputError("gives a skew width k* ≤ 0: the skew multiplier divides by zero (Derive reverts)",
                         field="SkewShock.MIN_K_STAR")
    column_shock = np.concatenate([[1.0, basis.spot_up, basis.spot_down], np.where(is_skew, 1.0, shock)])
    column_code = np.concatenate([[NONE, NONE, NONE], code])
    column_count = int(column_code.shape[0])

    # Option instruments × columns: forward F(x), vol by rule, one Black-76 pass (§2, §3, §5).
    feed = p.option_feed
    option_forward = (fixed[feed][:, None] + column_shock[None, :] * linked[feed][:, None])
    base_vol = p.option_volatility[:, None]
    k = np.log(p.option_strike / p.feed_forward[feed])
    safe_width = np.where(width > 0.0, width, 1.0)[feed]
    linear_vol = p.option_volatility * np.maximum(_skew_multiplier(k, linear_cap[feed], safe_width), 0.0)
    absolute_vol = p.option_volatility * np.maximum(_skew_multiplier(np.abs(k), absolute_cap[feed], safe_width), 0.0)
    column = column_code[None, :]
    option_vol = np.select(
        [column == UP, column == DOWN, column == LINEAR, column == ABSOLUTE],
        [np.maximum(vol_shock.minimum_shocked_volatility, base_vol * up_multiplier[feed][:, None]),
         base_vol * down_multiplier[feed][:, None], linear_vol[:, None], absolute_vol[:, None]],
        default=base_vol)
    option_count = int(feed.shape[0])
    if option_count:
        prices = derive_black76(option_forward, p.option_strike[:, None], years[feed][:, None], option_vol,
                                p.option_is_call[:, None], discount[feed][:, None])
    else:
        prices = np.zeros((0, column_count))

    # Expiry values V_e per group and column; mark, basis contingency and discounted scenario moves (§3, §5).
    to_group = sparse.csr_matrix((p.holding_amount, (group, p.holding_option)), shape=(group_count, option_count))
    values = np.asarray(to_group @ prices, dtype=np.float64).reshape(group_count, column_count)
    mark = values[:, 0]
    basis_loss = np.minimum(np.minimum(values[:, 1] - mark, values[:, 2] - mark), 0.0) * (
        basis.add_factor + basis.multiplier_factor * years[group_feed])
    shocked = values[:, 3:]
    static = np.where(shocked >= 0.0, positive_discount[group_feed][:, None] * shocked,
                      negative_discount[group_feed][:, None] * shocked)
    move = dampening[None, :] * (static - mark[:, None])
    option_pnl_by_group = np.where(is_skew[None, :], -np.abs(move), move)
    to_portfolio = sparse.csr_matrix((np.ones(group_count), (group_portfolio, np.arange(group_count))),
                                     shape=(count, group_count))
    option_pnl = np.asarray(to_portfolio @ option_pnl_by_group, dtype=np.float64).reshape(count, column_count - 3)

    # Delta-one P&L: the perp at its price, risk-cancelling collateral at its value (§5); skews move neither.
    collateral_value = p.collateral_amount * p.collateral_price / p.stable_price[p.collateral_portfolio]
    cancelling_value = _sum_by(p.collateral_portfolio, np.where(p.collateral_risk_cancelling,
                                                                       collateral_value, 0.0), count)
    linear_move = np.where(is_skew, 0.0, dampening * (shock - 1.0))
    scenario_pnl = option_pnl + (p.perp_exposure + cancelling_value)[:, None] * linear_move[None, :]
    forward_contingency = _sum_by(group_portfolio, basis_loss, count)
    candidates = np.column_stack([forward_contingency, scenario_pnl])
    worst_column = np.argmin(candidates, axis=1)
    worst_loss = candidates[np.arange(count), worst_column]

    # Contingencies (§6).
    other = parameters.other_contingency
    has_perp = p.perps != 0.0
    perp_value = np.where(has_perp, p.perp_value, 0.0)
    portfolio_confidence = np.where(has_perp, np.minimum(p.spot_confidence, p.perp_confidence), p.spot_confidence)
    perp_notional = np.abs(p.perps) * p.spot
    holding_strike = p.option_strike[p.holding_option]
    naked = _naked_shorts(group, holding_strike, p.holding_amount, group_count)
    option_notional = p.spot * _sum_by(group_portfolio, naked, count)
    gross = _sum_by(group, np.abs(p.holding_amount), group_count)
    group_confidence = np.minimum(portfolio_confidence[group_portfolio], p.feed_confidence[group_feed])
    collateral_confidence = np.minimum(p.collateral_confidence, p.spot_confidence[p.collateral_portfolio])
    oracle = (_confidence_add_on(portfolio_confidence, perp_notional, parameters)
              + _sum_by(group_portfolio, _confidence_add_on(
                  group_confidence, p.spot[group_portfolio] * gross, parameters), count)
              + _sum_by(p.collateral_portfolio, _confidence_add_on(
                  collateral_confidence, collateral_value, parameters), count))
    collateral_maintenance = _sum_by(p.collateral_portfolio,
                                            collateral_value * p.collateral_maintenance_haircut, count)
    collateral_initial = _sum_by(p.collateral_portfolio, collateral_value * p.collateral_initial_haircut, count)
    initial_loss_factor = factors.initial_loss_factor + np.maximum(
        0.0, other.peg_loss_threshold - p.stable_price) * other.peg_loss_factor

    # Assembly (§7).
    option_mtm = _sum_by(group_portfolio, mark, count)
    collateral_mtm = _sum_by(p.collateral_portfolio, collateral_value, count)
    portfolio_mtm = p.cash + perp_value + option_mtm + collateral_mtm
    perp_maintenance = perp_notional * other.maintenance_perp_rate
    option_maintenance = option_notional * other.maintenance_option_rate
    maintenance_parts = perp_maintenance + option_maintenance + collateral_maintenance
    perp_initial = perp_notional * other.initial_perp_rate
    option_initial = option_notional * other.initial_option_rate
    initial_parts = perp_initial + option_initial + collateral_initial + oracle
    return PmrmFigures(
        maintenance_balance=portfolio_mtm + factors.maintenance_loss_factor * worst_loss - maintenance_parts,
        initial_balance=portfolio_mtm + initial_loss_factor * worst_loss - maintenance_parts - initial_parts,
        portfolio_mtm=portfolio_mtm,
        option_mtm=option_mtm,
        collateral_mtm=collateral_mtm,
        perp_value=perp_value,
        worst_loss=worst_loss,
        worst_scenario=(worst_column - 1).astype(np.int64),
        scenario_pnl=scenario_pnl,
        forward_contingency=forward_contingency,
        perp_maintenance=perp_maintenance,
        perp_initial=perp_initial,
        option_maintenance=option_maintenance,
        option_initial=option_initial,
        collateral_maintenance=collateral_maintenance,
        collateral_initial=collateral_initial,
        oracle=oracle,
        initial_loss_factor=initial_loss_factor,
    )


# --- Derive's case files -------------------------------------------------------------------------------------------


def case_portfolio(scenario: CaseScenario) -> PmrmPortfolios:
    """One case's `Scenario` as a one-portfolio PMRM input; each option line is its own instrument (§9)."""
    feeds = scenario.feeds
    feed_of = {feed.expiry: i for i, feed in enumerate(feeds)}
    option_feed = np.array([feed_of[o.expiry] for o in scenario.options], dtype=np.int64)
    strike = np.array([o.strike for o in scenario.options], dtype=np.float64)
    svi = np.array([feed.svi for feed in feeds], dtype=np.float64).reshape(len(feeds), 7)
    volatility = derive_svi_volatility(strike, svi[option_feed]) if strike.size else np.zeros(0)
    if np.isnan(volatility).any():
        bad = int(np.argmax(np.isnan(volatility)))
        raise InputError(f"gives a negative total variance at strike {strike[bad]:g} (Options[{bad}])",
                         field=f"Scenario.OptionFeeds[{int(option_feed[bad])}].SVIparam")
    option_count = len(scenario.options)
    collaterals = scenario.collaterals
    one = np.ones(1)
    return PmrmPortfolios(
        cash=one * scenario.cash,
        spot=one * scenario.spot_price,
        spot_confidence=one * scenario.spot_confidence,
        perps=one * scenario.perps,
        perp_exposure=one * scenario.perps * scenario.perp_price,
        perp_confidence=one * scenario.perp_confidence,
        perp_value=one * (scenario.unrealised_perp_pnl + scenario.unrealised_funding),
        stable_price=one * scenario.stable_price,
        feed_seconds=np.array([f.expiry for f in feeds], dtype=np.float64),
        feed_forward=np.array([f.forward for f in feeds], dtype=np.float64),
        feed_rate=np.array([f.rate for f in feeds], dtype=np.float64),
        feed_confidence=np.array([min(f.forward_confidence, f.rate_confidence, f.volatility_confidence)
                                  for f in feeds], dtype=np.float64),
        option_feed=option_feed,
        option_strike=strike,
        option_is_call=np.array([o.is_call for o in scenario.options], dtype=bool),
        option_volatility=volatility,
        holding_portfolio=np.zeros(option_count, dtype=np.int64),
        holding_option=np.arange(option_count, dtype=np.int64),
        holding_amount=np.array([o.amount for o in scenario.options], dtype=np.float64),
        collateral_portfolio=np.zeros(len(collaterals), dtype=np.int64),
        collateral_amount=np.array([c.amount for c in collaterals], dtype=np.float64),
        collateral_price=np.array([c.price for c in collaterals], dtype=np.float64),
        collateral_confidence=np.array([c.confidence for c in collaterals], dtype=np.float64),
        collateral_risk_cancelling=np.array([c.risk_cancelling for c in collaterals], dtype=bool),
        collateral_maintenance_haircut=np.array([c.maintenance_haircut for c in collaterals], dtype=np.float64),
        collateral_initial_haircut=np.array([c.initial_haircut for c in collaterals], dtype=np.float64),
    )


def margin_case(inputs: CaseInputs) -> PmrmFigures:
    """IM and MM of one Derive case from its `Scenario` and `Parameters` alone (the conformance runner's entry).

    InputError names the field under `Scenario` or `Parameters`.
    """
    parameters = parse_derive_parameters(inputs.parameters, prefix="Parameters")
    portfolio = case_portfolio(inputs.scenario)
    try:
        return pmrm_margin(portfolio, parameters)
    except InputError as error:
        error.field = f"Parameters.{error.field}" if error.field else "Parameters"
        raise


# --- marginkit books ------------------------------------------------------------------------------------------------


def _account_underlying(book: Book) -> I64:
    """Each account's underlying (asset index; −1 without positions); a second underlying is refused."""
    underlying = book.underlying[book.position_instrument].astype(np.int64)
    result = np.full(book.account_count, -1, dtype=np.int64)
    held = np.bincount(book.position_account, minlength=book.account_count) > 0
    first = np.searchsorted(book.position_account, np.flatnonzero(held), side="left")  # positions sorted by account
    result[held] = underlying[first]
    refuse_positions(book, MODEL, underlying != result[book.position_account],
                     "Derive's PMRM margins one underlying per subaccount: give each underlying its own account")
    return result


def _collateral_arrays(book: Book, parameters: DeriveProfileParameters, account_underlying: I64
                       ) -> tuple[F64, F64, dict[str, Any]]:
    """(cash per account, stable price, collateral rows) from the accounts' balances and the profile's table."""
    assets = book.asset_index
    cash_column = assets.get(parameters.cash_asset)
    cash = book.collateral[:, cash_column] if cash_column is not None else np.zeros(book.account_count)
    stable_price = float(book.asset_price[cash_column]) if cash_column is not None else 1.0
    held = book.collateral != 0.0
    if cash_column is not None:
        held[:, cash_column] = False
    asset_count = len(book.assets)
    follows = np.full(asset_count, -2, dtype=np.int64)
    haircuts = np.zeros((asset_count, 4))  # risk-cancelling MM, IM-only; otherwise MM, IM-only
    covered = np.zeros(asset_count, dtype=bool)
    for name, settings in parameters.collaterals.items():
        column = assets.get(name)
        if column is None:
            continue
        covered[column] = True
        if settings.underlying is not None and settings.underlying in assets:
            follows[column] = assets[settings.underlying]
        cancelling = settings.risk_cancelling or settings.other
        haircuts[column] = (cancelling.maintenance_haircut, cancelling.initial_haircut,
                            settings.other.maintenance_haircut, settings.other.initial_haircut)
    account, asset = np.nonzero(held)
    for refused, reason in (
        (~covered[asset], f"is neither the cash asset ({parameters.cash_asset}) nor a collateral of the profile"),
        (book.collateral[account, asset] < 0.0, "Derive holds no negative balance of a collateral other than cash"),
    ):
        if refused.any():
            a, name = int(account[refused][0]), book.assets[int(asset[refused][0])]
            raise ModelRefusal(f"{MODEL}: {name} {reason}", field=f"accounts[{a}].collateral.{name}")
    cancelling = follows[asset] == account_underlying[account]
    rows = {
        "portfolio": account.astype(np.int64),
        "amount": book.collateral[account, asset],
        "price": book.asset_price[asset],
        "risk_cancelling": cancelling,
        "maintenance": np.where(cancelling, haircuts[asset, 0], haircuts[asset, 2]),
        "initial": np.where(cancelling, haircuts[asset, 1], haircuts[asset, 3]),
    }
    return cash.astype(np.float64), np.full(book.account_count, stable_price), rows


def book_portfolios(book: Book, parameters: DeriveProfileParameters) -> PmrmPortfolios:
    """Map a Book's portfolio-mode accounts onto the PMRM: one portfolio per account, confidences 1.

    Options (linear, USD-valued) and perpetuals (linear) only; each account holds one underlying. Option
    amount = quantity × contract size; strikes, forwards and perp prices are converted to USD at the quote's
    index; the forward, volatility and discount of each option are those the Book bound at resolve (rate
    r = −ln D / T). The cash asset is Derive's cash (face value) and its index price the stable price; every
    other balance is a collateral of the profile's table, risk-cancelling in an account on its underlying.
    """
    kind = book.kind[book.position_instrument]
    instrument = book.position_instrument
    refuse_positions(book, MODEL, (kind != OPTION) & (kind != PERPETUAL),
                     "Derive's PMRM covers options and perpetuals only")
    refuse_positions(book, MODEL, book.inverse[instrument], "Derive's PMRM covers USDC-settled (linear) contracts only")
    refuse_positions(book, MODEL, book.account_mode[book.position_account] != PORTFOLIO,
                     "margins portfolio-mode accounts only")
    refuse_positions(book, MODEL, book.hedge_mode[book.position_account],
                     "Derive nets positions per instrument: hedge mode is not offered")
    if book.forward is None or book.volatility is None or book.discount is None:
        raise InputError("the book carries no option forwards, volatilities and discounts (resolve binds them)",
                         field="market")
    account_underlying = _account_underlying(book)
    count = book.account_count
    account = book.position_account.astype(np.int64)
    quote_usd = book.asset_price[book.quote]
    size = book.quantity * book.contract_size[instrument]

    # Perpetuals: q in units of underlying, exposure q·P in USD, U = unrealised P&L in USD.
    is_perp = kind == PERPETUAL
    perp_size = np.where(is_perp, size, 0.0)
    perp_price = book.mark[instrument] * quote_usd[instrument]

    # Option instruments and their feeds (underlying, expiry).
    option_instruments = np.flatnonzero(book.kind == OPTION)
    option_row = np.full(len(book.instruments), -1, dtype=np.int64)
    option_row[option_instruments] = np.arange(option_instruments.size)
    feed_key = np.rec.fromarrays([book.underlying[option_instruments], book.years[option_instruments]])
    _, first_of_feed, option_feed = np.unique(feed_key, return_index=True, return_inverse=True)
    feed_instrument = option_instruments[first_of_feed]
    feed_years = book.years[feed_instrument]
    with np.errstate(divide="ignore", invalid="ignore"):
        feed_rate = np.where(feed_years > 0.0, -np.log(book.discount[feed_instrument]) / feed_years, 0.0)
    is_option = kind == OPTION
    cash, stable_price, collateral = _collateral_arrays(book, parameters, account_underlying)
    # U in cash units: the settlement currency's USD value over the stable price (exact for USDC-settled perps).
    perp_value = np.where(is_perp, book.position_value * book.usd_per_settlement() / stable_price[account], 0.0)
    spot = np.where(account_underlying >= 0, book.asset_price[np.maximum(account_underlying, 0)], 1.0)
    ones = np.ones(count)
    return PmrmPortfolios(
        cash=cash.astype(np.float64),
        spot=spot,
        spot_confidence=ones,
        perps=_sum_by(account, perp_size, count),
        perp_exposure=_sum_by(account, perp_size * perp_price, count),
        perp_confidence=ones,
        perp_value=_sum_by(account, perp_value, count),
        stable_price=stable_price,
        feed_seconds=feed_years * SECONDS_PER_YEAR,
        feed_forward=book.forward[feed_instrument] * quote_usd[feed_instrument],
        feed_rate=feed_rate,
        feed_confidence=np.ones(feed_instrument.size),
        option_feed=option_feed.reshape(-1).astype(np.int64),
        option_strike=book.strike[option_instruments] * quote_usd[option_instruments],
        option_is_call=book.is_call[option_instruments],
        option_volatility=book.volatility[option_instruments],
        holding_portfolio=account[is_option],
        holding_option=option_row[instrument[is_option]],
        holding_amount=size[is_option],
        collateral_portfolio=collateral["portfolio"],
        collateral_amount=collateral["amount"],
        collateral_price=collateral["price"],
        collateral_confidence=np.ones(collateral["amount"].size),
        collateral_risk_cancelling=collateral["risk_cancelling"],
        collateral_maintenance_haircut=collateral["maintenance"],
        collateral_initial_haircut=collateral["initial"],
    )


def _explanations(figures: PmrmFigures, parameters: DerivePmrmParameters) -> tuple[dict[str, Any], ...]:
    """Each account's worst scenario (None where nothing is lost)."""
    result: list[dict[str, Any]] = []
    for loss, index in zip(figures.worst_loss, figures.worst_scenario, strict=True):
        if loss >= 0.0:
            result.append({"worst_scenario": None})
        elif index == BASIS_CONTINGENCY:
            result.append({"worst_scenario": {"source": "basis contingency", "index": None, "price_move": None,
                                              "vol_move": None, "dampening": None}})
        else:
            scenario = parameters.scenarios[int(index)]
            result.append({"worst_scenario": {
                "source": "scenario", "index": int(index), "price_move": round(scenario.spot_shock - 1.0, 12),
                "vol_move": DIRECTION_NAMES[DIRECTION_CODES[scenario.direction]], "dampening": scenario.dampening}})
    return tuple(result)


def scenario_table(book: Book, profile: Profile, account: int) -> list[dict[str, Any]]:
    """The account's scenario P&L (USD, + gain) for explain: undampened moves as a price × volatility grid, the
    tail and skew scenarios and the basis contingency as labelled rows."""
    parameters = parse_derive_profile_parameters(profile)
    portfolios = book_portfolios(book, parameters)
    figures = pmrm_margin(portfolios, parameters)
    usd = float(portfolios.stable_price[account])
    pnl = figures.scenario_pnl[account] * usd
    columns = ("Up", "None", "Down")
    grid_moves = sorted({round(s.spot_shock - 1.0, 12) for s in parameters.scenarios
                         if s.dampening == 1.0 and s.direction in columns}, reverse=False)
    standard: list[list[float | None]] = [[None, None, None] for _ in grid_moves]
    other: list[dict[str, Any]] = []
    for n, scenario in enumerate(parameters.scenarios):
        move = round(scenario.spot_shock - 1.0, 12)
        if scenario.dampening == 1.0 and scenario.direction in columns:
            standard[grid_moves.index(move)][columns.index(scenario.direction)] = float(pnl[n])
        else:
            name = DIRECTION_NAMES[DIRECTION_CODES[scenario.direction]]
            other.append({"label": f"{move:+.1%} vol {name}, dampening {scenario.dampening:.4g}", "pnl": float(pnl[n])})
    other.append({"label": "basis (forward) contingency", "pnl": float(figures.forward_contingency[account] * usd)})
    underlying = book.instruments[int(book.position_instrument[book.position_account == account][0])].underlying \
        if np.any(book.position_account == account) else "—"
    return [{"underlying": underlying, "price_moves": grid_moves, "volatility": ["up", "unchanged", "down"],
             "standard": standard, "other": other}]


def margin(book: Book, profile: Profile) -> Requirements:
    """Derive PMRM 2.1 margin of every portfolio-mode account, in USD on the equity footing.

    requirement = M − Derive's balance: maintenance = −MM_LOSS_FACTOR·L + MM contingencies, initial =
    −f_IM·L + every contingency. Derive's figures are in its cash unit and are converted to USD at the cash
    asset's index price s (1 USDC = s USD). Derive's signed balances are reported as `venue_maintenance_margin`
    and `venue_initial_margin`, with M, L, B (as positive amounts) and each contingency in `components`.
    """
    parameters = parse_derive_profile_parameters(profile)
    try:
        portfolios = book_portfolios(book, parameters)
        figures = pmrm_margin(portfolios, parameters)
    except InputError as error:
        if error.field is not None and not error.field.startswith(("accounts", "market")):
            error.field = f"parameters.{error.field}"
            error.in_file(profile.path or profile.name)
        raise
    usd = portfolios.stable_price
    return Requirements(
        model=MODEL,
        profile=profile.name,
        profile_version=profile.version,
        margin_asset=np.full(book.account_count, book.asset_index["USD"], dtype=np.int32),
        initial_margin=usd * (figures.portfolio_mtm - figures.initial_balance),
        maintenance_margin=usd * (figures.portfolio_mtm - figures.maintenance_balance),
        components={
            "venue_initial_margin": usd * figures.initial_balance,
            "venue_maintenance_margin": usd * figures.maintenance_balance,
            "portfolio_mtm": usd * figures.portfolio_mtm,
            "option_mtm": usd * figures.option_mtm,
            "collateral_mtm": usd * figures.collateral_mtm,
            "perp_value": usd * figures.perp_value,
            "worst_loss": usd * -figures.worst_loss,
            "forward_contingency": usd * -figures.forward_contingency,
            "perp_contingency": usd * figures.perp_maintenance,
            "perp_initial_contingency": usd * figures.perp_initial,
            "option_contingency": usd * figures.option_maintenance,
            "option_initial_contingency": usd * figures.option_initial,
            "collateral_contingency": usd * figures.collateral_maintenance,
            "collateral_initial_contingency": usd * figures.collateral_initial,
            "oracle_contingency": usd * figures.oracle,
            "initial_loss_factor": figures.initial_loss_factor,
        },
        explanations=_explanations(figures, parameters),
    )
