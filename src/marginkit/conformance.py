"""External conformance suites: compute each case with marginkit and compare with the venue's own figures.

`derive-pmrm`: Derive's Portfolio Margin Risk Manager 2.1 portfolio cases (derivexyz/v2-core,
test/risk-managers/unit-tests/PMRM_2/portfolio_cases). IM and MM are computed from each case's `Scenario` and
`Parameters` alone (models/portfolio_derive.py); `Result` is read only to compare. A case passes when IM and MM
both match to Derive's own test tolerance: |got − expected| ≤ 1e-8·|expected|, an expected 0 exactly
(derive-pmrm-method.md §8). For a failing case the first differing component (collateral MTM, option MTM,
portfolio MTM, each scenario's P&L in `Parameters.Scenarios` order, the basis contingency, each contingency,
the IM loss factor, MM, IM) is named, to 1e-8 relative or 1e-8 absolute near 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marginkit.errors import InputError
from marginkit.io.derive_cases import (
    CaseExpected,
    case_expected,
    case_files,
    case_inputs,
    case_name,
    derive_number,
    load_case_document,
)
from marginkit.models.portfolio_derive import PmrmFigures, margin_case

RELATIVE_TOLERANCE = 1e-8  # Derive's PMRM_2 portfolio-case assertions on IM and MM (method §8)
COMPONENT_ABSOLUTE_TOLERANCE = 1e-8  # near 0 a component is compared absolutely (method §8, scenario P&Ls)


@dataclass(frozen=True)
class Difference:
    """A component whose value differs from the venue's: its name, the expected value and ours."""

    component: str
    expected: float
    got: float


@dataclass(frozen=True)
class CaseOutcome:
    """One case: expected and computed IM and MM, whether both match, and the first differing component."""

    name: str
    expected_initial_margin: float
    initial_margin: float
    expected_maintenance_margin: float
    maintenance_margin: float
    passed: bool
    first_difference: Difference | None


@dataclass(frozen=True)
class SuiteReport:
    """Every case of a suite run, in case order."""

    suite: str
    path: str
    cases: tuple[CaseOutcome, ...]

    @property
    def passed(self) -> int:
        return sum(case.passed for case in self.cases)

    @property
    def failed(self) -> int:
        return len(self.cases) - self.passed


def margins_match(expected: float, got: float) -> bool:
    """Derive's check: |got − expected| ≤ 1e-8·|expected|; an expected 0 must be matched exactly."""
    if expected == 0.0:
        return got == 0.0
    return abs(got - expected) <= RELATIVE_TOLERANCE * abs(expected)


def _component_matches(expected: float, got: float) -> bool:
    return abs(got - expected) <= max(RELATIVE_TOLERANCE * abs(expected), COMPONENT_ABSOLUTE_TOLERANCE)


def _optional_number(value: Any) -> float | None:
    try:
        return derive_number(value)
    except ValueError:
        return None


def _derive_components(expected: CaseExpected, figures: PmrmFigures, directions: list[str],
                       result: dict[str, Any]) -> list[tuple[str, float | None, float]]:
    """(name, Derive's value or None where `Result` lacks it, ours) in the order the calculation builds them."""
    components: list[tuple[str, float | None, float]] = [
        ("CollateralMTM", expected.collateral_mtm, float(figures.collateral_mtm[0])),
        ("OptionMTM", expected.option_mtm, float(figures.option_mtm[0])),
        ("PortfolioMTM", expected.portfolio_mtm, float(figures.portfolio_mtm[0])),
    ]
    spot_vol, skew = expected.scenario_pnls()
    ordered = [i for i, d in enumerate(directions) if d not in ("LINEAR", "ABS")]
    ordered += [i for i, d in enumerate(directions) if d in ("LINEAR", "ABS")]
    venue = spot_vol + skew
    if len(venue) == len(ordered):
        for value, index in zip(venue, ordered, strict=True):
            components.append((f"scenario {index} ({directions[index]})", value, float(figures.scenario_pnl[0, index])))
    components.append(("ForwardContingency", expected.forward_contingency, float(figures.forward_contingency[0])))
    signed = {  # Result shows contingencies with a negative sign
        "MMPerpCont": figures.perp_maintenance, "IMPerpCont": figures.perp_initial,
        "MMOptionCont": figures.option_maintenance, "IMOptionCont": figures.option_initial,
        "MMBaseCont": figures.collateral_maintenance, "IMBaseCont": figures.collateral_initial,
        "OracleCont": figures.oracle,
    }
    for name, ours in signed.items():
        components.append((name, _optional_number(result.get(name)), -float(ours[0])))
    components.append(("IMLossFactor", _optional_number(result.get("IMLossFactor")),
                       float(figures.initial_loss_factor[0])))
    components.append(("MM", expected.maintenance_margin, float(figures.maintenance_balance[0])))
    components.append(("IM", expected.initial_margin, float(figures.initial_balance[0])))
    return components


def run_derive_case(path: Path) -> CaseOutcome:
    """Compute one Derive case from its inputs and compare IM and MM with its `Result`."""
    try:
        document = load_case_document(path)
        inputs = case_inputs(document, case_name(path))
        figures = margin_case(inputs)  # Scenario and Parameters only
        expected = case_expected(document)  # Result, to compare
    except InputError as error:
        raise error.in_file(str(path)) from None
    initial = float(figures.initial_balance[0])
    maintenance = float(figures.maintenance_balance[0])
    passed = margins_match(expected.initial_margin, initial) and margins_match(expected.maintenance_margin, maintenance)
    first: Difference | None = None
    if not passed:
        directions = [str(s.get("VolShockDirection")) if isinstance(s, dict) else ""
                      for s in inputs.parameters.get("Scenarios", [])]
        try:
            components = _derive_components(expected, figures, directions, document["Result"])
        except ValueError:  # a malformed diagnostic row: name the margins only
            components = []
        first = next((Difference(name, venue, ours) for name, venue, ours in components
                      if venue is not None and not _component_matches(venue, ours)), None)
        if first is None:  # within the component tolerance but not Derive's: name the margin that fails
            first = (Difference("MM", expected.maintenance_margin, maintenance)
                     if not margins_match(expected.maintenance_margin, maintenance)
                     else Difference("IM", expected.initial_margin, initial))
    return CaseOutcome(name=inputs.name, expected_initial_margin=expected.initial_margin, initial_margin=initial,
                       expected_maintenance_margin=expected.maintenance_margin, maintenance_margin=maintenance,
                       passed=passed, first_difference=first)


SUITES: dict[str, Callable[[Path], CaseOutcome]] = {"derive-pmrm": run_derive_case}


def run_suite(suite: str, path: Path) -> SuiteReport:
    """Run every case of `path` (a directory of case files, or one file) under `suite`; InputError on bad input."""
    if suite not in SUITES:
        raise InputError(f"unknown suite {suite!r} (suites: {', '.join(sorted(SUITES))})", field="SUITE")
    runner = SUITES[suite]
    return SuiteReport(suite=suite, path=str(path), cases=tuple(runner(p) for p in case_files(path)))


def _number(value: float) -> str:
    return f"{value:.15g}"


def report_lines(report: SuiteReport) -> list[str]:
    """`name expected_IM got_IM expected_MM got_MM pass|fail [first differing component]`, then `N passed, M failed`."""
    lines: list[str] = []
    for case in report.cases:
        line = " ".join([case.name, _number(case.expected_initial_margin), _number(case.initial_margin),
                         _number(case.expected_maintenance_margin), _number(case.maintenance_margin),
                         "pass" if case.passed else "fail"])
        if case.first_difference is not None:
            d = case.first_difference
            line += f" [{d.component}: expected {_number(d.expected)} got {_number(d.got)}]"
        lines.append(line)
    lines.append(f"{report.passed} passed, {report.failed} failed")
    return lines


def report_document(report: SuiteReport) -> dict[str, Any]:
    """The `marginkit conformance --json` document."""
    return {
        "suite": report.suite,
        "path": report.path,
        "tolerance": {"relative": RELATIVE_TOLERANCE},
        "cases": [{
            "name": c.name,
            "expected": {"initial_margin": c.expected_initial_margin,
                         "maintenance_margin": c.expected_maintenance_margin},
            "got": {"initial_margin": c.initial_margin, "maintenance_margin": c.maintenance_margin},
            "passed": c.passed,
            "first_difference": None if c.first_difference is None else {
                "component": c.first_difference.component, "expected": c.first_difference.expected,
                "got": c.first_difference.got},
        } for c in report.cases],
        "passed": report.passed,
        "failed": report.failed,
    }
