"""Backtesting statistics (validation/statistics.py) against the published vectors and hand arithmetic.

Vectors restated from shared/vectors/ccp-and-validation.json (`backtest.*`) and
shared/reference/risk-models.md, section "Backtesting".
"""

from __future__ import annotations

import math
from datetime import date

import pytest

from marginkit.validation import (
    by_year,
    christoffersen,
    kupiec,
    procyclicality,
    traffic_light,
    zone_thresholds,
)


@pytest.mark.parametrize(
    ("p", "expected_lr", "expected_p_value", "rejected"),
    [(0.05, 10.8123, 0.00101, True), (0.01, 0.09494, 0.758, False)],
)
def test_kupiec_3_exceptions_in_250_days(p: float, expected_lr: float, expected_p_value: float,
                                         rejected: bool) -> None:
    # Vector backtest.kupiec.3_in_250 (MathWorks proportionOfFailuresTest documentation, recomputed):
    # LR = −2[(250−3) ln(1−p) + 3 ln p] + 2[247 ln(247/250) + 3 ln(3/250)], χ²(1)
    # VaR 95 %: LR ≈ 10.8123, p-value ≈ 0.00101 (rejected at 5 %); VaR 99 %: LR ≈ 0.09494, p-value ≈ 0.758
    result = kupiec(250, 3, p)

    assert result.lr == pytest.approx(expected_lr, abs=1e-4)
    assert result.p_value == pytest.approx(expected_p_value, abs=1e-4 if p == 0.01 else 1e-5)
    assert result.reject is rejected
    assert (result.lr > 3.841) is rejected  # the 5 % critical value of χ²(1)


def test_kupiec_closed_form_and_zero_exceptions() -> None:
    # Arrange: 0 exceptions in 250 days at 99 %: p̂ = 0, 0·ln 0 = 0, so LR = −2·250·ln 0.99 = 5.025168
    # Act
    none = kupiec(250, 0, 0.01)
    three = kupiec(250, 3, 0.05)

    # Assert
    assert none.lr == pytest.approx(-2 * 250 * math.log(0.99), rel=1e-12)
    assert none.lr == pytest.approx(5.025168, abs=1e-6)
    by_hand = -2 * (247 * math.log(0.95) + 3 * math.log(0.05)) + 2 * (247 * math.log(247 / 250) + 3 * math.log(0.012))
    assert three.lr == pytest.approx(by_hand, rel=1e-12)


def test_basel_traffic_light_250_days_99_percent() -> None:
    # Vector backtest.traffic_light.basel_250_99 (BCBS 1996): green 0–4, yellow 5–9, red ≥ 10;
    # plus factors 0.40, 0.50, 0.65, 0.75, 0.85 for 5–9 exceptions, 1.00 from 10 (0 in green).
    # Binomial(250, 0.01) CDF: F(4) = 0.8922 ≤ 0.95 < F(5) = 0.9588; F(9) = 0.99975 ≤ 0.9999 < F(10) = 0.99995
    zones = {x: traffic_light(250, 0.01, x) for x in range(0, 13)}

    assert [x for x, z in zones.items() if z.zone == "green"] == [0, 1, 2, 3, 4]
    assert [x for x, z in zones.items() if z.zone == "yellow"] == [5, 6, 7, 8, 9]
    assert [x for x, z in zones.items() if z.zone == "red"] == [10, 11, 12]
    assert {x: zones[x].plus_factor for x in range(5, 10)} == {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}
    assert zones[10].plus_factor == 1.0 and zones[12].plus_factor == 1.0 and zones[4].plus_factor == 0.0
    assert zones[4].cumulative_probability == pytest.approx(0.8922, abs=1e-4)
    assert zones[5].cumulative_probability == pytest.approx(0.9588, abs=1e-4)


def test_traffic_light_general_rule_750_days_at_995() -> None:
    # Vector backtest.traffic_light.general_750_995: green while F(x) ≤ 0.95, yellow while F(x) ≤ 0.9999;
    # N = 750, p = 0.005 (expected 3.75 exceptions): yellow from 7, red from 13
    yellow_from, red_from = zone_thresholds(750, 0.005)

    assert (yellow_from, red_from) == (7, 13)
    assert traffic_light(750, 0.005, 6).zone == "green"
    assert traffic_light(750, 0.005, 7).zone == "yellow"
    assert traffic_light(750, 0.005, 12).zone == "yellow"
    assert traffic_light(750, 0.005, 13).zone == "red"
    assert traffic_light(750, 0.005, 13).plus_factor is None  # Basel's table is defined for 250 days only


def test_christoffersen_by_hand_on_a_clustered_sequence() -> None:
    # Arrange: 10 days, exceptions on days 4–6 (a cluster), p = 0.05
    hits = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    # transitions (9): 0→0, 0→0, 0→1, 1→1, 1→1, 1→0, 0→0, 0→0, 0→0
    # N00 = 5, N01 = 1, N10 = 1, N11 = 2; π01 = 1/6, π11 = 2/3, π = 3/9 = 1/3
    restricted = (5 + 1) * math.log(1 - 1 / 3) + (1 + 2) * math.log(1 / 3)  # = −5.728628
    unrestricted = 5 * math.log(5 / 6) + 1 * math.log(1 / 6) + 1 * math.log(1 / 3) + 2 * math.log(2 / 3)  # = −4.612910
    lr_ind = -2 * restricted + 2 * unrestricted  # = 11.457255 − 9.225820 = 2.231436
    # LR_POF over the 10 days: x = 3, p̂ = 0.3
    lr_pof = -2 * (7 * math.log(0.95) + 3 * math.log(0.05)) + 2 * (7 * math.log(0.7) + 3 * math.log(0.3))

    # Act
    result = christoffersen(hits, 0.05)

    # Assert
    assert (result.n00, result.n01, result.n10, result.n11) == (5, 1, 1, 2)
    assert (result.pi01, result.pi11, result.pi) == pytest.approx((1 / 6, 2 / 3, 1 / 3))
    assert result.lr_ind == pytest.approx(lr_ind, rel=1e-12)
    assert result.lr_ind == pytest.approx(2.231436, abs=1e-6)
    assert result.p_value_ind == pytest.approx(math.erfc(math.sqrt(lr_ind / 2)), rel=1e-9)  # χ²(1) survival
    assert result.lr_cc == pytest.approx(lr_pof + lr_ind, rel=1e-12)
    assert result.p_value_cc == pytest.approx(math.exp(-(lr_pof + lr_ind) / 2), rel=1e-9)  # χ²(2) survival


def test_christoffersen_independent_sequence_and_no_exceptions() -> None:
    # [0,0,1,1,0,0,0,1,0,0]: N00 = 4, N01 = 2, N10 = 2, N11 = 1 → π01 = π11 = π = 1/3 → LR_ind = 0
    spread = christoffersen([0, 0, 1, 1, 0, 0, 0, 1, 0, 0], 0.05)
    # no exceptions: N00 = 249, π = π01 = 0, every term 0·ln 0 or 249·ln 1 → LR_ind = 0; LR_cc = LR_POF
    calm = christoffersen([0] * 250, 0.01)

    assert spread.lr_ind == 0.0 and spread.p_value_ind == 1.0
    assert calm.lr_ind == 0.0
    assert calm.lr_cc == pytest.approx(-2 * 250 * math.log(0.99), rel=1e-12)


def test_procyclicality_by_hand() -> None:
    # Arrange: margin 100, 110, 99, 132, 120, 90, 95
    margin = [100.0, 110.0, 99.0, 132.0, 120.0, 90.0, 95.0]
    # peak 132, trough 90 → 132/90 = 1.466667
    # 1-day changes: +10 %, −10 %, +33.33 % (99 → 132), −9.09 %, −25 %, +5.56 % → largest 33.333 %
    # 2-day changes: −1 %, +20 % (110 → 132), +21.21 % (99 → 120), −31.8 %, −20.8 % → largest 21.2121 %

    # Act
    result = procyclicality(margin, horizons=(1, 2, 30))

    # Assert
    assert result.peak_to_trough == pytest.approx(132 / 90)
    assert result.largest_increase_pct[1] == pytest.approx(100 * 33 / 99)
    assert result.largest_increase_pct[2] == pytest.approx(100 * 21 / 99)
    assert result.largest_increase_pct[30] is None  # longer than the series


def test_by_year_counts_and_zones() -> None:
    # 3 days in 2008 with 2 exceptions, 2 days in 2009 with none; p = 0.01
    dates = [date(2008, 12, 29), date(2008, 12, 30), date(2008, 12, 31), date(2009, 1, 2), date(2009, 1, 5)]
    hits = [True, False, True, False, False]

    result = by_year(dates, hits, 0.01)

    assert result["2008"]["days"] == 3 and result["2008"]["exceptions"] == 2
    assert result["2008"]["coverage"] == pytest.approx(1 / 3)
    # Binomial(3, 0.01): F(2) = 1 − 0.01³ = 0.999999 > 0.9999 → red
    assert result["2008"]["zone"] == "red"
    assert result["2009"] == {"days": 2, "exceptions": 0, "expected_exceptions": 0.02, "coverage": 1.0,
                              "zone": "green"}
