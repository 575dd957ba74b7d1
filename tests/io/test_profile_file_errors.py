"""Malformed profiles (`--params`) and profile flags: exit 2, one line naming the file and the key path.

spec/profiles.md: unknown keys are an error; every rate is a finite number in its range; a stated
maintenance_amount that disagrees with the recursion is an error; a failure names the key path.
spec/cli.md: a `--model` that disagrees with the profile's model is bad input (exit 2).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from marginkit.cli import MODELS, app

Data = dict[str, Any]
Mutation = Callable[[Data], None]

BOOK: Data = {
    "as_of": "2026-11-24T08:00:00Z",
    "instruments": [
        {"id": "BTC-USDT-PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "USDT",
         "inverse": False, "contract_size": 0.001},
        {"id": "ETH-USDT-PERP", "type": "perpetual", "underlying": "ETH", "quote": "USD", "settlement": "USDT",
         "inverse": False, "contract_size": 0.01},
    ],
    "market": {"index": {"BTC": 95000.0, "ETH": 3300.0, "USDT": 1.0}},
    "accounts": [
        {"id": "alice", "mode": "cross", "collateral": {"USDT": 50000},
         "positions": [
             {"instrument": "BTC-USDT-PERP", "quantity": 2500, "entry_price": 94000},
             {"instrument": "ETH-USDT-PERP", "quantity": -3000, "entry_price": 3400},
         ]},
    ],
}

# amount_n = amount_(n-1) + max_notional_(n-1) × (rate_n − rate_(n-1)): 0, 50, 1300, 16300, 266300.
ETH_BRACKETS: list[Data] = [
    {"max_notional": 50000, "maintenance_rate": 0.004, "max_leverage": 125, "maintenance_amount": 0},
    {"max_notional": 250000, "maintenance_rate": 0.005, "max_leverage": 100, "maintenance_amount": 50},
    {"max_notional": 1000000, "maintenance_rate": 0.01, "max_leverage": 50, "maintenance_amount": 1300},
    {"max_notional": 10000000, "maintenance_rate": 0.025, "max_leverage": 20, "maintenance_amount": 16300},
    {"max_notional": 20000000, "maintenance_rate": 0.05, "max_leverage": 10, "maintenance_amount": 266300},
]


def valid_profile() -> Data:
    """A small tiered profile that margins BOOK (exit 0)."""
    return {
        "model": "tiered",
        "name": "test-brackets",
        "version": "2026-11-24",
        "source": "written for this test",
        "parameters": {
            "defaults": {"mm_basis": "liquidation_price", "taker_fee_rate": 0.0005},
            "underlyings": {
                "BTC": {"notional_unit": "quote", "brackets": [
                    {"max_notional": 50000, "maintenance_rate": 0.004, "max_leverage": 125},
                    {"max_notional": 250000, "maintenance_rate": 0.005, "max_leverage": 100},
                    {"maintenance_rate": 0.01, "max_leverage": 50},
                ]},
                "ETH": {"notional_unit": "quote", "brackets": copy.deepcopy(ETH_BRACKETS)},
            },
        },
    }


def dump(data: Data, suffix: str) -> str:
    """JSON or YAML text; float('nan') and infinities become NaN/Infinity or .nan/.inf literals."""
    if suffix == ".json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_bad_input(result: Result, file: str, field: str | None, message: str | None = None) -> str:
    """Exit 2, nothing on stdout, one line on stderr: `FILE: FIELD: message`, no traceback. Returns the line."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    prefix = f"{file}: {field}: " if field else f"{file}: "
    assert line.startswith(prefix), (line, prefix)
    assert len(line) > len(prefix), line
    if message is not None:
        assert message in line[len(prefix):], (line, message)
    return line


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.json"
    path.write_text(json.dumps(BOOK))
    return path


def _at(data: Data, path: tuple[str | int, ...]) -> Any:
    target: Any = data
    for key in path:
        target = target[key]
    return target


def _set(path: tuple[str | int, ...], value: Any) -> Mutation:
    def mutate(data: Data) -> None:
        _at(data, path[:-1])[path[-1]] = value
    return mutate


def _drop(path: tuple[str | int, ...]) -> Mutation:
    def mutate(data: Data) -> None:
        del _at(data, path[:-1])[path[-1]]
    return mutate


ETH = ("parameters", "underlyings", "ETH")
ETH_KEY = "parameters.underlyings.ETH"
DEFAULTS = ("parameters", "defaults")


def _bracket(n: int, key: str) -> tuple[str | int, ...]:
    return (*ETH, "brackets", n, key)


# (id, mutation of the valid profile, key path, part of the message). Each runs as .yaml and as .json.
PROFILE_CASES: list[tuple[str, Mutation, str, str]] = [
    ("amount-breaks-the-recursion", _set(_bracket(3, "maintenance_amount"), 16000),
     f"{ETH_KEY}.brackets[3].maintenance_amount", "breaks the recursion"),
    ("first-amount-not-zero", _set(_bracket(0, "maintenance_amount"), 10),
     f"{ETH_KEY}.brackets[0].maintenance_amount", "breaks the recursion"),
    ("rate-of-one-and-a-half", _set(_bracket(2, "maintenance_rate"), 1.5),
     f"{ETH_KEY}.brackets[2].maintenance_rate", "must be less than 1"),
    ("negative-rate", _set(_bracket(0, "maintenance_rate"), -0.004),
     f"{ETH_KEY}.brackets[0].maintenance_rate", "must not be negative"),
    ("nan-rate", _set(_bracket(2, "maintenance_rate"), float("nan")),
     f"{ETH_KEY}.brackets[2].maintenance_rate", "must be finite"),
    ("infinite-max-leverage", _set(_bracket(1, "max_leverage"), float("inf")),
     f"{ETH_KEY}.brackets[1].max_leverage", "must be finite"),
    ("nan-maintenance-amount", _set(_bracket(3, "maintenance_amount"), float("nan")),
     f"{ETH_KEY}.brackets[3].maintenance_amount", "must be finite"),
    ("string-max-leverage", _set(_bracket(0, "max_leverage"), "125"),
     f"{ETH_KEY}.brackets[0].max_leverage", "must be a number"),
    ("zero-max-leverage", _set(_bracket(0, "max_leverage"), 0),
     f"{ETH_KEY}.brackets[0].max_leverage", "must be positive"),
    ("caps-do-not-ascend", _set(_bracket(2, "max_notional"), 200000),
     f"{ETH_KEY}.brackets[2].max_notional", "caps must ascend"),
    ("equal-caps", _set(_bracket(1, "max_notional"), 50000),
     f"{ETH_KEY}.brackets[1].max_notional", "caps must ascend"),
    ("open-cap-before-the-last", _drop(_bracket(1, "max_notional")),
     f"{ETH_KEY}.brackets[1].max_notional", "only the last bracket"),
    ("falling-maintenance-rate", _set(_bracket(4, "maintenance_rate"), 0.02),
     f"{ETH_KEY}.brackets[4].maintenance_rate", "may not fall"),
    ("rate-not-below-initial-rate", _set(_bracket(0, "max_leverage"), 300),
     f"{ETH_KEY}.brackets[0].maintenance_rate", "is not below the initial rate"),
    ("no-brackets", _set((*ETH, "brackets"), []), ETH_KEY, "brackets must not be empty"),
    ("no-notional-unit", _drop((*ETH, "notional_unit")), ETH_KEY, "notional_unit"),
    ("unknown-notional-unit", _set((*ETH, "notional_unit"), "usd"),
     f"{ETH_KEY}.notional_unit", "must be one of quote or coin"),
    ("unknown-top-level-key", _set(("modle",), "tiered"), "modle", "unknown field"),
    ("misspelt-top-level-key", lambda p: p.update(sources=p.pop("source")), "sources", "unknown field"),
    ("unknown-key-in-defaults", _set((*DEFAULTS, "mm_basi"), "entry"), "parameters.defaults.mm_basi", "unknown field"),
    ("unknown-key-in-a-bracket", _set(_bracket(1, "maintenance_ratio"), 0.005),
     f"{ETH_KEY}.brackets[1].maintenance_ratio", "unknown field"),
    ("unknown-key-in-parameters", _set(("parameters", "underlying"), {}), "parameters.underlying", "unknown field"),
    ("missing-model", _drop(("model",)), "model", "required field is missing"),
    ("missing-parameters", _drop(("parameters",)), "parameters", "required field is missing"),
    ("missing-underlyings", _drop(("parameters", "underlyings")), "parameters.underlyings", "required field"),
    ("parameters-a-list", _set(("parameters",), []), "parameters", "must be a mapping"),
    ("unknown-model", _set(("model",), "tiered-v9"), "model", "unknown model 'tiered-v9'"),
    ("version-a-number", _set(("version",), 2026), "version", "must be a string"),
    ("empty-name", _set(("name",), ""), "name", "must not be empty"),
    ("mm-basis-not-allowed", _set((*DEFAULTS, "mm_basis"), "index"),
     "parameters.defaults.mm_basis", "must be one of liquidation_price, entry or mark"),
    ("mm-basis-not-allowed-per-underlying", _set((*ETH, "mm_basis"), "bankruptcy"),
     f"{ETH_KEY}.mm_basis", "must be one of liquidation_price, entry or mark"),
    ("negative-fee-rate", _set((*DEFAULTS, "taker_fee_rate"), -0.0005),
     "parameters.defaults.taker_fee_rate", "must not be negative"),
    ("unknown-formula-version", _set((*DEFAULTS, "formula_version"), "bybit-2099"),
     "parameters.defaults.formula_version", "must be one of"),
    ("formula-version-contradicted",
     _set(DEFAULTS, {"formula_version": "bybit-inverse-uta-2024", "mm_basis": "liquidation_price"}),
     "parameters.defaults", "contradicts formula_version"),
    ("rounding-decimals-too-many", _set((*DEFAULTS, "rounding"), {"decimals": 40}),
     "parameters.defaults.rounding.decimals", "must be at most 18"),
    ("rounding-unknown-price-mode", _set((*DEFAULTS, "rounding"), {"liquidation_price": "sideways"}),
     "parameters.defaults.rounding.liquidation_price", "must be one of toward_mark"),
    ("rounding-unknown-price-mode-in-a-mapping",
     _set((*DEFAULTS, "rounding"), {"bankruptcy_price": {"mode": "sideways"}}),
     "parameters.defaults.rounding.bankruptcy_price.mode", "must be one of toward_mark"),
    ("unknown-liquidity-tier", _set((*ETH,), {"liquidity_tier": 7, "atomic_resolution": -9}),
     f"{ETH_KEY}.liquidity_tier", "no liquidity tier 7"),
    ("brackets-and-liquidity-tier", _set((*ETH, "liquidity_tier"), 0), ETH_KEY, "either brackets or liquidity_tier"),
]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_the_valid_profile_margins(tmp_path: Path, book: Path, suffix: str) -> None:
    # Arrange
    params = tmp_path / f"profile{suffix}"
    params.write_text(dump(valid_profile(), suffix))

    # Act
    result = invoke("margin", str(book), "--params", str(params), "--json")

    # Assert: valid, so each case below fails for its own defect only
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["profile"] == "test-brackets"


def test_a_bare_rounding_mode_is_short_for_a_mapping(tmp_path: Path, book: Path) -> None:
    # Arrange
    profile = valid_profile()
    profile["parameters"]["defaults"]["rounding"] = {"liquidation_price": "toward_mark",
                                                     "bankruptcy_price": {"mode": "nearest", "decimals": 1}}
    params = tmp_path / "profile.yaml"
    params.write_text(dump(profile, ".yaml"))

    # Act
    result = invoke("margin", str(book), "--params", str(params), "--json")

    # Assert
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(("mutate", "field", "message"),
                         [pytest.param(m, f, s, id=name) for name, m, f, s in PROFILE_CASES])
def test_a_malformed_profile_is_refused_naming_file_and_key_path(
    tmp_path: Path, book: Path, suffix: str, mutate: Mutation, field: str, message: str
) -> None:
    # Arrange
    profile = valid_profile()
    mutate(profile)
    params = tmp_path / f"profile{suffix}"
    params.write_text(dump(profile, suffix))

    # Act
    result = invoke("margin", str(book), "--params", str(params), "--json")

    # Assert
    assert_bad_input(result, str(params), field, message)


def _profile_text(suffix: str, old: str, new: str) -> str:
    text = dump(valid_profile(), suffix)
    assert old in text, (old, text)
    return text.replace(old, new)


# (id, file name, text, key path or None for the whole file, part of the message)
RAW_CASES: list[tuple[str, str, str, str | None, str]] = [
    ("json-nan-rate", "profile.json", _profile_text(".json", "0.025", "NaN"),
     f"{ETH_KEY}.brackets[3].maintenance_rate", "must be finite"),
    ("yaml-nan-rate", "profile.yaml", _profile_text(".yaml", "maintenance_rate: 0.025", "maintenance_rate: .nan"),
     f"{ETH_KEY}.brackets[3].maintenance_rate", "must be finite"),
    ("json-overflowing-amount", "profile.json", _profile_text(".json", "266300", "1e400"),
     f"{ETH_KEY}.brackets[4].maintenance_amount", "must be finite"),
    ("empty-yaml", "profile.yaml", "", None, "empty file"),
    ("empty-json", "profile.json", "  \n", None, "empty file"),
    ("not-yaml", "profile.yaml", "model: [tiered\nname: x\n", None, "not valid YAML"),
    ("not-json", "profile.json", "model: tiered\n", None, "not valid JSON (line 1)"),
    ("a-list", "profile.yaml", "- model: tiered\n", None, "a profile is a mapping"),
    ("duplicate-key", "profile.yaml", _profile_text(".yaml", "model: tiered\n", "model: tiered\nmodel: tiered\n"),
     None, "duplicate key 'model'"),
    ("unknown-extension", "profile.ini", "[tiered]\n", None, "unknown file type '.ini'"),
]


@pytest.mark.parametrize(("name", "text", "field", "message"),
                         [pytest.param(n, t, f, m, id=i) for i, n, t, f, m in RAW_CASES])
def test_a_malformed_profile_file_is_refused_naming_the_file(
    tmp_path: Path, book: Path, name: str, text: str, field: str | None, message: str
) -> None:
    # Arrange
    params = tmp_path / name
    params.write_text(text)

    # Act
    result = invoke("margin", str(book), "--params", str(params), "--json")

    # Assert
    assert_bad_input(result, str(params), field, message)


def test_a_missing_profile_file_is_named(tmp_path: Path, book: Path) -> None:
    # Arrange
    params = tmp_path / "absent.yaml"

    # Act
    result = invoke("margin", str(book), "--params", str(params), "--json")

    # Assert
    assert_bad_input(result, str(params), None, "no such file")


def test_the_recursion_message_is_exact(tmp_path: Path, book: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange
    profile = valid_profile()
    profile["parameters"]["underlyings"]["ETH"]["brackets"][3]["maintenance_amount"] = 16000
    (tmp_path / "profile.yaml").write_text(dump(profile, ".yaml"))
    monkeypatch.chdir(tmp_path)

    # Act
    result = invoke("margin", str(book), "--params", "profile.yaml", "--json")

    # Assert
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "profile.yaml: parameters.underlyings.ETH.brackets[3].maintenance_amount: 16000 breaks the recursion "
        "amount_n = amount_(n-1) + max_notional_(n-1) × (rate_n − rate_(n-1)), which gives 16300\n"
    )


def test_a_model_that_disagrees_with_the_profile_is_bad_input(
    tmp_path: Path, book: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: a second registered model, so the disagreement (not an unknown name) is what is refused
    def must_not_run(*_: object) -> object:
        raise AssertionError("a model ran although --model disagrees with the profile")

    monkeypatch.setitem(MODELS, "other-model", must_not_run)
    params = tmp_path / "profile.yaml"
    params.write_text(dump(valid_profile(), ".yaml"))

    # Act
    result = invoke("margin", str(book), "--model", "other-model", "--params", str(params), "--json")

    # Assert
    line = assert_bad_input(result, "--model", None, "'test-brackets' is for model 'tiered', not 'other-model'")
    assert line.startswith("--model: profile ")


def test_a_model_that_disagrees_with_a_shipped_profile_is_bad_input(
    book: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    monkeypatch.setitem(MODELS, "other-model", lambda *_: None)

    # Act
    result = invoke("margin", str(book), "--model", "other-model", "--profile", "binance-usdm", "--json")

    # Assert
    assert_bad_input(result, "--model", None, "'binance-usdm' is for model 'tiered', not 'other-model'")


@pytest.mark.parametrize(("flags", "field", "message"), [
    pytest.param(("--profile", "binance-usdn"), "--profile", "unknown profile 'binance-usdn'", id="unknown-profile"),
    pytest.param(("--model", "tiered-v9"), "--model", "unknown model 'tiered-v9'", id="unknown-model"),
    pytest.param(("--profile", "binance-usdm", "--params", "profile.yaml"), "--params",
                 "give --profile or --params, not both", id="profile-and-params"),
])
def test_a_bad_profile_flag_is_named(
    tmp_path: Path, book: Path, monkeypatch: pytest.MonkeyPatch, flags: tuple[str, ...], field: str, message: str
) -> None:
    # Arrange
    (tmp_path / "profile.yaml").write_text(dump(valid_profile(), ".yaml"))
    monkeypatch.chdir(tmp_path)

    # Act
    result = invoke("margin", str(book), *flags, "--json")

    # Assert
    assert_bad_input(result, field, None, message)
