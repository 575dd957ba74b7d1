"""var: historical and filtered-historical VaR/ES, parametric, MPOR, APC tools and add-ons (models/var.py).

Method: shared/reference/risk-models.md; the conventions are in models/var.py's docstring. Every expected
value's arithmetic is in the comments.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marginkit.book import Book, resolve
from marginkit.errors import InputError, ModelRefusal
from marginkit.io.book_file import parse_book
from marginkit.io.market_history import MarketHistory, build_history, sample_sp500_vix
from marginkit.io.profile_file import Profile, parse_profile
from marginkit.models import DEFAULT_PROFILES, MODELS
from marginkit.models.var import (
    apply_buffer,
    ewma_filter,
    horizon_changes,
    instrument_pnl,
    margin,
    needed_losses,
    risk_factors,
    tail_measures,
)
from marginkit.models.var_parameters import parse_var_parameters
from marginkit.profiles import shipped_profile
from marginkit.scenarios import group_positions, tail_statistics

AS_OF = "2024-03-01T00:00:00Z"
# Ten daily relative returns; with a future of size 1 at mark 100, the loss is −100·r:
RETURNS = [-0.10, 0.05, -0.02, 0.03, -0.07, 0.01, 0.0, -0.04, 0.02, 0.06]
# losses: 10, −5, 2, −3, 7, −1, 0, 4, −2, −6 → sorted descending 10, 7, 4, 2, 0, −1, −2, −3, −5, −6


def history_of(returns: list[float], start: float = 100.0, **extra: np.ndarray) -> MarketHistory:
    levels = start * np.cumprod(np.concatenate([[1.0], 1.0 + np.array(returns)]))
    dates = np.busday_offset(np.datetime64("2024-01-01"), np.arange(levels.size), roll="forward")
    columns = {"price.X": levels, **{name: np.asarray(v, dtype=np.float64) for name, v in extra.items()}}
    return build_history(dates.astype("datetime64[D]"), columns, source="test")


def future(identifier: str = "XF", size: float = 1.0, underlying: str = "X") -> dict[str, Any]:
    return {"id": identifier, "type": "future", "underlying": underlying, "quote": "USD", "settlement": "USD",
            "inverse": False, "contract_size": size, "expiry": "2024-06-01T00:00:00Z"}


def option(identifier: str = "XC", strike: float = 100.0, kind: str = "call") -> dict[str, Any]:
    return {"id": identifier, "type": "option", "option_type": kind, "strike": strike,
            "expiry": "2024-06-01T00:00:00Z", "underlying": "X", "quote": "USD", "settlement": "USD",
            "inverse": False, "contract_size": 1.0}


def make_book(instruments: list[dict[str, Any]], accounts: list[list[tuple[str, float]]],
              index: dict[str, float] | None = None, vols: dict[str, float] | None = None) -> Book:
    market: dict[str, Any] = {"index": index or {"X": 100.0}}
    if vols:
        market["vols"] = vols
    rows = [{"id": f"a{k}", "mode": "cross", "collateral": {"USD": 1e6},
             "positions": [{"instrument": i, "quantity": q, "entry_price": 100.0} for i, q in positions]}
            for k, positions in enumerate(accounts)]
    return resolve(parse_book({"as_of": AS_OF, "instruments": instruments, "market": market, "accounts": rows}))


def var_profile(**parameters: Any) -> Profile:
    base = {"method": "historical", "margin_period_days": 1, "price_returns": "relative", "minimum_scenarios": 1}
    return parse_profile({"model": "var", "name": "test", "version": "t", "source": "written for this test",
                          "parameters": {**base, **parameters}})


# ---------------------------------------------------------------------------------------------- conventions


def test_historical_var_and_es_by_hand() -> None:
    # Arrange: one long future, size 1, mark 100; 10 scenarios; α = 0.8 → n = 10 × 0.2 = 2, ⌈n⌉ = 2.
    book = make_book([future()], [[("XF", 1.0)]])

    # Act
    var = margin(book, var_profile(confidence=0.8, measure="var"), history=history_of(RETURNS))
    es = margin(book, var_profile(confidence=0.8, measure="es"), history=history_of(RETURNS))

    # Assert: VaR = 2nd largest loss = 7; ES = (10 + 7) / 2 = 8.5
    assert var.initial_margin[0] == pytest.approx(7.0)
    assert es.initial_margin[0] == pytest.approx(8.5)
    assert var.components["scenario_count"][0] == 10
    assert var.components["worst_loss"][0] == pytest.approx(10.0)
    # the worst loss is the first return (−10 %), dated the second history date, 2024-01-02
    assert var.explanations is not None and var.explanations[0]["worst_scenario_date"] == "2024-01-02"
    assert var.maintenance_margin[0] == var.initial_margin[0]


def test_conventions_at_a_fractional_tail() -> None:
    # Arrange: losses sorted descending 10, 7, 4, 2, 0, −1, −2, −3, −5, −6; α = 0.75 → n = 2.5, ⌈n⌉ = 3.
    losses = np.array([[10.0, 7.0, 4.0, 2.0, 0.0, -1.0, -2.0, -3.0, -5.0, -6.0]])

    # Act
    var_ceiling, es_mean = tail_measures(losses, 10, 0.75)
    var_interpolated, es_acerbi = tail_measures(losses, 10, 0.75, "interpolated", "acerbi_tasche")

    # Assert: ceiling VaR = L(3) = 4; tail mean (10 + 7 + 4) / 3 = 7;
    # interpolated = numpy's quantile: rank n + α = 3.25 → 4 + 0.25·(2 − 4) = 3.5;
    # Acerbi–Tasche (10 + 7 + 0.5·4) / 2.5 = 19 / 2.5 = 7.6
    assert var_ceiling[0] == 4.0 and es_mean[0] == pytest.approx(7.0)
    assert var_interpolated[0] == pytest.approx(3.5) == np.quantile(losses[0], 0.75)
    assert es_acerbi[0] == pytest.approx(7.6)
    assert needed_losses(10, 0.75) == 4  # ⌊n + α⌋ + 1 = ⌊3.25⌋ + 1


def test_tail_statistics_matches_a_full_sort() -> None:
    # Arrange: 50 groups of random positions over 20 instruments and 333 scenarios
    rng = np.random.default_rng(7)
    pnl = rng.normal(size=(20, 333))
    group = rng.integers(0, 50, 200)
    grouped = group_positions(group, rng.integers(0, 20, 200), rng.normal(size=200), 50)

    # Act
    tail = tail_statistics(grouped, pnl, 12)

    # Assert: the 12 largest of −Σ q·pnl per group, descending, with their scenario indices
    full = np.zeros((50, 333))
    np.add.at(full, group[grouped.order], grouped.quantity[:, None] * pnl[grouped.instrument])
    losses = -full
    expected = -np.sort(-losses, axis=1)[:, :12]
    np.testing.assert_allclose(tail.losses, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.take_along_axis(losses, tail.scenarios, axis=1), tail.losses)


def test_tail_statistics_ties_keep_the_lowest_scenario_and_empty_groups_are_zero() -> None:
    grouped = group_positions(np.array([0]), np.array([0]), np.array([1.0]), 2)
    tail = tail_statistics(grouped, np.array([[-1.0, -3.0, -3.0, 0.0]]), 2)
    # losses 1, 3, 3, 0 → 3 (scenario 1), 3 (scenario 2); the second group holds nothing
    assert tail.losses.tolist() == [[3.0, 3.0], [0.0, 0.0]]
    assert tail.scenarios[0].tolist() == [1, 2] and tail.worst_scenario.tolist() == [1, 0]
    with pytest.raises(InputError, match="between 1"):
        tail_statistics(grouped, np.array([[1.0]]), 2)


# ---------------------------------------------------------------------------------------------- scenarios


def test_filtered_historical_rescaling_by_hand() -> None:
    # Arrange: r = 0.01, −0.02, 0.03; λ = 0.5
    r = np.array([0.01, -0.02, 0.03])

    # Act
    filtered = ewma_filter(r, 0.5)

    # Assert: σ²_1 = mean r² = (0.0001 + 0.0004 + 0.0009)/3 = 0.000466667
    # σ²_2 = 0.5·0.000466667 + 0.5·0.0001 = 0.000283333; σ²_3 = 0.5·0.000283333 + 0.5·0.0004 = 0.000341667
    # σ²_4 (today) = 0.5·0.000341667 + 0.5·0.0009 = 0.000620833; r̃_t = r_t·σ_4/σ_t
    s1, s2, s3, s4 = 0.0014 / 3, 0.00085 / 3, 0.00205 / 6, 0.003725 / 6
    expected = [0.01 * math.sqrt(s4 / s1), -0.02 * math.sqrt(s4 / s2), 0.03 * math.sqrt(s4 / s3)]
    np.testing.assert_allclose(filtered, expected, rtol=1e-12)


def test_margin_period_overlapping_versus_square_root() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.04])
    # overlapping 2-day sums: 0.01 − 0.02, −0.02 + 0.03, 0.03 + 0.04
    np.testing.assert_allclose(horizon_changes(r, 2, "overlapping", False), [-0.01, 0.01, 0.07])
    # compounded relative returns: 1.01·0.98 − 1 = −0.0102, 0.98·1.03 − 1 = 0.0094, 1.03·1.04 − 1 = 0.0712
    np.testing.assert_allclose(horizon_changes(r, 2, "overlapping", True), [-0.0102, 0.0094, 0.0712])
    # √t: each 1-day change × √2
    np.testing.assert_allclose(horizon_changes(r, 2, "square_root", False), r * math.sqrt(2))


def test_two_day_overlapping_margin_by_hand() -> None:
    # Arrange: 2-day compounded relative returns of RETURNS (9 scenarios), α = 0.8 → n = 1.8, ⌈n⌉ = 2
    book = make_book([future()], [[("XF", 1.0)]])
    profile = var_profile(confidence=0.8, margin_period_days=2)

    # Act
    result = margin(book, profile, history=history_of(RETURNS))

    # Assert: 2-day returns 0.9·1.05 − 1 = −0.055, 1.05·0.98 − 1 = 0.029, 0.98·1.03 − 1 = 0.0094,
    # 1.03·0.93 − 1 = −0.0421, 0.93·1.01 − 1 = −0.0607, 1.01·1 − 1 = 0.01, 1·0.96 − 1 = −0.04,
    # 0.96·1.02 − 1 = −0.0208, 1.02·1.06 − 1 = 0.0812 → losses ×100: 6.07, 5.5, 4.21, … → VaR = 5.5
    assert result.components["scenario_count"][0] == 9
    assert result.initial_margin[0] == pytest.approx(5.5)


def test_options_are_fully_revalued_under_joint_price_and_vol_moves() -> None:
    # Arrange: a call at K 100, σ 0.2 and a vol history whose log change is ln(0.25/0.2)
    book = make_book([option()], [[("XC", 1.0)]], vols={"XC": 0.2})
    history = history_of([0.05], **{"vol.X": np.array([0.2, 0.25])})
    parameters = parse_var_parameters(var_profile())
    factors = risk_factors(book, history, parameters)
    changes = np.array([[0.05], [math.log(0.25 / 0.2)]])  # relative price move, log vol move

    # Act
    pnl = instrument_pnl(book, factors, changes, parameters)

    # Assert: Black-76 at F = 105, σ = 0.2·e^{ln 1.25} = 0.25 minus at F = 100, σ = 0.2 (same expiry, no rates)
    years = float(book.years[0])
    assert pnl[0, 0] == pytest.approx(black(105.0, 100.0, years, 0.25) - black(100.0, 100.0, years, 0.2), rel=1e-9)


def black(forward: float, strike: float, years: float, sigma: float) -> float:
    """Undiscounted Black-76 call, written out independently of marginkit.pricing."""
    s = sigma * math.sqrt(years)
    d1 = (math.log(forward / strike) + 0.5 * s * s) / s
    cdf = NormalDist().cdf
    return forward * cdf(d1) - strike * cdf(d1 - s)


def test_delta_normal_by_hand() -> None:
    # Arrange: long 2 futures of size 1 at 100 on X; 10 relative returns; h = 2 (√t)
    book = make_book([future()], [[("XF", 2.0)]])
    profile = var_profile(method="delta_normal", confidence=0.99, margin_period_days=2)

    # Act
    result = margin(book, profile, history=history_of(RETURNS))

    # Assert: δ = 2·100 = 200 per unit return; Σ = mean r² × 2 = (Σ r² / 10)·2
    # Σ r² = 0.01 + 0.0025 + 0.0004 + 0.0009 + 0.0049 + 0.0001 + 0 + 0.0016 + 0.0004 + 0.0036 = 0.0244
    # VaR = z_0.99 · 200 · √(0.00244·2) = 2.3263 · 200 · 0.069857 = 32.50
    expected = NormalDist().inv_cdf(0.99) * 200.0 * math.sqrt(0.0244 / 10 * 2)
    assert result.initial_margin[0] == pytest.approx(expected, rel=1e-9)


def test_delta_gamma_vega_reduces_to_delta_normal_without_options() -> None:
    # Relative returns give a future no gamma, so Cornish-Fisher with zero skew and kurtosis is the normal
    book = make_book([future()], [[("XF", -3.0)]])
    normal = margin(book, var_profile(method="delta_normal"), history=history_of(RETURNS))
    cornish = margin(book, var_profile(method="delta_gamma_vega"), history=history_of(RETURNS))
    assert cornish.initial_margin[0] == pytest.approx(normal.initial_margin[0], rel=1e-9)


def test_delta_gamma_vega_charges_a_short_option_more_than_delta_normal() -> None:
    # A short at-the-money call: negative gamma fattens the loss tail, Cornish-Fisher VaR > delta-normal VaR
    book = make_book([option()], [[("XC", -1.0)]], vols={"XC": 0.2})
    vol = {"vol.X": np.full(len(RETURNS) + 1, 0.2)}
    normal = margin(book, var_profile(method="delta_normal"), history=history_of(RETURNS, **vol))
    cornish = margin(book, var_profile(method="delta_gamma_vega"), history=history_of(RETURNS, **vol))
    assert cornish.initial_margin[0] > normal.initial_margin[0] > 0


# ---------------------------------------------------------------------------------------------- APC and add-ons


def test_apc_buffer_by_hand() -> None:
    calculated = np.array([100.0, 100.0, 100.0, 80.0])
    previous = np.array([90.0, 70.0, 100.0, 100.0])
    # no previous margin: 1.25 × 100 = 125
    assert apply_buffer(calculated[:1], 0.25).tolist() == [125.0]
    # max(C, 1.25·min(C, P)): max(100, 112.5) = 112.5 (rise absorbed); max(100, 87.5) = 100 (buffer used up);
    # max(100, 125) = 125; falling to 80: max(80, 100) = 100
    assert apply_buffer(calculated, 0.25, previous).tolist() == [112.5, 100.0, 125.0, 100.0]


def test_stressed_weight_and_ten_year_floor() -> None:
    # Arrange: a calm recent period (±1 %) after a stressed one (RETURNS, days 1–10), α = 0.8
    returns = RETURNS + [0.01, -0.01] * 10
    book = make_book([future()], [[("XF", 1.0)]])
    stressed = var_profile(confidence=0.8, lookback_days=20,
                           apc={"stressed_weight": 0.25,
                                "stressed_period": {"start": "2024-01-01", "end": "2024-01-15"}})
    floored = var_profile(confidence=0.8, lookback_days=20, apc={"floor_lookback_years": 10})

    # Act
    with_stress = margin(book, stressed, history=history_of(returns))
    with_floor = margin(book, floored, history=history_of(returns))

    # Assert: base: 20 scenarios of losses ±1 (the price moves ±1 % from ~ 93.2 → loss = mark 100 × 1 %);
    # n = 4 → VaR = 1. Stressed: RETURNS' 10 scenarios, n = 2 → 7; calculated = 0.75·1 + 0.25·7 = 2.5.
    assert with_stress.components["measure"][0] == pytest.approx(1.0)
    assert with_stress.components["stressed_measure"][0] == pytest.approx(7.0)
    assert with_stress.initial_margin[0] == pytest.approx(2.5)
    # Floor: all 30 returns (less than 10 years), n = 6 → losses 10, 7, 4, 2, then ten 1s → VaR = 1 … the
    # 6th largest is 1; the floor is 1 and the margin max(1, 1) = 1, over 30 days of lookback
    assert with_floor.components["floor_lookback_days"][0] == 30
    assert with_floor.components["floor_measure"][0] == pytest.approx(1.0)
    assert with_floor.initial_margin[0] >= with_floor.components["floor_measure"][0]


def test_liquidity_and_concentration_add_ons_by_hand() -> None:
    # Arrange: 25 futures of size 10 at 100; spread 0.4; volume 100 a day; threshold 10 % of ADV = 10
    book = make_book([future(size=10.0)], [[("XF", 25.0)]])
    history = history_of(RETURNS, **{"spread.XF": np.full(11, 0.4), "volume.XF": np.full(11, 100.0)})
    profile = var_profile(confidence=0.8, liquidity={"spread_fraction": 0.5},
                          concentration={"adv_fraction": 0.1, "rate": 0.05})

    # Act
    result = margin(book, profile, history=history)

    # Assert: liquidity ½ · 0.4 · 25 · 10 = 50; concentration 0.05 · (25 − 10) · 10 · 100 = 750;
    # VaR = 7 per contract unit × 25 × 10 = 1750; IM = 1750 + 50 + 750 = 2550
    assert result.components["liquidity_add_on"][0] == pytest.approx(50.0)
    assert result.components["concentration_add_on"][0] == pytest.approx(750.0)
    assert result.initial_margin[0] == pytest.approx(2550.0)


# ---------------------------------------------------------------------------------------------- refusals, registry


def test_without_history_the_model_refuses_naming_history() -> None:
    book = make_book([future()], [[("XF", 1.0)]])
    with pytest.raises(ModelRefusal) as raised:
        MODELS["var"](book, var_profile())
    assert raised.value.field == "--history"


def test_profile_may_name_a_history_file(tmp_path: Any) -> None:
    path = tmp_path / "h.csv"
    history = history_of(RETURNS)
    path.write_text("date,price.X\n" + "".join(f"{d},{float(p)!r}\n" for d, p in zip(history.dates, history.prices["X"],
                                                                              strict=True)))
    book = make_book([future()], [[("XF", 1.0)]])
    result = margin(book, var_profile(confidence=0.8, history=str(path)))
    assert result.initial_margin[0] == pytest.approx(7.0)


def test_an_underlying_missing_from_history_is_refused_naming_the_position() -> None:
    book = make_book([future(underlying="Y")], [[("XF", 1.0)]], index={"Y": 100.0})
    with pytest.raises(ModelRefusal, match="price series") as raised:
        margin(book, var_profile(), history=history_of(RETURNS))
    assert raised.value.field == "accounts[0].positions[0]"


def test_registered_with_shipped_profiles_that_cite_sources() -> None:
    assert MODELS["var"] is margin and DEFAULT_PROFILES["var"] == "historical-var-99"
    for name in ("historical-var-99", "occ-stans-es", "eurex-prisma-fhs"):
        profile = shipped_profile(name)
        parse_var_parameters(profile)
        assert profile.model == "var" and "risk-models.md" in profile.source


def test_shipped_profiles_margin_spx_options_on_the_arch_sample() -> None:
    # Arrange: SPX future and a short put at the end of the arch sample (2018-12-31), VIX moving the put's vol
    instruments = [future("SPXF", 50.0, "SPX"),
                   {**option("SPXP", 2400.0, "put"), "underlying": "SPX", "contract_size": 100.0}]
    spec = {"as_of": "2018-12-31T21:00:00Z", "instruments": instruments,
            "market": {"index": {"SPX": 2506.85}, "vols": {"SPXP": 0.25}},
            "accounts": [{"id": "a", "mode": "cross", "collateral": {"USD": 1e6},
                          "positions": [{"instrument": "SPXF", "quantity": 1.0, "entry_price": 2500.0},
                                        {"instrument": "SPXP", "quantity": -2.0, "entry_price": 50.0}]}]}
    for item in spec["instruments"]:
        item["expiry"] = "2019-03-15T21:00:00Z"
    book = resolve(parse_book(spec))
    history = sample_sp500_vix()

    # Act
    results = {name: margin(book, shipped_profile(name), history=history)
               for name in ("historical-var-99", "occ-stans-es", "eurex-prisma-fhs")}

    # Assert: finite, positive; ES ≥ VaR in each; STANS's ES with its 25 % buffer above plain HS VaR
    for result in results.values():
        assert np.isfinite(result.initial_margin).all() and result.initial_margin[0] > 0
        assert result.components["es"][0] >= result.components["var"][0]
    assert results["occ-stans-es"].initial_margin[0] > results["historical-var-99"].initial_margin[0]
    assert results["eurex-prisma-fhs"].initial_margin[0] >= results["eurex-prisma-fhs"].components[
        "floor_measure"][0]


# ---------------------------------------------------------------------------------------------- properties

losses_strategy = st.integers(min_value=1, max_value=400).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n, max_size=n)))
levels = st.floats(min_value=0.51, max_value=0.999)
conventions = st.sampled_from([("ceiling", "tail_mean"), ("interpolated", "acerbi_tasche"),
                               ("ceiling", "acerbi_tasche"), ("interpolated", "tail_mean")])


@settings(max_examples=200, deadline=None)
@given(losses_strategy, levels, conventions)
def test_es_is_at_least_var_at_the_same_level(data: tuple[int, list[float]], alpha: float,
                                              convention: tuple[str, str]) -> None:
    n, values = data
    losses = -np.sort(-np.array(values))[None, :]
    var, es = tail_measures(losses, n, alpha, *convention)
    assert es[0] >= var[0] - 1e-9 * max(1.0, abs(var[0]))


@settings(max_examples=200, deadline=None)
@given(losses_strategy, levels, levels, st.sampled_from(["ceiling", "interpolated"]))
def test_var_grows_with_the_confidence_level(data: tuple[int, list[float]], a: float, b: float,
                                             quantile: str) -> None:
    n, values = data
    low, high = min(a, b), max(a, b)
    losses = -np.sort(-np.array(values))[None, :]
    var_low, es_low = tail_measures(losses, n, low, quantile)
    var_high, es_high = tail_measures(losses, n, high, quantile)
    assert var_high[0] >= var_low[0] - 1e-9 * max(1.0, abs(var_low[0]))
    assert es_high[0] >= es_low[0] - 1e-9 * max(1.0, abs(es_low[0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e9), st.floats(0, 1e9)), min_size=1, max_size=20),
       st.floats(0.0, 1.0), st.floats(0.0, 1e9))
def test_the_buffer_never_lets_margin_fall_below_the_floor(pairs: list[tuple[float, float]], buffer: float,
                                                           floor: float) -> None:
    base = np.array([p[0] for p in pairs])
    previous = np.array([p[1] for p in pairs])
    calculated = np.maximum(base, floor)  # the 10-year floor applied before the buffer
    assert (apply_buffer(calculated, buffer, previous) >= floor).all()
    assert (apply_buffer(calculated, buffer, previous) >= calculated).all()
    assert (apply_buffer(calculated, buffer) >= calculated).all()


SAMPLE = history_of(list(np.random.default_rng(11).normal(0, 0.02, 120)), **{
    "vol.X": 0.2 * np.exp(np.cumsum(np.concatenate([[0.0], np.random.default_rng(12).normal(0, 0.05, 120)])))})


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=3, max_size=3), st.floats(0.01, 100.0),
       st.sampled_from(["historical", "filtered_historical"]), st.sampled_from(["var", "es"]))
def test_scaling_a_book_scales_var(quantities: list[float], scale: float, method: str, measure: str) -> None:
    instruments = [future(), option("XC", 100.0, "call"), option("XP", 90.0, "put")]
    vols = {"XC": 0.2, "XP": 0.25}
    names = ["XF", "XC", "XP"]
    book = make_book(instruments, [list(zip(names, quantities, strict=True))], vols=vols)
    scaled = make_book(instruments, [[(n, q * scale) for n, q in zip(names, quantities, strict=True)]], vols=vols)
    profile = var_profile(method=method, measure=measure, margin_period_days=2, price_returns="log")
    one = margin(book, profile, history=SAMPLE).components["measure"][0]
    many = margin(scaled, profile, history=SAMPLE).components["measure"][0]
    assert many == pytest.approx(scale * one, rel=1e-9, abs=1e-9)
