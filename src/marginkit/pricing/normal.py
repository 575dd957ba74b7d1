"""Compiled scalar normal-distribution functions for the pricing kernels (Cody 1969, Wichura 1988).

`erfcx_nonnegative` follows W. J. Cody, "Rational Chebyshev approximations for the error function",
Math. Comp. 23 (1969) 631–638, with the coefficients of his CALERF routine (netlib SPECFUN);
`inverse_norm_cdf` is M. J. Wichura's algorithm AS 241 (PPND16), Applied Statistics 37 (1988) 477–484;
`norm_cdf` is the C library's erfc. All are accurate to a few units in the last place of float64. They are
`numba` functions meant to be called from other compiled kernels (they also run from Python, one scalar
at a time).
"""

from __future__ import annotations

import math

from numba import njit

from marginkit.pricing import elementary

ONE_OVER_SQRT_TWO = 0.7071067811865475244008443621048490
ONE_OVER_SQRT_TWO_PI = 0.3989422804014326779399460599343819
ONE_OVER_SQRT_PI = 0.5641895835477562869480794515607726


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def norm_cdf(z: float) -> float:  # pragma: no cover - compiled
    """Standard normal distribution function Φ(z) = erfc(−z/√2)/2, relative accuracy kept in the lower tail."""
    return 0.5 * math.erfc(-z * ONE_OVER_SQRT_TWO)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def inverse_norm_cdf(p: float) -> float:  # pragma: no cover - compiled
    """Standard normal quantile Φ⁻¹(p) for 0 < p < 1, −inf at 0 and +inf at 1 (Wichura 1988, AS 241 PPND16)."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        numerator = (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r
                         + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r
                      + 133.14166789178437745) * r + 3.387132872796366608)
        denominator = (((((((5226.495278852545925 * r + 28729.085735721942674) * r + 39307.89580009271061) * r
                           + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r
                        + 42.313330701600911252) * r + 1.0)
        return q * numerator / denominator
    r = p if q < 0.0 else 1.0 - p
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r -= 1.6
        numerator = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r
                          + 0.24178072517745061177) * r + 1.27045825245236838258) * r + 3.64784832476320460504) * r
                       + 5.7694972214606914055) * r + 4.6303378461565452959) * r + 1.42343711074968357734)
        denominator = (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r
                            + 0.0151986665636164571966) * r + 0.14810397642748007459) * r
                          + 0.68976733498510000455) * r + 1.6763848301838038494) * r
                        + 2.05319162663775882187) * r + 1.0)
    else:
        r -= 5.0
        numerator = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                          + 0.0012426609473880784386) * r + 0.026532189526576123093) * r
                        + 0.29656057182850489123) * r + 1.7848265399172913358) * r + 5.4637849111641143699) * r
                     + 6.6579046435011037772)
        denominator = (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r
                            + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r
                          + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
                        + 0.59983220655588793769) * r + 1.0)
    value = numerator / denominator
    return -value if q < 0.0 else value


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def erfcx_nonnegative(y: float) -> float:  # pragma: no cover - compiled
    """exp(y²)·erfc(y) for y ≥ 0 without branches (Cody 1969), so that loops calling it vectorise.

    Cody's three rational approximations (y ≤ 0.46875, y ≤ 4, y > 4) are all evaluated and one is selected;
    the first multiplies by exp(y²) through the branch-free `elementary.exp`.
    """
    ysq = y * y
    numerator = ((((0.185777706184603153 * ysq + 3.1611237438705656) * ysq + 113.864154151050156) * ysq
                  + 377.485237685302021) * ysq + 3209.37758913846947)
    denominator = (((ysq + 23.6012909523441209) * ysq + 244.024637934444173) * ysq
                   + 1282.61652607737228) * ysq + 2844.23683343917062
    small = (1.0 - y * numerator / denominator) * elementary.exp(ysq)
    numerator = (((((((2.15311535474403846e-8 * y + 0.564188496988670089) * y + 8.88314979438837594) * y
                     + 66.1191906371416295) * y + 298.635138197400131) * y + 881.95222124176909) * y
                  + 1712.04761263407058) * y + 2051.07837782607147) * y + 1230.33935479799725
    denominator = (((((((y + 15.7449261107098347) * y + 117.693950891312499) * y + 537.181101862009858) * y
                      + 1621.38957456669019) * y + 3290.79923573345963) * y + 4362.61909014324716) * y
                   + 3439.36767414372164) * y + 1230.33935480374942
    middle = numerator / denominator
    z = 1.0 / max(ysq, 16.0)
    numerator = (((((0.0163153871373020978 * z + 0.305326634961232344) * z + 0.360344899949804439) * z
                   + 0.125781726111229246) * z + 0.0160837851487422766) * z + 6.58749161529837803e-4)
    denominator = ((((z + 2.56852019228982242) * z + 1.87295284992346047) * z
                    + 0.527905102951428412) * z + 0.0605183413124413191) * z + 0.00233520497626869185
    large = (ONE_OVER_SQRT_PI - z * numerator / denominator) * math.sqrt(z)
    return small if y <= 0.46875 else (middle if y <= 4.0 else large)
