"""`marginkit ccp settle` and `ccp margin` on the example clearing house, through a Typer app holding ccp_app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from marginkit.clearing.commands import ccp_app
from marginkit.clearing.cycle_file import load_cycle
from marginkit.errors import InputError
from marginkit.ledger import Ledger

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ccp"
HOUSE = str(EXAMPLES / "clearing-house.yaml")
DAY1 = str(EXAMPLES / "prices-day1.yaml")
DAY2 = str(EXAMPLES / "prices-day2.yaml")


@pytest.fixture
def app() -> typer.Typer:
    application = typer.Typer()
    application.add_typer(ccp_app, name="ccp")
    return application


def test_settle_prints_the_netting_table_and_a_rerun_changes_nothing(app: typer.Typer, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    runner = CliRunner()

    first = runner.invoke(app, ["ccp", "settle", HOUSE, "--prices", DAY1, "--prices", DAY2, "--db", db, "--json"])
    with Ledger.open(db) as ledger:
        journal = [e.key for e in ledger.journal()]
        assert ledger.verify() == []
    again = runner.invoke(app, ["ccp", "settle", HOUSE, "--prices", DAY1, "--prices", DAY2, "--db", db])

    assert first.exit_code == 0, first.output
    document = json.loads(first.output)
    day1, day2 = document["cycles"]
    assert (day1["ledger_status"], day1["key"]) == ("applied", "example-ccp:vm:USD:2026-11-24T16:00:00Z")
    assert day1["paid"] == day1["collected"]
    assert {m["member"] for m in day1["members"]} == {"M1", "M2", "M3"}
    # M1.C1 (client of M1): long 5 BTC-PERP from 95,010 to 95,630 = 3,100; bought 2 at 95,250.5: 759;
    # funding −7 × 95,630 × 0.0001 = −66.941: 3,792.059 → 3,792.05 (a credit rounds down).
    assert day1["payments"]["M1.C1"] == "3792.05"
    assert [c["account"] for c in day1["calls"]] == ["M3.house"]
    assert [d["member"] for d in day2["defaults"]] == ["M3"]  # its call expired unmet before the second cycle
    assert again.exit_code == 0, again.output
    assert "ledger: duplicate" in again.output
    assert "netting efficiency" in again.output
    with Ledger.open(db) as ledger:
        assert [e.key for e in ledger.journal()] == journal


def test_margin_prints_each_account_and_member(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["ccp", "margin", HOUSE, "--json"])

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert [a["account"] for a in document["accounts"]] == ["M1.house", "M1.C1", "M2.house", "M3.house"]
    m1 = next(m for m in document["members"] if m["member"] == "M1")
    assert m1["initial_margin"] == pytest.approx(sum(a["initial_margin"] for a in document["accounts"]
                                                     if a["member"] == "M1"))
    table = CliRunner().invoke(app, ["ccp", "margin", HOUSE])
    assert table.exit_code == 0 and "member total" in table.output


def test_a_bad_cycle_file_exits_2_naming_the_file_and_field(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('time: "2026-11-24T16:00:00Z"\nprices: {BTC-FUT-DEC26: .nan}\n')
    db = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"

    result = CliRunner().invoke(app, ["ccp", "settle", HOUSE, "--prices", str(bad), "--db", db])

    assert result.exit_code == 2
    assert "bad.yaml: prices.BTC-FUT-DEC26: must be finite" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_instrument_in_a_cycle_file_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "unknown.yaml"
    bad.write_text('time: "2026-11-24T16:00:00Z"\nprices: {DOGE: 1}\n')
    db = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"

    result = CliRunner().invoke(app, ["ccp", "settle", HOUSE, "--prices", str(bad), "--db", db])

    assert result.exit_code == 2
    assert "unknown.yaml: prices.DOGE: unknown instrument" in result.output


@pytest.mark.parametrize(("text", "field"), [
    ('prices: {X: 1}\n', "time"),
    ('time: "2026-11-24T16:00:00"\nprices: {X: 1}\n', "time"),
    ('time: "2026-11-24T16:00:00Z"\nprices: {}\n', "prices"),
    ('time: "2026-11-24T16:00:00Z"\nprices: {X: -1}\n', "prices.X"),
    ('time: "2026-11-24T16:00:00Z"\nprices: {X: 1}\nindex: {BTC: 0}\n', "index.BTC"),
    ('time: "2026-11-24T16:00:00Z"\nprices: {X: 1}\ntrades: [{id: T, buyer: A, seller: B, instrument: X, '
     'quantity: 0, price: 1}]\n', "trades[0].quantity"),
    ('time: "2026-11-24T16:00:00Z"\nprices: {X: 1}\nextra: 1\n', "extra"),
])
def test_cycle_files_are_validated_by_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(text)

    with pytest.raises(InputError) as refusal:
        load_cycle(path)

    assert refusal.value.field == field
    assert refusal.value.file == str(path)


def test_the_example_cycle_files_load() -> None:
    cycle = load_cycle(DAY1)

    assert cycle.prices["BTC-PERP"] == 95_630
    assert cycle.funding_rates == {"BTC-PERP": 0.0001}
    assert [t.id for t in cycle.trades] == ["T-0001"]
