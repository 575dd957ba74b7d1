"""Crash safety (SIGKILL mid-batch, rerun: each operation exactly once) and concurrent withdrawals."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from marginkit.ledger import Ledger
from marginkit.ledger.commands import _parse_line
from marginkit.ledger.journal import Operation
from tests.ledger import workers

BATCH = 3000


def batch_lines(seed: int) -> list[str]:
    rng = random.Random(seed)
    accounts = [f"a{i}" for i in range(20)]
    # Every account is funded first, so no withdrawal depends on how far an earlier run got (a refused line
    # leaves no trace and is decided again on a rerun); the unknown-asset lines are refused every time.
    lines = [json.dumps({"key": f"fund-{a}", "op": "deposit", "account": a, "asset": "USD", "amount": "1000000"})
             for a in accounts]
    for i in range(BATCH):
        account, other = rng.sample(accounts, 2)
        amount = f"{rng.randint(1, 50000) / 100:.2f}"
        roll = rng.random()
        if roll < 0.4:
            op = {"op": "deposit", "account": account, "asset": "USD", "amount": amount}
        elif roll < 0.6:
            op = {"op": "transfer", "from": account, "to": other, "asset": "USD", "amount": amount}
        elif roll < 0.7:
            op = {"op": "fee", "account": account, "asset": "USD", "amount": "0.01"}
        elif roll < 0.72:
            op = {"op": "deposit", "account": account, "asset": "DOGE", "amount": amount}
        else:
            op = {"op": "withdraw", "account": account, "asset": "USD", "amount": amount}
        lines.append(json.dumps({"key": f"k{i}", **op}))
    return lines


def count_operations(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM ledger_operations")).scalar_one())
    except Exception:
        return 0
    finally:
        engine.dispose()


def test_a_batch_killed_at_random_points_and_rerun_applies_every_operation_exactly_once(
    backend: str, tmp_path: Path,
) -> None:
    lines = batch_lines(seed=7)
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    Ledger.open(backend).close()  # schema in place, so the writer's progress can be watched
    command = [sys.executable, "-m", "marginkit", "ledger", "apply", str(batch), "--db", backend, "--chunk", "20"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    rng = random.Random(11)
    kills = 0
    for target in sorted(rng.sample(range(100, BATCH - 200), 3)):
        writer = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while writer.poll() is None and count_operations(backend) < target and time.monotonic() < deadline:
            time.sleep(0.005)
        if writer.poll() is None:
            writer.send_signal(signal.SIGKILL)
            kills += 1
        writer.wait()
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert kills >= 2
    assert final.returncode in (0, 3), final.stderr
    # The reference: the same batch applied once, uninterrupted, to a fresh ledger.
    operations = [item for item in map(_parse_line, lines) if isinstance(item, Operation)]
    with Ledger.open(str(tmp_path / "reference.sqlite3")) as reference:
        expected = reference.apply(operations, chunk=BATCH)
        expected_balances = reference.balances()
    with Ledger.open(backend) as ledger:
        stored = [entry.key for entry in ledger.journal()]
        balances = ledger.balances()
        problems = ledger.verify()
    applied = [r.key for r in expected if r.status == "applied"]
    assert 0 < sum(r.status == "refused" for r in expected) < BATCH // 20
    assert len(set(stored)) == len(stored)
    assert stored == applied  # every accepted operation exactly once, in the batch's order
    assert balances == expected_balances
    assert problems == []


def test_eight_processes_withdrawing_the_same_free_collateral_never_exceed_the_margin_rule(backend: str) -> None:
    # 1,000 USD, initial margin 400: free collateral 600. 8 processes × 10 withdrawals of 25 = 2,000 asked for.
    with Ledger.open(backend) as ledger:
        ledger.deposit("alice", "USD", "1000", key="seed")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(8)
    processes = [context.Process(target=workers.withdraw_many, args=(backend, w, barrier)) for w in range(8)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    with Ledger.open(backend) as ledger:
        balance = ledger.balances("alice")["alice"]["USD"]
        withdrawals = [e for e in ledger.journal() if e.kind == "withdraw"]
        problems = ledger.verify()

    assert balance == Decimal("1000") - 25 * len(withdrawals)
    assert balance >= workers.INITIAL_MARGIN
    assert len(withdrawals) == 24  # exactly the free collateral: 600 / 25
    assert problems == []


@pytest.fixture(autouse=True)
def _spawn_safe() -> None:
    """The workers are spawned: they import tests.ledger.workers from the repository root."""
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:  # pragma: no cover
        sys.path.insert(0, root)
