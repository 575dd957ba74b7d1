"""The `marginkit` command's stable contract (spec/cli.md)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from marginkit.cli import app
from marginkit.profiles import shipped_profiles

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_models_lists_every_shipped_profile_with_version_and_source() -> None:
    result = CliRunner().invoke(app, ["models", "--json"])

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    names = {row["profile"] for row in document["profiles"]}
    assert {"binance-usdm", "binance-coinm", "bybit-linear", "bybit-inverse", "dydx-v4"} <= names
    assert all(row["version"] and row["source"] for row in document["profiles"])


def test_margin_json_has_the_contract_fields() -> None:
    result = CliRunner().invoke(app, ["margin", str(EXAMPLES / "usd-perpetuals.yaml"), "--json"])

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert {"model", "profile", "profile_version", "as_of", "accounts"} <= set(document)
    account = document["accounts"][0]
    assert {"id", "currency", "equity", "initial_margin", "maintenance_margin", "margin_ratio", "status",
            "components", "worst_scenario", "positions"} <= set(account)
    assert {"instrument", "quantity", "initial_margin", "maintenance_margin", "liquidation_price",
            "bankruptcy_price"} <= set(account["positions"][0])


def test_readme_worked_example_figures() -> None:
    # README: Alice's BTC liquidation price 2.49 × P = 213,932.144 → 85,916.52; Bob's BP 96,000 + 1,000/0.5
    result = CliRunner().invoke(app, ["margin", str(EXAMPLES / "usd-perpetuals.yaml"), "--json"])

    alice, bob = json.loads(result.stdout)["accounts"]
    assert abs(alice["equity"] - 23995.25) < 1e-9
    assert abs(alice["positions"][0]["liquidation_price"] - 213932.144 / 2.49) < 1e-6
    assert bob["positions"][0]["bankruptcy_price"] == 98000.0


def test_model_that_disagrees_with_the_profile_is_bad_input() -> None:
    result = CliRunner().invoke(app, ["margin", str(EXAMPLES / "usd-perpetuals.yaml"), "--model", "portfolio",
                                      "--profile", "binance-usdm"])

    assert result.exit_code == 2
    assert result.stdout == ""


def test_compare_sets_covering_profiles_side_by_side() -> None:
    result = CliRunner().invoke(app, ["compare", str(EXAMPLES / "usd-perpetuals.yaml"), "--json"])

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    # linear BTC and ETH perpetuals in cross and isolated accounts: Binance USDⓈ-M, Deribit's linear rates and dYdX
    # cover them; every other shipped profile (coin-margined, BTC-only, option-only, stock-and-options,
    # portfolio-mode) is listed as not covering the book.
    covering = ["binance-usdm", "deribit-standard-2022-01-11", "dydx-v4"]
    assert [r["profile"] for r in document["results"]] == covering
    assert {s["profile"] for s in document["not_covered"]} == set(shipped_profiles()) - set(covering)
