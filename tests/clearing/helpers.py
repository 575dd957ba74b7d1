"""Small clearing houses built inline: instruments, members with house and client accounts, and their book."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marginkit.clearing.spec import ClearingSpec, parse_clearing

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # the book's as_of: its marks are the last settlement prices
HOUR = timedelta(hours=1)
FUTURE = {"id": "BTC-FUT", "type": "future", "underlying": "BTC", "quote": "USD", "settlement": "USD",
          "inverse": False, "contract_size": 1, "expiry": "2026-12-26T08:00:00Z"}
PERPETUAL = {"id": "BTC-PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "USD",
             "inverse": False, "contract_size": 1}
ETH_FUTURE = {"id": "ETH-FUT", "type": "future", "underlying": "ETH", "quote": "USD", "settlement": "USD",
              "inverse": False, "contract_size": 1, "expiry": "2026-12-26T08:00:00Z"}
INSTRUMENTS = (FUTURE, PERPETUAL, ETH_FUTURE)
MARKS = {"BTC-FUT": 100_000.0, "BTC-PERP": 100_000.0, "ETH-FUT": 4_000.0}
INDEX = {"BTC": 100_000.0, "ETH": 4_000.0}


def account(account_id: str, collateral: float, positions: dict[str, float] | None = None,
            mode: str = "portfolio") -> dict[str, Any]:
    """A book account: USD collateral and positions {instrument: signed contracts}.

    Entry prices do not matter to the clearing house (the marks are the last settlement prices); each is 1.
    """
    return {"id": account_id, "mode": mode, "collateral": {"USD": collateral},
            "positions": [{"instrument": i, "quantity": q, "entry_price": 1.0} for i, q in (positions or {}).items()]}


def clearing_spec(members: list[dict[str, Any]], accounts: list[dict[str, Any]], *, deadline: float = 3600.0,
                  instruments: tuple[dict[str, Any], ...] = INSTRUMENTS, marks: dict[str, float] | None = None,
                  ccp: str = "ccp") -> ClearingSpec:
    """A clearing house `ccp` in USD over an inline book of `accounts` (members as in the clearing-house file)."""
    marks = {**MARKS, **(marks or {})}
    return parse_clearing({
        "clearing_house": {"id": ccp, "currency": "USD", "im_call_deadline_seconds": deadline},
        "members": members,
        "book": {"as_of": "2026-11-24T08:00:00Z", "instruments": list(instruments),
                 "market": {"index": dict(INDEX), "marks": {i["id"]: marks[i["id"]] for i in instruments}},
                 "accounts": accounts},
    })


def house(member: str, profile: str = "deribit-pm") -> dict[str, Any]:
    """A member with one house account `<member>.house`."""
    return {"id": member, "accounts": [{"id": f"{member}.house", "kind": "house", "profile": profile}]}
