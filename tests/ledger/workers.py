"""Worker processes for the concurrency test (importable by spawned processes)."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from marginkit.ledger import AccountSnapshot, Ledger, WithdrawalRefused

INITIAL_MARGIN = Decimal("400")


def covers_initial_margin(snapshot: AccountSnapshot) -> bool:
    """Free collateral = USD balance - a fixed initial margin of 400 must stay >= 0."""
    return snapshot.collateral.get("USD", Decimal(0)) >= INITIAL_MARGIN


def withdraw_many(url: str, worker: int, barrier: Any) -> None:
    with Ledger.open(url) as ledger:
        ledger.assets()
        barrier.wait()
        for i in range(10):
            with contextlib.suppress(WithdrawalRefused):
                ledger.withdraw("alice", "USD", "25", key=f"w{worker}-{i}", margin_check=covers_initial_margin)
