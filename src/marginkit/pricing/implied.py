"""Black-76 implied volatility on arrays, for every arbitrage-free price (after Jäckel 2015, "Let's Be Rational").

The price is reduced to the normalised out-of-the-money Black call β = time value / √(F·K) at x = −|ln(F/K)|,
which lies in (0, e^(x/2)) exactly when the price is arbitrage-free. The root s = σ√T of b(x, s) = β is found
with Jäckel's ingredients: the inflection point s_c = √(2|x|) and its tangent split the s axis into a lower, two
middle and an upper segment; the lower segment is solved on 1/ln(b), the upper one on ln(b_max − b), the middle
ones on b itself, each by Householder's third-order method from Jäckel's asymptotic initial guesses. Unlike
Jäckel's fixed two steps, the iteration runs to convergence inside a bracket that every evaluation narrows, and
falls back to bisection when a step leaves it, so it converges for every β in range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from marginkit.pricing.black76 import flat_operand, log_moneyness, normalised_black_otm
from marginkit.pricing.normal import ONE_OVER_SQRT_TWO_PI, inverse_norm_cdf, norm_cdf

F64 = NDArray[np.float64]
Bools = NDArray[np.bool_]

VALID = 0
INVALID_INPUT = 1
BELOW_INTRINSIC = 2
ABOVE_MAXIMUM = 3
REASONS = {
    INVALID_INPUT: "forward, strike, discount and years must be positive and finite, the price finite",
    BELOW_INTRINSIC: "the price is below the discounted intrinsic value",
    ABOVE_MAXIMUM: "the price is at or above its upper bound (D·F for a call, D·K for a put)",
}
MAXIMUM_ITERATIONS = 100
EPSILON = float(np.finfo(np.float64).eps)
SQRT_THREE = 1.7320508075688772935
TWO_PI_OVER_SQRT_TWENTY_SEVEN = 1.2091995761561452337  # 2π/√27


@dataclass(frozen=True)
class ImpliedVolatilityResult:
    """Implied volatilities and which inputs had one.

    `volatility` is annualised (0.55 = 55 %) where `valid`, and 0.0 where not: a price outside the
    arbitrage bounds (below the discounted intrinsic value, at or above D·F for a call or D·K for a put) or
    an input that is not positive and finite.
    """

    volatility: F64
    valid: Bools


@njit(cache=True, error_model="numpy")
def _normalised_vega(x: float, s: float) -> float:  # pragma: no cover - compiled
    """∂b/∂s = exp(−(x²/s² + s²/4)/2)/√(2π)."""
    h = x / s
    return ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + 0.25 * s * s))


@njit(cache=True, error_model="numpy")
def _householder_step(newton: float, halley: float, third: float) -> float:  # pragma: no cover - compiled
    """Householder's third-order step from ν = −g/g', g''/g' and g'''/g'."""
    return newton * (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + third * newton / 6.0))


@njit(cache=True, error_model="numpy")
def normalised_implied_volatility(beta: float, x: float) -> float:  # pragma: no cover - compiled
    """s = σ√T with b(x, s) = β, for x ≤ 0 and 0 < β < e^(x/2) (Jäckel 2015, sections 4 and 5)."""
    b_max = math.exp(0.5 * x)
    objective_lower, objective_middle, objective_upper = 0, 1, 2
    if x == 0.0:
        s_c, b_c, v_c = 0.0, 0.0, ONE_OVER_SQRT_TWO_PI
    else:
        s_c = math.sqrt(-2.0 * x)
        b_c = normalised_black_otm(x, s_c)
        v_c = _normalised_vega(x, s_c)
    left, right = 0.0, math.inf
    if beta < b_c:
        s_l = s_c - b_c / v_c
        b_l = normalised_black_otm(x, s_l) if s_l > 0.0 else 0.0
        if beta <= b_l or s_l <= 0.0:
            # Lower segment: b ≈ f(s) = (2π/√27)·|x|·Φ(−|x|/(√3·s))³ for small s; f(β) is interpolated by the
            # quadratic through f(0) = 0 with f'(0) = 1 and f(b_l) (Jäckel's fallback), then inverted.
            right = s_l if s_l > 0.0 else s_c
            objective = objective_lower
            b_right = b_l if s_l > 0.0 else b_c
            f_right = TWO_PI_OVER_SQRT_TWENTY_SEVEN * -x * norm_cdf(x / (SQRT_THREE * right)) ** 3
            w = beta / b_right
            f = (f_right * w + b_right * (1.0 - w)) * w
            cube_root = (f / (TWO_PI_OVER_SQRT_TWENTY_SEVEN * -x)) ** (1.0 / 3.0)
            s = -x / (SQRT_THREE * -inverse_norm_cdf(cube_root)) if 0.0 < cube_root < 0.5 else 0.5 * right
        else:
            left, right = s_l, s_c
            objective = objective_middle
            s = left + (beta - b_l) / (b_c - b_l) * (right - left)
    else:
        s_h = s_c + (b_max - b_c) / v_c
        b_h = normalised_black_otm(x, s_h)
        if beta <= b_h:
            left, right = s_c, s_h
            objective = objective_middle
            s = left + (beta - b_c) / (b_h - b_c) * (right - left)
        else:
            # Upper segment: f(s) = Φ(−s/2) ≈ (b_max − b)/2 for large s (exact at x = 0); f(β) is interpolated by
            # the quadratic through f(b_h), f(b_max) = 0 and f'(b_max) = −1/2 (Jäckel's fallback), s = −2·Φ⁻¹(f).
            left = s_h
            objective = objective_upper if beta > 0.5 * b_max else objective_middle
            w = (beta - b_h) / (b_max - b_h)
            f = (norm_cdf(-0.5 * s_h) * (1.0 - w) + 0.5 * (b_max - b_h) * w) * (1.0 - w)
            s = -2.0 * inverse_norm_cdf(f)
    if not (left < s < right):
        s = 0.5 * (left + right) if right < math.inf else 2.0 * left
    log_beta = math.log(beta)
    for _ in range(MAXIMUM_ITERATIONS):
        b = normalised_black_otm(x, s)
        if b == beta:
            return s
        if b > beta:
            right = min(right, s)
        else:
            left = max(left, s)
        slope = _normalised_vega(x, s)
        h_over_s = x / (s * s)
        halley_b = x * h_over_s / s - 0.25 * s  # b''/b'
        third_b = halley_b * halley_b - 3.0 * h_over_s * h_over_s - 0.25  # b'''/b'
        if objective == objective_lower and b > 0.0:
            # g = 1/ln(b) − 1/ln(β)
            log_b = math.log(b)
            ratio = slope / b
            newton = (log_beta - log_b) * log_b / log_beta / ratio
            halley = halley_b - ratio * (1.0 + 2.0 / log_b)
            third = (third_b + 2.0 * ratio * ratio * (1.0 + 3.0 / log_b * (1.0 + 1.0 / log_b))
                     - 3.0 * halley_b * ratio * (1.0 + 2.0 / log_b))
        elif objective == objective_upper and b < b_max:
            # g = ln(b_max − β) − ln(b_max − b)
            gap = b_max - b
            g_slope = slope / gap
            newton = -math.log((b_max - beta) / gap) / g_slope
            halley = halley_b + g_slope
            third = third_b + g_slope * (2.0 * g_slope + 3.0 * halley_b)
        else:
            # g = b − β
            newton = (beta - b) / slope
            halley = halley_b
            third = third_b
        step = max(_householder_step(newton, halley, third), -0.5 * s)
        if abs(step) <= 2.0 * EPSILON * s:
            return s + step
        candidate = s + step
        if not (left < candidate < right):
            # The step left the bracket: bisect it (or double s while the bracket is open above).
            candidate = 0.5 * (left + right) if right < math.inf else 2.0 * max(left, s)
            if right - left <= 2.0 * EPSILON * right:
                return candidate
        s = candidate
    return s


@njit(cache=True, error_model="numpy")
def _implied_volatility_kernel(
    price: F64, price_step: int, forward: F64, forward_step: int, strike: F64, strike_step: int, years: F64,
    years_step: int, is_call: Bools, call_step: int, discount: F64, discount_step: int, inverse: Bools,
    inverse_step: int, volatility_out: F64, code_out: NDArray[np.int8],
) -> None:  # pragma: no cover - compiled
    for i in range(volatility_out.shape[0]):
        F = forward[i * forward_step]
        K = strike[i * strike_step]
        T = years[i * years_step]
        D = discount[i * discount_step]
        value = price[i * price_step]
        call = is_call[i * call_step]
        volatility_out[i] = 0.0
        if not (0.0 < F < math.inf and 0.0 < K < math.inf and 0.0 < T < math.inf and 0.0 < D < math.inf
                and -math.inf < value < math.inf):
            code_out[i] = INVALID_INPUT
            continue
        if inverse[i * inverse_step]:
            value = value * F
        discounted_intrinsic = D * (max(F - K, 0.0) if call else max(K - F, 0.0))
        time_value = value - discounted_intrinsic
        if time_value < 0.0:
            code_out[i] = BELOW_INTRINSIC
            continue
        if value >= D * (F if call else K):
            code_out[i] = ABOVE_MAXIMUM
            continue
        code_out[i] = VALID
        if time_value == 0.0:
            continue
        x = -abs(log_moneyness(F, K))
        beta = time_value / D / (math.sqrt(F) * math.sqrt(K))
        if beta >= math.exp(0.5 * x):
            code_out[i] = ABOVE_MAXIMUM
            continue
        volatility_out[i] = normalised_implied_volatility(beta, x) / math.sqrt(T)


def implied_volatility_with_mask(
    price: ArrayLike, forward: ArrayLike, strike: ArrayLike, years: ArrayLike, is_call: ArrayLike,
    discount: ArrayLike, *, inverse: ArrayLike = False,
) -> ImpliedVolatilityResult:
    """Black-76 implied volatility of each price and a mask of the prices that have one; never NaN.

    `price` is the discounted premium per unit of underlying (in coin where `inverse`, i.e. the linear premium
    divided by F); the arguments broadcast together. A price exactly at the discounted intrinsic value has
    volatility 0. Solved to a few ulps of σ√T (Jäckel 2015, "Let's Be Rational"; see the module docstring).
    """
    result, _ = _solve(price, forward, strike, years, is_call, discount, inverse)
    return result


def implied_volatility(
    price: ArrayLike, forward: ArrayLike, strike: ArrayLike, years: ArrayLike, is_call: ArrayLike,
    discount: ArrayLike, *, inverse: ArrayLike = False,
) -> F64:
    """Black-76 implied volatility (annualised) of each discounted premium per unit of underlying.

    As `implied_volatility_with_mask`, but raises ValueError naming the first price that has no implied
    volatility and why (below the discounted intrinsic value, at or above D·F or D·K, or a bad input).
    """
    result, codes = _solve(price, forward, strike, years, is_call, discount, inverse)
    if not bool(result.valid.all()):
        flat_index = int(np.argmax(codes.reshape(-1) != VALID))
        position = np.unravel_index(flat_index, codes.shape) if codes.shape else ()
        where = f"[{', '.join(str(int(p)) for p in position)}]" if codes.shape else ""
        value = float(np.broadcast_to(np.asarray(price, dtype=np.float64), codes.shape)[position])
        raise ValueError(f"implied_volatility: price{where} = {value!r}: {REASONS[int(codes[position])]}")
    return result.volatility


def _solve(
    price: ArrayLike, forward: ArrayLike, strike: ArrayLike, years: ArrayLike, is_call: ArrayLike,
    discount: ArrayLike, inverse: ArrayLike,
) -> tuple[ImpliedVolatilityResult, NDArray[np.int8]]:
    shape = np.broadcast_shapes(*(np.shape(v) for v in (price, forward, strike, years, is_call, discount, inverse)))
    size = math.prod(shape)
    operands = [flat_operand(v, shape, np.float64) for v in (price, forward, strike, years)]
    calls = flat_operand(is_call, shape, np.bool_)
    discounts = flat_operand(discount, shape, np.float64)
    inverses = flat_operand(inverse, shape, np.bool_)
    volatility = np.empty(size)
    codes = np.empty(size, dtype=np.int8)
    _implied_volatility_kernel(*operands[0], *operands[1], *operands[2], *operands[3], *calls, *discounts,
                               *inverses, volatility, codes)
    shaped_codes = codes.reshape(shape)
    return ImpliedVolatilityResult(volatility=volatility.reshape(shape), valid=shaped_codes == VALID), shaped_codes
