"""Initial-margin calls and defaults: a call when collateral falls below IM, met before its deadline or a default.

After each settlement cycle every clearing account's initial margin (rounded up to the currency's minor
units) is compared with its collateral (rounded down): a shortfall opens a call due at the review time plus
the clearing house's `im_call_deadline_seconds`. While a call is open, later reviews update what it asks for
but keep its deadline; it is met as soon as the collateral covers the initial margin it asks for (a deposit,
or a later cycle's variation margin or a smaller IM). A call still open after its deadline is missed: its
member is in default (one event per member; the default waterfall acts on it, clearing/waterfall.py).
Accounts of a member in default get no new calls. Amounts are in the clearing house's currency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

OPEN, MET, DEFAULTED = "open", "met", "defaulted"


@dataclass(frozen=True)
class MarginCall:
    """An initial-margin call on one clearing account: what it asks for and by when (status open, met, defaulted).

    `initial_margin` is the requirement (rounded up), `collateral` the account's collateral when last reviewed
    (rounded down) and `amount` = initial_margin − collateral, the deposit that meets it.
    """

    id: str
    account: str
    member: str
    initial_margin: Decimal
    collateral: Decimal
    amount: Decimal
    issued_at: datetime
    deadline: datetime
    status: str = OPEN
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class DefaultEvent:
    """A member in default: the calls it missed (ids) and their unmet amount, flagged at `time`."""

    member: str
    time: datetime
    calls: tuple[str, ...]
    shortfall: Decimal


def time_text(moment: datetime) -> str:
    """A UTC time as it appears in keys, ids and reports: 2026-11-24T16:00:00Z (microseconds only when present)."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"


def to_minor(values: F64, minor_per_unit: int, *, up: bool) -> I64:
    """Amounts in minor units, rounded up (requirements) or down (collateral), after rounding off float noise."""
    scaled = np.round(values * float(minor_per_unit), 6)
    result: I64 = (np.ceil(scaled) if up else np.floor(scaled)).astype(np.int64)
    return result


class CallRegister:
    """The open calls (one per account at most), every call ever made, and the defaults, in minor units."""

    def __init__(self, deadline_seconds: float, decimals: int) -> None:
        self.deadline = timedelta(seconds=deadline_seconds)
        self.decimals = decimals
        self.open: dict[str, MarginCall] = {}
        self.calls: dict[str, MarginCall] = {}  # by id, latest state
        self.defaults: list[DefaultEvent] = []
        self.defaulted: dict[str, DefaultEvent] = {}  # by member

    def _amount(self, minor: int) -> Decimal:
        return Decimal(minor).scaleb(-self.decimals)

    def _record(self, call: MarginCall) -> MarginCall:
        self.calls[call.id] = call
        if call.status == OPEN:
            self.open[call.account] = call
        else:
            self.open.pop(call.account, None)
        return call

    def review(self, time: datetime, accounts: Sequence[str], members: Sequence[str], initial_margin_minor: I64,
               collateral_minor: I64) -> tuple[MarginCall, ...]:
        """Issue, update or close calls from every account's IM and collateral; returns the calls open after it."""
        short = initial_margin_minor > collateral_minor
        candidates = set(np.flatnonzero(short).tolist())
        if self.open:
            position = {account: n for n, account in enumerate(accounts)}
            candidates.update(position[account] for account in self.open)
        for n in sorted(candidates):
            account, member = accounts[n], members[n]
            required, held = int(initial_margin_minor[n]), int(collateral_minor[n])
            existing = self.open.get(account)
            if not short[n]:
                if existing is not None:
                    self._record(replace(existing, collateral=self._amount(held), amount=Decimal(0), status=MET,
                                         resolved_at=time))
                continue
            if member in self.defaulted:
                continue
            asked, have, amount = self._amount(required), self._amount(held), self._amount(required - held)
            if existing is not None:
                self._record(replace(existing, initial_margin=asked, collateral=have, amount=amount))
            else:
                self._record(MarginCall(f"{account}@{time_text(time)}", account, member, asked, have, amount,
                                        issued_at=time, deadline=time + self.deadline))
        return tuple(self.open.values())

    def resolve(self, time: datetime, collateral_minor: Mapping[str, int]) -> tuple[DefaultEvent, ...]:
        """Resolve the open calls of the accounts in `collateral_minor` at `time`: met, missed or still open.

        A call the collateral covers is met; one past its deadline is missed and its member defaults (one event
        per member, returned); any other stays open with the new collateral and amount.
        """
        missed: dict[str, list[MarginCall]] = {}
        for call in list(self.open.values()):
            if call.account not in collateral_minor:
                continue
            held = collateral_minor[call.account]
            required = int(call.initial_margin.scaleb(self.decimals))
            if held >= required:
                self._record(replace(call, collateral=self._amount(held), amount=Decimal(0), status=MET,
                                     resolved_at=time))
            elif time > call.deadline:
                missed.setdefault(call.member, []).append(
                    self._record(replace(call, collateral=self._amount(held), amount=self._amount(required - held),
                                         status=DEFAULTED, resolved_at=time)))
            else:
                self._record(replace(call, collateral=self._amount(held), amount=self._amount(required - held)))
        events = []
        for member, calls in missed.items():
            if member in self.defaulted:
                continue
            event = DefaultEvent(member, time, tuple(c.id for c in calls), sum((c.amount for c in calls), Decimal(0)))
            self.defaulted[member] = event
            self.defaults.append(event)
            events.append(event)
        return tuple(events)
