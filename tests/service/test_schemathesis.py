"""Schemathesis against the OpenAPI document (operator key): no generated input makes a 5xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marginkit.ledger import Ledger
from marginkit.profiles import shipped_profile
from marginkit.service import create_app
from tests.service.conftest import KEYS, market_spec


def test_no_5xx_on_generated_requests(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.add_asset("BTC-USD-PERP", 0, "instrument")
    ledger.deposit("alice", "USDC", "20000", key="d1")
    app = create_app(ledger, market_spec(), shipped_profile("binance-usdm"), KEYS)
    # the event stream is a long-lived response: tested by hand in test_routes
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/events")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    seen: set[str] = set()

    @given(case=st.one_of([operation.as_strategy() for operation in operations]))
    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call(headers={"X-API-Key": "op-key"})
        seen.add(f"{case.method} {case.path}")
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)
        assert "json" in str(response.headers.get("content-type"))

    try:
        check()
    finally:
        ledger.close()
    assert len(seen) >= 6
