"""The operator dashboard: GET /dashboard (a static HTML + vanilla JS page) and the JSON it reads.

The page takes the operator key from `?key=` or a form field and uses it for fetch() (X-API-Key) and for
the event stream (`/events?key=`, EventSource cannot send headers). Routes added here:
GET /dashboard/accounts (operator): every account's margin, nearest liquidation first, with margin usage;
GET /insurance-fund (operator): the balances of the ledger's `@insurance` account.
"""

from __future__ import annotations

import math
from decimal import Decimal
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from marginkit.errors import InputError
from marginkit.ledger.journal import INSURANCE, format_decimal
from marginkit.service.app import ERRORS, MarginService, Operator, ServiceError
from marginkit.service.liquidator import LIQUIDATOR


def dashboard_page() -> str:
    """The dashboard's HTML (shipped as package data)."""
    return resources.files("marginkit.service").joinpath("static/dashboard.html").read_text(encoding="utf-8")


def _urgency(row: dict[str, Any]) -> float:
    """Sort key, larger = nearer liquidation: the margin ratio (MM / equity); no ratio with MM > 0 is the worst."""
    ratio = row.get("margin_ratio")
    if ratio is None:
        return math.inf if row.get("maintenance_margin", 0) > 0 else -1.0
    return float(ratio)


def account_rows(service: MarginService) -> list[dict[str, Any]]:
    """Every non-system account's margin figures, nearest liquidation first."""
    snapshots = service.snapshots()
    names = sorted(a for a in service.ledger.balances(include_zero=True) if not a.startswith("@") and a != LIQUIDATOR
                   and a not in service.excluded)
    if not names:
        return []
    empty: tuple[dict[str, Decimal], dict[str, tuple[Decimal, Decimal | None]]] = ({}, {})
    try:
        figures = service.figures(service.book({name: snapshots.get(name, empty) for name in names}))
    except InputError as error:
        raise ServiceError(422, str(error), error.field) from None
    except (ArithmeticError, ValueError, OverflowError) as error:
        raise ServiceError(422, f"cannot margin this: {error}", None) from None
    rows = []
    for row in figures:
        equity, initial = row["equity"], row["initial_margin"]
        usage = initial / equity if equity > 0 else None
        rows.append({"account": row["id"], "currency": row["currency"], "equity": equity,
                     "initial_margin": initial, "maintenance_margin": row["maintenance_margin"],
                     "margin_ratio": row["margin_ratio"], "margin_usage": usage, "status": row["status"]})
    rows.sort(key=lambda r: (-_urgency(r), r["account"]))
    return rows


def install_dashboard(app: FastAPI, service: MarginService) -> None:
    """Add the dashboard page and its data routes to `app`."""

    @app.get("/dashboard", include_in_schema=False, response_class=HTMLResponse)
    def dashboard() -> HTMLResponse:
        """The operator dashboard (the page itself holds no data; it asks for the key)."""
        return HTMLResponse(dashboard_page(), headers={"Cache-Control": "no-store"})

    @app.get("/dashboard/accounts", responses=ERRORS, tags=["dashboard"])
    def dashboard_accounts(_who: Operator) -> dict[str, Any]:
        """Every account's equity, IM, MM, margin ratio, margin usage and status, nearest liquidation first."""
        return {"accounts": account_rows(service)}

    @app.get("/insurance-fund", responses=ERRORS, tags=["dashboard"])
    def insurance_fund(_who: Operator) -> dict[str, Any]:
        """The insurance fund: balances of the ledger's `@insurance` account (exact decimal strings)."""
        balances = service.ledger.balances(INSURANCE).get(INSURANCE, {})
        return {"account": INSURANCE, "balances": {a: format_decimal(v) for a, v in sorted(balances.items())}}
