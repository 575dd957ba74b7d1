"""The marginkit HTTP API: `create_app(ledger, market_spec, profile, keys)`.

Routes live under /accounts/{account_id}/…; an account's API key sees only that account, the operator
key administers (deposits, trades, the market, the account list). Keys come as `Authorization: Bearer
<key>` or `X-API-Key: <key>`: none or unknown → 401, another account's route → 403. Every error is a
JSON body `{"error": {"field": …, "message": …}}`, never a traceback. Amounts are exact decimal
strings on the ledger side; margin figures are float64 in the model's margin currency.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import math
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from marginkit.accounts import account_state
from marginkit.book import Book, resolve
from marginkit.clearing.house import ClearingHouse
from marginkit.engine.events import EngineEvent, InsuranceFundMove, Liquidation, StatusChange
from marginkit.errors import InputError
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import Profile
from marginkit.ledger import AccountSnapshot, Ledger, LedgerRefusal, Result
from marginkit.ledger.journal import (
    IdempotencyConflict,
    WithdrawalRefused,
    format_decimal,
    make_operation,
    parse_decimal,
)
from marginkit.models import MODELS
from marginkit.report import margin_document
from marginkit.service.liquidator import LIQUIDATOR, ServiceEngine

OPERATOR = "operator"
LIQUIDATION_KINDS = ("liquidation_transfer", "insurance_fund")
# The market `marginkit serve` starts with when given no --market: USD-margined BTC and ETH perpetuals.
DEFAULT_MARKET: dict[str, Any] = {
    "as_of": "2026-11-24T08:00:00Z",
    "instruments": [
        {"id": "BTC-USD-PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD", "settlement": "USDC",
         "inverse": False, "contract_size": 0.001, "tick_size": 0.1},
        {"id": "ETH-USD-PERP", "type": "perpetual", "underlying": "ETH", "quote": "USD", "settlement": "USDC",
         "inverse": False, "contract_size": 0.01, "tick_size": 0.01},
    ],
    "market": {"index": {"BTC": 95000.0, "ETH": 3300.0, "USDC": 1.0},
               "marks": {"BTC-USD-PERP": 95012.5, "ETH-USD-PERP": 3301.2}},
}

# ---- keys ------------------------------------------------------------------------------------------


def generate_key() -> str:
    """A fresh random API key (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def load_keys(path: Path) -> dict[str, str]:
    """A keys file: JSON or YAML mapping key -> account id or "operator"."""
    from marginkit.io.structured import load_structured

    data = load_structured(path)
    if not isinstance(data, dict) or not data:
        raise InputError("a keys file is a non-empty mapping of key -> account id or 'operator'", file=str(path))
    keys: dict[str, str] = {}
    for key, holder in data.items():
        if not isinstance(key, str) or not key or not isinstance(holder, str) or not holder:
            raise InputError("keys and holders must be non-empty text", field=str(key), file=str(path))
        keys[key] = holder
    return keys


# ---- the event bus -----------------------------------------------------------------------------------


class EventBus:
    """An in-process bus: numbered events kept in a ring buffer; SSE readers poll it from their sequence."""

    def __init__(self, size: int = 10_000) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._sequence = 0

    def publish(self, kind: str, account: str | None, data: Mapping[str, Any]) -> int:
        with self._lock:
            self._sequence += 1
            self._events.append({"id": self._sequence, "kind": kind, "account": account, "time": time.time(),
                                 "data": dict(data)})
            return self._sequence

    @property
    def last(self) -> int:
        return self._sequence

    def since(self, sequence: int, account: str | None = None) -> list[dict[str, Any]]:
        """Events after `sequence` (for one account, or all), oldest first."""
        with self._lock:
            events = [e for e in self._events if e["id"] > sequence]
        return [e for e in events if account is None or e["account"] == account]


# ---- request and response models ----------------------------------------------------------------------

Amount = Annotated[str, Field(description="An exact decimal amount, e.g. \"100.25\"", max_length=64,
                              examples=["100"])]
IdempotencyKey = Annotated[str | None, Field(default=None, max_length=128,
                                             description="Idempotency key (default: a fresh one)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DepositRequest(Strict):
    asset: str = Field(max_length=64)
    amount: Amount
    key: IdempotencyKey = None


class WithdrawalRequest(DepositRequest):
    pass


class TradeRequest(Strict):
    counterparty: str = Field(max_length=64, description="The other side of the trade")
    instrument: str = Field(max_length=64)
    quantity: Amount = Field(description="Signed contracts for this account: + buys from the counterparty")
    price: Amount
    key: IdempotencyKey = None


class OperationResponse(BaseModel):
    key: str
    status: Literal["applied", "duplicate"]


class WhatIfRequest(Strict):
    instrument: str = Field(max_length=64)
    quantity: float = Field(allow_inf_nan=False, description="Signed contracts: + buy, - sell")
    price: float = Field(gt=0, allow_inf_nan=False)


class MarginFigures(BaseModel):
    currency: str
    equity: float
    initial_margin: float
    maintenance_margin: float
    margin_ratio: float | None
    status: str


class MarginStatus(MarginFigures):
    account: str
    positions: list[dict[str, Any]]


class WhatIfResponse(BaseModel):
    account: str
    before: MarginFigures
    after: MarginFigures
    accepted: bool
    reason: str | None


class MarketUpdate(Strict):
    marks: dict[str, float] = Field(default_factory=dict, description="Mark prices per instrument")
    index: dict[str, float] = Field(default_factory=dict, description="Index prices per asset or underlying")


class ErrorDetail(BaseModel):
    field: str | None
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)}


class ServiceError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


# ---- the margin path ------------------------------------------------------------------------------------


class MarginService:
    """Margin of ledger accounts at the service's market under one profile (the `margin --db` path)."""

    def __init__(self, ledger: Ledger, market_spec: Mapping[str, Any], profile: Profile) -> None:
        if not isinstance(market_spec, Mapping) or "accounts" in market_spec:
            raise InputError("a market is a mapping with as_of, instruments and market (no accounts)")
        self.ledger = ledger
        self.market: dict[str, Any] = copy.deepcopy(dict(market_spec))
        self.profile = profile
        self.lock = threading.Lock()
        self._instrument_ids = {i.get("id") for i in self.market.get("instruments", []) if isinstance(i, dict)}
        self.excluded: set[str] = set()  # ledger accounts the market does not margin (a clearing house's)

    def _split(self, balances: Mapping[str, Decimal], held: Mapping[str, tuple[Decimal, Decimal | None]]
               ) -> tuple[dict[str, Decimal], dict[str, tuple[Decimal, Decimal | None]]]:
        """An account's ledger balances as collateral and open positions (contracts, average entry from `held`)."""
        kinds = {name: asset.kind for name, asset in self.ledger.assets().items()}
        collateral = {a: v for a, v in balances.items() if kinds.get(a) == "asset"}
        positions = {a: (v, held[a][1] if a in held else None) for a, v in balances.items()
                     if kinds.get(a) == "instrument" and v != 0}
        return collateral, positions

    def snapshot(self, account: str) -> tuple[dict[str, Decimal], dict[str, tuple[Decimal, Decimal | None]]]:
        """Collateral balances and positions (contracts, average entry) of one account, from the ledger."""
        kinds = {name: asset.kind for name, asset in self.ledger.assets().items()}
        balances = self.ledger.balances(account).get(account, {})
        held = self.ledger.positions().get(account, {}) if any(kinds.get(a) == "instrument" for a in balances) \
            else {}
        return self._split(balances, held)

    def snapshots(self) -> dict[str, tuple[dict[str, Decimal], dict[str, tuple[Decimal, Decimal | None]]]]:
        """`snapshot` of every user account, from one read of the balances and one of the positions."""
        held = self.ledger.positions()
        return {account: self._split(balances, held.get(account, {}))
                for account, balances in self.ledger.balances().items()
                if not account.startswith("@") and account not in self.excluded}

    def realised_on_trade(self, position: tuple[Decimal, Decimal | None] | None, instrument: str, signed: Decimal,
                          price: Decimal) -> tuple[str, Decimal] | None:
        """The settlement asset and the P&L that a trade of `signed` contracts at `price` realises on `position`
        (contracts, entry) — the part that reduces it: closed × contract size × (price − entry) × quote→settlement;
        None when nothing is realised (an opening trade, an option premium, a coin-settled contract)."""
        quantity, entry = position if position is not None else (Decimal(0), None)
        terms = next((i for i in self.market.get("instruments", [])
                      if isinstance(i, dict) and i.get("id") == instrument), None)
        if quantity == 0 or entry is None or (quantity > 0) == (signed > 0) or terms is None \
                or terms.get("type") not in ("future", "perpetual") or terms.get("inverse"):
            return None
        closed = min(abs(signed), abs(quantity)) * (1 if quantity > 0 else -1)
        index = self.market.get("market", {}).get("index", {})
        quote, settlement = terms["quote"], terms["settlement"]
        fx = Decimal(1) if quote == settlement else (
            Decimal(repr(float(index.get(quote, 1.0)))) / Decimal(repr(float(index.get(settlement, 1.0)))))
        return str(settlement), closed * Decimal(repr(float(terms["contract_size"]))) * (price - entry) * fx

    def book(self, accounts: Mapping[str, tuple[Mapping[str, Decimal], Mapping[str, tuple[Decimal, Any]]]]) -> Book:
        with self.lock:
            market = copy.deepcopy(self.market)
        marks = market.get("market", {}).get("marks", {}) if isinstance(market.get("market"), dict) else {}
        rows = []
        for account, (collateral, positions) in sorted(accounts.items()):
            rows.append({
                "id": account, "mode": "cross",
                "collateral": {a: float(v) for a, v in collateral.items()},
                "positions": [{"instrument": name, "quantity": float(q),
                               "entry_price": float(e) if e is not None else marks.get(name)}
                              for name, (q, e) in positions.items()],
            })
        return resolve(parse_book({**market, "accounts": rows}))

    def figures(self, book: Book) -> list[dict[str, Any]]:
        requirements = MODELS[self.profile.model](book, self.profile)
        document = margin_document(book, requirements, account_state(book, requirements))
        accounts: list[dict[str, Any]] = document["accounts"]
        for row in accounts:
            for name in ("equity", "initial_margin", "maintenance_margin", "margin_ratio"):
                value = row.get(name)
                if value is not None and not math.isfinite(value):
                    if name == "margin_ratio":
                        row[name] = None
                    else:
                        raise InputError("the margin is not a finite number at this market", field=name)
        return accounts

    def status(self, account: str) -> dict[str, Any]:
        return self.figures(self.book({account: self.snapshot(account)}))[0]

    def what_if(self, account: str, order: WhatIfRequest) -> dict[str, Any]:
        if order.instrument not in self._instrument_ids:
            raise InputError(f"unknown instrument {order.instrument!r}", field="instrument")
        collateral, positions = self.snapshot(account)
        after = dict(positions)
        size = Decimal(repr(order.quantity))
        price = Decimal(repr(order.price))
        before_q, before_e = positions.get(order.instrument, (Decimal(0), None))
        total = before_q + size
        if total == 0:
            after.pop(order.instrument, None)
        elif before_q == 0 or (before_q > 0) != (total > 0):
            after[order.instrument] = (total, price)
        elif (before_q > 0) == (size > 0) and before_e is not None:
            after[order.instrument] = (total, (before_e * abs(before_q) + price * abs(size)) / abs(total))
        else:
            after[order.instrument] = (total, before_e)
        before_row = self.figures(self.book({account: (collateral, positions)}))[0]  # the snapshot read above
        after_row = self.figures(self.book({account: (collateral, after)}))[0]
        accepted = after_row["equity"] >= after_row["initial_margin"] or (
            after_row["initial_margin"] <= before_row["initial_margin"] and size != 0
            and abs(total) < abs(before_q))
        reason = None if accepted else (
            f"equity {after_row['equity']:.2f} would not cover the initial margin {after_row['initial_margin']:.2f}")
        return {"account": account, "before": before_row, "after": after_row, "accepted": accepted, "reason": reason}

    def margin_check(self, account: str) -> Any:
        """The withdrawal check of `account`: equity >= initial margin after it (entries read beforehand)."""
        _, positions = self.snapshot(account)

        def check(snapshot: AccountSnapshot) -> bool:
            after = {name: (quantity, positions.get(name, (quantity, None))[1])
                     for name, quantity in snapshot.positions.items()}
            row = self.figures(self.book({snapshot.account: (dict(snapshot.collateral), after)}))[0]
            return bool(row["equity"] >= row["initial_margin"])

        return check

    def move_market(self, update: MarketUpdate) -> dict[str, Any]:
        with self.lock:
            market = copy.deepcopy(self.market)
            section = market.setdefault("market", {})
            for name, values in (("marks", update.marks), ("index", update.index)):
                for where, price in values.items():
                    if not math.isfinite(price) or price <= 0:
                        raise InputError("must be a positive finite price", field=f"{name}.{where}")
                section.setdefault(name, {}).update(values)
            resolve(parse_book({**market, "accounts": []}))  # a market that does not resolve changes nothing
            self.market = market
            self._instrument_ids = {i.get("id") for i in market.get("instruments", []) if isinstance(i, dict)}
            return copy.deepcopy(section)


def _holder(request: Request, key: str | None) -> str:
    holder = request.app.state.keys.get(key) if key else None
    if holder is None:
        raise ServiceError(401, "a valid API key is required (Authorization: Bearer <key> or X-API-Key)",
                           "authorization")
    return str(holder)


def _header_key(authorization: str | None, x_api_key: str | None) -> str | None:
    key = x_api_key
    if key is None and authorization is not None:
        scheme, _, value = authorization.partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else None
    return key


async def principal(request: Request, authorization: Annotated[str | None, Header()] = None,
              x_api_key: Annotated[str | None, Header()] = None) -> str:
    return _holder(request, _header_key(authorization, x_api_key))


async def stream_principal(request: Request, authorization: Annotated[str | None, Header()] = None,
                     x_api_key: Annotated[str | None, Header()] = None,
                     key: Annotated[str | None, Query(max_length=256, description=(
                         "The API key, for clients that cannot send headers (EventSource)"))] = None) -> str:
    """The /events principal: a header key as everywhere, else the same key check on `?key=`."""
    header = _header_key(authorization, x_api_key)
    return _holder(request, header if header is not None else key)

Principal = Annotated[str, Depends(principal)]

async def operator(who: Principal) -> str:
    if who != OPERATOR:
        raise ServiceError(403, "this route needs the operator key", "authorization")
    return who

async def account_scope(account_id: str, who: Principal) -> str:
    if who not in (OPERATOR, account_id):
        raise ServiceError(403, "this key may not access that account", "account_id")
    return account_id

Account = Annotated[str, Depends(account_scope)]
Operator = Annotated[str, Depends(operator)]



# ---- the application --------------------------------------------------------------------------------------


def _error(status: int, message: str, field: str | None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"field": field, "message": message}})


def _result(result: Result) -> OperationResponse:
    return OperationResponse(key=result.key, status="duplicate" if result.status == "duplicate" else "applied")


def create_app(ledger: Ledger, market_spec: Mapping[str, Any], profile: Profile, keys: Mapping[str, str],
               *, bus: EventBus | None = None, clearing: ClearingHouse | None = None) -> FastAPI:
    """The API over `ledger`, margining at `market_spec` (as_of, instruments, market) under `profile`.

    `keys` maps an API key to an account id, a clearing member id or "operator"; with `clearing` (a house open
    on `ledger`) the members' and the operator's clearing routes are added (service/clearing.py).
    """
    service = MarginService(ledger, market_spec, profile)
    registered = ledger.assets(refresh=True)
    for instrument in service._instrument_ids:  # the market's instruments become tradable (8 decimals)
        if isinstance(instrument, str) and instrument not in registered:
            ledger.add_asset(instrument, 8, "instrument")
    events = bus or EventBus()
    engine = ServiceEngine(service, time.time())
    holders = dict(keys)
    statuses: dict[str, str] = {}
    app = FastAPI(title="marginkit", version="0.1.0",
                  description="Derivatives margin as a service: ledger, margin, what-if, events.")
    app.state.service = service
    app.state.events = events
    app.state.engine = engine
    app.state.keys = holders

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, error: ServiceError) -> JSONResponse:
        return _error(error.status, error.message, error.field)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail), None)

    @app.exception_handler(404)
    async def not_found(_request: Request, _error_: Exception) -> JSONResponse:
        return _error(404, "no such route", "path")

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or None
        return _error(422, str(first.get("msg", "invalid request")), where)

    @app.exception_handler(Exception)
    async def internal(_request: Request, error: Exception) -> JSONResponse:
        return _error(500, f"internal error: {type(error).__name__}", None)

    def ledger_call(call: Any) -> Result:
        try:
            result: Result = call()
        except IdempotencyConflict as error:
            raise ServiceError(409, error.message, error.field) from None
        except WithdrawalRefused as error:
            raise ServiceError(409, error.message, error.field) from None
        except LedgerRefusal as error:
            raise ServiceError(422, error.message, error.field) from None
        except InputError as error:
            raise ServiceError(422, str(error), error.field) from None
        return result

    def margin_call(call: Any) -> Any:
        try:
            return call()
        except InputError as error:
            raise ServiceError(422, str(error), error.field) from None
        except (ArithmeticError, ValueError, OverflowError) as error:
            raise ServiceError(422, f"cannot margin this: {error}", None) from None

    def publish_status(account: str) -> None:
        try:
            row = service.status(account)
        except (InputError, ArithmeticError, ValueError):
            return
        if statuses.get(account) != row["status"]:
            events.publish("status", account, {"from": statuses.get(account), "to": row["status"],
                                               "equity": row["equity"], "initial_margin": row["initial_margin"],
                                               "maintenance_margin": row["maintenance_margin"]})
            statuses[account] = row["status"]

    @app.get("/accounts", responses=ERRORS, tags=["accounts"])
    def list_accounts(_who: Operator) -> dict[str, list[str]]:
        """Every account the ledger holds (operator)."""
        return {"accounts": sorted(a for a in ledger.balances(include_zero=True) if not a.startswith("@"))}

    @app.get("/accounts/{account_id}/balances", responses=ERRORS, tags=["accounts"])
    def balances(account_id: Account) -> dict[str, Any]:
        """Collateral balances per asset (exact decimal strings)."""
        collateral, _ = service.snapshot(account_id)
        return {"account": account_id, "balances": {a: format_decimal(v) for a, v in sorted(collateral.items())}}

    @app.get("/accounts/{account_id}/positions", responses=ERRORS, tags=["accounts"])
    def positions(account_id: Account) -> dict[str, Any]:
        """Open positions: signed contracts and average entry price."""
        _, held = service.snapshot(account_id)
        return {"account": account_id, "positions": [
            {"instrument": name, "quantity": format_decimal(q),
             "entry_price": format_decimal(e) if e is not None else None}
            for name, (q, e) in sorted(held.items())]}

    @app.post("/accounts/{account_id}/deposits", responses=ERRORS, tags=["ledger"])
    def deposit(account_id: Account, body: DepositRequest, _who: Operator) -> OperationResponse:
        """Credit collateral (operator)."""
        key = body.key or f"deposit:{uuid.uuid4()}"
        result = ledger_call(lambda: ledger.deposit(account_id, body.asset, body.amount, key=key))
        if result.status == "applied":
            events.publish("deposit", account_id, {"asset": body.asset, "amount": body.amount, "key": key})
            publish_status(account_id)
        return _result(result)

    @app.post("/accounts/{account_id}/withdrawals", responses=ERRORS, tags=["ledger"])
    def withdraw(account_id: Account, body: WithdrawalRequest) -> OperationResponse:
        """Withdraw collateral if the balance and the initial margin stay covered (409 if not)."""
        key = body.key or f"withdraw:{uuid.uuid4()}"
        result = ledger_call(lambda: ledger.withdraw(account_id, body.asset, body.amount, key=key,
                                                     margin_check=service.margin_check(account_id)))
        if result.status == "applied":
            events.publish("withdrawal", account_id, {"asset": body.asset, "amount": body.amount, "key": key})
            publish_status(account_id)
        return _result(result)

    @app.post("/accounts/{account_id}/trades", responses=ERRORS, tags=["ledger"])
    def trade(account_id: Account, body: TradeRequest, _who: Operator) -> OperationResponse:
        """Book a trade between this account and a counterparty (operator)."""
        key = body.key or f"trade:{uuid.uuid4()}"
        try:
            quantity = Decimal(body.quantity)
        except ArithmeticError:
            raise ServiceError(422, "must be a decimal number", "quantity") from None
        if not quantity.is_finite() or quantity == 0:
            raise ServiceError(422, "must be a non-zero finite number", "quantity")
        buyer, seller = (account_id, body.counterparty) if quantity > 0 else (body.counterparty, account_id)
        size = abs(quantity)

        def book_trade() -> Result:
            price = parse_decimal(body.price, "price")
            trade = make_operation("trade", key, {"buyer": buyer, "seller": seller, "instrument": body.instrument,
                                                  "quantity": size, "price": price})
            if ledger.stored_hash(key) is not None:  # a replay: the trade alone says duplicate or conflict
                return ledger.submit(trade)
            held = ledger.positions()
            operations = [trade]
            for side, signed in ((buyer, size), (seller, -size)):
                realised = service.realised_on_trade(held.get(side, {}).get(body.instrument), body.instrument,
                                                     signed, price)
                if realised is None:
                    continue
                settlement, exact = realised
                unit = ledger.assets().get(settlement)
                if unit is None:
                    raise LedgerRefusal(f"unknown settlement asset {settlement!r}", field="instrument")
                amount = exact.quantize(Decimal(1).scaleb(-unit.decimals), rounding=ROUND_FLOOR)
                if amount != 0:
                    operations.append(make_operation("realised_pnl", f"{key}:pnl:{side}", {
                        "account": side, "asset": settlement, "amount": amount, "instrument": body.instrument}))
            return ledger.submit_all(operations)[0]

        result = ledger_call(book_trade)
        if result.status == "applied":
            for side in (buyer, seller):
                events.publish("trade", side, {"instrument": body.instrument, "buyer": buyer, "seller": seller,
                                               "quantity": str(abs(quantity)), "price": body.price, "key": key})
                publish_status(side)
        return _result(result)

    @app.get("/accounts/{account_id}/margin", responses=ERRORS, tags=["margin"])
    async def margin(account_id: Account) -> MarginStatus:
        """Equity, initial and maintenance margin, margin ratio and status under the service's profile."""
        row = margin_call(lambda: service.status(account_id))
        return MarginStatus(account=account_id, currency=row["currency"], equity=row["equity"],
                            initial_margin=row["initial_margin"], maintenance_margin=row["maintenance_margin"],
                            margin_ratio=row["margin_ratio"], status=row["status"], positions=row["positions"])

    @app.post("/accounts/{account_id}/what-if", responses=ERRORS, tags=["margin"])
    async def what_if(account_id: Account, body: WhatIfRequest) -> WhatIfResponse:
        """Pre-trade check: the margin before and after a hypothetical order, accepted or refused."""
        document = margin_call(lambda: service.what_if(account_id, body))

        def figures(row: dict[str, Any]) -> MarginFigures:
            return MarginFigures(**{k: row[k] for k in MarginFigures.model_fields})

        return WhatIfResponse(account=account_id, before=figures(document["before"]),
                              after=figures(document["after"]), accepted=document["accepted"],
                              reason=document["reason"])

    @app.get("/accounts/{account_id}/liquidations", responses=ERRORS, tags=["margin"])
    def liquidations(account_id: Account) -> dict[str, Any]:
        """Liquidation history: the journal's liquidation transfers and insurance-fund moves of this account."""
        history = []
        for entry in ledger.journal():
            if entry.kind in LIQUIDATION_KINDS or entry.key.startswith("liq:"):
                legs = [leg for leg in entry.postings if leg[0] == account_id]
                if legs:
                    history.append({"sequence": entry.sequence, "key": entry.key, "kind": entry.kind,
                                    "postings": [{"asset": s, "amount": format_decimal(v)} for _a, s, v in legs]})
        return {"account": account_id, "liquidations": history}

    def publish_engine(fired: list[EngineEvent]) -> dict[str, int]:
        counts = {"status_changes": 0, "liquidations": 0, "insurance_fund_moves": 0, "adl_events": 0}
        for event in fired:
            data = dataclasses.asdict(event)
            if isinstance(event, StatusChange):
                events.publish("status", event.account, {"from": event.old, "to": event.new,
                                                         "deadline": event.deadline, "frozen": event.frozen,
                                                         "source": "engine"})
                statuses[event.account] = event.new
                counts["status_changes"] += 1
            elif isinstance(event, Liquidation):
                events.publish("liquidation", event.account, data)
                counts["liquidations"] += 1
            elif isinstance(event, InsuranceFundMove):
                events.publish("insurance_fund", event.account, data)
                counts["insurance_fund_moves"] += 1
            else:
                events.publish("adl", event.account, data)
                counts["adl_events"] += 1
        return counts

    @app.post("/market", responses=ERRORS, tags=["market"])
    def move_market(body: MarketUpdate, _who: Operator) -> dict[str, Any]:
        """Move the market (operator): the HTTP price feed. Accounts are re-margined by the live engine, which
        issues margin calls and liquidates (fills, insurance fund, ADL journalled in the ledger); events emitted."""
        section = margin_call(lambda: service.move_market(body))
        now = time.time()
        engine.record_prices(body.marks, body.index, now)
        events.publish("price", None, {"marks": body.marks, "index": body.index})
        counts = publish_engine(margin_call(lambda: engine.run(now)))
        for account in sorted(a for a in ledger.balances()
                              if not a.startswith("@") and a != LIQUIDATOR and a not in service.excluded):
            publish_status(account)
        return {"market": section, "engine": {**counts, "not_covered": engine.covered}}

    @app.get("/events", responses=ERRORS, tags=["events"],
             response_class=StreamingResponse)
    async def stream(who: Annotated[str, Depends(stream_principal)],
                     account_id: Annotated[str | None, Query(max_length=64)] = None,
                     since: Annotated[int | None, Query(ge=0, description="Replay events after this id")] = None,
                     limit: Annotated[int | None, Query(ge=1, description="Stop after this many events")] = None,
                     timeout: Annotated[float | None, Query(gt=0, le=86400,
                                                            description="Stop after this many seconds")] = None,
                     last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
        """Server-sent events: deposits, withdrawals, trades, prices, status changes (an account key: its own)."""
        if who != OPERATOR:
            if account_id not in (None, who):
                raise ServiceError(403, "this key may not access that account", "account_id")
            account_id = who
        start = since if since is not None else (
            int(last_event_id) if last_event_id and last_event_id.isdigit() else events.last)

        async def generate() -> AsyncIterator[str]:
            position, sent, began = start, 0, time.monotonic()
            yield ": marginkit events\n\n"
            while True:
                for event in events.since(position, account_id):
                    position = event["id"]
                    yield f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"
                    sent += 1
                    if limit is not None and sent >= limit:
                        return
                if timeout is not None and time.monotonic() - began >= timeout:
                    return
                await asyncio.sleep(0.05)

        return StreamingResponse(generate(), media_type="text/event-stream")

    from marginkit.service.dashboard import install_dashboard  # imports this module: installed last

    install_dashboard(app, service)
    if clearing is not None:
        from marginkit.service.clearing import install_clearing

        # The clearing house margins its own accounts (per member, by their profiles), not the service's market.
        service.excluded |= {*clearing.account_ids, clearing.id, clearing.rounding_account}
        install_clearing(app, clearing, events)
    return app
