"""`--cluster` on `marginkit margin|compare|backtest`: byte-identical JSON, the same errors, bad values exit 2."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from marginkit.cli import app
from marginkit.distributed.cluster import ClusterSpec, parse_cluster
from marginkit.errors import InputError

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
# Each example with the profiles that cover it (the models: portfolio, tiered, deribit-standard, strategy, span).
COVERED = [("portfolio-btc", "deribit-pm"), ("usd-perpetuals", "binance-usdm"), ("usd-perpetuals", "dydx-v4"),
           ("coin-margined", "binance-coinm"), ("coin-margined", "bybit-inverse"),
           ("coin-margined", "deribit-standard-2022-01-11"), ("hedge-mode", "bybit-linear"),
           ("equity-options", "cboe-finra"), ("futures-options-span", "span-crypto")]


def run(*arguments: str) -> Any:
    return CliRunner().invoke(app, list(arguments))


def replicated(example: str, copies: int, tmp_path: Path, change: dict[int, Any] | None = None) -> Path:
    """The example's accounts repeated `copies` times (ids suffixed, sizes and collateral varied) as a JSON book."""
    document = yaml.safe_load((EXAMPLES / f"{example}.yaml").read_text())
    accounts = []
    for k in range(copies):
        for account in document["accounts"]:
            twin = copy.deepcopy(account)
            twin["id"] = f"{account['id']}-{k:04d}"
            twin["collateral"] = {a: v * (0.5 + (k % 4) * 0.5) for a, v in account["collateral"].items()}
            for position in twin["positions"]:
                position["quantity"] = position["quantity"] * (1 + k % 5)
            accounts.append(twin)
    for index, edit in (change or {}).items():
        edit(accounts[index], document)
    document["accounts"] = accounts
    path = tmp_path / f"{example}-x{copies}.json"
    path.write_text(json.dumps(document, default=str))
    return path


def assert_same(arguments: list[str], scheduler: str) -> str:
    """The command's stdout, stderr and exit code are the same with `--cluster tcp://…` as without."""
    alone = run(*arguments)
    clustered = run(*arguments, "--cluster", scheduler)
    assert clustered.exit_code == alone.exit_code, clustered.stderr
    assert clustered.stderr == alone.stderr
    assert clustered.stdout == alone.stdout
    return str(alone.stdout)


@pytest.mark.parametrize("value", ["local:0", "local:x", "local:513", "remote", "tcp://", "tcp://host",
                                   "http://127.0.0.1:8786", "tcp://127.0.0.1:99999", "local:"])
def test_a_bad_cluster_value_exits_2_naming_the_option(value: str) -> None:
    for command in (["margin", str(EXAMPLES / "usd-perpetuals.yaml")],
                    ["compare", str(EXAMPLES / "usd-perpetuals.yaml")],
                    ["backtest", str(EXAMPLES / "sp500-long.yaml"), "--history", "sample:sp500"]):
        result = run(*command, "--cluster", value)
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        assert result.stderr.startswith("--cluster: ") and result.stderr.count("\n") == 1  # one line


def test_cluster_specs_parse() -> None:
    assert parse_cluster("local") == ClusterSpec()
    assert parse_cluster("local:3") == ClusterSpec(workers=3)
    assert parse_cluster("tcp://10.0.0.5:8786") == ClusterSpec(address="tcp://10.0.0.5:8786")
    assert parse_cluster("tcp://scheduler.internal:8786").address == "tcp://scheduler.internal:8786"
    with pytest.raises(InputError) as caught:
        parse_cluster("spark://x:7077")
    assert caught.value.field == "--cluster"


def test_cluster_margins_a_book_file_not_a_ledger(tmp_path: Path) -> None:
    result = run("margin", "--db", str(tmp_path / "l.sqlite3"), "--market", str(tmp_path / "m.yaml"),
                 "--cluster", "local:1")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("--cluster: ")


@pytest.mark.parametrize(("example", "profile"), COVERED)
def test_margin_json_is_byte_identical_on_each_example(example: str, profile: str, scheduler: str) -> None:
    out = assert_same(["margin", str(EXAMPLES / f"{example}.yaml"), "--profile", profile, "--json"], scheduler)
    assert json.loads(out)["profile"] == profile


@pytest.mark.parametrize(("example", "profile", "collateral"), [
    ("portfolio-btc", "deribit-pm", None), ("usd-perpetuals", "binance-usdm", "bitget-collateral"),
    ("coin-margined", "binance-coinm", None), ("equity-options", "cboe-finra", None),
    ("futures-options-span", "span-crypto", None), ("futures-options-span", "deribit-standard-2022-01-11", None),
    ("hedge-mode", "binance-usdm", None)])
def test_margin_json_is_byte_identical_over_several_partitions(example: str, profile: str, collateral: str | None,
                                                               scheduler: str, tmp_path: Path) -> None:
    book = replicated(example, 150, tmp_path)  # 150 to 300 accounts: 3 or 4 partitions of 64+
    extra = ["--collateral", collateral] if collateral else []
    out = assert_same(["margin", str(book), "--profile", profile, "--json", *extra], scheduler)
    assert len(json.loads(out)["accounts"]) >= 150


def test_a_local_cluster_is_started_and_stopped_for_one_command(tmp_path: Path) -> None:
    book = replicated("usd-perpetuals", 70, tmp_path)
    alone = run("margin", str(book), "--json")
    clustered = run("margin", str(book), "--json", "--cluster", "local:2")
    assert clustered.exit_code == 0 and clustered.stderr == ""
    assert clustered.stdout == alone.stdout


def test_a_refusal_names_the_position_a_single_process_names(scheduler: str, tmp_path: Path) -> None:
    # Account 130 (third partition) fails tiered's second check (portfolio mode), account 250 (fourth) its first
    # (not a future or perpetual): one process reports account 250, so must the cluster.
    def portfolio_mode(account: dict[str, Any], _: dict[str, Any]) -> None:
        account["mode"] = "portfolio"

    def holds_an_option(account: dict[str, Any], document: dict[str, Any]) -> None:
        document["instruments"].append({"id": "BTC-OPT", "type": "option", "option_type": "call", "strike": 100000,
                                        "expiry": "2026-12-26T08:00:00Z", "underlying": "BTC", "quote": "USD",
                                        "settlement": "USDC", "inverse": False, "contract_size": 0.001})
        document["market"].setdefault("marks", {})["BTC-OPT"] = 1500.0
        account["positions"].append({"instrument": "BTC-OPT", "quantity": 1, "entry_price": 1400.0})

    book = replicated("usd-perpetuals", 150, tmp_path, {130: portfolio_mode, 250: holds_an_option})
    assert_same(["margin", str(book), "--json"], scheduler)
    result = run("margin", str(book), "--json", "--cluster", scheduler)
    assert result.exit_code == 2
    assert "accounts[250].positions[2]: tiered: covers futures and perpetuals only (BTC-OPT)" in result.stderr


def test_compare_json_is_byte_identical(scheduler: str, tmp_path: Path) -> None:
    book = replicated("portfolio-btc", 100, tmp_path)
    out = assert_same(["compare", str(book), "--models", "portfolio,deribit-standard,tiered,span", "--json"],
                      scheduler)
    document = json.loads(out)
    assert [r["profile"] for r in document["results"]] == ["deribit-pm"]
    assert {"binance-usdm", "deribit-standard-2022-01-11", "span-crypto"} <= {i["profile"] for i in
                                                                             document["not_covered"]}
    assert any(row["offset_benefit"] is not None for row in document["efficiency"])


def test_compare_every_covering_profile_with_collateral_is_byte_identical(scheduler: str, tmp_path: Path) -> None:
    book = replicated("usd-perpetuals", 70, tmp_path)
    assert_same(["compare", str(book), "--collateral", "bitget-collateral", "--json"], scheduler)


def test_compare_a_refusal_of_a_requested_profile_is_the_same_error(scheduler: str, tmp_path: Path) -> None:
    book = replicated("portfolio-btc", 100, tmp_path)
    result = run("compare", str(book), "--models", "binance-usdm", "--cluster", scheduler)
    assert result.exit_code == 2
    assert_same(["compare", str(book), "--models", "binance-usdm"], scheduler)


def test_backtest_json_is_byte_identical(scheduler: str) -> None:
    out = assert_same(["backtest", str(EXAMPLES / "sp500-long.yaml"), "--profile", "historical-var-99-1d",
                       "--history", "sample:sp500", "--json"], scheduler)
    assert json.loads(out)["days"] > 4_000
