"""Black-76 prices and Greeks on arrays, linear and coin-settled (Black 1976, "The pricing of commodity contracts").

Every function here takes NumPy arrays (or scalars) that broadcast against each other and runs one compiled
pass over them. Conventions, for an option on a forward F with strike K, T years to expiry, volatility σ and
discount factor D of the premium's currency:

- linear option (`inverse` false): premium per unit of underlying in the forward's (quote) currency,
  call = D·(F·N(d1) − K·N(d2)), put = D·(K·N(−d2) − F·N(−d1)), d1,2 = (ln(F/K) ± σ²T/2)/(σ√T);
- coin-settled option (`inverse` true, Deribit style): premium in the underlying coin, the linear premium
  divided by F (spec/book-format.md, "Contract size and inverse").

The out-of-the-money part of the price is computed with Jäckel's normalised Black function, whose four
branches (an asymptotic expansion, a small-σ√T expansion, the plain formula and one based on the scaled
complementary error function) keep full relative accuracy where the two terms of the textbook formula
cancel: P. Jäckel, "Let's Be Rational", Wilmott (2015) 40–53, section 3. The expansion coefficients are
those of Jäckel's reference implementation, which carries this notice:

    Copyright © 2013-2014 Peter Jäckel.
    Permission to use, copy, modify, and distribute this software is freely granted,
    provided that this notice is preserved.
    WARRANTY DISCLAIMER
    The Software is provided "as is" without warranty of any kind, either express or implied,
    including without limitation any implied warranties of condition, uninterrupted use,
    merchantability, fitness for a particular purpose, or non-infringement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from marginkit.pricing import elementary
from marginkit.pricing.elementary import fused_multiply_add
from marginkit.pricing.normal import ONE_OVER_SQRT_TWO, ONE_OVER_SQRT_TWO_PI, erfcx_nonnegative, norm_cdf

F64 = NDArray[np.float64]
Bools = NDArray[np.bool_]

SQRT_PI_OVER_TWO = 1.2533141373155002512078826424055226
# Region boundaries of the normalised Black function (Jäckel 2015, section 3): h = x/s below η uses the
# asymptotic expansion, t = s/2 below τ = 2·ε^(1/16) the small-t expansion.
ASYMPTOTIC_EXPANSION_THRESHOLD = -10.0
SMALL_T_EXPANSION_THRESHOLD = 2.0 * float(np.finfo(np.float64).eps) ** (1.0 / 16.0)
ASYMPTOTIC_EXPANSION_ORDER = 17
# Coefficients of the asymptotic expansion A(h, t) = 2 + q·S_1, S_k = (−1)^k·2·P_k(e) + (2k+1)·q·S_(k+1),
# P_k(e) = Σ_j C(2k+1, 2j+1)·e^j: the seventeenth-order series of Jäckel's reference code, written as a table.
ASYMPTOTIC_EXPANSION_COEFFICIENTS = np.array(
    [[(-1) ** k * 2.0 * comb(2 * k + 1, 2 * j + 1) if j <= k else 0.0 for j in range(ASYMPTOTIC_EXPANSION_ORDER + 1)]
     for k in range(ASYMPTOTIC_EXPANSION_ORDER + 1)],
    dtype=np.float64,
)

# Options are processed in blocks: a vectorised pass computes every option of the block by the branch-free
# formulas (regions 2 to 4 of the normalised Black function), then the few it flags (expiry or zero
# volatility, region 1 far out of the money) are recomputed one by one.
BLOCK = 256

INVALID_FORWARD = 1
INVALID_STRIKE = 2
INVALID_YEARS = 3
INVALID_VOLATILITY = 4
INVALID_DISCOUNT = 5
INVALID_FIELDS = {
    INVALID_FORWARD: ("forward", "must be positive and finite"),
    INVALID_STRIKE: ("strike", "must be positive and finite"),
    INVALID_YEARS: ("years", "must be finite"),
    INVALID_VOLATILITY: ("volatility", "must be non-negative and finite"),
    INVALID_DISCOUNT: ("discount", "must be positive and finite"),
}


@dataclass(frozen=True)
class Black76Result:
    """Black-76 price and Greeks per unit of underlying, one array element per option.

    Linear options (in the premium currency, per unit of underlying):
    - `price`: D·Black(F, K, σ, T);
    - `delta`: ∂price/∂F, in units of underlying: D·N(d1) for a call, D·(N(d1) − 1) for a put;
    - `gamma`: ∂²price/∂F² = D·φ(d1)/(F·σ√T), per unit of forward price;
    - `vega`: ∂price/∂σ per 1.00 of volatility (not per vol point) = D·F·φ(d1)·√T;
    - `theta`: −∂price/∂T per year, the change of value as time passes with F, σ and the discount rate
      r = −ln(D)/T held fixed: r·price − D·F·φ(d1)·σ/(2√T) (negative for a long option when r = 0).

    Coin-settled options (in coin): `price` is the coin premium V = linear price / F; `delta` is the
    premium-adjusted delta in units of underlying, linear delta − V (D·N(d1) − V for a call,
    D·(N(d1) − 1) − V for a put), which is F·∂V/∂F; `gamma` is ∂²V/∂F² (coin per unit of forward price
    squared); `vega` and `theta` are the linear ones divided by F.

    At σ√T = 0 (expiry or zero volatility) the price is the discounted intrinsic value, delta its slope
    (half the step at the money), gamma and vega 0 and theta r·price (0 at or after expiry).
    """

    price: F64
    delta: F64
    gamma: F64
    vega: F64
    theta: F64


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _asymptotic_expansion_otm(h: float, t: float) -> float:  # pragma: no cover - compiled
    """Normalised Black b(h, t) for h = x/s < −10 by the asymptotic expansion of Y(h+t) − Y(h−t), Y = Φ/φ."""
    e = (t / h) * (t / h)
    r = (h + t) * (h - t)
    q = (h / r) * (h / r)
    series = 0.0
    for k in range(ASYMPTOTIC_EXPANSION_ORDER, 0, -1):
        polynomial = 0.0
        for j in range(k, -1, -1):
            polynomial = polynomial * e + ASYMPTOTIC_EXPANSION_COEFFICIENTS[k, j]
        series = polynomial + (2 * k + 1) * q * series
    total = 2.0 + q * series
    return max(ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + t * t)) * (t / r) * total, 0.0)


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _small_t_expansion_otm(h: float, t: float, scale: float) -> float:  # pragma: no cover - compiled
    """Normalised Black b(h, t) for t = s/2 < τ by the twelfth-order Taylor series of Y(h+t) − Y(h−t) in t.

    `scale` is exp(−(h² + t²)/2); Y(z) = Φ(z)/φ(z) and a = 1 + h·Y(h) = 1 + h·√(π/2)·erfcx(−h/√2), h ≤ 0.
    """
    a = 1.0 + h * SQRT_PI_OVER_TWO * erfcx_nonnegative(-ONE_OVER_SQRT_TWO * h)
    w = t * t
    h2 = h * h
    c1 = (-1.0 + 3.0 * a + a * h2) * (1.0 / 6.0)
    c2 = (-7.0 + 15.0 * a + h2 * (-1.0 + 10.0 * a + a * h2)) * (1.0 / 120.0)
    c3 = (-57.0 + 105.0 * a + h2 * (-18.0 + 105.0 * a + h2 * (-1.0 + 21.0 * a + a * h2))) * (1.0 / 5040.0)
    c4 = (-561.0 + 945.0 * a + h2 * (-285.0 + 1260.0 * a + h2 * (-33.0 + 378.0 * a + h2 * (
        -1.0 + 36.0 * a + a * h2)))) * (1.0 / 362880.0)
    c5 = (-6555.0 + 10395.0 * a + h2 * (-4680.0 + 17325.0 * a + h2 * (-840.0 + 6930.0 * a + h2 * (
        -52.0 + 990.0 * a + h2 * (-1.0 + 55.0 * a + a * h2))))) * (1.0 / 39916800.0)
    c6 = (-89055.0 + 135135.0 * a + h2 * (-82845.0 + 270270.0 * a + h2 * (-20370.0 + 135135.0 * a + h2 * (
        -1926.0 + 25740.0 * a + h2 * (-75.0 + 2145.0 * a + h2 * (-1.0 + 78.0 * a + a * h2)))))) * (
        1.0 / 6227020800.0)
    expansion = 2.0 * t * (a + w * (c1 + w * (c2 + w * (c3 + w * (c4 + w * (c5 + w * c6))))))
    return max(ONE_OVER_SQRT_TWO_PI * scale * expansion, 0.0)


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _in_asymptotic_region(h: float, t: float) -> bool:  # pragma: no cover - compiled
    """Jäckel's region 1: h < η and h + t < τ + η (η = −10, τ the small-t threshold)."""
    return h < ASYMPTOTIC_EXPANSION_THRESHOLD and h + t < SMALL_T_EXPANSION_THRESHOLD + ASYMPTOTIC_EXPANSION_THRESHOLD


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _erfcx_branch(h: float, t: float, scale: float, growth: float) -> tuple[float, float]:  # pragma: no cover
    """(g·Φ(h + t), Φ(h − t)/g) for g = e^(x/2) = e^(h·t), from erfcx at non-negative arguments only.

    Φ(h ± t) = ½·E·g^(∓1)·erfcx(−(h ± t)/√2) with E = exp(−(h² + t²)/2); where h + t > 0 the reflection
    erfcx(−z) = 2·exp(z²) − erfcx(z) gives g·Φ(h + t) = g − ½·E·erfcx((h + t)/√2).
    """
    lower = 0.5 * scale * erfcx_nonnegative(ONE_OVER_SQRT_TWO * (t - h))
    upper_argument = -ONE_OVER_SQRT_TWO * (h + t)
    scaled = 0.5 * scale * erfcx_nonnegative(abs(upper_argument))
    upper = scaled if upper_argument >= 0.0 else growth - scaled
    return upper, lower


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def normalised_black_otm(x: float, s: float) -> float:  # pragma: no cover - compiled
    """Normalised out-of-the-money Black call b(x, s) = e^(x/2)·Φ(x/s + s/2) − e^(−x/2)·Φ(x/s − s/2), x ≤ 0, s > 0.

    x = ln(F/K) ≤ 0 and s = σ√T; the undiscounted price is √(F·K)·b. Jäckel (2015), section 3: the asymptotic
    expansion for h = x/s < −10 (region 1), the small-t expansion for t = s/2 < τ (region 2), otherwise
    (regions 3 and 4) b = g·Φ(h + t) − Φ(h − t)/g from the scaled complementary error function, g = e^(x/2).
    """
    h = x / s
    t = 0.5 * s
    if _in_asymptotic_region(h, t):
        return float(_asymptotic_expansion_otm(h, t))
    scale = math.exp(-0.5 * (h * h + t * t))
    if t < SMALL_T_EXPANSION_THRESHOLD:
        return float(_small_t_expansion_otm(h, t, scale))
    upper, lower = _erfcx_branch(h, t, scale, math.exp(0.5 * x))
    return max(upper - lower, 0.0)


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def log_moneyness(forward: float, strike: float) -> float:  # pragma: no cover - compiled
    """x = ln(F/K) to an absolute error of about ε·|x|: ln(q) + r/F with q = F/K rounded and r = F − q·K exact."""
    quotient = forward / strike
    residual = fused_multiply_add(-quotient, strike, forward)
    return elementary.log(quotient) + residual / forward


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _invalid_code(forward: float, strike: float, years: float, volatility: float,
                  discount: float) -> int:  # pragma: no cover - compiled
    if not (0.0 < forward < math.inf):
        return INVALID_FORWARD
    if not (0.0 < strike < math.inf):
        return INVALID_STRIKE
    if not (-math.inf < years < math.inf):
        return INVALID_YEARS
    if not (0.0 <= volatility < math.inf):
        return INVALID_VOLATILITY
    if not (0.0 < discount < math.inf):
        return INVALID_DISCOUNT
    return 0


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def black76_one(
    F: float, K: float, T: float, sigma: float, call: bool, D: float, inverse: bool,
) -> tuple[float, float, float, float, float]:  # pragma: no cover - compiled
    """(price, delta, gamma, vega, theta) of one valid option by the branching formulas, in `Black76Result` units."""
    tau = max(T, 0.0)
    sqrt_tau = math.sqrt(tau)
    s = sigma * sqrt_tau
    intrinsic = max(F - K, 0.0) if call else max(K - F, 0.0)
    if s > 0.0:
        x = log_moneyness(F, K)
        root_fk = math.sqrt(F) * math.sqrt(K)
        b = normalised_black_otm(-abs(x), s)
        price = D * (intrinsic + root_fk * b)
        h = x / s
        t = 0.5 * s
        delta = D * norm_cdf(h + t) if call else -D * norm_cdf(-h - t)
        # F·φ(d1) = √(F·K)·exp(−(h² + t²)/2)/√(2π), symmetric in F and K.
        density = root_fk * ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + t * t))
        vega = D * density * sqrt_tau
        gamma = D * density / (F * F * s)
        theta = (-math.log(D) * price - 0.5 * sigma * vega) / tau
    else:
        price = D * intrinsic
        if F == K:
            delta = 0.5 * D if call else -0.5 * D
        elif call:
            delta = D if F > K else 0.0
        else:
            delta = -D if F < K else 0.0
        gamma = 0.0
        vega = 0.0
        theta = -math.log(D) * price / tau if tau > 0.0 else 0.0
    if inverse:
        price = price / F
        delta = delta - price
        gamma = (gamma - 2.0 * delta / F) / F
        vega = vega / F
        theta = theta / F
    return price, delta, gamma, vega, theta


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _black76_block(
    F: F64, K: F64, T: F64, sigma: F64, call: F64, D: F64, inverse: F64, count: int,
    price_out: F64, delta_out: F64, gamma_out: F64, vega_out: F64, theta_out: F64, redo: Bools,
) -> None:  # pragma: no cover - compiled
    """The vectorised pass over one block of `count` valid options, into block-sized buffers.

    Every option is computed by the branch-free formulas (the small-t expansion where t < τ, the erfcx form
    elsewhere, both evaluated and one selected); `redo` flags those it cannot serve: σ√T = 0 and Jäckel's
    region 1.
    """
    for j in range(count):
        forward = F[j]
        strike = K[j]
        discount = D[j]
        is_call = call[j] > 0.5
        tau = max(T[j], 0.0)
        sqrt_tau = math.sqrt(tau)
        s = sigma[j] * sqrt_tau
        live = s > 0.0
        s = s if live else 1.0
        tau = tau if live else 1.0
        x = log_moneyness(forward, strike)
        x_otm = -abs(x)
        h = x_otm / s
        t = 0.5 * s
        scale = elementary.exp(-0.5 * (h * h + t * t))
        growth = elementary.exp(0.5 * x_otm)
        upper, lower = _erfcx_branch(h, t, scale, growth)
        small = _small_t_expansion_otm(h, t, scale)
        b = small if t < SMALL_T_EXPANSION_THRESHOLD else max(upper - lower, 0.0)
        redo[j] = not live or _in_asymptotic_region(h, t)
        root_fk = math.sqrt(forward) * math.sqrt(strike)
        intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
        price = discount * (intrinsic + root_fk * b)
        # N(d1) and N(−d1): Φ(h + t) = upper/g for the out-of-the-money call (x ≤ 0), Φ(h − t) = lower·g.
        cdf_plus = upper / growth
        cdf_minus = lower * growth
        below = x <= 0.0
        cdf_d1 = cdf_plus if below else 1.0 - cdf_minus
        cdf_minus_d1 = 1.0 - cdf_plus if below else cdf_minus
        delta = discount * cdf_d1 if is_call else -discount * cdf_minus_d1
        density = root_fk * ONE_OVER_SQRT_TWO_PI * scale
        vega = discount * density * sqrt_tau
        gamma = discount * density / (forward * forward * s)
        theta = (-elementary.log(discount) * price - 0.5 * sigma[j] * vega) / tau
        if inverse[j] > 0.5:
            price = price / forward
            delta = delta - price
            gamma = (gamma - 2.0 * delta / forward) / forward
            vega = vega / forward
            theta = theta / forward
        price_out[j] = price
        delta_out[j] = delta
        gamma_out[j] = gamma
        vega_out[j] = vega
        theta_out[j] = theta


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _black76_kernel(
    forward: F64, forward_step: int, strike: F64, strike_step: int, years: F64, years_step: int,
    volatility: F64, volatility_step: int, is_call: Bools, call_step: int, discount: F64, discount_step: int,
    inverse: Bools, inverse_step: int, price_out: F64, delta_out: F64, gamma_out: F64, vega_out: F64,
    theta_out: F64, greeks: bool,
) -> tuple[int, int]:  # pragma: no cover - compiled
    """One pass over n options in blocks; returns (−1, 0) or the first invalid element and its bad field's code."""
    n = price_out.shape[0]
    inputs = np.empty((7, BLOCK))
    F, K, T, sigma, call, D, inverse_flags = inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], inputs[5], \
        inputs[6]
    results = np.empty((5, BLOCK))
    price, delta, gamma, vega, theta = results[0], results[1], results[2], results[3], results[4]
    redo = np.empty(BLOCK, dtype=np.bool_)
    for start in range(0, n, BLOCK):
        count = min(BLOCK, n - start)
        for j in range(count):
            i = start + j
            F[j] = forward[i * forward_step]
            K[j] = strike[i * strike_step]
            T[j] = years[i * years_step]
            sigma[j] = volatility[i * volatility_step]
            D[j] = discount[i * discount_step]
            call[j] = 1.0 if is_call[i * call_step] else 0.0
            inverse_flags[j] = 1.0 if inverse[i * inverse_step] else 0.0
        valid = 0
        for j in range(count):
            valid += ((0.0 < F[j] < math.inf) & (0.0 < K[j] < math.inf) & (-math.inf < T[j] < math.inf)
                      & (0.0 <= sigma[j] < math.inf) & (0.0 < D[j] < math.inf))
        if valid < count:
            for j in range(count):
                code = _invalid_code(F[j], K[j], T[j], sigma[j], D[j])
                if code != 0:
                    return start + j, code
        _black76_block(F, K, T, sigma, call, D, inverse_flags, count, price, delta, gamma, vega, theta, redo)
        for j in range(count):
            if redo[j]:
                price[j], delta[j], gamma[j], vega[j], theta[j] = black76_one(
                    F[j], K[j], T[j], sigma[j], call[j] > 0.5, D[j], inverse_flags[j] > 0.5)
        for j in range(count):
            price_out[start + j] = price[j]
        if greeks:
            for j in range(count):
                delta_out[start + j] = delta[j]
                gamma_out[start + j] = gamma[j]
                vega_out[start + j] = vega[j]
                theta_out[start + j] = theta[j]
    return -1, 0


def flat_operand(value: ArrayLike, shape: tuple[int, ...], dtype: type) -> tuple[NDArray[Any], int]:
    """A 1-D view of `value` broadcast to `shape` and its step: 0 for one repeated value, 1 for a full array."""
    array: NDArray[Any] = np.asarray(value, dtype=dtype)
    if array.size == 1:
        return array.reshape(1), 0
    if array.shape == shape:
        return np.ascontiguousarray(array).reshape(-1), 1
    return np.ascontiguousarray(np.broadcast_to(array, shape)).reshape(-1), 1


def _raise_invalid(function: str, index: int, code: int, shape: tuple[int, ...], values: dict[str, ArrayLike]) -> None:
    name, rule = INVALID_FIELDS[code]
    position = np.unravel_index(index, shape) if shape else ()
    value = np.broadcast_to(np.asarray(values[name], dtype=np.float64), shape)[position]
    where = f"[{', '.join(str(int(p)) for p in position)}]" if shape else ""
    raise ValueError(f"{function}: {name}{where} = {float(value)!r}: {rule}")


def _evaluate(
    function: str, forward: ArrayLike, strike: ArrayLike, years: ArrayLike, volatility: ArrayLike,
    is_call: ArrayLike, discount: ArrayLike, inverse: ArrayLike, greeks: bool,
) -> tuple[F64, F64, F64, F64, F64]:
    shape = np.broadcast_shapes(*(np.shape(v) for v in (forward, strike, years, volatility, is_call, discount,
                                                        inverse)))
    size = math.prod(shape)
    operands = [flat_operand(v, shape, np.float64) for v in (forward, strike, years, volatility)]
    calls = flat_operand(is_call, shape, np.bool_)
    discounts = flat_operand(discount, shape, np.float64)
    inverses = flat_operand(inverse, shape, np.bool_)
    price = np.empty(size)
    outputs = (np.empty(size), np.empty(size), np.empty(size), np.empty(size)) if greeks else (price,) * 4
    index, code = _black76_kernel(*operands[0], *operands[1], *operands[2], *operands[3], *calls, *discounts,
                                  *inverses, price, *outputs, greeks)
    if index >= 0:
        values = {"forward": forward, "strike": strike, "years": years, "volatility": volatility,
                  "discount": discount}
        _raise_invalid(function, index, code, shape, values)
    price_r, delta_r, gamma_r, vega_r, theta_r = (a.reshape(shape) for a in (price, *outputs))
    return price_r, delta_r, gamma_r, vega_r, theta_r


def black76_price(
    forward: ArrayLike, strike: ArrayLike, years: ArrayLike, volatility: ArrayLike, is_call: ArrayLike,
    discount: ArrayLike,
) -> F64:
    """Black-76 premium per unit of underlying, in the forward's currency, discounted by `discount`.

    call = D·(F·N(d1) − K·N(d2)), put = D·(K·N(−d2) − F·N(−d1)),
    d1 = (ln(F/K) + σ²T/2)/(σ√T), d2 = d1 − σ√T; at T ≤ 0 or σ = 0 the discounted intrinsic value.
    The out-of-the-money part keeps full relative accuracy far from the money (Jäckel 2015, "Let's Be
    Rational", normalised Black function). Raises ValueError, naming the element, for a forward, strike or
    discount that is not positive and finite, a negative or non-finite volatility or non-finite years.
    """
    price, *_ = _evaluate("black76_price", forward, strike, years, volatility, is_call, discount, False, False)
    return price


def black76_greeks(
    forward: ArrayLike, strike: ArrayLike, years: ArrayLike, volatility: ArrayLike, is_call: ArrayLike,
    discount: ArrayLike, *, inverse: ArrayLike = False,
) -> Black76Result:
    """Black-76 price, delta, gamma, vega (per 1.00 of vol) and theta (per year) of linear or coin-settled options.

    Arguments broadcast together; `inverse` marks coin-settled options (premium in coin, premium-adjusted
    delta as Deribit reports it, spec/book-format.md "Equity and currency"). Units and sign conventions are
    those of `Black76Result`; inputs are checked as in `black76_price`. Black (1976); Jäckel (2015) for the
    price far from the money.
    """
    price, delta, gamma, vega, theta = _evaluate("black76_greeks", forward, strike, years, volatility, is_call,
                                                 discount, inverse, True)
    return Black76Result(price=price, delta=delta, gamma=gamma, vega=vega, theta=theta)
