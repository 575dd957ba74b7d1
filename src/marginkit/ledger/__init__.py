"""The ledger: a double-entry journal in exact decimals, idempotent, persisted through SQLAlchemy.

`Ledger.open(db)` opens SQLite (default file) or PostgreSQL (URL); operations are deposits,
withdrawals (margin-checked by a function the caller passes in), transfers, trades, fees, funding,
realised P&L, variation margin, liquidation transfers and insurance-fund movements. Imports only
the domain (and marginkit.errors); no model.
"""

from marginkit.ledger.journal import (
    DEFAULT_ASSETS,
    EXTERNAL,
    FEES,
    FUNDING,
    INSURANCE,
    SETTLEMENT,
    AccountSnapshot,
    Asset,
    IdempotencyConflict,
    LedgerRefusal,
    MarginCheck,
    Operation,
    Posting,
    WithdrawalRefused,
    make_operation,
    round_credit,
    round_requirement,
)
from marginkit.ledger.service import JournalEntry, Ledger, Result

__all__ = [
    "DEFAULT_ASSETS",
    "EXTERNAL",
    "FEES",
    "FUNDING",
    "INSURANCE",
    "SETTLEMENT",
    "AccountSnapshot",
    "Asset",
    "IdempotencyConflict",
    "JournalEntry",
    "Ledger",
    "LedgerRefusal",
    "MarginCheck",
    "Operation",
    "Posting",
    "Result",
    "WithdrawalRefused",
    "make_operation",
    "round_credit",
    "round_requirement",
]
