"""Ledger throughput: operations per second on SQLite and PostgreSQL, single and batched.

Reference in the same run: raw SQLAlchemy executemany inserts of the same number of journal rows
(one operation row + two posting rows each) with no validation, idempotency or balances — the floor
the ledger's bookkeeping is measured against. PostgreSQL: MARGINKIT_BENCH_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test, a scratch schema dropped afterwards); skipped if unreachable.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

from marginkit.ledger import Ledger, Operation, make_operation, store

POSTGRES = os.environ.get("MARGINKIT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SINGLE = 2_000
BATCHED = 50_000


def operations(count: int, seed: int, prefix: str) -> list[Operation]:
    """Deposits, transfers and trades in equal parts among 100 accounts."""
    rng = random.Random(seed)
    accounts = [f"acct{i}" for i in range(100)]
    result = [make_operation("deposit", f"{prefix}-fund-{a}", {"account": a, "asset": "USD", "amount": "1000000"})
              for a in accounts]
    for i in range(count - len(result)):
        a, b = rng.sample(accounts, 2)
        key = f"{prefix}-{i}"
        kind = i % 3
        if kind == 0:
            result.append(make_operation("deposit", key, {"account": a, "asset": "USD", "amount": "10.25"}))
        elif kind == 1:
            result.append(make_operation("transfer", key, {"from": a, "to": b, "asset": "USD", "amount": "1.5"}))
        else:
            result.append(make_operation("trade", key, {"buyer": a, "seller": b, "instrument": "BTC-PERP",
                                                        "quantity": "0.001", "price": "95000",
                                                        "cash_asset": "USD", "cash_amount": "0.95"}))
    return result


def timed(label: str, count: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    rate = count / seconds
    print(f"  {label:<48} {count:>7} ops {seconds:>8.2f} s {rate:>12,.0f} ops/s")
    return rate


def raw_reference(url: str, count: int) -> float:
    """Raw executemany of `count` operation rows and 2 × `count` posting rows in one transaction."""
    engine = store.create_ledger_engine(url)
    store.upgrade(engine)
    rows = [{"key": f"raw-{i}", "kind": "deposit", "content_hash": "0" * 64, "body": "{}"} for i in range(count)]

    def work() -> None:
        with engine.begin() as connection:
            ids = connection.execute(store.operations.insert().returning(store.operations.c.id,
                                                                         sort_by_parameter_order=True),
                                     rows).scalars().all()
            connection.execute(store.postings.insert(), [
                {"operation_id": i, "account": account, "asset": "USD", "amount": amount}
                for i in ids for account, amount in (("@external", -1025), ("acct0", 1025))])

    rate = timed("reference: raw inserts, one transaction", count, work)
    engine.dispose()
    return rate


def bench(name: str, url: str) -> None:
    print(f"{name}:")
    reference = raw_reference(url, BATCHED)
    with Ledger.open(url) as ledger:
        ledger.add_asset("BTC-PERP", 3, "instrument")
        single = operations(SINGLE, 1, "single")
        timed("ledger: one operation per transaction", SINGLE, lambda: [ledger.apply([op]) for op in single])
        batch = operations(BATCHED, 2, "batch")
        rate = timed("ledger: batches of 1,000 per transaction", BATCHED, lambda: ledger.apply(batch, chunk=1000))
        timed("ledger: replay of the same batch (all duplicates)", BATCHED, lambda: ledger.apply(batch, chunk=1000))
        count = sum(1 for _ in ledger.journal())
        timed("ledger: verify (replay every operation)", count, ledger.verify)
    print(f"  batched ledger / raw reference: {rate / reference:.2f}x")


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        bench("SQLite (WAL, file)", str(Path(directory) / "bench.sqlite3"))
    admin = create_engine(POSTGRES)
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        print(f"PostgreSQL: skipped ({type(error).__name__}: unreachable at {POSTGRES})")
        return 0
    schema = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        bench("PostgreSQL (localhost)", f"{POSTGRES}?options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
