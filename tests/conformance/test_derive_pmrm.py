"""Derive PMRM 2.1 public portfolio cases (derivexyz/v2-core PMRM_2 `portfolio_cases`) through marginkit.

The case files are not in this repository (Business Source License; see shared/conformance/derive-pmrm/NOTICE.md):
they are read from `$MARGINKIT_CONFORMANCE_DIR` or `<repo>/../shared/conformance/derive-pmrm/cases`. Where that
folder is absent the case tests skip with the reason, and fail under CI=true. IM and MM are computed from each
case's `Scenario` and `Parameters` alone and must match `Result` to Derive's tolerance (derive-pmrm-method.md §8):
|got − expected| ≤ 1e-8·|expected|.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from marginkit.cli import app
from marginkit.io.derive_cases import case_expected, case_files, case_inputs, load_case_document
from marginkit.models.portfolio_derive import margin_case
from marginkit.profiles import shipped_profile

RELATIVE_TOLERANCE = 1e-8
DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "derive-pmrm" / "cases"
DIAGNOSTIC_OPTION_FIELDS = ("MarkVol", "MarkDiscount", "k", "k_star", "linear_mult_cap", "abs_mult_cap",
                            "linear_multiplier", "abs_multiplier", "ExiryTs")
UNUSED_FIELDS = ("LastEntryPrice", "FundingIndex", "SystemFundingIndex", "StableConfidence")


def configured_directory() -> Path:
    configured = os.environ.get("MARGINKIT_CONFORMANCE_DIR")
    return Path(configured) if configured else DEFAULT_DIRECTORY


def require_case_directory() -> Path:
    """The case folder; skip (visibly) where it is absent, fail where it is absent under CI=true."""
    directory = configured_directory()
    if directory.is_dir() and any(directory.glob("*.json")):
        return directory
    reason = (f"Derive PMRM case files not found in {directory}: set MARGINKIT_CONFORMANCE_DIR or check out "
              "../shared beside the repository")
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _collected() -> list[Path]:
    directory = configured_directory()
    return case_files(directory) if directory.is_dir() and any(directory.glob("*.json")) else []


CASES = _collected()


def stripped(document: dict[str, Any]) -> dict[str, Any]:
    """The case without `Result`, the per-option diagnostic outputs and the informational fields."""
    scenario = copy.deepcopy(document["Scenario"])
    for option in scenario["Options"]:
        for name in DIAGNOSTIC_OPTION_FIELDS:
            option.pop(name, None)
    for name in UNUSED_FIELDS:
        scenario.pop(name, None)
    for collateral in scenario["Collaterals"]:
        collateral.pop("ConfidenceFactor", None)
        collateral.pop("Name", None)
    return {"Scenario": scenario, "Parameters": copy.deepcopy(document["Parameters"])}


def poisoned(document: dict[str, Any]) -> dict[str, Any]:
    """The case with every diagnostic output and `Result` figure replaced by a wrong value."""
    result = copy.deepcopy(document)
    for option in result["Scenario"]["Options"]:
        for name in DIAGNOSTIC_OPTION_FIELDS:
            option[name] = 12345.0
    result["Result"] = {"IM": 1.0, "MM": 2.0, "OptionMTM": 3.0, "ForwardContingency": 4.0}
    return result


@pytest.mark.parametrize("path", CASES or [None], ids=[p.stem for p in CASES] or ["case-files-absent"])
def test_case_initial_and_maintenance_margin(path: Path | None) -> None:
    if path is None:
        require_case_directory()
        return
    # Arrange: inputs from Scenario and Parameters; Derive's figures from Result, to compare only
    document = load_case_document(path)
    inputs = case_inputs(document, path.stem)
    expected = case_expected(document)

    # Act
    figures = margin_case(inputs)

    # Assert: Derive's check, |got − expected| ≤ 1e-8·|expected| (an expected 0 exactly)
    assert figures.initial_balance[0] == pytest.approx(expected.initial_margin, rel=RELATIVE_TOLERANCE, abs=0.0)
    assert figures.maintenance_balance[0] == pytest.approx(expected.maintenance_margin, rel=RELATIVE_TOLERANCE,
                                                           abs=0.0)


def test_stripped_and_poisoned_cases_give_the_same_answers(tmp_path: Path) -> None:
    directory = require_case_directory()
    for path in case_files(directory):
        # Arrange: the full case, the case stripped of Result and diagnostics (written to tmp_path), and the case
        # whose diagnostics and Result are wrong
        document = load_case_document(path)
        stripped_path = tmp_path / path.name
        stripped_path.write_text(json.dumps(stripped(document)))
        stripped_document = load_case_document(stripped_path)
        assert "Result" not in stripped_document

        # Act
        full = margin_case(case_inputs(document, path.stem))
        without = margin_case(case_inputs(stripped_document, path.stem))
        wrong = margin_case(case_inputs(poisoned(document), path.stem))

        # Assert: bit for bit the same IM and MM, and those match Derive's
        for figures in (without, wrong):
            assert figures.initial_balance[0] == full.initial_balance[0], path.stem
            assert figures.maintenance_balance[0] == full.maintenance_balance[0], path.stem
        expected = case_expected(document)
        assert full.initial_balance[0] == pytest.approx(expected.initial_margin, rel=RELATIVE_TOLERANCE, abs=0.0)


def test_cli_runs_the_shared_cases_and_closes_with_the_count() -> None:
    directory = require_case_directory()
    count = len(case_files(directory))

    result = CliRunner().invoke(app, ["conformance", "derive-pmrm", str(directory)])

    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == count + 1
    assert lines[-1] == f"{count} passed, 0 failed"
    assert all(line.split()[5] == "pass" for line in lines[:-1])


def test_cli_json_lists_every_case() -> None:
    directory = require_case_directory()

    result = CliRunner().invoke(app, ["conformance", "derive-pmrm", str(directory), "--json"])

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["failed"] == 0
    assert document["passed"] == len(document["cases"]) == len(case_files(directory))
    assert all(c["passed"] and c["first_difference"] is None for c in document["cases"])


# Synthetic cases (our own numbers, the shipped profile's Derive parameters): no shared folder needed.


def synthetic_case(initial_margin: float, maintenance_margin: float) -> dict[str, Any]:
    """Cash 1,000 and one long perp at P = S = 3,000; Result as given."""
    parameters = {k: copy.deepcopy(v) for k, v in shipped_profile("derive-pmrm-2.1").parameters.items()
                  if k not in ("method", "cash_asset", "collaterals")}  # a copy: the shipped profile is cached
    return {
        "Scenario": {"Cash": 1000, "SpotPrice": 3000, "SpotConfidence": 1, "NumPerps": 1, "PerpPrice": "3000",
                     "PerpConfidence": 1, "UnrealisedPerpPNL": 0, "UnrealisedFunding": 0, "StablePrice": 1,
                     "StableConfidence": 1, "Collaterals": [], "Options": [], "OptionFeeds": []},
        "Parameters": parameters,
        "Result": {"IM": initial_margin, "MM": maintenance_margin},
    }


def test_synthetic_perp_case_by_hand(tmp_path: Path) -> None:
    # worst P&L: x = 0.82 → 1 × (0.82 − 1) × 3,000 = −540 (the 0.34 tail: 0.0545… × −0.66 × 3,000 = −108);
    # perp contingency 0.015 × |1| × 3,000 = 45 (MM), 0.005 × 3,000 = 15 (IM only)
    # MM = 1,000 + 0.8 × (−540) − 45 = 523; IM = 1,000 + 1.0 × (−540) − 45 − 15 = 400
    path = tmp_path / "test_1_synthetic_perp.json"
    path.write_text(json.dumps(synthetic_case(400.0, 523.0)))

    result = CliRunner().invoke(app, ["conformance", "derive-pmrm", str(path)])

    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["test_1_synthetic_perp 400 400 523 523 pass", "1 passed, 0 failed"]


def test_a_failing_case_exits_3_and_names_the_first_differing_component(tmp_path: Path) -> None:
    (tmp_path / "test_1_wrong.json").write_text(json.dumps(synthetic_case(400.0, 500.0)))

    result = CliRunner().invoke(app, ["conformance", "derive-pmrm", str(tmp_path)])

    assert result.exit_code == 3
    case_line, closing = result.stdout.splitlines()
    assert case_line == "test_1_wrong 400 400 500 523 fail [MM: expected 500 got 523]"
    assert closing == "0 passed, 1 failed"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["conformance", "nope", "."], "SUITE: unknown suite 'nope' (suites: derive-pmrm)"),
        (["conformance", "derive-pmrm", "/no/such/folder"], "/no/such/folder: no such file or directory"),
    ],
)
def test_bad_suite_or_path_is_bad_input(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(app, arguments)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == message


def test_a_malformed_case_names_file_and_field(tmp_path: Path) -> None:
    case = synthetic_case(400.0, 523.0)
    case["Scenario"]["SpotPrice"] = "three thousand"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(case))

    result = CliRunner().invoke(app, ["conformance", "derive-pmrm", str(path)])

    assert result.exit_code == 2
    assert result.stderr.strip() == f"{path}: Scenario.SpotPrice: must be a number"


def test_a_malformed_parameter_names_its_derive_key(tmp_path: Path) -> None:
    case = synthetic_case(400.0, 523.0)
    case["Parameters"]["VolShock"]["VOLRANGEUP"] = -1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(case))

    result = CliRunner().invoke(app, ["conformance", "derive-pmrm", str(path)])

    assert result.exit_code == 2
    assert result.stderr.strip() == f"{path}: Parameters.VolShock.VOLRANGEUP: must not be negative"
