"""Branch-free exp and log for compiled kernels, so that LLVM can vectorise the loops that call them.

`math.exp` and `math.log` are calls into the C library, which stop a loop from being vectorised; these are
plain arithmetic on the float's bits (Cody–Waite argument reduction and a polynomial, as in Muller,
"Elementary Functions: Algorithms and Implementation", 3rd ed. 2016, chapters 11 and 12), accurate to
about one unit in the last place over the whole double range they are used on, tested against mpmath.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from llvmlite import ir
from numba import njit, types
from numba.core.base import BaseContext
from numba.core.typing.templates import Signature
from numba.extending import intrinsic

LOG2_E = 1.4426950408889634074
# ln 2 split so that k·LN2_HIGH is exact for |k| < 2^20 (LN2_HIGH has 32 significant bits).
LN2_HIGH = 0.693147180369123816490
LN2_LOW = 1.90821492927058770002e-10
ROUNDING_SHIFTER = 6755399441055744.0  # 1.5·2^52: x + it − it rounds x to an integer
SQRT_TWO = 1.4142135623730950488
MANTISSA_MASK = 0x000FFFFFFFFFFFFF
EXPONENT_OF_ONE = 0x3FF0000000000000
# The intrinsics below are exported under public names cast to the scalar call they compile to, for mypy.


@intrinsic
def _fused_multiply_add(typing_context: object, a: types.Float, b: types.Float,
                       c: types.Float) -> tuple[Signature, object]:  # pragma: no cover - compiled
    """a·b + c rounded once (LLVM's fma), for exact residuals inside compiled kernels."""
    signature = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: BaseContext, builder: ir.IRBuilder, signature: Signature,
                arguments: list[ir.Value]) -> ir.Value:
        double = ir.DoubleType()
        function = builder.module.declare_intrinsic("llvm.fma", [double], ir.FunctionType(double, [double] * 3))
        return builder.call(function, arguments)

    return signature, codegen


fused_multiply_add = cast(Callable[[float, float, float], float], _fused_multiply_add)


@intrinsic
def _float_from_bits(typing_context: object, bits: types.Integer) -> tuple[Signature, object]:  # pragma: no cover
    """The float64 whose IEEE-754 bit pattern is the int64 `bits`."""
    signature = types.float64(types.int64)

    def codegen(context: BaseContext, builder: ir.IRBuilder, signature: Signature,
                arguments: list[ir.Value]) -> ir.Value:
        return builder.bitcast(arguments[0], ir.DoubleType())

    return signature, codegen


float_from_bits = cast(Callable[[int], float], _float_from_bits)


@intrinsic
def _bits_from_float(typing_context: object, value: types.Float) -> tuple[Signature, object]:  # pragma: no cover
    """The IEEE-754 bit pattern of the float64 `value` as an int64."""
    signature = types.int64(types.float64)

    def codegen(context: BaseContext, builder: ir.IRBuilder, signature: Signature,
                arguments: list[ir.Value]) -> ir.Value:
        return builder.bitcast(arguments[0], ir.IntType(64))

    return signature, codegen


bits_from_float = cast(Callable[[float], int], _bits_from_float)


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def exp(x: float) -> float:  # pragma: no cover - compiled
    """e^x for finite x: 0 below −745.2, inf above 709.8, within one ulp elsewhere (subnormal results included).

    x = k·ln 2 + r with |r| ≤ ln 2/2 (Cody–Waite, two-part ln 2); e^r by its Taylor polynomial of degree 13
    (truncation below 2^−60); 2^k applied as two exact powers of two so that subnormal results come out right.
    """
    x = min(max(x, -746.0), 710.0)
    k = (x * LOG2_E + ROUNDING_SHIFTER) - ROUNDING_SHIFTER
    r = (x - k * LN2_HIGH) - k * LN2_LOW
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    power = int(k)
    first = power >> 1
    second = power - first
    return p * float_from_bits((first + 1023) << 52) * float_from_bits((second + 1023) << 52)


@njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def log(x: float) -> float:  # pragma: no cover - compiled
    """ln x for positive normal x (no subnormal, zero, negative or non-finite input), within about one ulp.

    x = 2^e·m with √½ ≤ m < √2; ln m = 2·atanh(f), f = (m − 1)/(m + 1), |f| ≤ 0.172, by its odd series to
    f^23, arranged so that the exact m − 1 leads; ln x = e·ln 2 (two-part) + ln m.
    """
    bits = bits_from_float(x)
    exponent = (bits >> 52) - 1023
    mantissa = float_from_bits((bits & MANTISSA_MASK) | EXPONENT_OF_ONE)
    if mantissa > SQRT_TWO:
        mantissa *= 0.5
        exponent += 1
    u = mantissa - 1.0  # exact
    f = u / (2.0 + u)
    f2 = f * f
    p = 1.0 / 23.0
    p = p * f2 + 1.0 / 21.0
    p = p * f2 + 1.0 / 19.0
    p = p * f2 + 1.0 / 17.0
    p = p * f2 + 1.0 / 15.0
    p = p * f2 + 1.0 / 13.0
    p = p * f2 + 1.0 / 11.0
    p = p * f2 + 1.0 / 9.0
    p = p * f2 + 1.0 / 7.0
    p = p * f2 + 1.0 / 5.0
    p = p * f2 + 1.0 / 3.0
    # 2·atanh(f) = 2f + 2f³·p and 2f = u − f·u, so ln m = u − f·(u − 2f²·p): the exact u leads.
    logarithm_of_mantissa = u - f * (u - 2.0 * f2 * p)
    k = float(exponent)
    return k * LN2_HIGH + (k * LN2_LOW + logarithm_of_mantissa)
