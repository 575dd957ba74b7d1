"""The clearing house: novation, settlement cycles and initial-margin calls over whole-book arrays and a ledger.

A `ClearingHouse` is built from a clearing-house file (`ClearingSpec`) and a `Ledger`. The spec's book holds
the opening positions, already novated, and its marks are the last settlement prices. State:

* positions per (clearing account, instrument) cell in exact integer lots (clearing/positions.py), the last
  settlement price per instrument and the asset prices (USD value per unit) used to convert into the
  clearing house's currency C;
* in the ledger: every clearing account's collateral (deposits, variation margin received − paid) and
  positions (instruments journalled in contracts); the clearing house's own account, named after the
  clearing house's id, is the counterparty of every leg and stays flat in every instrument; its rounding
  account `<id>.rounding` collects the sub-unit residual of each cycle's rounding (clearing/settlement.py).

`novate` books trades as two legs facing the clearing house; `settle` runs one cycle (variation margin and
funding per cell, netting per member, ONE variation-margin ledger operation in C whose key is derived from the
cycle's time, so re-running a cycle is a no-op) and then reviews initial margin (`clearing_margins` at the
new prices and positions) against collateral, issuing calls (clearing/calls.py); `meet_call` deposits
against a call; `advance` flags members whose calls passed their deadline unmet as in default.

The in-memory state is the source of the next cycle's figures; the ledger is the record of every movement,
and every entry's idempotency key is derived from what caused it. A house replays: given the same inputs in
the same order on the same ledger (a crashed run, or the `ccp settle` command run twice), every entry is a
duplicate and the in-memory state is rebuilt; an input that would journal other content under a key already
used is refused before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.book import OPTION, PERPETUAL, SPOT, resolve
from marginkit.clearing.calls import CallRegister, DefaultEvent, MarginCall, time_text, to_minor
from marginkit.clearing.margin import ClearingMargins, clearing_margins
from marginkit.clearing.novation import (
    NovationResult,
    Trade,
    exact_decimal,
    novation_operations,
    operation_key,
    validate_trades,
)
from marginkit.clearing.positions import LOTS_PER_CONTRACT, MAX_LOTS, QUANTITY_DECIMALS, PositionCells
from marginkit.clearing.settlement import (
    CellFlows,
    CycleReport,
    InstrumentTerms,
    MemberSettlement,
    Netting,
    cell_flows,
    net,
    trade_adjustment,
)
from marginkit.clearing.spec import CLIENT, ClearingSpec
from marginkit.domain import Account, BookSpec, Position, PositionMode
from marginkit.errors import InputError
from marginkit.io.book_file import parse_utc
from marginkit.ledger import Asset, Ledger, LedgerRefusal, Operation, make_operation, round_credit
from marginkit.models import MODELS

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def utc_time(value: Any, field: str = "time") -> datetime:
    """A zone-aware time (datetime or ISO 8601 text), in UTC; InputError naming `field` otherwise."""
    try:
        return parse_utc(value)
    except ValueError as error:
        raise InputError(str(error), field=field) from None


def contracts(lots: int) -> Decimal:
    """Integer lots as exact contracts (2 contracts, not 2.00000000)."""
    return Decimal(lots) / LOTS_PER_CONTRACT


def _finite_map(values: Mapping[str, Any] | None, field: str) -> dict[str, float]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InputError("must map names to numbers", field=field)
    result: dict[str, float] = {}
    for name, value in values.items():
        where = f"{field}.{name}"
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise InputError("must be a number", field=where)
        number = float(value)
        if not np.isfinite(number):
            raise InputError("must be finite", field=where)
        result[str(name)] = number
    return result


class ClearingHouse:
    """A central counterparty over whole-book arrays and a ledger (see the module doc)."""

    def __init__(self, spec: ClearingSpec, ledger: Ledger) -> None:
        settings = spec.settings
        self.spec = spec
        self.ledger = ledger
        self.id = settings.id
        self.currency = settings.currency
        self.rounding_account = f"{settings.id}.rounding"
        accounts = spec.accounts
        self.account_ids = tuple(a.id for a in accounts)
        self.account_index = {name: n for n, name in enumerate(self.account_ids)}
        if self.id in self.account_index or self.rounding_account in self.account_index:
            raise InputError("the clearing house's id is also a clearing account's", field="clearing_house.id")
        if len(self.rounding_account) > 64:
            raise InputError("must be at most 55 characters (its rounding account is '<id>.rounding')",
                             field="clearing_house.id")
        self.member_ids = tuple(m.id for m in spec.members)
        member_index = {name: n for n, name in enumerate(self.member_ids)}
        self.account_member = np.array([member_index[a.member] for a in accounts], dtype=np.int64)
        self.account_is_client = np.array([a.kind == CLIENT for a in accounts], dtype=np.bool_)
        self._member_of = tuple(a.member for a in accounts)

        market = resolve(replace(spec.book, accounts=()))  # instruments and prices only
        self.instrument_ids = market.instrument_ids
        self.instrument_index = {name: n for n, name in enumerate(self.instrument_ids)}
        kind = market.kind
        delta_one_inverse = market.inverse & (kind != OPTION) & (kind != SPOT)
        unit = np.where(delta_one_inverse | (kind == OPTION), market.settlement, market.quote).astype(np.int32)
        self.terms = InstrumentTerms(self.instrument_ids, market.contract_size.astype(np.float64), delta_one_inverse,
                                     kind == PERPETUAL, kind == OPTION, unit)
        self._unit_assets = market.assets
        self.index = dict(spec.book.market.index)
        if self._usd(self.currency) is None:
            raise InputError(f"the book has no index price for the clearing currency {self.currency!r}",
                             field="clearing_house.currency")
        self.settlement_price: F64 = market.mark.astype(np.float64).copy()
        known = ledger.assets()
        if self.currency not in known or known[self.currency].kind != "asset":
            raise InputError(f"the ledger has no asset {self.currency!r} (marginkit ledger add-asset)",
                             field="clearing_house.currency")
        self.decimals = known[self.currency].decimals
        self.minor_per_unit = 10**self.decimals

        self.cells = PositionCells(len(self.instrument_ids))
        self.cells.add(*self._opening_cells())
        flat = self.house_position_lots()
        if np.any(flat != 0):
            n = int(np.flatnonzero(flat)[0])
            raise InputError(f"the book is not flat in {self.instrument_ids[n]!r}: its positions net to "
                             f"{-flat[n] / LOTS_PER_CONTRACT:g} contracts (after novation every long faces a short)",
                             field="book.accounts")
        self.time: datetime = spec.book.as_of  # the clock: the last cycle, call or advance
        self.last_settlement: datetime = spec.book.as_of
        self.cycles: list[CycleReport] = []
        self.trades: dict[str, Trade] = {}
        self.register = CallRegister(settings.im_call_deadline_seconds, self.decimals)
        self.margins: ClearingMargins | None = None
        self._call_deposits: dict[str, int] = {}
        self._book_accounts = {account.id: account for account in spec.book.accounts}
        self._coverage: dict[tuple[str, str, str], str | None] = {}

    # ---- building -------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, spec: ClearingSpec, ledger: Ledger, *, journal_positions: bool = True) -> ClearingHouse:
        """Build the house and journal its opening state: instruments, the book's collateral and positions.

        Idempotent: every entry's key is derived from the clearing house, account and asset or instrument, so
        opening the same spec on the same ledger again writes nothing. Without `journal_positions` the
        opening positions are kept in memory only (a benchmark's million positions).
        """
        house = cls(spec, ledger)
        house._register_instruments()
        operations = house._opening_deposits()
        if journal_positions:
            operations += house._opening_trades()
        house._apply(operations, "book")
        return house

    def _usd(self, asset: str) -> float | None:
        if asset in self.index:
            return self.index[asset]
        return 1.0 if asset == "USD" else None

    def _opening_cells(self) -> tuple[I64, I64, I64, F64]:
        """The book's positions as cells: account and instrument indices and exact lots (no trade adjustment)."""
        accounts: list[int] = []
        instruments: list[int] = []
        quantities: list[float] = []
        for account in self.spec.book.accounts:
            n = self.account_index[account.id]
            for position in account.positions:
                accounts.append(n)
                instruments.append(self.instrument_index[position.instrument])
                quantities.append(position.quantity)
        scaled = np.array(quantities, dtype=np.float64) * LOTS_PER_CONTRACT
        lots = np.rint(scaled)
        bad = np.flatnonzero((np.abs(scaled - lots) > 1e-6 * np.maximum(1.0, np.abs(scaled)))
                             | (np.abs(lots) > MAX_LOTS))
        if bad.size:
            counts = np.cumsum([len(account.positions) for account in self.spec.book.accounts])
            a = int(np.searchsorted(counts, bad[0], side="right"))
            p = int(bad[0] - (counts[a - 1] if a else 0))
            raise InputError(f"must be a whole number of 10^-{QUANTITY_DECIMALS} contracts",
                             field=f"book.accounts[{a}].positions[{p}].quantity")
        return (np.array(accounts, dtype=np.int64), np.array(instruments, dtype=np.int64), lots.astype(np.int64),
                np.zeros(lots.shape[0]))

    def _register_instruments(self) -> None:
        """Journal every instrument's contracts (in 10^-8 lots) in one ledger transaction."""
        try:
            self.ledger.add_assets([Asset(name, QUANTITY_DECIMALS, "instrument") for name in self.instrument_ids])
        except LedgerRefusal as error:
            where = error.field or ""
            index = where[1:where.index("]")] if where.startswith("[") else "0"
            raise InputError(f"cannot journal the instrument: {error.message}",
                             field=f"book.instruments[{index}].id") from None

    def _opening_deposits(self) -> list[Operation]:
        known = self.ledger.assets()
        operations = []
        for a, account in enumerate(self.spec.book.accounts):
            for asset, amount in account.collateral.items():
                where = f"book.accounts[{a}].collateral.{asset}"
                unit = known.get(asset)
                if unit is None or unit.kind != "asset":
                    raise InputError(f"the ledger has no asset {asset!r}", field=where)
                if amount < 0:
                    raise InputError("a clearing account's collateral cannot be negative", field=where)
                value = round_credit(amount, unit)
                if value > 0:
                    operations.append(make_operation("deposit", operation_key(self.id, "deposit", account.id, asset),
                                                     {"account": account.id, "asset": asset, "amount": value}))
        return operations

    def _opening_trades(self) -> list[Operation]:
        operations = []
        account, instrument, lots = self.cells.account, self.cells.instrument, self.cells.lots
        for a, i, q in zip(account.tolist(), instrument.tolist(), lots.tolist(), strict=True):
            if q == 0:
                continue
            name, instrument_id = self.account_ids[a], self.instrument_ids[i]
            price = float(self.settlement_price[i])
            if not price > 0:
                raise InputError("an opening position needs a positive settlement price to be journalled",
                                 field=f"market.marks.{instrument_id}")
            buyer, seller = (name, self.id) if q > 0 else (self.id, name)
            fields = {"buyer": buyer, "seller": seller, "instrument": instrument_id,
                      "quantity": Decimal(abs(q)).scaleb(-QUANTITY_DECIMALS), "price": Decimal(repr(price))}
            operations.append(make_operation("trade", operation_key(self.id, "open", name, instrument_id), fields))
        return operations

    def _apply(self, operations: Sequence[Operation], field: str) -> list[str]:
        """Apply operations all or none (`Ledger.submit_all`); each one's status (applied or duplicate).

        A refusal (a key already journalled with other content: another run with other inputs) raises InputError
        naming `field` and writes nothing.
        """
        if not operations:
            return []
        try:
            results = self.ledger.submit_all(operations)
        except LedgerRefusal as error:
            where = f" ({error.field})" if error.field else ""
            raise InputError(f"the ledger refused the entries{where}: {error.message}", field=field) from None
        return [r.status for r in results]

    def _advance_clock(self, time: Any, *, strictly_after_settlement: bool = False) -> datetime:
        moment = utc_time(time)
        if moment < self.time:
            raise InputError(f"must not be before the clearing house's clock ({time_text(self.time)})", field="time")
        if strictly_after_settlement and moment <= self.last_settlement:
            raise InputError(f"must be after the last settlement ({time_text(self.last_settlement)})", field="time")
        return moment

    # ---- state ----------------------------------------------------------------------------------------------

    def house_position_lots(self) -> I64:
        """The clearing house's own net position per instrument in lots: minus Σ members' positions (always 0)."""
        result: I64 = -self.cells.net_lots()
        return result

    def house_position(self) -> dict[str, Decimal]:
        """The clearing house's net position per instrument, in contracts (every value 0 after novation)."""
        lots = self.house_position_lots()
        return {name: contracts(v) for name, v in zip(self.instrument_ids, lots.tolist(), strict=True)}

    def positions(self) -> dict[str, dict[str, Decimal]]:
        """Open positions per clearing account and instrument, in contracts (exact)."""
        result: dict[str, dict[str, Decimal]] = {}
        for a, i, q in zip(self.cells.account.tolist(), self.cells.instrument.tolist(), self.cells.lots.tolist(),
                           strict=True):
            if q:
                result.setdefault(self.account_ids[a], {})[self.instrument_ids[i]] = contracts(q)
        return result

    def collateral(self) -> F64:
        """Each clearing account's collateral in the clearing house's currency, from the ledger.

        Every asset balance (deposits, variation margin received − paid) valued at the current index prices
        without haircut; assets without an index price count zero.
        """
        result = np.zeros(len(self.account_ids))
        kinds = self.ledger.assets()
        currency_usd = self._usd(self.currency) or 1.0
        for account, balances in self.ledger.balances().items():
            n = self.account_index.get(account)
            if n is None:
                continue
            for asset, amount in balances.items():
                price = self._usd(asset)
                if kinds[asset].kind == "asset" and price is not None:
                    result[n] += float(amount) * price / currency_usd
        return result

    def book_spec(self) -> BookSpec:
        """The book now, for the margin models: current positions, marks = settlement prices, the current index.

        One net position per cell (one-way), entered at the last settlement price; as of the clock.
        """
        book = self._market_book()
        account = self.cells.account
        bounds = np.searchsorted(account, np.arange(len(self.account_ids) + 1))
        instrument, lots = self.cells.instrument.tolist(), self.cells.lots.tolist()
        prices = self.settlement_price.tolist()
        accounts = []
        for original in book.accounts:
            n = self.account_index[original.id]
            positions = tuple(Position(self.instrument_ids[instrument[c]], lots[c] / LOTS_PER_CONTRACT,
                                       prices[instrument[c]])
                              for c in range(int(bounds[n]), int(bounds[n + 1])) if lots[c])
            accounts.append(replace(original, positions=positions, position_mode=PositionMode.ONE_WAY))
        return replace(book, accounts=tuple(accounts))

    # ---- novation -------------------------------------------------------------------------------------------

    def novate(self, trades: Sequence[Trade]) -> NovationResult:
        """Book bilateral trades as two legs each facing the clearing house (clearing/novation.py).

        The batch is validated whole (InputError names `trades[i].<field>`; nothing changes), journalled in one
        ledger transaction, then added to the cells with its trade-price adjustment for the next cycle's
        variation margin: Δ·size·(S_next − price) on the new contracts.
        """
        refused = {account: f"member {member!r} is in default" for account, member in
                   zip(self.account_ids, self._member_of, strict=True) if member in self.register.defaulted}
        batch = validate_trades(trades, self.account_index, self.instrument_index, self.trades, refused)
        if not batch.trades:
            return NovationResult((), batch.duplicates)
        self._check_coverage(trades, batch.trades)
        operations = novation_operations(batch, self.id, f"{self.id}:novation")
        statuses = self._apply(operations, "trades")
        last = self.settlement_price[batch.instrument]
        quantity = batch.lots.astype(np.float64) * (1.0 / LOTS_PER_CONTRACT)
        adjustment = trade_adjustment(quantity, batch.price, last, self.terms.inverse[batch.instrument])
        self.cells.add(np.concatenate([batch.buyer, batch.seller]), np.concatenate([batch.instrument] * 2),
                       np.concatenate([batch.lots, -batch.lots]), np.concatenate([adjustment, -adjustment]))
        self.trades.update((t.id, t) for t in batch.trades)
        return NovationResult(tuple(t.id for t in batch.trades), batch.duplicates, statuses.count("duplicate") // 2)

    def _market_book(self) -> BookSpec:
        marks = dict(zip(self.instrument_ids, self.settlement_price.tolist(), strict=True))
        return replace(self.spec.book, as_of=self.time, market=replace(self.spec.book.market, index=dict(self.index),
                                                                        marks=marks))

    def _coverage_key(self, account_id: str, instrument_id: str) -> tuple[str, str, str]:
        profile = self.spec.accounts[self.account_index[account_id]].profile
        return (profile.path or profile.name, str(self._book_accounts[account_id].mode), instrument_id)

    def _check_coverage(self, trades: Sequence[Trade], batch: Sequence[Trade]) -> None:
        """Refuse a trade whose account's margin model cannot margin its instrument (InputError naming the side).

        Each (profile, account mode, instrument) is probed once, with a one-contract position; the instruments a
        batch brings are probed together, one account per instrument in one model run per profile and mode, so a
        trade that would leave an account unmarginable is refused at novation, not at the next margin review.
        """
        pending: dict[tuple[str, str], dict[str, str]] = {}
        for trade in batch:
            for account_id in (trade.buyer, trade.seller):
                key = self._coverage_key(account_id, trade.instrument)
                if key not in self._coverage:
                    pending.setdefault(key[:2], {}).setdefault(trade.instrument, account_id)
        for (profile_key, mode), instruments in pending.items():
            self._probe(profile_key, mode, instruments)
        for trade in batch:
            for side in ("buyer", "seller"):
                account_id = getattr(trade, side)
                reason = self._coverage[self._coverage_key(account_id, trade.instrument)]
                if reason is not None:
                    n = next(k for k, t in enumerate(trades) if t is trade)
                    raise InputError(f"account {account_id!r}'s model cannot margin {trade.instrument!r}: {reason}",
                                     field=f"trades[{n}].{side}")

    def _probe(self, profile_key: str, mode: str, instruments: dict[str, str]) -> None:
        """Run the profile's model on one probe account per instrument; record each instrument's refusal or None."""
        representative = self._book_accounts[next(iter(instruments.values()))]
        profile = self.spec.accounts[self.account_index[representative.id]].profile
        market = self._market_book()
        remaining = list(instruments)
        while remaining:
            probes = tuple(Account(f"probe-{k}", representative.mode, collateral=dict(representative.collateral),
                                   positions=(Position(name, 1.0, float(self.settlement_price[
                                       self.instrument_index[name]])),))
                           for k, name in enumerate(remaining))
            try:
                MODELS[profile.model](resolve(replace(market, accounts=probes)), profile)
            except InputError as error:
                found = re.match(r"accounts\[(\d+)\]", error.field or "")
                culprit = int(found.group(1)) if found and int(found.group(1)) < len(remaining) else 0
                if found is None and len(remaining) > 1:  # cannot tell which: probe one at a time
                    for name in remaining:
                        self._probe(profile_key, mode, {name: instruments[name]})
                    return
                self._coverage[(profile_key, mode, remaining.pop(culprit))] = \
                    f"{profile.model} ({profile.name}): {error.message}"
                continue
            for name in remaining:
                self._coverage[(profile_key, mode, name)] = None
            return

    # ---- settlement -----------------------------------------------------------------------------------------

    def _cycle_prices(self, prices: Mapping[str, Any], funding_rates: Mapping[str, Any] | None,
                      index: Mapping[str, Any] | None) -> tuple[F64, F64, dict[str, float]]:
        given = _finite_map(prices, "prices")
        current = self.settlement_price.copy()
        for name, price in given.items():
            n = self.instrument_index.get(name)
            if n is None:
                raise InputError(f"unknown instrument {name!r}", field=f"prices.{name}")
            if price < 0 or (price == 0 and not self.terms.option[n]):
                raise InputError("must be positive" if not self.terms.option[n] else "must not be negative",
                                 field=f"prices.{name}")
            current[n] = price
        held = np.zeros(len(self.instrument_ids), dtype=np.bool_)
        held[self.cells.instrument[(self.cells.lots != 0) | (self.cells.adjustment != 0)]] = True
        for n in np.flatnonzero(held).tolist():
            if self.instrument_ids[n] not in given:
                raise InputError("missing: the instrument has open positions or trades to settle",
                                 field=f"prices.{self.instrument_ids[n]}")
        rates = np.zeros(len(self.instrument_ids))
        for name, rate in _finite_map(funding_rates, "funding_rates").items():
            n = self.instrument_index.get(name)
            if n is None:
                raise InputError(f"unknown instrument {name!r}", field=f"funding_rates.{name}")
            if not self.terms.perpetual[n]:
                raise InputError("funding applies to perpetuals only", field=f"funding_rates.{name}")
            rates[n] = rate
        new_index = dict(self.index)
        for asset, price in _finite_map(index, "index").items():
            if price <= 0:
                raise InputError("must be positive", field=f"index.{asset}")
            new_index[asset] = price
        return current, rates, new_index

    def settle(self, prices: Mapping[str, Any], funding_rates: Mapping[str, Any] | None, time: Any, *,
               index: Mapping[str, Any] | None = None, review_margins: bool = True) -> CycleReport:
        """One settlement cycle at `time` to the new settlement `prices` (per instrument), with perpetual funding.

        Variation margin and funding per cell, rounding and netting as clearing/settlement.py states; one
        `variation_margin` ledger operation in the clearing house's currency, key '<id>:vm:<currency>:<time>'
        (a cycle journalled before is a no-op: status duplicate). `funding_rates` are this cycle's rates per
        perpetual (+: longs pay); `index` updates asset prices (USD per unit) for conversion and margin.
        Before the cycle, calls past their deadline are resolved (`advance`); after it, initial margin is
        reviewed (`review_margins`) unless told not to. Bad input raises InputError and changes nothing; should
        the margin review itself refuse (a model that cannot margin an opening position), the cycle stands,
        journalled, with its report in `cycles`, and the refusal is raised.
        """
        moment = self._advance_clock(time, strictly_after_settlement=True)
        current, rates, new_index = self._cycle_prices(prices, funding_rates, index)
        usd = np.array([self._usd_in(new_index, a) for a in self._unit_assets])
        currency_usd = self._usd_in(new_index, self.currency)
        flows = cell_flows(self.cells, self.terms, self.settlement_price, current, rates,
                           (usd / currency_usd)[self.terms.unit])
        netting = net(flows.total, self.cells.account, self.account_member, self.account_is_client,
                      len(self.member_ids), self.decimals)
        if netting.paid_minor != netting.collected_minor:  # pragma: no cover - the rounding account closes the sum
            raise AssertionError("variation margin paid != collected")
        payments = {self.account_ids[n]: Decimal(int(netting.account_minor[n])).scaleb(-self.decimals)
                    for n in np.flatnonzero(netting.account_minor).tolist()}
        if netting.rounding_minor:
            payments[self.rounding_account] = Decimal(netting.rounding_minor).scaleb(-self.decimals)
        key = operation_key(self.id, "vm", self.currency, time_text(moment))
        operation = make_operation("variation_margin", key, {"asset": self.currency, "payments": payments}) \
            if payments else None
        stored = self.ledger.stored_hash(key)
        if stored is not None and (operation is None or stored != operation.content_hash()):
            raise InputError(f"the ledger holds the cycle {key!r} with other payments (another run of this clearing "
                             "house with other inputs)", field="prices")
        defaults = self.advance(moment)
        status = "empty" if operation is None else self._apply([operation], "prices")[0]
        self.settlement_price = current
        self.index = new_index
        self.cells.settled()
        self.last_settlement = moment
        self.cycles.append(self._report(moment, key, status, netting, flows, payments, (), defaults))
        calls = self.review_margins(moment) if review_margins else tuple(self.register.open.values())
        self.cycles[-1] = replace(self.cycles[-1], calls=calls)
        return self.cycles[-1]

    @staticmethod
    def _usd_in(index: Mapping[str, float], asset: str) -> float:
        if asset in index:
            return index[asset]
        if asset == "USD":
            return 1.0
        raise InputError(f"{asset!r} has no index price", field=f"index.{asset}")  # pragma: no cover - resolve checked

    def _report(self, moment: datetime, key: str, status: str, netting: Netting, flows: CellFlows,
                payments: dict[str, Decimal], calls: tuple[MarginCall, ...],
                defaults: tuple[DefaultEvent, ...]) -> CycleReport:
        step = Decimal(1).scaleb(-self.decimals)

        def money(value: float) -> Decimal:
            return Decimal(value).quantize(step)

        def minor(value: int) -> Decimal:
            return Decimal(value).scaleb(-self.decimals)

        members = tuple(
            MemberSettlement(member, self.currency, money(float(netting.gross_paid[m])),
                             money(float(netting.gross_received[m])), minor(int(netting.origin_minor[m, 0])),
                             minor(int(netting.origin_minor[m, 1])))
            for m, member in enumerate(self.member_ids))
        gross = float(netting.gross_paid.sum() + netting.gross_received.sum())
        return CycleReport(
            cycle=len(self.cycles) + 1, time=moment, currency=self.currency, key=key, ledger_status=status,
            members=members, payments=payments, paid=minor(netting.paid_minor),
            collected=minor(netting.collected_minor), rounding=minor(netting.rounding_minor), gross=money(gross),
            netting_efficiency=netting.netting_efficiency(),
            netting_efficiency_full=netting.netting_efficiency(house_and_client_netted=True),
            variation_margin=money(float(np.abs(flows.variation_margin).sum())),
            funding=money(float(np.abs(flows.funding).sum())), calls=calls, defaults=defaults)

    # ---- margin calls ---------------------------------------------------------------------------------------

    def review_margins(self, time: Any) -> tuple[MarginCall, ...]:
        """Every account's IM (its profile's model at the current prices and positions) against its collateral.

        Calls past their deadline are resolved first (`advance`). A shortfall opens a call due
        `im_call_deadline_seconds` later, or updates the open one (same deadline); a covered account's open call
        is met. Returns the calls open after the review; `margins` keeps the figures.
        """
        self.advance(time)
        moment = self.time
        self.margins = clearing_margins(self.spec, self.book_spec())
        required = to_minor(self.margins.initial_margin, self.minor_per_unit, up=True)
        held = to_minor(self.collateral(), self.minor_per_unit, up=False)
        return self.register.review(moment, self.account_ids, self._member_of, required, held)

    def advance(self, time: Any) -> tuple[DefaultEvent, ...]:
        """Move the clock to `time` and resolve open calls: met when covered, a member's default when past deadline.

        Collateral is read from the ledger (deposits made there directly count). Returns the new DefaultEvents,
        one per member (all are kept in `defaults`).
        """
        moment = self._advance_clock(time)
        self.time = moment
        if not self.register.open:
            return ()
        held = to_minor(self.collateral(), self.minor_per_unit, up=False)
        collateral = {account: int(held[self.account_index[account]]) for account in self.register.open}
        return self.register.resolve(moment, collateral)

    def meet_call(self, account: str, amount: Any, *, time: Any, key: str | None = None) -> MarginCall:
        """Deposit `amount` of the clearing house's currency against `account`'s open call, before its deadline.

        The call is met when the account's collateral covers the initial margin it asks for; otherwise it stays
        open (with the new collateral). After the deadline the deposit is refused: the call is missed.
        """
        if account not in self.account_index:
            raise InputError(f"unknown clearing account {account!r}", field="account")
        call = self.register.open.get(account)
        if call is None:
            raise InputError(f"account {account!r} has no open margin call", field="account")
        moment = self._advance_clock(time)
        if moment > call.deadline:
            raise InputError(f"the call's deadline ({time_text(call.deadline)}) has passed", field="time")
        value = exact_decimal(amount, "amount")
        if value <= 0:
            raise InputError("must be positive", field="amount")
        count = self._call_deposits.get(call.id, 0)
        operation = make_operation("deposit", key or operation_key(self.id, "call", call.id, str(count)),
                                   {"account": account, "asset": self.currency, "amount": value})
        self._apply([operation], "amount")
        self._call_deposits[call.id] = count + 1
        self.time = moment
        held = to_minor(self.collateral(), self.minor_per_unit, up=False)
        self.register.resolve(moment, {account: int(held[self.account_index[account]])})
        return self.register.calls[call.id]

    @property
    def calls(self) -> tuple[MarginCall, ...]:
        """Every call made, in its latest state (open, met or defaulted)."""
        return tuple(self.register.calls.values())

    @property
    def defaults(self) -> tuple[DefaultEvent, ...]:
        """The members in default, in the order they defaulted."""
        return tuple(self.register.defaults)
