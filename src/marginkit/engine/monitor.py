"""The monitor: price events in, affected accounts re-margined, status changes and liquidations out.

A price event moves one instrument's mark (or an underlying's index, and with it every instrument on it in
proportion). Only the accounts holding a moved instrument are re-margined (the CSR index instrument →
positions → accounts of the RiskState), with array operations over their positions. An account whose status
changes emits a StatusChange; entering margin_call starts a deadline (`margin_call_seconds`); below
maintenance it is liquidated (liquidation.py) unless a price it depends on is older than
`stale_after_seconds` relative to the latest event time, which freezes its liquidation (re-tried on the next
fresh price). An account still in margin_call when its deadline passes is reduced until healthy.

Events are processed in batches: `process` takes a list; `run` groups an async stream by event time into
windows of `coalesce_seconds` (0: one event per batch) and, within a window, keeps only each instrument's
latest price (counted in `coalesced`). Sources: `replay(path)` (CSV `time,instrument|underlying,price` or
JSON lines), `from_queue(queue)` and `from_nats(url, subject)` (nats-py; JSON messages like the file's).
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marginkit.engine.events import AdlEvent, EngineEvent, PriceEvent, StatusChange
from marginkit.engine.liquidation import LiquidationEngine
from marginkit.engine.state import LIQUIDATION, MARGIN_CALL, STATUS_NAMES, RiskState, ranges
from marginkit.errors import InputError

I64 = np.ndarray[tuple[int], np.dtype[np.int64]]


@dataclass(frozen=True)
class MonitorSettings:
    """Margin-call deadline, staleness limit and coalescing window, in seconds."""

    margin_call_seconds: float = 3600.0
    stale_after_seconds: float = 60.0
    coalesce_seconds: float = 0.0


class Monitor:
    """Holds a RiskState, applies price events and drives the liquidation engine."""

    def __init__(self, state: RiskState, liquidation: LiquidationEngine | None = None,
                 settings: MonitorSettings | None = None) -> None:
        self.state = state
        self.liquidation = liquidation
        self.settings = settings or MonitorSettings()
        self.clock = float(state.mark_time.max()) if state.mark_time.size else 0.0
        self.instrument_of = {name: i for i, name in enumerate(state.instrument_ids)}
        self.underlying_of = {name: u for u, name in enumerate(state.underlyings)}
        self.account_of = {name: a for a, name in enumerate(state.account_ids)}
        self.events_in = 0
        self.coalesced = 0
        self.stale_ignored = 0
        self.batches = 0
        self.frozen: set[int] = set()  # accounts whose liquidation is frozen on stale prices
        self.key_prefix = "liq"  # ledger keys of liquidations: {prefix}:{account}:{clock}:{n}
        self._earliest_deadline = float(state.deadline.min()) if state.deadline.size else math.inf

    # -- batches ------------------------------------------------------------------------------------------
    def process(self, events: Iterable[PriceEvent]) -> list[EngineEvent]:
        """Apply a batch of price events (each instrument's latest counts) and return what they caused."""
        if isinstance(events, list) and len(events) == 1 and events[0].instrument is not None:
            return self._process_one(events[0])
        state = self.state
        latest: dict[int, tuple[float, float]] = {}  # instrument -> (time, mark)
        count = 0
        for event in events:
            count += 1
            self.clock = max(self.clock, event.time)
            if event.instrument is not None:
                if event.instrument not in self.instrument_of:
                    raise InputError(f"unknown instrument {event.instrument!r}", field="instrument")
                targets = [(self.instrument_of[event.instrument], event.price)]
            else:
                assert event.underlying is not None
                if event.underlying not in self.underlying_of:
                    raise InputError(f"unknown underlying {event.underlying!r}", field="underlying")
                u = self.underlying_of[event.underlying]
                ratio = event.price / state.index[u]
                state.index[u] = event.price
                on = np.flatnonzero(state.instrument_underlying == u)
                targets = [(int(i), float(state.mark[i]) * ratio) for i in on]
            for instrument, price in targets:
                if event.time < state.mark_time[instrument]:
                    self.stale_ignored += 1  # out of order: an older price never replaces a newer one
                    continue
                if instrument in latest:
                    self.coalesced += 1
                latest[instrument] = (event.time, price)
                state.mark[instrument] = price  # an underlying's later event must scale from this mark
        self.events_in += count
        self.batches += 1
        moved = np.fromiter(latest.keys(), dtype=np.int64, count=len(latest))
        if moved.size:
            state.mark_time[moved] = np.fromiter((t for t, _ in latest.values()), dtype=np.float64, count=moved.size)
            state.mark[moved] = np.fromiter((m for _, m in latest.values()), dtype=np.float64, count=moved.size)
        return self._after_prices(moved)

    def _after_prices(self, moved: I64) -> list[EngineEvent]:
        """Re-margin the holders of the moved instruments, with expired margin calls and frozen liquidations."""
        state = self.state
        if self.clock >= self._earliest_deadline or self.frozen:  # expired margin calls, frozen liquidations
            due = np.flatnonzero(state.deadline <= self.clock)
            extra = np.union1d(due, np.fromiter(self.frozen, dtype=np.int64, count=len(self.frozen)))
            out = self._remargin(np.union1d(state.accounts_of_instruments(moved), extra))
        else:  # the common case: holders and their statuses in one compiled call
            out = self._remargin(*state.affected_status(moved))
        if self.clock >= self._earliest_deadline:
            self._earliest_deadline = float(state.deadline.min())
        return out

    def review(self, accounts: I64 | None = None) -> list[EngineEvent]:
        """Re-margin accounts (default: all) at the current marks and clock: status changes and liquidations."""
        if accounts is None:
            accounts = np.arange(self.state.account_count, dtype=np.int64)
        return self._remargin(accounts)

    def _stale_accounts(self, accounts: I64) -> np.ndarray[tuple[int], np.dtype[np.bool_]]:
        state = self.state
        starts = state.scope_position_ptr[state.account_scope_ptr[accounts]]
        ends = state.scope_position_ptr[state.account_scope_ptr[accounts + 1]]
        positions = ranges(starts, ends)
        local = np.repeat(np.arange(accounts.size), ends - starts)
        age = self.clock - state.mark_time[state.position_instrument[positions]]
        stale = (age > self.settings.stale_after_seconds) & (state.quantity[positions] != 0)
        result: np.ndarray[tuple[int], np.dtype[np.bool_]] = np.bincount(
            local, weights=stale.astype(np.float64), minlength=accounts.size) > 0
        return result

    def _process_one(self, event: PriceEvent) -> list[EngineEvent]:
        """`process` of one instrument's price: the same steps without the batch bookkeeping."""
        state = self.state
        instrument = self.instrument_of.get(event.instrument)  # type: ignore[arg-type]
        if instrument is None:
            raise InputError(f"unknown instrument {event.instrument!r}", field="instrument")
        self.clock = max(self.clock, event.time)
        self.events_in += 1
        self.batches += 1
        if event.time < state.mark_time[instrument]:
            self.stale_ignored += 1  # out of order: an older price never replaces a newer one
            moved = np.zeros(0, dtype=np.int64)
        else:
            state.mark[instrument] = event.price
            state.mark_time[instrument] = event.time
            moved = np.array([instrument], dtype=np.int64)
        return self._after_prices(moved)

    def _remargin(self, accounts: I64, new: np.ndarray[tuple[int], np.dtype[np.int8]] | None = None
                  ) -> list[EngineEvent]:
        state = self.state
        out: list[EngineEvent] = []
        if not accounts.size:
            return out
        if new is None:
            new = state.account_status(accounts)
        moved = new != state.status[accounts]
        due = new == LIQUIDATION
        expiring = self.clock >= self._earliest_deadline
        if not (moved.any() or due.any() or expiring):  # the common case: nothing to say or do
            self.frozen = set()
            return out
        changed = accounts[moved]
        liquidate = accounts[due]
        expired = accounts[(new == MARGIN_CALL) & (state.deadline[accounts] <= self.clock)] if expiring else \
            np.zeros(0, dtype=np.int64)
        stale = self._stale_accounts(liquidate) if liquidate.size else np.zeros(0, dtype=bool)
        frozen = set(liquidate[stale].tolist())
        new_of = dict(zip(accounts.tolist(), new.tolist(), strict=True))
        for a in changed.tolist():
            self._set_status(a, new_of[a], out, frozen=a in frozen)
        self.frozen = frozen
        if self.liquidation is None:
            return out
        acted: list[int] = []
        for a, reason in [(a, False) for a in liquidate[~stale].tolist()] + [(a, True) for a in expired.tolist()]:
            key = f"{self.key_prefix}:{state.account_ids[a]}:{self.clock!r}"
            out += self.liquidation.liquidate_account(a, self.clock, key, expired_margin_call=reason)
            acted.append(a)
        if acted:
            self.liquidation.flush()
            touched = set(acted) | {self.account_of[e.account] for e in out if isinstance(e, AdlEvent)}
            after_accounts = np.array(sorted(touched), dtype=np.int64)
            after = state.account_status(after_accounts)
            for a, code in zip(after_accounts.tolist(), after.tolist(), strict=True):
                if code != state.status[a]:
                    self._set_status(a, code, out, frozen=False)
        return out

    def _set_status(self, account: int, code: int, out: list[EngineEvent], *, frozen: bool) -> None:
        state = self.state
        old = int(state.status[account])
        deadline: float | None = None
        if code == MARGIN_CALL:
            if not math.isfinite(state.deadline[account]):
                state.deadline[account] = self.clock + self.settings.margin_call_seconds
                self._earliest_deadline = min(self._earliest_deadline, float(state.deadline[account]))
            deadline = float(state.deadline[account])
        elif code != LIQUIDATION:
            state.deadline[account] = np.inf
        state.status[account] = code
        out.append(StatusChange(state.account_ids[account], STATUS_NAMES[old], STATUS_NAMES[code], self.clock,
                                deadline, frozen))

    # -- streams ------------------------------------------------------------------------------------------
    async def run(self, source: AsyncIterator[PriceEvent]) -> list[EngineEvent]:
        """Consume a stream to its end, in windows of `coalesce_seconds` of event time; returns all events out."""
        window = self.settings.coalesce_seconds
        batch: list[PriceEvent] = []
        out: list[EngineEvent] = []
        async for event in source:
            if batch and event.time - batch[0].time > window:
                out += self.process(batch)
                batch = []
            batch.append(event)
            if window <= 0:
                out += self.process(batch)
                batch = []
        if batch:
            out += self.process(batch)
        return out


def parse_event(row: dict[str, Any], where: str) -> PriceEvent:
    """A price event from a record with `time`, `price` and `instrument` or `underlying`."""
    try:
        instrument = row.get("instrument") or None
        underlying = row.get("underlying") or None
        return PriceEvent(price=float(row["price"]), time=float(row["time"]), instrument=instrument,
                          underlying=underlying)
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"bad price event: {error}", field=where) from error


def read_events(path: Path) -> list[PriceEvent]:
    """Price events from a CSV (header `time,instrument,price` or `time,underlying,price`) or JSON-lines file."""
    try:
        text = path.read_text()
    except OSError as error:
        raise InputError(f"cannot read the price events: {error.strerror or error}", field=str(path)) from error
    if path.suffix in (".jsonl", ".ndjson", ".json"):
        return [parse_event(json.loads(line), f"{path.name}:{n}") for n, line in enumerate(text.splitlines(), 1)
                if line.strip()]
    return [parse_event(dict(row), f"{path.name}:{n}") for n, row in enumerate(csv.DictReader(text.splitlines()), 2)]


async def replay(path: Path) -> AsyncIterator[PriceEvent]:
    """Replay a file of price events as an async stream, in file order, as fast as it is consumed."""
    for event in read_events(path):
        yield event
        await asyncio.sleep(0)


async def from_queue(queue: asyncio.Queue[PriceEvent | None]) -> AsyncIterator[PriceEvent]:
    """Price events from an asyncio.Queue until a None arrives (the HTTP API's feed)."""
    while True:
        event = await queue.get()
        if event is None:
            return
        yield event


async def from_nats(url: str, subject: str, *, limit: int | None = None, idle_seconds: float | None = None
                    ) -> AsyncIterator[PriceEvent]:
    """Price events from a NATS subject (JSON messages), until `limit` events, `idle_seconds` without one,
    or a message `{"end": true}`."""
    import nats

    connection = await nats.connect(url)
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(message: Any) -> None:
        await queue.put(message.data)

    subscription = await connection.subscribe(subject, cb=handle)
    seen = 0
    try:
        while limit is None or seen < limit:
            try:
                data = await asyncio.wait_for(queue.get(), idle_seconds) if idle_seconds else await queue.get()
            except TimeoutError:
                return
            record = json.loads(data)
            if record.get("end"):
                return
            seen += 1
            yield parse_event(record, f"nats:{subject}")
    finally:
        await subscription.unsubscribe()
        await connection.drain()
