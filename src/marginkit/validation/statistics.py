"""Backtesting statistics: Kupiec POF, Christoffersen independence and conditional coverage, traffic light.

Conventions: a day is an *exception* when the realised loss over the margin period of risk exceeds the
requirement; `p` = 1 − coverage level (0.01 for a 99% margin) is the exception probability under the null;
likelihood ratios use 0·ln 0 = 0 and are χ²-distributed (1 degree of freedom, 2 for conditional coverage).
Procyclicality figures follow the usual CCP measures: peak-to-trough ratio and the largest n-day increase.

References: Kupiec (1995) "Techniques for verifying the accuracy of risk measurement models";
Christoffersen (1998) "Evaluating interval forecasts"; BCBS (1996) "Supervisory framework for the use of
backtesting in conjunction with the internal models approach to market risk capital requirements".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import xlogy
from scipy.stats import binom, chi2

F64 = NDArray[np.float64]

CRITICAL_5PCT_1DF = float(chi2.ppf(0.95, 1))  # 3.841
GREEN_LIMIT = 0.95  # green while the binomial CDF F(x) <= 0.95
YELLOW_LIMIT = 0.9999  # yellow while F(x) <= 0.9999, red above
BASEL_PLUS_FACTORS = {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}  # 250 days at 99%; 0 in green, 1 in red


def _check_level(p: float) -> None:
    if not 0.0 < p < 1.0:
        raise ValueError(f"exception probability must be in (0, 1), got {p}")


@dataclass(frozen=True, slots=True)
class KupiecResult:
    """Kupiec proportion-of-failures test: LR_POF (χ²(1)), its p-value, and rejection at 5%."""

    days: int
    exceptions: int
    p: float
    lr: float
    p_value: float
    reject: bool


def kupiec(days: int, exceptions: int, p: float, *, significance: float = 0.05) -> KupiecResult:
    """Kupiec POF: LR = −2[(N−x) ln(1−p) + x ln p] + 2[(N−x) ln(1−p̂) + x ln p̂], p̂ = x/N, χ²(1).

    `p` is the exception probability (1 − VaR level); 0·ln 0 = 0.
    """
    _check_level(p)
    if days <= 0 or not 0 <= exceptions <= days:
        raise ValueError(f"need 0 <= exceptions <= days and days > 0, got {exceptions} in {days}")
    n, x = float(days), float(exceptions)
    p_hat = x / n
    null = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    alternative = xlogy(n - x, 1.0 - p_hat) + xlogy(x, p_hat)
    lr = max(float(-2.0 * (null - alternative)), 0.0) + 0.0  # + 0.0: no negative zero
    p_value = float(chi2.sf(lr, 1))
    return KupiecResult(days, exceptions, p, lr, p_value, p_value < significance)


@dataclass(frozen=True, slots=True)
class ChristoffersenResult:
    """Christoffersen's transition counts, probabilities, LR_ind (χ²(1)) and LR_cc = LR_POF + LR_ind (χ²(2))."""

    n00: int
    n01: int
    n10: int
    n11: int
    pi01: float
    pi11: float
    pi: float
    lr_ind: float
    p_value_ind: float
    lr_pof: float
    lr_cc: float
    p_value_cc: float


def transition_counts(exceptions: ArrayLike) -> tuple[int, int, int, int]:
    """N00, N01, N10, N11: days in state i followed by a day in state j (1 = exception)."""
    hits = np.asarray(exceptions, dtype=bool)
    previous, following = hits[:-1], hits[1:]
    return (int(np.sum(~previous & ~following)), int(np.sum(~previous & following)),
            int(np.sum(previous & ~following)), int(np.sum(previous & following)))


def christoffersen(exceptions: ArrayLike, p: float) -> ChristoffersenResult:
    """Christoffersen (1998) independence and conditional coverage tests of an exception sequence.

    π01 = N01/(N00+N01), π11 = N11/(N10+N11), π = (N01+N11)/ΣN;
    LR_ind = −2[(N00+N10) ln(1−π) + (N01+N11) ln π] + 2[N00 ln(1−π01) + N01 ln π01 + N10 ln(1−π11) + N11 ln π11];
    LR_cc = LR_POF (Kupiec over all days) + LR_ind. An empty transition row contributes nothing (0·ln 0 = 0).
    """
    _check_level(p)
    hits = np.asarray(exceptions, dtype=bool)
    if hits.size < 2:
        raise ValueError("the independence test needs at least two days")
    n00, n01, n10, n11 = transition_counts(hits)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    restricted = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    unrestricted = xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    lr_ind = max(float(-2.0 * (restricted - unrestricted)), 0.0) + 0.0  # + 0.0: no negative zero
    pof = kupiec(int(hits.size), int(hits.sum()), p)
    lr_cc = pof.lr + lr_ind
    return ChristoffersenResult(n00, n01, n10, n11, pi01, pi11, pi, lr_ind, float(chi2.sf(lr_ind, 1)),
                                pof.lr, lr_cc, float(chi2.sf(lr_cc, 2)))


@dataclass(frozen=True, slots=True)
class TrafficLight:
    """Zone of an exception count by the binomial rule; Basel's plus factor where it is defined (250 days, 99%)."""

    days: int
    p: float
    exceptions: int
    zone: str
    cumulative_probability: float  # F(exceptions) of Binomial(days, p)
    yellow_from: int
    red_from: int
    plus_factor: float | None


def zone_thresholds(days: int, p: float) -> tuple[int, int]:
    """(yellow_from, red_from): the least x with F(x) > 0.95 and the least x with F(x) > 0.9999, at least 1.

    At least 1: no exception is always green (in a very short window, e.g. a year's first days, F(0) itself
    can exceed 0.95: 0.99⁵ = 0.951).
    """
    _check_level(p)
    cdf = binom.cdf(np.arange(days + 1), days, p)
    yellow = np.flatnonzero(cdf > GREEN_LIMIT)
    red = np.flatnonzero(cdf > YELLOW_LIMIT)
    return (max(int(yellow[0]), 1) if yellow.size else days + 1, max(int(red[0]), 1) if red.size else days + 1)


def traffic_light(days: int, p: float, exceptions: int) -> TrafficLight:
    """Basel traffic light for any N and p: green while F(x) <= 0.95, yellow while F(x) <= 0.9999, else red.

    At N = 250, p = 0.01 this is BCBS (1996): green 0–4, yellow 5–9 (plus factors 0.40 … 0.85), red >= 10
    (plus factor 1.00); elsewhere the plus factor is None (the framework defines it for 250 days only).
    """
    if days <= 0 or not 0 <= exceptions <= days:
        raise ValueError(f"need 0 <= exceptions <= days and days > 0, got {exceptions} in {days}")
    yellow_from, red_from = zone_thresholds(days, p)
    zone = "green" if exceptions < yellow_from else "yellow" if exceptions < red_from else "red"
    plus: float | None = None
    if days == 250 and math.isclose(p, 0.01):
        plus = 0.0 if zone == "green" else 1.0 if zone == "red" else BASEL_PLUS_FACTORS[exceptions]
    return TrafficLight(days, p, exceptions, zone, float(binom.cdf(exceptions, days, p)), yellow_from, red_from,
                        plus)


@dataclass(frozen=True, slots=True)
class Procyclicality:
    """Peak-to-trough ratio (max / min) of a margin series and its largest n-day increase in % of the start."""

    peak: float
    trough: float
    peak_to_trough: float | None  # None when the trough is not positive
    largest_increase_pct: dict[int, float | None]  # n -> max over t of (m[t+n] − m[t]) / m[t] × 100


def procyclicality(series: ArrayLike, horizons: Sequence[int] = (1, 5, 30)) -> Procyclicality:
    """Procyclicality of a margin series: max/min, and for each n the largest increase over n days in %.

    Increases are measured from days with a positive margin; a horizon longer than the series gives None.
    """
    margin = np.asarray(series, dtype=np.float64)
    if margin.size == 0 or not np.all(np.isfinite(margin)):
        raise ValueError("a margin series needs finite values")
    peak, trough = float(margin.max()), float(margin.min())
    increases: dict[int, float | None] = {}
    for n in horizons:
        start, end = margin[:-n], margin[n:]
        valid = start > 0
        increases[n] = float(np.max((end[valid] - start[valid]) / start[valid]) * 100.0) if valid.any() else None
    return Procyclicality(peak, trough, peak / trough if trough > 0 else None, increases)


def by_year(dates: Sequence[date], exceptions: ArrayLike, p: float) -> dict[str, dict[str, object]]:
    """Per calendar year: days, exceptions, coverage (1 − exceptions/days), expected exceptions and zone."""
    hits = np.asarray(exceptions, dtype=bool)
    years = np.array([d.year for d in dates])
    result: dict[str, dict[str, object]] = {}
    for year in sorted(set(years.tolist())):
        chosen = hits[years == year]
        days, count = int(chosen.size), int(chosen.sum())
        result[str(year)] = {"days": days, "exceptions": count, "expected_exceptions": days * p,
                             "coverage": 1.0 - count / days, "zone": traffic_light(days, p, count).zone}
    return result
