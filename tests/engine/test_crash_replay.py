"""A 50 % crash over 10,000 accounts, replayed from a file: every account ends healthy or closed, no negative
equity without an insurance-fund or ADL entry in the ledger, and `marginkit ledger verify` clean."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from marginkit.cli import app
from marginkit.engine import AdlEvent, Liquidation, MonitorSettings, replay
from marginkit.engine.state import HEALTHY
from marginkit.ledger import Ledger
from tests.engine.helpers import book_spec, engine

SYMBOLS = ("BTC", "ETH", "SOL", "XRP")
INDEX = {"BTC": 100_000.0, "ETH": 4_000.0, "SOL": 200.0, "XRP": 2.0}


def crash_book(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Accounts with 1 to 3 positions, 70 % long, leverage 1.5x to 9x, cross or isolated."""
    rng = np.random.default_rng(seed)
    accounts = []
    for n in range(count):
        held = rng.choice(len(SYMBOLS), size=int(rng.integers(1, 4)), replace=False)
        positions = []
        notional = 0.0
        for h in sorted(held.tolist()):
            symbol = SYMBOLS[h]
            value = float(rng.uniform(1_000, 50_000))
            side = 1.0 if rng.random() < 0.7 else -1.0
            entry = INDEX[symbol] * float(rng.uniform(0.97, 1.03))
            positions.append({"instrument": f"{symbol}-USDT", "quantity": side * value / entry, "entry_price": entry})
            notional += value
        leverage = float(rng.uniform(1.5, 9.0))
        accounts.append({"id": f"a{n:05d}", "mode": "cross" if rng.random() < 0.6 else "isolated",
                         "collateral": {"USDT": round(notional / leverage, 2)}, "positions": positions})
    return accounts


def crash_path(path: Path) -> None:
    """Every underlying falls 50 % in an hour, in 5 % gaps every 6 minutes (prices every minute), then holds
    for 20 minutes (margin calls expire). Gaps leave deficits; a fund of 0 needs ADL."""
    start = 1_795_507_200.0  # 2026-11-24T08:00:00Z
    lines = []
    for step in range(1, 81):
        level = 1.0 - 0.05 * min(step // 6, 10)
        for symbol in SYMBOLS:
            lines.append(json.dumps({"time": start + 60.0 * step, "underlying": symbol,
                                     "price": INDEX[symbol] * level}))
    path.write_text("\n".join(lines) + "\n")


def test_a_50_percent_crash_over_10000_accounts(tmp_path: Path) -> None:
    started = time.perf_counter()
    spec = book_spec(crash_book(10_000), index=INDEX, symbols=SYMBOLS)
    database = tmp_path / "ledger.sqlite3"
    crash_path(tmp_path / "crash.jsonl")
    with Ledger.open(f"sqlite:///{database}") as ledger:
        monitor = engine(spec, ledger, fund="0",
                         monitor=MonitorSettings(margin_call_seconds=600.0, stale_after_seconds=120.0))
        events = asyncio.run(monitor.run(replay(tmp_path / "crash.jsonl")))
        state = monitor.state
        flat = np.array([state.account_flat(a) for a in range(state.account_count)])
        # Every account healthy or closed.
        assert np.all((state.status == HEALTHY) | flat)
        fills = [e for e in events if isinstance(e, Liquidation)]
        adl = [e for e in events if isinstance(e, AdlEvent)]
        assert len({f.account for f in fills}) > 1_000  # the crash did liquidate
        assert adl, "the fund is small enough for ADL to run"
        # No negative equity without an insurance-fund payout or an ADL transfer to the account in the ledger.
        covered: set[str] = set()
        for entry in ledger.journal():
            body = entry.body
            if body["op"] == "insurance_fund" and body["amount"].startswith("-"):
                covered.add(body["account"])
            if body["op"] == "liquidation_transfer":
                covered.add(body["to"])
        balances = ledger.balances()
        equity = state.account_equity()
        for a, account in enumerate(state.account_ids):
            ledger_cash = float(balances.get(account, {}).get("USDT", 0))
            engine_cash = float(state.free_cash[a] + state.scope_cash[state.account_scope_ptr[a]:
                                                                      state.account_scope_ptr[a + 1]].sum())
            assert abs(ledger_cash - engine_cash) < 1e-4, account
            assert equity[a] >= -1e-6 or account in covered, account
        assert monitor.liquidation is not None and monitor.liquidation.totals.uncovered == 0.0
    result = CliRunner().invoke(app, ["ledger", "verify", "--db", str(database), "--json"])
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - started < 90
