"""`marginkit collateral` and `--collateral` on margin/compare (docs/collateral.md); bad input exits 2.

Published figures restated from crypto-venues.md (g) (vectors `bitget.collateral.*`, `bit.collateral.*`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from marginkit.cli import app

Data = dict[str, Any]

BITGET_BOOK: Data = {
    "as_of": "2026-11-24T08:00:00Z",
    "instruments": [],
    "market": {"index": {"BTC": 50000, "APT": 1, "USDT": 1}},
    "accounts": [
        {"id": "x", "mode": "cross", "collateral": {"BTC": 1, "APT": 60000}},
        {"id": "y", "mode": "cross", "collateral": {"USDT": 11000000}},
    ],
}

PERP_BOOK: Data = {
    "as_of": "2026-11-24T08:00:00Z",
    "instruments": [
        {"id": "BTC-USDT-PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "USDT",
         "inverse": False, "contract_size": 0.001},
    ],
    "market": {"index": {"BTC": 95000.0, "USDT": 1.0, "XYZ": 1.0}},
    "accounts": [
        {"id": "alice", "mode": "cross", "collateral": {"XYZ": 20000},
         "positions": [{"instrument": "BTC-USDT-PERP", "quantity": 10000, "entry_price": 95000}]},
    ],
}

XYZ_PROFILE: Data = {
    "model": "collateral",
    "name": "xyz-collateral",
    "version": "test",
    "source": "written for this test",
    "parameters": {
        "assets": {"XYZ": {"schedule": "flat", "initial_haircut": 0.9, "maintenance_haircut": 0.5}},
        "credit_tiers": {"tiers": {"restricted": {"initial_margin_multiplier": 1.5}}},
    },
}


def write(tmp_path: Path, name: str, data: Data) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_collateral_command_reproduces_the_bitget_vectors(tmp_path: Path) -> None:
    # bitget.collateral.btc_plus_apt → 90,000; bitget.collateral.usdt_11m → 10,875,000 (published).
    book = write(tmp_path, "book.json", BITGET_BOOK)

    result = run("collateral", str(book), "--collateral", "bitget-collateral", "--json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["collateral_profile"] == "bitget-collateral"
    x, y = document["accounts"]
    assert x["initial_value_usd"] == pytest.approx(90000, abs=1e-6)
    assert y["maintenance_value_usd"] == pytest.approx(10875000, abs=1e-6)
    apt = next(row for row in x["balances"] if row["asset"] == "APT")
    # 60,000 APT worth 60,000 counts 40,000: haircut 1/3 by the banded schedule.
    assert apt["initial_value_usd"] == pytest.approx(40000)
    assert apt["haircut_initial"] == pytest.approx(1 / 3)
    assert apt["schedule"] == "banded" and apt["chain"] is None
    assert apt["reasons"] and apt["reasons"][0].startswith("banded schedule")


def test_collateral_command_reproduces_the_bit_vector(tmp_path: Path) -> None:
    # bit.collateral.um_account (published): total 462,971.4456 (tolerance 0.001).
    index = {"BTC": 37496.76318, "FLOKI": 3.2118265e-05, "IOTX": 0.02507838032, "PEPE": 1.109749128e-06,
             "RSS3": 0.1497739099, "USDT": 1.000296667}
    balances = {"BTC": 3.136088934, "FLOKI": 14000, "IOTX": 5, "PEPE": 100000, "RSS3": 4, "USDT": 347974.9709}
    book = write(tmp_path, "book.yaml", {"as_of": "2026-11-24T08:00:00Z", "instruments": [],
                                         "market": {"index": index},
                                         "accounts": [{"id": "um", "mode": "cross", "collateral": balances}]})

    result = run("collateral", str(book), "--collateral", "bit-collateral", "--json")

    assert result.exit_code == 0, result.stderr
    (um,) = json.loads(result.stdout)["accounts"]
    assert um["initial_value_usd"] == pytest.approx(462971.4456, abs=1e-3)
    by_asset = {row["asset"]: row["initial_value_usd"] for row in um["balances"]}
    assert by_asset["BTC"] == pytest.approx(115241.3204, abs=1e-3)
    assert by_asset["FLOKI"] == 0


def test_collateral_command_table_and_no_profile(tmp_path: Path) -> None:
    book = write(tmp_path, "book.json", BITGET_BOOK)

    table = run("collateral", str(book), "--collateral", "bitget-collateral")
    plain = run("collateral", str(book), "--json")

    assert table.exit_code == 0 and "90,000" in table.stdout
    document = json.loads(plain.stdout)
    assert document["collateral_profile"] is None
    assert document["accounts"][0]["initial_value_usd"] == pytest.approx(110000)


def test_collateral_command_shows_chains(tmp_path: Path) -> None:
    # USDT 10,000: tron 4,000 (halted), the rest on no chain; example profile: USDT IM haircut 0.01, tron add-on
    # 0.01. Tron: IM 0, MM 4,000 × 0.99 = 3,960.
    data = copy.deepcopy(BITGET_BOOK)
    data["market"]["chain_status"] = {"tron": "halted"}
    data["accounts"] = [{"id": "z", "mode": "cross", "collateral": {"USDT": 10000},
                         "collateral_chains": {"USDT": {"tron": 4000}}}]
    book = write(tmp_path, "book.json", data)

    result = run("collateral", str(book), "--collateral", "example-cross-chain-collateral", "--json")

    assert result.exit_code == 0, result.stderr
    rows = {row["chain"]: row for row in json.loads(result.stdout)["accounts"][0]["balances"]}
    assert rows["tron"]["initial_value_usd"] == 0
    assert rows["tron"]["maintenance_value_usd"] == pytest.approx(3960)
    assert rows["tron"]["halted"] is True
    assert "chain halted: 0 for initial margin" in rows["tron"]["reasons"]
    assert rows[None]["initial_value_usd"] == pytest.approx(5940)


def margin(*args: str) -> Data:
    result = run("margin", *args, "--json")
    assert result.exit_code == 0, result.stderr
    document: Data = json.loads(result.stdout)
    return document


def test_margin_with_collateral_compares_initial_and_maintenance_equity(tmp_path: Path) -> None:
    # 20,000 XYZ @ 1, a BTC perpetual entered at the index (P&L 0). Without a profile equity 20,000 covers IM.
    # With XYZ initial haircut 0.9 and maintenance 0.5: equity_initial 2,000, equity_maintenance 10,000;
    # equity (no haircut) stays 20,000.
    book = write(tmp_path, "book.json", PERP_BOOK)
    profile = write(tmp_path, "xyz.yaml", XYZ_PROFILE)

    plain = margin(str(book))["accounts"][0]
    haircut = margin(str(book), "--collateral", str(profile))
    alice = haircut["accounts"][0]

    assert "equity_initial" not in plain and plain["status"] == "healthy"
    assert haircut["collateral_profile"] == "xyz-collateral"
    assert alice["equity"] == plain["equity"] == pytest.approx(20000)
    assert alice["equity_initial"] == pytest.approx(2000)
    assert alice["equity_maintenance"] == pytest.approx(10000)
    assert alice["initial_margin"] == pytest.approx(plain["initial_margin"])
    assert alice["components"]["credit_tier_multiplier"] == 1.0
    # MM ≤ equity_maintenance 10,000, equity_initial 2,000 < IM ≤ equity 20,000: healthy → margin_call.
    assert alice["maintenance_margin"] <= 10000 and 2000 < alice["initial_margin"] <= 20000
    assert alice["status"] == "margin_call"
    assert alice["margin_ratio"] == pytest.approx(alice["maintenance_margin"] / 10000)
    # The tiered model's liquidation price reads the maintenance valuation: less collateral, closer to the mark.
    assert alice["positions"][0]["liquidation_price"] > plain["positions"][0]["liquidation_price"]


def test_margin_credit_tier_scales_initial_margin(tmp_path: Path) -> None:
    data = copy.deepcopy(PERP_BOOK)
    data["accounts"][0]["credit_tier"] = "restricted"
    book = write(tmp_path, "book.json", data)
    profile = write(tmp_path, "xyz.yaml", XYZ_PROFILE)

    plain = margin(str(book))["accounts"][0]
    alice = margin(str(book), "--collateral", str(profile))["accounts"][0]

    assert alice["credit_tier"] == "restricted"
    assert alice["initial_margin"] == pytest.approx(1.5 * plain["initial_margin"])
    assert alice["components"]["model_initial_margin"] == pytest.approx(plain["initial_margin"])
    assert alice["maintenance_margin"] == pytest.approx(plain["maintenance_margin"])


def test_compare_with_collateral(tmp_path: Path) -> None:
    book = write(tmp_path, "book.json", PERP_BOOK)

    result = run("compare", str(book), "--models", "binance-usdm", "--collateral", "bit-collateral", "--json")

    assert result.exit_code == 0, result.stderr
    (binance,) = json.loads(result.stdout)["results"]
    assert binance["collateral_profile"] == "bit-collateral"
    assert "equity_initial" in binance["accounts"][0]


# --- Bad input: exit 2, one line naming the file and the field ---------------------------------------------

def fails(result: Result, *parts: str) -> None:
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line
    for part in parts:
        assert part in line, line


@pytest.mark.parametrize(("change", "field"), [
    (lambda p: p["parameters"]["assets"]["XYZ"].update(initial_haircut=1.5), "parameters.assets.XYZ"),
    (lambda p: p["parameters"]["assets"].update(BTC={"schedule": "banded", "bands": [
        {"up_to": 10, "ratio": 1.0}, {"up_to": 5, "ratio": 0.5}]}), "parameters.assets.BTC"),
    (lambda p: p["parameters"]["assets"].update(BTC={"schedule": "tiered", "bands": [
        {"up_to": 10, "ratio": 1.2}]}), "parameters.assets.BTC.bands[0].ratio"),
    (lambda p: p["parameters"]["assets"].update(BTC={"schedule": "flat", "haircut": 0.1, "bands": []}),
     "parameters.assets.BTC"),
    (lambda p: p["parameters"].update(chains={"tron": {"finality_seconds": -1}}),
     "parameters.chains.tron.finality_seconds"),
    (lambda p: p["parameters"].update(chains={"tron": {"add_on": 0.1}}), "parameters.chains.tron.add_on"),
    (lambda p: p["parameters"]["credit_tiers"].update(default="gold"), "parameters.credit_tiers"),
    (lambda p: p["parameters"]["credit_tiers"]["tiers"]["restricted"].update(concentration_limit=0),
     "parameters.credit_tiers.tiers.restricted.concentration_limit"),
    (lambda p: p.update(model="tiered"), "model"),
])
def test_malformed_collateral_profile(tmp_path: Path, change: Any, field: str) -> None:
    profile_data = copy.deepcopy(XYZ_PROFILE)
    change(profile_data)
    book = write(tmp_path, "book.json", PERP_BOOK)
    profile = write(tmp_path, "bad.yaml", profile_data)

    fails(run("collateral", str(book), "--collateral", str(profile)), "bad.yaml", field)
    fails(run("margin", str(book), "--collateral", str(profile)), "bad.yaml", field)


@pytest.mark.parametrize(("change", "field"), [
    (lambda a, m: a.update(collateral_chains={"BTC": {"bitcoin": 1}}), "accounts[0].collateral_chains.BTC"),
    (lambda a, m: a.update(collateral_chains={"XYZ": {"tron": 30000}}), "accounts[0].collateral_chains.XYZ"),
    (lambda a, m: a.update(collateral_chains={"XYZ": {"tron": -1}}), "accounts[0].collateral_chains.XYZ.tron"),
    (lambda a, m: a.update(collateral_chains={"XYZ": {"tron": 10}}, deposits=[
        {"asset": "XYZ", "chain": "solana", "amount": 1, "time": "2026-11-24T07:00:00Z"}]),
     "accounts[0].deposits[0].chain"),
    (lambda a, m: a.update(collateral_chains={"XYZ": {"tron": 10}}, deposits=[
        {"asset": "XYZ", "chain": "tron", "amount": 1, "time": "2026-11-24T09:00:00Z"}]),
     "accounts[0].deposits[0].time"),
    (lambda a, m: a.update(collateral_chains={"XYZ": {"tron": 10}}, deposits=[
        {"asset": "XYZ", "chain": "tron", "amount": 11, "time": "2026-11-24T07:00:00Z"}]),
     "accounts[0].deposits[0].amount"),
    (lambda a, m: a.update(credit_tier=""), "accounts[0].credit_tier"),
    (lambda a, m: m.update(chain_status={"tron": "paused"}), "market.chain_status.tron"),
])
def test_malformed_book_fields(tmp_path: Path, change: Any, field: str) -> None:
    data = copy.deepcopy(PERP_BOOK)
    change(data["accounts"][0], data["market"])
    book = write(tmp_path, "book.json", data)

    fails(run("collateral", str(book)), "book.json", field)
    fails(run("margin", str(book)), "book.json", field)


def test_book_and_profile_that_disagree_name_the_book_field(tmp_path: Path) -> None:
    data = copy.deepcopy(PERP_BOOK)
    data["accounts"][0]["credit_tier"] = "gold"
    data["accounts"][0]["collateral_chains"] = {"XYZ": {"base": 5}}
    book = write(tmp_path, "book.json", data)

    fails(run("margin", str(book), "--collateral", "example-cross-chain-collateral"), "book.json",
          "accounts[0].collateral_chains.XYZ.base")
    del data["accounts"][0]["collateral_chains"]
    book = write(tmp_path, "book.json", data)
    fails(run("collateral", str(book), "--collateral", "example-cross-chain-collateral"), "book.json",
          "accounts[0].credit_tier", "gold")


def test_unknown_collateral_profile_and_misplaced_profiles(tmp_path: Path) -> None:
    book = write(tmp_path, "book.json", PERP_BOOK)

    fails(run("collateral", str(book), "--collateral", "nope"), "--collateral", "bitget-collateral")
    fails(run("margin", str(book), "--collateral", "binance-usdm"), "binance-usdm", "model")
    fails(run("margin", str(book), "--profile", "bitget-collateral"), "--profile", "--collateral")
    fails(run("compare", str(book), "--models", "bit-collateral"), "--models")
