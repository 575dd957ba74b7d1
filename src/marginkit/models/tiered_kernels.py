"""Compiled per-position kernels of the tiered model: bracket lookup and the liquidation-price solve.

In the price variable y (y = P for linear contracts, y = 1/P for inverse ones) an account's equity
and every bracket's maintenance margin are affine: equity(y) = C + K·y and, per bracket b,
MM_b(y) = α_b·y + β_b. Because rates never fall across brackets, the maintenance margin is the
upper envelope MM(y) = max_b MM_b(y) (the `cum` recursion makes it continuous), so
equity ≥ MM ⇔ (K − α_b)·y ≥ β_b − C for every b: an intersection of half-lines, solved exactly
with no iteration. Two hedge-mode legs sharing one price take every pair of their lines.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

BRACKET_LINES = 0
FIXED_LINE = 1


@njit(cache=True)
def _line(p: int, b: int, kind: I64, fx: F64, size: F64, rates: F64, amounts: F64, table: I64,
          alpha: F64, beta: F64) -> tuple[float, float]:  # pragma: no cover - compiled
    if kind[p] == BRACKET_LINES:
        t = table[p]
        return fx[p] * size[p] * rates[t, b], beta[p] - fx[p] * amounts[t, b]
    return alpha[p], beta[p]


@njit(cache=True)
def adverse_root(
    constant: F64, slope: F64, partner: I64, kind: I64, fx: F64, size: F64, rates: F64, amounts: F64,
    counts: I64, table: I64, alpha: F64, beta: F64, bracket_now: I64, y_now: F64,
) -> F64:  # pragma: no cover - compiled
    """The y where equity meets the maintenance lines on the side the account loses from now; NaN if none.

    For position p (and its hedge partner, if any): constant = C, slope = its K (the partner adds
    its own K). kind selects the bracket lines of its table or one fixed line (alpha·y + beta);
    beta is added to every bracket line too (a fixed fee). A root that is not a positive finite y, or
    is below 1e-9 of y now (a price a billion times away: rounding noise of a root at 0 or infinity), is NaN.
    """
    n = constant.shape[0]
    out = np.empty(n, dtype=np.float64)
    a2 = np.empty(max(rates.shape[1], 1))  # the partner's lines, computed once per pair
    c2 = np.empty(max(rates.shape[1], 1))
    for p in range(n):
        q = partner[p]
        total_slope = slope[p]
        lower = -np.inf
        upper = np.inf
        # A position without a partner: the same operations as the pair loop below with a2 = c2 = 0 (x − 0.0 is
        # x, so d drops that term; r keeps its + 0.0, which turns −0.0 into 0.0) and fx·size hoisted.
        if q < 0 and kind[p] == BRACKET_LINES:
            t = table[p]
            scale = fx[p] * size[p]
            for b in range(counts[t]):
                d = total_slope - scale * rates[t, b]
                r = beta[p] - fx[p] * amounts[t, b] + 0.0 - constant[p]
                if d > 0.0:
                    lower = max(lower, r / d)
                elif d < 0.0:
                    upper = min(upper, r / d)
            d_now = total_slope - scale * rates[t, bracket_now[p]]
        elif q < 0:
            d = total_slope - alpha[p]
            r = beta[p] + 0.0 - constant[p]
            if d > 0.0:
                lower = max(lower, r / d)
            elif d < 0.0:
                upper = min(upper, r / d)
            d_now = d
        else:
            n1 = counts[table[p]] if kind[p] == BRACKET_LINES else 1
            n2 = counts[table[q]] if kind[q] == BRACKET_LINES else 1
            total_slope += slope[q]
            for b2 in range(n2):
                a2[b2], c2[b2] = _line(q, b2, kind, fx, size, rates, amounts, table, alpha, beta)
            for b1 in range(n1):
                a1, c1 = _line(p, b1, kind, fx, size, rates, amounts, table, alpha, beta)
                for b2 in range(n2):
                    d = total_slope - a1 - a2[b2]
                    r = c1 + c2[b2] - constant[p]
                    if d > 0.0:
                        lower = max(lower, r / d)
                    elif d < 0.0:
                        upper = min(upper, r / d)
            a_now, _ = _line(p, bracket_now[p], kind, fx, size, rates, amounts, table, alpha, beta)
            d_now = total_slope - a_now
            d_now -= a2[bracket_now[q] if kind[q] == BRACKET_LINES else 0]
        root = lower if d_now > 0.0 else upper
        out[p] = root if (np.isfinite(root) and root > 1e-9 * y_now[p]) else np.nan
    return out


@njit(cache=True)
def bracket_lookup(
    notional: F64, table: I64, caps: F64, counts: I64, rates: F64, amounts: F64, leverages: F64, chosen: F64,
) -> tuple[I64, F64, F64, F64]:  # pragma: no cover - compiled
    """Bracket b with cap_(b-1) < notional ≤ cap_b (the last beyond its cap), its rate, amount and the leverage used.

    The leverage is the position's `chosen` one capped by the bracket's maximum, or the maximum where none is
    chosen (≤ 0 or NaN): np.where(chosen > 0, np.minimum(chosen, maximum), maximum) (maxima are never NaN).
    """
    n = notional.shape[0]
    bracket = np.empty(n, dtype=np.int64)
    rate = np.empty(n, dtype=np.float64)
    amount = np.empty(n, dtype=np.float64)
    leverage = np.empty(n, dtype=np.float64)
    for p in range(n):
        t = table[p]
        last = counts[t] - 1
        b = 0
        while b < last and notional[p] > caps[t, b]:
            b += 1
        bracket[p] = b
        rate[p] = rates[t, b]
        amount[p] = amounts[t, b]
        maximum = leverages[t, b]
        own = chosen[p]
        leverage[p] = (own if own < maximum else maximum) if own > 0.0 else maximum
    return bracket, rate, amount, leverage


@njit(cache=True)
def choose(mask: NDArray[np.bool_], x: F64, y: F64) -> F64:  # pragma: no cover - compiled
    """np.where(mask, x, y) for 1-d float arrays without branches (np.where is slow on an irregular mask)."""
    n = mask.shape[0]
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        out[i] = x[i] if mask[i] else y[i]
    return out


@njit(cache=True)
def choose_or(mask: NDArray[np.bool_], x: F64, fill: float) -> F64:  # pragma: no cover - compiled
    """np.where(mask, x, fill) for a 1-d float array and a number, without branches."""
    n = mask.shape[0]
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        out[i] = x[i] if mask[i] else fill
    return out


@njit(cache=True)
def account_rest(
    mask: NDArray[np.bool_], totals: F64, account: NDArray[np.int32], own: F64, otherwise: F64,
) -> F64:  # pragma: no cover - compiled
    """np.where(mask, totals[account] − own, otherwise) in one pass: an account's total less a position's part."""
    n = mask.shape[0]
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        out[i] = totals[account[i]] - own[i] if mask[i] else otherwise[i]
    return out


@njit(cache=True)
def positive_prices(price: F64) -> tuple[F64, NDArray[np.bool_]]:  # pragma: no cover - compiled
    """(np.where(defined, price, 0.0), defined) with defined = np.isfinite(price) & (price > 0), in one pass."""
    n = price.shape[0]
    result = np.empty(n, dtype=np.float64)
    defined = np.empty(n, dtype=np.bool_)
    for i in range(n):
        ok = np.isfinite(price[i]) and price[i] > 0.0
        defined[i] = ok
        result[i] = price[i] if ok else 0.0
    return result, defined
