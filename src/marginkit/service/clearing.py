"""The clearing house's routes: members see their accounts, settlements and calls; the operator runs the house.

`install_clearing(app, house, events)` adds them to the service (`create_app(..., clearing=house)`). A member's
API key maps to its member id (e.g. "M1") and sees only its own member's routes; the operator key sees every
member and alone novates trades, settles cycles and moves the clearing house's clock.

Member routes (the member or the operator): GET /members/{member_id} (accounts, IM and MM per account under its
own model at the current positions and settlement prices, collateral from the ledger, open calls, default
status), GET /members/{member_id}/settlements (per cycle: gross, house and client nets, the cycle's netting
efficiency), GET /members/{member_id}/calls, POST /members/{member_id}/calls/{account_id}/payments (meet an
initial-margin call). Operator routes: GET /members, POST /clearing/trades (novation), POST /clearing/cycles
(a settlement cycle), POST /clearing/clock (resolve calls past their deadline), GET /clearing/house (the
clearing house's own net position per instrument, always flat, and its resources).

Amounts are exact decimal strings in the clearing house's currency (as `marginkit ccp settle --json`); margin
figures are float64 in that currency. Every refusal of the clearing code (InputError) is a 422 naming the field
of the request; nothing a request carries becomes a 500. Settlement cycles publish to the event bus: a `cycle`
summary (operator), and per member its `settlement`, `margin_call`s and `default`, so a member key's /events
stream carries its own member's events.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field, PlainValidator, WithJsonSchema

from marginkit.clearing.calls import DefaultEvent, MarginCall, time_text
from marginkit.clearing.commands import call_document, cycle_document, default_document
from marginkit.clearing.house import ClearingHouse, utc_time
from marginkit.clearing.margin import ClearingMargins, clearing_margins
from marginkit.clearing.novation import Trade
from marginkit.clearing.settlement import CycleReport
from marginkit.errors import InputError
from marginkit.ledger.journal import format_decimal
from marginkit.service.app import ERRORS, OPERATOR, ErrorDetail, EventBus, Operator, Principal, ServiceError, Strict

Returned = TypeVar("Returned")
MAX_TRADES = 10_000  # trades per novation request
MAX_EXPONENT = 1000  # a decimal string's magnitude: beyond it Decimal arithmetic overflows or underflows to 0


def _number(value: Any) -> str | int | float:
    """A request's exact decimal as sent (decimal string or JSON number), left for the clearing code to read."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a decimal string or a number")
    if isinstance(value, str) and len(value) > 64:
        raise ValueError("must be at most 64 characters")
    if isinstance(value, str):
        try:
            exact = Decimal(value.strip())
        except InvalidOperation:
            return value  # not a number: the clearing code names the field
        if exact.is_finite() and exact != 0 and abs(exact.adjusted()) > MAX_EXPONENT:
            raise ValueError(f"must lie within 10^-{MAX_EXPONENT} and 10^{MAX_EXPONENT} in magnitude")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be finite")
    return value


Number = Annotated[str | int | float, PlainValidator(_number), WithJsonSchema({
    "anyOf": [{"type": "string", "maxLength": 64}, {"type": "number"}],
    "description": "An exact decimal: a decimal string (\"2.5\") or a JSON number (read by its shortest repr)",
    "examples": ["2"]})]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Time = Annotated[str, Field(max_length=64, description="An ISO 8601 time with its zone, e.g. 2026-11-24T16:00:00Z",
                            examples=["2026-11-24T16:00:00Z"])]
Prices = dict[Annotated[str, Field(max_length=64)], Annotated[float, Field(allow_inf_nan=False)]]

# ---- request and response models ----------------------------------------------------------------------


class TradeInput(Strict):
    id: Name = Field(description="Unique per clearing house: novating the same trade again is a no-op")
    buyer: Name = Field(description="The buying clearing account, e.g. M1.house")
    seller: Name = Field(description="The selling clearing account")
    instrument: Name
    quantity: Number = Field(description="Contracts bought by the buyer (> 0, at most 8 decimals)")
    price: Number = Field(description="The trade's price in the instrument's price units (> 0)")


class NovationRequest(Strict):
    trades: list[TradeInput] = Field(min_length=1, max_length=MAX_TRADES)


class NovationResponse(BaseModel):
    novated: list[str] = Field(description="Ids of the trades booked now, each as two legs facing the clearing house")
    duplicates: int = Field(description="Trades booked before under the same id and terms (skipped)")
    replayed: int = Field(description="Trades booked now whose ledger entries an earlier run had journalled")


class CycleRequest(Strict):
    time: Time = Field(description="The cycle's time (after the last settlement); its ledger key derives from it")
    prices: Prices = Field(description="Settlement price per instrument: every instrument with open positions")
    funding_rates: Prices = Field(default_factory=dict,
                                  description="This cycle's funding rate per perpetual (+: longs pay)")
    index: Prices = Field(default_factory=dict, description="USD value per unit of assets that moved")


class ClockRequest(Strict):
    time: Time = Field(description="The new time of the clearing house's clock (not before it)")


class PaymentRequest(Strict):
    amount: Number = Field(description="Deposit in the clearing house's currency against the account's open call")
    time: Time | None = Field(default=None, description="When it is paid (default: the clearing house's clock)")
    key: str | None = Field(default=None, max_length=128, description="Idempotency key (default: derived from the "
                                                                       "call and the number of payments against it)")


class CallView(BaseModel):
    id: str
    account: str
    member: str
    initial_margin: str = Field(description="The requirement it asks to cover (rounded up)")
    collateral: str = Field(description="The account's collateral when last reviewed (rounded down)")
    amount: str = Field(description="initial_margin - collateral: what meets the call")
    issued_at: str
    deadline: str
    status: Literal["open", "met", "defaulted"]
    resolved_at: str | None


class DefaultView(BaseModel):
    member: str
    time: str
    calls: list[str] = Field(description="Ids of the calls it missed")
    shortfall: str


class MemberSettlementView(BaseModel):
    member: str
    currency: str
    gross_paid: str
    gross_received: str
    house: str
    client: str
    pays: str
    receives: str
    net: str


class CycleView(BaseModel):
    cycle: int
    time: str
    currency: str
    key: str
    ledger_status: Literal["applied", "duplicate", "empty"]
    members: list[MemberSettlementView]
    payments: dict[str, str] = Field(description="Journalled payment per clearing account (+ received)")
    paid: str
    collected: str
    rounding: str
    gross: str
    variation_margin: str
    funding: str
    netting_efficiency: float = Field(description="1 - sum |net| / sum gross, house and client netted apart")
    netting_efficiency_full: float = Field(description="The same with house and client netted together")
    calls: list[CallView] = Field(description="Initial-margin calls open after the cycle")
    defaults: list[DefaultView] = Field(description="Members flagged in default at the cycle's time")


class CycleResponse(CycleView):
    margin_review_error: ErrorDetail | None = Field(
        default=None, description="Set when the cycle settled but the margin review after it refused")


class ClockResponse(BaseModel):
    time: str
    defaults: list[DefaultView] = Field(description="Members flagged in default now")
    open_calls: list[CallView]


class ClearingAccountView(BaseModel):
    account: str
    kind: Literal["house", "client"]
    segregation: Literal["individual", "omnibus"] | None
    model: str
    profile: str
    initial_margin: float = Field(description="Under the account's own model, in the clearing house's currency")
    maintenance_margin: float
    collateral: dict[str, str] = Field(description="Ledger balance per collateral asset (exact)")
    collateral_value: float = Field(description="The collateral valued in the clearing house's currency (as calls "
                                                "are reviewed: index prices, no haircut)")
    positions: dict[str, str] = Field(description="Signed contracts per instrument, facing the clearing house")
    open_call: CallView | None


class MemberView(BaseModel):
    member: str
    affiliate_group: str
    currency: str
    as_of: str = Field(description="The clearing house's clock; margins are at the last settlement prices")
    accounts: list[ClearingAccountView]
    initial_margin: float
    maintenance_margin: float
    collateral_value: float
    open_calls: list[CallView]
    in_default: bool
    default: DefaultView | None


class MemberSummary(BaseModel):
    member: str
    affiliate_group: str
    accounts: list[str]
    open_calls: int
    in_default: bool


class MemberList(BaseModel):
    clearing_house: str
    members: list[MemberSummary]


class MemberCycle(BaseModel):
    cycle: int
    time: str
    currency: str
    key: str = Field(description="The cycle's variation-margin ledger entry")
    ledger_status: Literal["applied", "duplicate", "empty"]
    gross_paid: str = Field(description="What the member's positions lose, position by position, before netting")
    gross_received: str = Field(description="What they gain, before netting")
    house: str = Field(description="The house accounts' net (+ received)")
    client: str = Field(description="The client accounts' net, settled apart from the house's")
    pays: str
    receives: str
    net: str = Field(description="house + client")
    payments: dict[str, str] = Field(description="Journalled payment per account of the member (nonzero only)")
    netting_efficiency: float = Field(description="The cycle's, over all members (house and client apart)")
    netting_efficiency_full: float


class SettlementHistory(BaseModel):
    member: str
    settlements: list[MemberCycle]


class CallList(BaseModel):
    member: str
    calls: list[CallView]


class PaymentResponse(BaseModel):
    call: CallView = Field(description="The call after the payment: met once collateral covers its margin")


class SkinInTheGameView(BaseModel):
    first: float
    second: float


class DefaultFundView(BaseModel):
    cover: int
    minimum_contribution: float
    assessment_multiple: float


class HouseView(BaseModel):
    clearing_house: str
    currency: str
    time: str = Field(description="The clock: the last cycle, call payment or clock move")
    last_settlement: str
    cycles: int
    trades: int = Field(description="Trades novated since the house opened")
    members: int
    net_position: dict[str, str] = Field(description="The clearing house's own net contracts per instrument "
                                                     "(minus the members' sum): zero after novation")
    ledger_net_position: dict[str, str] = Field(description="The same, from its ledger account's balances")
    flat: bool = Field(description="Every net position is zero, in memory and in the ledger")
    settlement_prices: dict[str, float]
    index: dict[str, float]
    rounding_account: str
    rounding_balance: str = Field(description="Sub-unit residuals of the cycles' rounding kept by the house")
    defaults: list[DefaultView]
    skin_in_the_game: SkinInTheGameView
    default_fund: DefaultFundView = Field(description="Cover-N settings; sizing needs stress scenarios: "
                                                      "`marginkit ccp default-drill`")


# ---- the routes -------------------------------------------------------------------------------------------


def _decimal_map(values: dict[str, Decimal]) -> dict[str, str]:
    return {name: format_decimal(value) for name, value in sorted(values.items())}


def _moment(value: str, field: str = "time") -> datetime:
    """A request's time in UTC; InputError naming `field` (a time whose UTC form is out of range included)."""
    try:
        return utc_time(value, field)
    except OverflowError:
        raise InputError("is out of the range of times", field=field) from None


def _call(call: MarginCall) -> CallView:
    return CallView.model_validate(call_document(call))


def _default(event: DefaultEvent) -> DefaultView:
    return DefaultView.model_validate(default_document(event))


async def member_scope(request: Request, member_id: str, who: Principal) -> str:
    """The member a route is about: the member's own key or the operator's (403 otherwise); 404 if none such."""
    if who not in (OPERATOR, member_id):
        raise ServiceError(403, "this key may not access that member", "member_id")
    house: ClearingHouse = request.app.state.clearing
    if member_id not in house.member_ids:
        raise ServiceError(404, f"no member {member_id!r}", "member_id")
    return member_id


MemberId = Annotated[str, Depends(member_scope)]


def install_clearing(app: FastAPI, house: ClearingHouse, events: EventBus) -> None:
    """Add the member and operator routes of `house` to `app`; cycles publish their events on `events`."""
    app.state.clearing = house
    lock = threading.RLock()  # the house is one state machine: one request at a time changes or reads it
    members = {member.id: member for member in house.spec.members}
    member_of = house.spec.member_of()
    cached: dict[tuple[int, int], ClearingMargins] = {}

    def clearing_call(call: Callable[[], Returned], field: str | None,
                      rename: dict[str, str] | None = None) -> Returned:
        """Run `call` on the house under the lock; its refusals become 422 naming the request's field."""
        with lock:
            try:
                return call()
            except InputError as error:
                where = (rename or {}).get(error.field or "", error.field) or field
                raise ServiceError(422, error.message, where) from None
            except (ArithmeticError, ValueError) as error:
                raise ServiceError(422, f"cannot use this input ({type(error).__name__})", field) from None

    def margins() -> ClearingMargins:
        """Every account's IM and MM at the current positions and settlement prices (kept until they change)."""
        version = (len(house.cycles), len(house.trades))
        if version not in cached:
            cached.clear()
            cached[version] = clearing_margins(house.spec, house.book_spec())
        return cached[version]

    def member_cycle(report: CycleReport, member_id: str) -> MemberCycle:
        row = next(m for m in cycle_document(report)["members"] if m["member"] == member_id)
        payments = {a: format_decimal(v) for a, v in sorted(report.payments.items()) if member_of.get(a) == member_id}
        return MemberCycle.model_validate({
            **{k: v for k, v in row.items() if k != "member"}, "cycle": report.cycle, "time": time_text(report.time),
            "key": report.key, "ledger_status": report.ledger_status, "payments": payments,
            "netting_efficiency": report.netting_efficiency, "netting_efficiency_full": report.netting_efficiency_full})

    def publish_cycle(report: CycleReport) -> None:
        events.publish("cycle", None, {"cycle": report.cycle, "time": time_text(report.time),
                                       "currency": report.currency, "ledger_status": report.ledger_status,
                                       "paid": format_decimal(report.paid),
                                       "collected": format_decimal(report.collected),
                                       "netting_efficiency": report.netting_efficiency,
                                       "calls": len(report.calls), "defaults": len(report.defaults)})
        for member_id in house.member_ids:
            events.publish("settlement", member_id, member_cycle(report, member_id).model_dump())
        for call in report.calls:
            events.publish("margin_call", call.member, call_document(call))
        publish_defaults(report.defaults)

    def publish_defaults(defaults: tuple[DefaultEvent, ...]) -> None:
        for event in defaults:
            events.publish("default", event.member, default_document(event))

    @app.get("/members", responses=ERRORS, tags=["clearing"])
    def list_members(_who: Operator) -> MemberList:
        """Every clearing member: its accounts, open calls and default status (operator)."""
        with lock:
            open_calls = [call.member for call in house.register.open.values()]
            defaulted = set(house.register.defaulted)
        return MemberList(clearing_house=house.id, members=[
            MemberSummary(member=m.id, affiliate_group=m.affiliate_group, accounts=[a.id for a in m.accounts],
                          open_calls=open_calls.count(m.id), in_default=m.id in defaulted)
            for m in house.spec.members])

    @app.get("/members/{member_id}", responses=ERRORS, tags=["clearing members"])
    def member(member_id: MemberId) -> MemberView:
        """A member's accounts (kind, segregation, model), IM and MM per account and in total, collateral, calls."""

        def read() -> MemberView:
            figures = margins()
            value = house.collateral()
            kinds = {name: asset.kind for name, asset in house.ledger.assets().items()}
            balances = house.ledger.balances()
            positions = house.positions()
            rows = []
            for account in members[member_id].accounts:
                n = house.account_index[account.id]
                call = house.register.open.get(account.id)
                rows.append(ClearingAccountView.model_validate({
                    "account": account.id, "kind": account.kind, "segregation": account.segregation,
                    "model": figures.models[n], "profile": account.profile.name,
                    "initial_margin": float(figures.initial_margin[n]),
                    "maintenance_margin": float(figures.maintenance_margin[n]),
                    "collateral": _decimal_map({a: v for a, v in balances.get(account.id, {}).items()
                                                if kinds.get(a) == "asset"}),
                    "collateral_value": float(value[n]), "positions": _decimal_map(positions.get(account.id, {})),
                    "open_call": _call(call) if call is not None else None}))
            event = house.register.defaulted.get(member_id)
            return MemberView(
                member=member_id, affiliate_group=members[member_id].affiliate_group, currency=house.currency,
                as_of=time_text(house.time), accounts=rows,
                initial_margin=sum(r.initial_margin for r in rows),
                maintenance_margin=sum(r.maintenance_margin for r in rows),
                collateral_value=sum(r.collateral_value for r in rows),
                open_calls=[r.open_call for r in rows if r.open_call is not None], in_default=event is not None,
                default=_default(event) if event is not None else None)

        return clearing_call(read, None)

    @app.get("/members/{member_id}/settlements", responses=ERRORS, tags=["clearing members"])
    def settlements(member_id: MemberId) -> SettlementHistory:
        """The member's settlement in every cycle: gross paid and received, house and client nets, efficiency."""
        with lock:
            cycles = list(house.cycles)
        return SettlementHistory(member=member_id, settlements=[member_cycle(report, member_id) for report in cycles])

    @app.get("/members/{member_id}/calls", responses=ERRORS, tags=["clearing members"])
    def calls(member_id: MemberId, status: Annotated[Literal["open", "met", "defaulted"] | None, Query(
            description="Only the calls in this state")] = None) -> CallList:
        """The member's initial-margin calls, in the order they were issued (latest state of each)."""
        with lock:
            made = [call for call in house.calls if call.member == member_id]
        return CallList(member=member_id, calls=[_call(c) for c in made if status is None or c.status == status])

    @app.post("/members/{member_id}/calls/{account_id}/payments", responses=ERRORS, tags=["clearing members"])
    def pay_call(member_id: MemberId, account_id: str, body: PaymentRequest) -> PaymentResponse:
        """Meet an account's open initial-margin call: deposit `amount` before its deadline (the member or operator).

        The call is met once the account's collateral covers the initial margin it asks for; a smaller payment
        leaves it open with a smaller amount. A payment after the deadline is refused (422, field `time`).
        """
        if member_of.get(account_id) != member_id:
            raise ServiceError(404, f"member {member_id!r} has no account {account_id!r}", "account_id")

        def pay() -> MarginCall:
            moment = _moment(body.time) if body.time is not None else house.time
            return house.meet_call(account_id, body.amount, time=moment, key=body.key)

        call = clearing_call(pay, "amount", {"account": "account_id"})
        events.publish("call_payment", member_id, {"account": account_id, "amount": str(body.amount),
                                                   "call": call_document(call)})
        return PaymentResponse(call=_call(call))

    @app.post("/clearing/trades", responses=ERRORS, tags=["clearing"])
    def novate(body: NovationRequest, _who: Operator) -> NovationResponse:
        """Novate a batch of bilateral trades: each becomes two legs facing the clearing house (operator).

        The batch is validated whole (422 naming `trades[i].<field>`; nothing changes) and journalled in one
        ledger transaction. The trades settle at the next cycle against their own prices.
        """
        trades = [Trade(t.id, t.buyer, t.seller, t.instrument, t.quantity, t.price) for t in body.trades]
        result = clearing_call(lambda: house.novate(trades), "trades")
        booked: dict[str, list[dict[str, Any]]] = {}
        novated = set(result.novated)
        for trade in (t for t in body.trades if t.id in novated):
            for side in {member_of[trade.buyer], member_of[trade.seller]}:
                booked.setdefault(side, []).append(trade.model_dump())
        for member_id, rows in booked.items():
            events.publish("novation", member_id, {"trades": rows})
        return NovationResponse(novated=list(result.novated), duplicates=result.duplicates, replayed=result.replayed)

    @app.post("/clearing/cycles", responses=ERRORS, tags=["clearing"])
    def settle(body: CycleRequest, _who: Operator) -> CycleResponse:
        """Run a settlement cycle (operator): variation margin and funding, netting per member, then IM calls.

        One zero-sum ledger entry in the clearing house's currency whose key derives from `time` (the same cycle
        again is a no-op, `ledger_status` duplicate). Events: `cycle` (operator), and per member `settlement`,
        `margin_call` and `default`. Bad input is a 422 naming the field and changes nothing; should the margin
        review after a settled cycle refuse, the cycle stands and `margin_review_error` says why.
        """
        review_error: ErrorDetail | None = None
        with lock:
            count = len(house.cycles)
            try:
                report = clearing_call(lambda: house.settle(body.prices, body.funding_rates, _moment(body.time),
                                                            index=body.index), "prices")
            except ServiceError as error:
                if len(house.cycles) == count:
                    raise
                report, review_error = house.cycles[-1], ErrorDetail(field=error.field, message=error.message)
            publish_cycle(report)
        return CycleResponse(**cycle_document(report), margin_review_error=review_error)

    @app.post("/clearing/clock", responses=ERRORS, tags=["clearing"])
    def advance(body: ClockRequest, _who: Operator) -> ClockResponse:
        """Move the clearing house's clock (operator): calls covered are met, calls past their deadline default."""
        defaults = clearing_call(lambda: house.advance(_moment(body.time)), "time")
        publish_defaults(defaults)
        with lock:
            open_calls = list(house.register.open.values())
            moment = house.time
        return ClockResponse(time=time_text(moment), defaults=[_default(d) for d in defaults],
                             open_calls=[_call(c) for c in open_calls])

    @app.get("/clearing/house", responses=ERRORS, tags=["clearing"])
    def clearing_house(_who: Operator) -> HouseView:
        """The clearing house: its own net position per instrument (flat), prices, rounding, defaults (operator)."""
        with lock:
            net = house.house_position()
            held = house.ledger.balances(house.id, include_zero=True).get(house.id, {})
            rounding = house.ledger.balances(house.rounding_account).get(house.rounding_account, {})
            kinds = {name: asset.kind for name, asset in house.ledger.assets().items()}
            ledger_net = {name: held.get(name, Decimal(0)) for name in house.instrument_ids}
            ledger_net.update({a: v for a, v in held.items() if kinds.get(a) == "instrument"})
            settings = house.spec.settings
            return HouseView(
                clearing_house=house.id, currency=house.currency, time=time_text(house.time),
                last_settlement=time_text(house.last_settlement), cycles=len(house.cycles), trades=len(house.trades),
                members=len(house.member_ids), net_position=_decimal_map(net),
                ledger_net_position=_decimal_map(ledger_net),
                flat=all(v == 0 for v in net.values()) and all(v == 0 for v in ledger_net.values()),
                settlement_prices=dict(zip(house.instrument_ids, house.settlement_price.tolist(), strict=True)),
                index=dict(house.index), rounding_account=house.rounding_account,
                rounding_balance=format_decimal(rounding.get(house.currency, Decimal(0))),
                defaults=[_default(d) for d in house.defaults],
                skin_in_the_game=SkinInTheGameView(first=settings.skin_in_the_game.first,
                                                   second=settings.skin_in_the_game.second),
                default_fund=DefaultFundView(cover=settings.default_fund.cover,
                                             minimum_contribution=settings.default_fund.minimum_contribution,
                                             assessment_multiple=settings.default_fund.assessment_multiple))
