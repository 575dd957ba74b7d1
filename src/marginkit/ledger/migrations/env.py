"""Alembic environment: runs on the connection `marginkit.ledger.store.upgrade` passes in."""

from __future__ import annotations

from alembic import context

from marginkit.ledger.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - `alembic` run by hand: use sqlalchemy.url from alembic.ini
    from sqlalchemy import engine_from_config, pool

    engine = engine_from_config(context.config.get_section(context.config.config_ini_section) or {},
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
