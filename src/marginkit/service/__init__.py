"""The HTTP API (FastAPI): accounts, ledger operations, margin, what-if, liquidations, events; API-key auth."""

from marginkit.service.app import EventBus, create_app, generate_key, load_keys

__all__ = ["EventBus", "create_app", "generate_key", "load_keys"]
