"""`marginkit ledger …` and `marginkit margin --db`: exit 0 ok, 2 bad input (one line), 3 refused lines or mismatch."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from marginkit.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def refused(result: Result, *parts: str) -> None:
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line
    for part in parts:
        assert part in line, line


def test_deposit_withdraw_transfer_balances_journal_verify(backend: str) -> None:
    assert run("ledger", "deposit", "alice", "USD", "100.50", "--key", "d1", "--db", backend).exit_code == 0
    again = run("ledger", "deposit", "alice", "USD", "100.5", "--key", "d1", "--db", backend)
    assert again.exit_code == 0 and "already applied" in again.stdout
    assert run("ledger", "transfer", "alice", "bob", "USD", "20", "--key", "x1", "--db", backend).exit_code == 0
    assert run("ledger", "withdraw", "bob", "USD", "5.25", "--key", "w1", "--db", backend).exit_code == 0

    balances = json.loads(run("ledger", "balances", "--json", "--db", backend).stdout)["balances"]
    journal = json.loads(run("ledger", "journal", "--json", "--db", backend).stdout)["operations"]
    verify = run("ledger", "verify", "--db", backend)

    assert {(r["account"], r["asset"]): r["amount"] for r in balances} == {
        ("@external", "USD"): "-95.25", ("alice", "USD"): "80.5", ("bob", "USD"): "14.75"}
    assert [e["key"] for e in journal] == ["d1", "x1", "w1"]
    assert journal[1]["postings"] == [{"account": "alice", "asset": "USD", "amount": "-20"},
                                      {"account": "bob", "asset": "USD", "amount": "20"}]
    assert verify.exit_code == 0


def test_bad_input_exits_2_with_one_line_naming_the_field(backend: str) -> None:
    run("ledger", "deposit", "alice", "USD", "10", "--key", "d1", "--db", backend)

    refused(run("ledger", "deposit", "alice", "DOGE", "1", "--key", "d2", "--db", backend), "asset", "unknown")
    refused(run("ledger", "deposit", "--key", "d2", "--db", backend, "--", "alice", "USD", "-1"), "amount",
            "positive")
    refused(run("ledger", "deposit", "alice", "USD", "nan", "--key", "d2", "--db", backend), "amount")
    refused(run("ledger", "deposit", "alice", "USD", "1.001", "--key", "d2", "--db", backend), "amount", "decimals")
    refused(run("ledger", "deposit", "alice", "USD", "11", "--key", "d1", "--db", backend), "key", "other content")
    refused(run("ledger", "withdraw", "alice", "USD", "10.01", "--key", "w1", "--db", backend), "amount", "balance")
    assert json.loads(run("ledger", "balances", "alice", "--json", "--db", backend).stdout)["balances"] == [
        {"account": "alice", "asset": "USD", "kind": "asset", "amount": "10"}]


def test_verify_exits_3_on_a_mismatch(tmp_path: Path) -> None:
    db = str(tmp_path / "l.sqlite3")
    run("ledger", "deposit", "alice", "USD", "10", "--key", "d1", "--db", db)
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE ledger_postings SET amount = amount * 2 WHERE account = 'alice'"))
    engine.dispose()

    result = run("ledger", "verify", "--db", db)

    assert result.exit_code == 3
    assert "conservation USD" in result.stdout and "sum to 1000" in result.stdout


def test_apply_reports_refused_lines_and_is_safe_to_rerun(backend: str, tmp_path: Path) -> None:
    run("ledger", "add-asset", "BTC-PERP", "3", "--instrument", "--db", backend)
    lines = [
        {"op": "deposit", "key": "d1", "account": "alice", "asset": "USD", "amount": 1000},
        {"op": "deposit", "key": "d2", "account": "bob", "asset": "USD", "amount": "1000.5"},
        {"op": "trade", "key": "t1", "buyer": "bob", "seller": "alice", "instrument": "BTC-PERP", "quantity": 0.5,
         "price": 95000},
        {"op": "fee", "key": "f1", "account": "alice", "asset": "USD", "amount": 1.25},
        {"op": "funding", "key": "fu1", "account": "bob", "asset": "USD", "amount": -2, "instrument": "BTC-PERP"},
        {"op": "withdraw", "key": "w1", "account": "alice", "asset": "USD", "amount": 10},
        {"op": "deposit", "key": "bad", "account": "alice", "asset": "USD", "amount": 1.001},
        {"op": "transfer", "key": "x1", "from": "carol", "to": "bob", "asset": "USD", "amount": 1},
    ]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")

    first = run("ledger", "apply", str(batch), "--db", backend)
    second = run("ledger", "apply", str(batch), "--db", backend, "--json")

    assert first.exit_code == 3
    assert "5 applied, 0 already applied, 4 refused" in first.stdout
    assert ":6 (w1) refused: amount: the account holds positions" in first.stdout
    assert ":7 (bad) refused: amount:" in first.stdout and ":9 (no key) refused" in first.stdout
    report = json.loads(second.stdout)
    assert second.exit_code == 3 and (report["applied"], report["duplicate"], report["refused"]) == (0, 5, 4)
    assert run("ledger", "verify", "--db", backend).exit_code == 0


def test_margin_of_the_stored_accounts_and_a_margin_checked_withdrawal(backend: str, tmp_path: Path) -> None:
    book = yaml.safe_load((EXAMPLES / "usd-perpetuals.yaml").read_text())
    del book["accounts"]
    market = tmp_path / "market.yaml"
    market.write_text(yaml.safe_dump(book))
    run("ledger", "add-asset", "BTC-USD-PERP", "0", "--instrument", "--db", backend)
    run("ledger", "deposit", "alice", "USDC", "20000", "--key", "d1", "--db", backend)
    run("ledger", "deposit", "bob", "USDC", "20000", "--key", "d2", "--db", backend)
    batch = tmp_path / "t.jsonl"
    batch.write_text(json.dumps({"op": "trade", "key": "t1", "buyer": "bob", "seller": "alice",
                                 "instrument": "BTC-USD-PERP", "quantity": 2500, "price": 94000}) + "\n")
    assert run("ledger", "apply", str(batch), "--db", backend).exit_code == 0

    margin = run("margin", "--db", backend, "--market", str(market), "--json")
    document = json.loads(margin.stdout)
    alice = document["accounts"][0]
    # alice short 2,500 from 94,000: equity 20,000 - 2,500 × 0.001 × (95,012.5 - 94,000) = 17,468.75 USD
    assert margin.exit_code == 0, margin.stderr
    assert [a["id"] for a in document["accounts"]] == ["alice", "bob"]
    assert abs(alice["equity"] - 17468.75) < 1e-6
    free = alice["equity"] - alice["initial_margin"]

    too_much = run("ledger", "withdraw", "alice", "USDC", f"{int(free) + 1}", "--key", "w1", "--db", backend,
                   "--market", str(market))
    fits = run("ledger", "withdraw", "alice", "USDC", f"{int(free) - 1}", "--key", "w1", "--db", backend,
               "--market", str(market))

    refused(too_much, "amount", "initial margin")
    assert fits.exit_code == 0, fits.stderr
    refused(run("margin", "--db", backend), "--market")
    refused(run("margin"), "BOOK")
