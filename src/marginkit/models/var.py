"""VaR / Expected Shortfall margin on the scenario kernel: the `var` model.

Scenarios come from market history (`marginkit.io.market_history.MarketHistory`), mapped onto the book by
underlying: the series `price.<UNDERLYING>` moves every instrument on that underlying (spot, perpetuals,
futures at their mark; options at their forward), and `vol.<INSTRUMENT>` — else `vol.<UNDERLYING>` (an ATM proxy
such as VIX for SPX) — moves an option's implied volatility. Conventions (shared/reference/risk-models.md):

- 1-day changes: log returns ln(S_t/S_{t−1}) (`price_returns: log`, default; the scenario forward is F·e^R) or
  relative returns S_t/S_{t−1} − 1 (F·(1 + R)); volatility log changes ln(σ_t/σ_{t−1}) (`volatility_changes:
  relative`, default; σ·e^V) or absolute changes σ_t − σ_{t−1} (σ + V); a shocked vol is floored at
  `volatility_floor`.
- Filtered historical simulation: each series' 1-day changes r_t (t = 1…L in the lookback) are rescaled by
  σ_{L+1}/σ_t, with the EWMA variance σ²_{t+1} = λσ²_t + (1−λ)r²_t seeded with σ²_1 = mean of r² over the
  lookback (λ = `ewma_decay`). Plain historical simulation uses r_t as they are.
- Margin period of risk h days (`margin_period_days`): `overlapping` h-day changes (sums of h consecutive 1-day
  changes, compounded for relative returns: L − h + 1 scenarios, each dated at its window's last day) or
  `square_root`: 1-day changes × √h (L scenarios).
- Revaluation: futures, perpetuals and spot linearly, size × mark × (m − 1) with m the price multiplier;
  options fully by Black-76 at the shocked forward and volatility, same time to expiry (no theta over the MPOR),
  size × (V(F·m, σ') − V(F, σ)). P&L is in USD per contract; linear USD-quoted contracts only.
- Losses per account (+ = loss) on the kernel (`marginkit.scenarios.tail_statistics`). With N scenarios and
  n = N(1−α): VaR `ceiling` = the ⌈n⌉-th largest loss (default); `interpolated` = numpy's default (linear)
  α-quantile of the losses, i.e. the loss at descending rank n + α interpolated between its neighbours.
  ES `tail_mean` = the mean of the ⌈n⌉ largest losses (default); `acerbi_tasche` = (Σ_{i ≤ ⌊n⌋} L(i) +
  (n − ⌊n⌋)·L(⌊n⌋+1)) / n.
- Parametric (√h scaling always; zero-mean covariance Σ = rᵀr/L of the lookback's 1-day changes, unfiltered):
  `delta_normal` VaR = z_α·√(δᵀΣδ)·√h, ES = φ(z_α)/(1−α)·√(δᵀΣδ)·√h; `delta_gamma_vega`: P&L ≈ δᵀx + ½ Σ γ_u x_u²
  (own-gamma per underlying, first-order vega), its first four cumulants (κ_1 = ½tr(ΓΣ), κ_r = ½(r−1)!tr((ΓΣ)^r)
  + ½r!·δᵀΣ(ΓΣ)^{r−2}δ) and the Cornish-Fisher quantile of the loss; ES is the mean of Cornish-Fisher quantiles
  at 64 levels spread evenly over (α, 1).
- Anti-procyclicality (EMIR RTS 153/2013 Art. 28), each optional: (b) calculated = (1 − w)·M + w·M_stressed with
  M_stressed from the unfiltered scenarios of `stressed_period`; (c) calculated = max(calculated, M_floor) with
  M_floor from unfiltered scenarios over the last `floor_lookback_years` × 252 trading days (what the history
  holds, reported as `floor_lookback_days`); (a) buffer b: requirement = (1 + b)·calculated; given the previous
  calculated margin P, requirement = max(calculated, (1 + b)·min(calculated, P)) — a rise is absorbed by the
  buffer until the calculated margin exceeds (1 + b)·P, and the requirement never falls below the calculated
  margin (which includes the floor).
- Add-ons: liquidity = spread_fraction (½) × bid-ask spread × |quantity| × contract size (spread: the last
  `spread.<INSTRUMENT or UNDERLYING>` in the history, else `relative_spreads` × mark); concentration =
  rate × max(|quantity| − adv_fraction × ADV, 0) × contract size × underlying price, ADV the mean
  `volume.<INSTRUMENT or UNDERLYING>` over the last `adv_days` (else `average_daily_volume`).
- IM = max(requirement, 0) + add-ons on the equity footing in USD; MM = maintenance_ratio × IM (1 unless set).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.book import FUTURE, OPTION, PERPETUAL, SPOT, Book, sum_by_account
from marginkit.errors import InputError, ModelRefusal
from marginkit.io.market_history import MarketHistory, read_market_history
from marginkit.io.profile_file import Profile
from marginkit.models.coverage import refuse_positions
from marginkit.models.cross_margining import agreement_of, cross_margined
from marginkit.models.requirements import LazyRows, Requirements
from marginkit.models.var_parameters import VarParameters, parse_var_parameters
from marginkit.pricing import black76_greeks, black76_price
from marginkit.scenarios import group_positions
from marginkit.scenarios.kernel import GroupedPositions
from marginkit.scenarios.tail import tail_statistics

MODEL = "var"
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
TRADING_DAYS_PER_YEAR = 252
ES_LEVELS = 64


# ---------------------------------------------------------------------------------------------- conventions


def tail_count(scenarios: int, confidence: float) -> int:
    """⌈N(1−α)⌉ (at least 1): how many of the largest losses VaR and ES read (a 1e-9 tolerance on N(1−α))."""
    return max(1, math.ceil(scenarios * (1.0 - confidence) - 1e-9))


def needed_losses(scenarios: int, confidence: float) -> int:
    """How many of the largest losses every convention needs: ⌈n⌉, ⌊n + α⌋ + 1 and ⌊n⌋ + 1, at most N."""
    n = scenarios * (1.0 - confidence)
    return min(scenarios, max(tail_count(scenarios, confidence), math.floor(n + confidence) + 1,
                              math.floor(n + 1e-9) + 1))


def tail_measures(losses: F64, scenarios: int, confidence: float, quantile: str = "ceiling",
                  expected_shortfall: str = "tail_mean") -> tuple[F64, F64]:
    """VaR and ES per row from each row's largest losses sorted descending (rows × ≥ `needed_losses`).

    Conventions in the module docstring: `quantile` ceiling | interpolated, `expected_shortfall`
    tail_mean | acerbi_tasche.
    """
    n = scenarios * (1.0 - confidence)
    k = tail_count(scenarios, confidence)
    if losses.shape[1] < needed_losses(scenarios, confidence):
        raise InputError("too few tail losses for this level", field="losses")
    if quantile == "ceiling":
        var: F64 = losses[:, k - 1].copy()
    else:
        rank = n + confidence  # descending 1-based rank of numpy's linear α-quantile
        low = math.floor(rank + 1e-12)
        weight = rank - low
        upper = losses[:, min(low, scenarios) - 1]
        lower = losses[:, min(low + 1, scenarios) - 1]
        var = upper + weight * (lower - upper) if low < scenarios else upper.copy()
    if expected_shortfall == "tail_mean":
        es: F64 = losses[:, :k].mean(axis=1)
    else:
        whole = math.floor(n + 1e-9)
        fraction = n - whole
        total = losses[:, :whole].sum(axis=1)
        if fraction > 1e-12 and whole < scenarios:
            total = total + fraction * losses[:, whole]
        es = total / n
    return var, es


# ---------------------------------------------------------------------------------------------- scenarios


def one_day_changes(levels: F64, kind: str) -> F64:
    """1-day changes along the last axis: `log` (ln ratio), `relative` (ratio − 1) or `absolute` (difference)."""
    if kind == "log":
        result: F64 = np.diff(np.log(levels), axis=-1)
    elif kind == "relative":
        result = levels[..., 1:] / levels[..., :-1] - 1.0
    else:
        result = np.diff(levels, axis=-1)
    return result


def ewma_filter(changes: F64, decay: float) -> F64:
    """Filtered historical changes r_t·σ_{L+1}/σ_t per row, EWMA σ²_{t+1} = λσ²_t + (1−λ)r²_t, σ²_1 = mean r²."""
    rows = np.atleast_2d(changes)
    count = rows.shape[1]
    variance = np.empty((rows.shape[0], count + 1))
    variance[:, 0] = np.mean(rows * rows, axis=1)
    for t in range(count):
        variance[:, t + 1] = decay * variance[:, t] + (1.0 - decay) * rows[:, t] ** 2
    sigma = np.sqrt(variance)
    ratio = np.divide(sigma[:, -1:], sigma[:, :-1], out=np.zeros_like(rows), where=sigma[:, :-1] > 0)
    result: F64 = (rows * ratio).reshape(changes.shape)
    return result


def horizon_changes(changes: F64, days: int, scaling: str, compound: bool) -> F64:
    """h-day changes per row: overlapping sums (products − 1 if `compound`) of h 1-day changes, or × √h."""
    if days == 1:
        return changes
    if scaling == "square_root":
        result: F64 = changes * math.sqrt(days)
        return result
    if changes.shape[-1] < days:
        raise InputError(f"needs at least {days} daily changes for a {days}-day horizon", field="margin_period_days")
    if compound:
        logs = np.log1p(changes)
        sums = np.cumsum(np.concatenate([np.zeros((*logs.shape[:-1], 1)), logs], axis=-1), axis=-1)
        result = np.expm1(sums[..., days:] - sums[..., :-days])
        return result
    sums = np.cumsum(np.concatenate([np.zeros((*changes.shape[:-1], 1)), changes], axis=-1), axis=-1)
    result = sums[..., days:] - sums[..., :-days]
    return result


@dataclass(frozen=True, eq=False)
class RiskFactors:
    """The history series a book needs: levels (factors × dates), each factor's change kind, and the mapping.

    `kinds` are `log`, `relative` (price ratio − 1, compounded over h days) or `absolute` (vol differences);
    `price_factor[i]` (per instrument) indexes its underlying's price series; `vol_factor[i]` its vol series
    (−1 for non-options).
    """

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    levels: F64
    dates: NDArray[np.datetime64]
    price_factor: I64
    vol_factor: I64


def risk_factors(book: Book, history: MarketHistory, parameters: VarParameters) -> RiskFactors:
    """Map the held instruments onto history series; ModelRefusal naming the position where one is missing."""
    held = np.zeros(len(book.instruments), dtype=bool)
    held[book.position_instrument] = True
    names: list[str] = []
    kinds: list[str] = []
    arrays: list[F64] = []
    index: dict[str, int] = {}

    def factor(name: str, values: F64, kind: str) -> int:
        if name not in index:
            index[name] = len(names)
            names.append(name)
            kinds.append(kind)
            arrays.append(values)
        return index[name]

    price_factor = np.full(len(book.instruments), -1, dtype=np.int64)
    vol_factor = np.full(len(book.instruments), -1, dtype=np.int64)
    missing_price = np.zeros(len(book.instruments), dtype=bool)
    missing_vol = np.zeros(len(book.instruments), dtype=bool)
    for i in np.flatnonzero(held):
        instrument = book.instruments[i]
        underlying = instrument.underlying
        if underlying in history.prices:
            price_factor[i] = factor(f"price.{underlying}", history.prices[underlying], parameters.price_returns)
        else:
            missing_price[i] = True
        if book.kind[i] == OPTION:
            for name in (instrument.id, underlying):
                if name in history.volatilities:
                    vol_factor[i] = factor(f"vol.{name}", history.volatilities[name],
                                           "log" if parameters.volatility_changes == "relative" else "absolute")
                    break
            else:
                missing_vol[i] = True
    refuse_positions(book, MODEL, missing_price[book.position_instrument],
                     "the market history has no price series for this underlying (price.<UNDERLYING>)")
    refuse_positions(book, MODEL, missing_vol[book.position_instrument],
                     "the market history has no implied-volatility series for this option (vol.<INSTRUMENT> or "
                     "vol.<UNDERLYING>)")
    levels = np.vstack(arrays) if arrays else np.zeros((0, len(history)))
    return RiskFactors(names=tuple(names), kinds=tuple(kinds), levels=levels, dates=history.dates,
                       price_factor=price_factor, vol_factor=vol_factor)


def instrument_pnl(book: Book, factors: RiskFactors, changes: F64, parameters: VarParameters) -> F64:
    """USD P&L per contract, instruments × scenarios, under the factors' h-day changes (module docstring)."""
    count = len(book.instruments)
    scenarios = changes.shape[1]
    pnl = np.zeros((count, scenarios))
    usd = book.asset_price[book.quote]
    rows = np.flatnonzero(factors.price_factor >= 0)
    if not rows.size:
        return pnl
    move = changes[factors.price_factor[rows]]
    multiplier = np.exp(move) if parameters.price_returns == "log" else 1.0 + move
    delta_one = book.kind[rows] != OPTION
    linear = rows[delta_one]
    pnl[linear] = (book.contract_size[linear] * book.mark[linear] * usd[linear])[:, None] * (
        multiplier[delta_one] - 1.0)
    options = rows[~delta_one]
    if options.size:
        assert book.forward is not None and book.volatility is not None and book.discount is not None
        forward = book.forward[options][:, None]
        sigma = book.volatility[options][:, None]
        strike = book.strike[options][:, None]
        years = book.years[options][:, None]
        call = book.is_call[options][:, None]
        discount = book.discount[options][:, None]
        vol_move = changes[factors.vol_factor[options]]
        shocked_sigma = sigma * np.exp(vol_move) if parameters.volatility_changes == "relative" else sigma + vol_move
        shocked_sigma = np.maximum(shocked_sigma, parameters.volatility_floor)
        base = black76_price(forward, strike, years, sigma, call, discount)
        shocked = black76_price(forward * multiplier[~delta_one], strike, years, shocked_sigma, call, discount)
        pnl[options] = (book.contract_size[options] * usd[options])[:, None] * (shocked - base)
    return pnl


@dataclass(frozen=True, eq=False)
class ScenarioSet:
    """h-day factor changes (factors × scenarios) and each scenario's date (the last day of its window)."""

    changes: F64
    dates: NDArray[np.datetime64]


def scenario_set(factors: RiskFactors, begin: int, end: int, parameters: VarParameters, filtered: bool) -> ScenarioSet:
    """Scenarios from the 1-day changes ending on dates begin+1 … end (indices into the history dates)."""
    levels = factors.levels[:, begin: end + 1]
    daily = np.vstack([one_day_changes(levels[f], kind) for f, kind in enumerate(factors.kinds)]) \
        if factors.kinds else np.zeros((0, end - begin))
    if filtered:
        daily = ewma_filter(daily, parameters.ewma_decay) if daily.size else daily
    days = parameters.margin_period_days
    change_dates = factors.dates[begin + 1: end + 1]
    if parameters.horizon_scaling == "overlapping" and days > 1:
        compound = np.array([kind == "relative" for kind in factors.kinds], dtype=bool)
        out = np.empty((daily.shape[0], daily.shape[1] - days + 1))
        for f in range(daily.shape[0]):
            out[f] = horizon_changes(daily[f], days, "overlapping", bool(compound[f]))
        return ScenarioSet(changes=out, dates=change_dates[days - 1:])
    return ScenarioSet(changes=horizon_changes(daily, days, parameters.horizon_scaling, False), dates=change_dates)


# ---------------------------------------------------------------------------------------------- measures


@dataclass(frozen=True, eq=False)
class Measured:
    """Per account: the chosen measure, VaR, ES, worst loss and worst scenario (−1 for parametric)."""

    value: F64
    var: F64
    es: F64
    worst_loss: F64
    worst_scenario: I64
    scenario_count: int


def historical_measure(book: Book, grouped: GroupedPositions, factors: RiskFactors, scenarios: ScenarioSet,
                       parameters: VarParameters) -> Measured:
    """VaR/ES per account from the tail of its scenario losses (kernel: `tail_statistics`)."""
    count = scenarios.changes.shape[1]
    if count < 1:
        raise InputError("the history gives no scenario", field="parameters.lookback_days")
    pnl = instrument_pnl(book, factors, scenarios.changes, parameters)
    tail = tail_statistics(grouped, pnl, needed_losses(count, parameters.confidence))
    var, es = tail_measures(tail.losses, count, parameters.confidence, parameters.quantile,
                            parameters.expected_shortfall)
    value = es if parameters.measure == "es" else var
    return Measured(value=value, var=var, es=es, worst_loss=tail.worst_loss.copy(),
                    worst_scenario=tail.worst_scenario.copy(), scenario_count=count)


def sensitivities(book: Book, factors: RiskFactors, parameters: VarParameters) -> tuple[F64, F64]:
    """Per account: first-order USD P&L per unit factor change (accounts × factors) and own price gammas."""
    count = len(book.instruments)
    width = len(factors.names)
    first = np.zeros((count, width))
    second = np.zeros((count, width))
    usd = book.asset_price[book.quote]
    size = book.contract_size * usd
    rows = np.flatnonzero(factors.price_factor >= 0)
    log = parameters.price_returns == "log"
    for i in rows:
        p = factors.price_factor[i]
        if book.kind[i] != OPTION:
            first[i, p] = size[i] * book.mark[i]
            second[i, p] = size[i] * book.mark[i] if log else 0.0
            continue
        assert book.forward is not None and book.volatility is not None and book.discount is not None
        forward, sigma = float(book.forward[i]), float(book.volatility[i])
        greeks = black76_greeks(forward, book.strike[i], book.years[i], sigma, bool(book.is_call[i]),
                                book.discount[i])
        delta, gamma, vega = float(greeks.delta), float(greeks.gamma), float(greeks.vega)
        first[i, p] = size[i] * forward * delta
        second[i, p] = size[i] * (forward * forward * gamma + (forward * delta if log else 0.0))
        v = factors.vol_factor[i]
        first[i, v] += size[i] * vega * (sigma if parameters.volatility_changes == "relative" else 1.0)
    matrix = book.position_matrix
    return np.asarray(matrix @ first), np.asarray(matrix @ second)


def parametric_measure(book: Book, factors: RiskFactors, begin: int, end: int,
                       parameters: VarParameters) -> Measured:
    """Delta-normal or delta-gamma-vega (Cornish-Fisher) VaR/ES per account, √h scaling (module docstring)."""
    levels = factors.levels[:, begin: end + 1]
    daily = np.vstack([one_day_changes(levels[f], kind) for f, kind in enumerate(factors.kinds)])
    covariance = daily @ daily.T / daily.shape[1] * parameters.margin_period_days
    delta, gamma = sensitivities(book, factors, parameters)
    alpha = parameters.confidence
    normal = NormalDist()
    z = normal.inv_cdf(alpha)
    variance_linear = np.einsum("af,fg,ag->a", delta, covariance, delta)
    if parameters.method == "delta_normal":
        sigma = np.sqrt(np.maximum(variance_linear, 0.0))
        var = z * sigma
        es = normal.pdf(z) / (1.0 - alpha) * sigma
    else:
        a = gamma[:, :, None] * covariance[None, :, :]  # ΓΣ per account
        a2 = a @ a
        a3 = a2 @ a
        a4 = a3 @ a
        sd = np.einsum("fg,ag->af", covariance, delta)  # Σδ

        def trace(m: F64) -> F64:
            result: F64 = np.trace(m, axis1=1, axis2=2)
            return result

        def quad(m: F64) -> F64:  # δᵀ Σ m δ  =  (Σδ)ᵀ m δ
            result: F64 = np.einsum("af,afg,ag->a", sd, m, delta)
            return result

        k1 = 0.5 * trace(a)
        k2 = variance_linear + 0.5 * trace(a2)
        k3 = trace(a3) + 3.0 * quad(a)
        k4 = 3.0 * trace(a4) + 12.0 * quad(a2)
        sd2 = np.sqrt(np.maximum(k2, 0.0))
        safe = np.where(sd2 > 0, sd2, 1.0)
        skew = np.where(sd2 > 0, -k3 / safe ** 3, 0.0)  # of the loss −P&L
        kurt = np.where(sd2 > 0, k4 / safe ** 4, 0.0)

        def cornish_fisher(q: float) -> F64:
            x = normal.inv_cdf(q)
            adjusted = x + (x * x - 1) * skew / 6 + (x ** 3 - 3 * x) * kurt / 24 - (2 * x ** 3 - 5 * x) * skew ** 2 / 36
            result: F64 = -k1 + adjusted * sd2
            return result

        var = cornish_fisher(alpha)
        es = np.mean([cornish_fisher(alpha + (1 - alpha) * (j + 0.5) / ES_LEVELS) for j in range(ES_LEVELS)],
                     axis=0)
    value = es if parameters.measure == "es" else var
    accounts = book.account_count
    return Measured(value=value, var=var, es=es, worst_loss=np.zeros(accounts),
                    worst_scenario=np.full(accounts, -1, dtype=np.int64), scenario_count=0)


def apply_buffer(calculated: F64, buffer: float, previous: F64 | None = None) -> F64:
    """EMIR Art. 28(1)(a): (1 + b)·C, or with the previous calculated margin P: max(C, (1 + b)·min(C, P))."""
    if previous is None:
        result: F64 = (1.0 + buffer) * calculated
        return result
    result = np.maximum(calculated, (1.0 + buffer) * np.minimum(calculated, previous))
    return result


# ---------------------------------------------------------------------------------------------- add-ons


def _latest(series: Mapping[str, F64], instrument: str, underlying: str, days: int) -> float | None:
    for name in (instrument, underlying):
        if name in series:
            return float(np.mean(series[name][-days:]))
    return None


def add_ons(book: Book, history: MarketHistory, parameters: VarParameters) -> tuple[F64, F64]:
    """Per account: liquidity (close-out cost) and concentration add-ons in USD (module docstring)."""
    count = len(book.instruments)
    spread = np.zeros(count)
    adv = np.full(count, np.inf)
    liquidity, concentration = parameters.liquidity, parameters.concentration
    for i, terms in enumerate(book.instruments):
        if liquidity is not None:
            quoted = _latest(history.spreads, terms.id, terms.underlying, 1)
            if quoted is None:
                relative = liquidity.relative_spreads.get(terms.id,
                                                          liquidity.relative_spreads.get(terms.underlying, 0.0))
                quoted = relative * float(book.mark[i])
            spread[i] = quoted
        if concentration is not None:
            volume = _latest(history.volumes, terms.id, terms.underlying, concentration.adv_days)
            if volume is None:
                volume = concentration.average_daily_volume.get(
                    terms.id, concentration.average_daily_volume.get(terms.underlying))
            if volume is not None:
                adv[i] = volume
    instrument = book.position_instrument
    size = np.abs(book.quantity) * book.contract_size[instrument] * book.asset_price[book.quote[instrument]]
    accounts = book.account_count
    liquidity_cost: F64 = np.zeros(accounts)
    if liquidity is not None:
        liquidity_cost = sum_by_account(book.position_account, liquidity.spread_fraction * spread[instrument]
                                        * size, accounts)
    concentration_cost: F64 = np.zeros(accounts)
    if concentration is not None:
        threshold = concentration.adv_fraction * adv[instrument]
        excess = np.maximum(np.abs(book.quantity) - threshold, 0.0)
        notional = book.contract_size[instrument] * book.underlying_price[instrument] * book.asset_price[
            book.quote[instrument]]
        concentration_cost = sum_by_account(book.position_account, concentration.rate * excess * notional, accounts)
    return liquidity_cost, concentration_cost


# ---------------------------------------------------------------------------------------------- the model


def _history_for(book: Book, parameters: VarParameters, history: MarketHistory | None,
                 profile: Profile) -> MarketHistory:
    if history is None:
        if parameters.history is None:
            raise ModelRefusal(f"{MODEL}: needs market history: pass --history FILE (CSV or Parquet) or name one in "
                               "the profile's parameters.history", field="--history")
        try:
            history = read_market_history(parameters.history)
        except InputError as error:
            raise error.in_file(profile.path or profile.name) from None
    visible = history.until(book.as_of.date())
    if len(visible) < 2:
        raise ModelRefusal(f"{MODEL}: the market history has fewer than two dates up to the book's as_of "
                           f"({book.as_of.date()})", field="--history")
    return visible


def margin(book: Book, profile: Profile, history: MarketHistory | None = None,
           previous_margin: F64 | None = None) -> Requirements:
    """VaR or ES margin per account in USD from market history (conventions in the module docstring).

    `history` is the market history (dates after the book's as_of are ignored); without it the profile's
    `parameters.history` file is read, else ModelRefusal names `--history`. `previous_margin` (per account, the
    previous calculated margin) lets the APC buffer absorb a rise. A `cross_margining` block in the parameters
    margins the account across two clearing houses (models/cross_margining.py).
    """
    agreement, inner = agreement_of(profile)
    if agreement is not None:
        return cross_margined(book, profile, agreement, MODEL,
                              lambda part: margin(part, inner, history, previous_margin))
    parameters = parse_var_parameters(profile)
    kind = book.kind[book.position_instrument]
    refuse_positions(book, MODEL, ~np.isin(kind, (SPOT, FUTURE, PERPETUAL, OPTION)), "unknown instrument type")
    refuse_positions(book, MODEL, book.inverse[book.position_instrument],
                     "covers linear contracts only (coin-settled contracts are not modelled)")
    visible = _history_for(book, parameters, history, profile)
    factors = risk_factors(book, visible, parameters)
    end = len(visible) - 1
    begin = max(0, end - parameters.lookback_days)
    accounts = book.account_count
    grouped = group_positions(book.position_account.astype(np.int64), book.position_instrument,
                              book.quantity, accounts)
    historical = parameters.method in ("historical", "filtered_historical")

    def measure(first: int, last: int, filtered: bool) -> tuple[Measured, ScenarioSet | None]:
        if historical:
            scenarios = scenario_set(factors, first, last, parameters, filtered)
            if scenarios.changes.shape[1] < parameters.minimum_scenarios:
                raise ModelRefusal(f"{MODEL}: the history gives {scenarios.changes.shape[1]} scenarios, fewer than "
                                   f"minimum_scenarios {parameters.minimum_scenarios}", field="--history")
            return historical_measure(book, grouped, factors, scenarios, parameters), scenarios
        if last - first < 2:
            raise ModelRefusal(f"{MODEL}: too little history for a covariance", field="--history")
        return parametric_measure(book, factors, first, last, parameters), None

    base, scenarios = measure(begin, end, parameters.method == "filtered_historical")
    calculated = np.maximum(base.value, 0.0)
    apc = parameters.apc
    stressed = np.zeros(accounts)
    if apc.stressed_weight > 0:
        assert apc.stressed_period is not None
        first = int(np.searchsorted(visible.dates, np.datetime64(apc.stressed_period.start, "D")))
        last = int(np.searchsorted(visible.dates, np.datetime64(apc.stressed_period.end, "D"), side="right")) - 1
        if last - first < parameters.margin_period_days:
            raise ModelRefusal(f"{MODEL}: the market history does not cover the stressed period",
                               field="parameters.apc.stressed_period")
        stressed = np.maximum(measure(max(first - 1, 0), last, False)[0].value, 0.0)
        calculated = (1.0 - apc.stressed_weight) * calculated + apc.stressed_weight * stressed
    floor = np.zeros(accounts)
    floor_days = 0
    if apc.floor_lookback_years > 0:
        floor_days = min(end, round(apc.floor_lookback_years * TRADING_DAYS_PER_YEAR))
        floor = np.maximum(measure(end - floor_days, end, False)[0].value, 0.0)
        calculated = np.maximum(calculated, floor)
    requirement = apply_buffer(calculated, apc.buffer, previous_margin)
    liquidity, concentration = add_ons(book, visible, parameters)
    initial = requirement + liquidity + concentration
    maintenance = parameters.maintenance_ratio * initial
    worst_dates = scenarios.dates if scenarios is not None else None
    scenario_count = base.scenario_count if historical else 0

    def explain(a: int) -> Mapping[str, Any]:
        s = int(base.worst_scenario[a])
        return {"measure": parameters.measure, "confidence": parameters.confidence, "method": parameters.method,
                "margin_period_days": parameters.margin_period_days, "scenario_count": scenario_count,
                "history_end": str(visible.dates[-1]),
                "worst_scenario_date": str(worst_dates[s]) if worst_dates is not None and s >= 0 else None,
                "worst_loss": float(base.worst_loss[a])}

    return Requirements(
        model=MODEL, profile=profile.name, profile_version=profile.version,
        margin_asset=np.full(accounts, book.asset_index["USD"], dtype=np.int32),
        initial_margin=initial, maintenance_margin=maintenance,
        components={
            "var": base.var, "es": base.es, "measure": base.value,
            "margin_period_days": np.full(accounts, float(parameters.margin_period_days)),
            "scenario_count": np.full(accounts, float(scenario_count)),
            "worst_loss": base.worst_loss, "worst_scenario": base.worst_scenario.astype(np.float64),
            "stressed_measure": stressed, "floor_measure": floor,
            "floor_lookback_days": np.full(accounts, float(floor_days)),
            "calculated_margin": calculated, "apc_buffer": requirement - calculated,
            "liquidity_add_on": liquidity, "concentration_add_on": concentration,
        },
        explanations=LazyRows(accounts, explain),
    )
