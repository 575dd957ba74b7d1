"""The ledger schema: assets, accounts, operations (unique idempotency key), postings, balances.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: INTEGER PRIMARY KEY is the rowid
SHIPPED_ASSETS = {"USD": 2, "USDT": 6, "USDC": 6, "BTC": 8, "ETH": 8, "SOL": 8}


def upgrade() -> None:
    assets = op.create_table(
        "ledger_assets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("decimals", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.CheckConstraint("decimals >= 0 AND decimals <= 18", name="ck_ledger_assets_decimals"),
    )
    op.create_table("ledger_accounts", sa.Column("id", sa.String(64), primary_key=True))
    op.create_table(
        "ledger_operations",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("key", name="uq_ledger_operations_key"),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("operation_id", sa.BigInteger, sa.ForeignKey("ledger_operations.id"), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(64), sa.ForeignKey("ledger_assets.name"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ledger_postings_operation", "ledger_postings", ["operation_id"])
    op.create_index("ix_ledger_postings_account_asset", "ledger_postings", ["account", "asset"])
    op.create_table(
        "ledger_balances",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("asset", sa.String(64), sa.ForeignKey("ledger_assets.name"), primary_key=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(assets, [{"name": n, "decimals": d, "kind": "asset"} for n, d in SHIPPED_ASSETS.items()])


def downgrade() -> None:
    for table in ("ledger_balances", "ledger_postings", "ledger_operations", "ledger_accounts", "ledger_assets"):
        op.drop_table(table)
