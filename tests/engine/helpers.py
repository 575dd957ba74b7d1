"""Small books for the engine tests: linear USDT-settled perpetuals, one bracket (MM 1 %, IM 10 %)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from marginkit.domain import BookSpec
from marginkit.engine import LiquidationSettings, Monitor, MonitorSettings
from marginkit.engine.simulate import start_engine
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import Profile, parse_profile
from marginkit.ledger import Ledger

AS_OF = "2026-11-24T08:00:00Z"
T0 = datetime.fromisoformat("2026-11-24T08:00:00+00:00").timestamp()

# One bracket: maintenance 1 % of the notional at the mark, initial 1/10 = 10 %.
FLAT = parse_profile({
    "model": "tiered", "name": "flat-1pct", "version": "test", "source": "written in the test",
    "parameters": {"defaults": {"mm_basis": "mark"}, "underlyings": {
        u: {"notional_unit": "quote", "brackets": [{"maintenance_rate": 0.01, "max_leverage": 10}]}
        for u in ("BTC", "ETH", "SOL", "XRP")}},
})


def perp(symbol: str) -> dict[str, Any]:
    return {"id": f"{symbol}-USDT", "type": "perpetual", "underlying": symbol, "quote": "USD",
            "settlement": "USDT", "inverse": False, "contract_size": 1.0}


def book_spec(accounts: list[dict[str, Any]], index: dict[str, float] | None = None,
              symbols: tuple[str, ...] = ("BTC", "ETH")) -> BookSpec:
    prices = index or {"BTC": 100_000.0, "ETH": 4_000.0}
    return parse_book({"as_of": AS_OF, "instruments": [perp(s) for s in symbols],
                       "market": {"index": {**prices, "USD": 1.0, "USDT": 1.0}}, "accounts": accounts})


def engine(spec: BookSpec, ledger: Ledger, fund: str = "1000", profile: Profile = FLAT,
           liquidation: LiquidationSettings | None = None, monitor: MonitorSettings | None = None) -> Monitor:
    from marginkit.book import resolve

    return start_engine(resolve(spec), profile, ledger, Decimal(fund),
                        liquidation or LiquidationSettings(fee_rate=0.005, clip_fraction=0.25,
                                                           min_clip_notional=1_000.0),
                        monitor or MonitorSettings(margin_call_seconds=600.0, stale_after_seconds=10.0))
