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
def bracket_index(notional: F64, table: I64, caps: F64, counts: I64) -> I64:  # pragma: no cover - compiled
    """The bracket b with cap_(b-1) < notional ≤ cap_b of each position's table (the last beyond its cap)."""
    n = notional.shape[0]
    out = np.empty(n, dtype=np.int64)
    for p in range(n):
        t = table[p]
        last = counts[t] - 1
        b = 0
        while b < last and notional[p] > caps[t, b]:
            b += 1
        out[p] = b
    return out


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
    for p in range(n):
        q = partner[p]
        n1 = counts[table[p]] if kind[p] == BRACKET_LINES else 1
        n2 = 1
        total_slope = slope[p]
        if q >= 0:
            n2 = counts[table[q]] if kind[q] == BRACKET_LINES else 1
            total_slope += slope[q]
        lower = -np.inf
        upper = np.inf
        for b1 in range(n1):
            a1, c1 = _line(p, b1, kind, fx, size, rates, amounts, table, alpha, beta)
            for b2 in range(n2):
                a2 = 0.0
                c2 = 0.0
                if q >= 0:
                    a2, c2 = _line(q, b2, kind, fx, size, rates, amounts, table, alpha, beta)
                d = total_slope - a1 - a2
                r = c1 + c2 - constant[p]
                if d > 0.0:
                    lower = max(lower, r / d)
                elif d < 0.0:
                    upper = min(upper, r / d)
        a_now, _ = _line(p, bracket_now[p], kind, fx, size, rates, amounts, table, alpha, beta)
        d_now = total_slope - a_now
        if q >= 0:
            a_q, _ = _line(q, bracket_now[q], kind, fx, size, rates, amounts, table, alpha, beta)
            d_now -= a_q
        root = lower if d_now > 0.0 else upper
        out[p] = root if (np.isfinite(root) and root > 1e-9 * y_now[p]) else np.nan
    return out
