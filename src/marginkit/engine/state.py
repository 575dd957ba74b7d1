"""The engine's mutable risk state: marks, positions, margin scopes and statuses as NumPy arrays.

Built once from a resolved Book and one model's Requirements. A *scope* is what is margined together: an
isolated position (its wallet + P&L against its maintenance margin) or a cross or portfolio account as a
whole (its collateral + all P&L against the sum). Positions are delta-one linear contracts (futures and
perpetuals) in one settlement currency. Per position the requirement is, under a tiered profile, its bracket
table read again at every price (IM = notional / leverage, MM = notional × rate − amount, the bracket of the
current notional: a position that grows into a higher bracket is margined at its rate), and otherwise notional
× the rates of the model's per-position figures at the start. A price event re-margins the affected accounts in
compiled passes over their positions (DESIGN.md principle 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit
from numpy.typing import NDArray

from marginkit.accounts.state import HEALTHY, LIQUIDATION, MARGIN_CALL, STATUS_NAMES
from marginkit.book import FUTURE, ISOLATED, PERPETUAL, Book
from marginkit.errors import InputError
from marginkit.io.profile_file import Profile
from marginkit.models.requirements import Requirements

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
# position table, chosen leverage, notional at entry?, caps, counts, rates, amounts, maximum leverages
Brackets = tuple[I64, F64, NDArray[np.bool_], F64, I64, F64, F64, F64]

__all__ = ["HEALTHY", "LIQUIDATION", "MARGIN_CALL", "STATUS_NAMES", "RiskState", "ranges"]


@njit(cache=True, nogil=True)
def _accounts_of(instruments: I64, instrument_ptr: I64, instrument_order: I64, position_account: I64,
                 seen: NDArray[np.bool_]) -> I64:  # pragma: no cover - compiled
    """Sorted distinct accounts holding any of the instruments (`seen`: an all-False scratch, left all-False)."""
    total = 0
    for k in range(instruments.size):
        total += instrument_ptr[instruments[k] + 1] - instrument_ptr[instruments[k]]
    found = np.empty(total, dtype=np.int64)
    count = 0
    for k in range(instruments.size):
        instrument = instruments[k]
        for j in range(instrument_ptr[instrument], instrument_ptr[instrument + 1]):
            account = position_account[instrument_order[j]]
            if not seen[account]:
                seen[account] = True
                found[count] = account
                count += 1
    result = np.sort(found[:count])
    for k in range(count):
        seen[result[k]] = False
    return result


@njit(cache=True, nogil=True, inline="always")
def _bracket_margin(unit: float, own: float, t: int, caps: F64, counts: I64, rates: F64, amounts: F64,
                    leverages: F64) -> tuple[float, float]:  # pragma: no cover - compiled
    """IM and MM of a notional N in quote units under bracket table t: N / leverage and max(N × rate_b − amount_b,
    0), the bracket of N (the last beyond its cap), the chosen leverage capped by the bracket's maximum."""
    last = counts[t] - 1
    b = 0
    while b < last and unit > caps[t, b]:
        b += 1
    maximum = leverages[t, b]
    leverage = (own if own < maximum else maximum) if own > 0.0 else maximum
    required = unit * rates[t, b] - amounts[t, b]
    return unit / leverage, (required if required > 0.0 else 0.0)


@njit(cache=True, nogil=True)
def _position_figures(positions: I64, position_instrument: I64, quantity: F64, entry: F64, contract_size: F64,
                      fx: F64, mark: F64, initial_rate: F64, maintenance_rate: F64, brackets: Brackets
                      ) -> tuple[F64, F64, F64]:  # pragma: no cover - compiled
    """P&L, initial and maintenance margin of the positions at the marks (settlement currency): the fixed rates,
    or the position's bracket table at its current notional (`_bracket_margin`)."""
    table, leverage_setting, basis_entry, caps, counts, rates, amounts, leverages = brackets
    n = positions.size
    pnl = np.empty(n)
    initial = np.empty(n)
    maintenance = np.empty(n)
    for k in range(n):
        p = positions[k]
        instrument = position_instrument[p]
        price = mark[instrument]
        scaled = quantity[p] * contract_size[instrument] * fx[instrument]
        pnl[k] = scaled * (price - entry[p])
        t = table[p]
        if t < 0:
            notional = abs(scaled) * price
            initial[k] = notional * initial_rate[p]
            maintenance[k] = notional * maintenance_rate[p]
        else:
            unit = abs(quantity[p]) * contract_size[instrument] * (entry[p] if basis_entry[p] else price)
            initial_unit, maintenance_unit = _bracket_margin(unit, leverage_setting[p], t, caps, counts, rates,
                                                             amounts, leverages)
            initial[k] = initial_unit * fx[instrument]
            maintenance[k] = maintenance_unit * fx[instrument]
    return pnl, initial, maintenance


@njit(cache=True, nogil=True)
def _status_of(accounts: I64, account_scope_ptr: I64, scope_position_ptr: I64, position_instrument: I64,
               quantity: F64, entry: F64, contract_size: F64, fx: F64, mark: F64, initial_rate: F64,
               maintenance_rate: F64, scope_cash: F64, brackets: Brackets
               ) -> NDArray[np.int8]:  # pragma: no cover - compiled
    """Each account's worst scope status, with the same float operations, in the same order, as `scope_status`.

    The fixed-rate branch is written out here as in `_position_figures` on purpose: passing the position arrays to
    a shared per-position function, even an inlined one, costs numba a reference count per array per position
    (measured: a full recompute of 100,000 accounts 16 ms instead of 3 ms)."""
    table, leverage_setting, basis_entry, caps, counts, rates, amounts, leverages = brackets
    status = np.zeros(accounts.size, dtype=np.int8)
    for k in range(accounts.size):
        account = accounts[k]
        worst = 0
        for scope in range(account_scope_ptr[account], account_scope_ptr[account + 1]):
            pnl = 0.0
            initial = 0.0
            maintenance = 0.0
            open_scope = False
            for p in range(scope_position_ptr[scope], scope_position_ptr[scope + 1]):
                instrument = position_instrument[p]
                price = mark[instrument]
                scaled = quantity[p] * contract_size[instrument] * fx[instrument]
                pnl += scaled * (price - entry[p])
                t = table[p]
                if t < 0:
                    notional = abs(scaled) * price
                    initial += notional * initial_rate[p]
                    maintenance += notional * maintenance_rate[p]
                else:
                    unit = abs(quantity[p]) * contract_size[instrument] * (entry[p] if basis_entry[p] else price)
                    initial_unit, maintenance_unit = _bracket_margin(unit, leverage_setting[p], t, caps, counts,
                                                                     rates, amounts, leverages)
                    initial += initial_unit * fx[instrument]
                    maintenance += maintenance_unit * fx[instrument]
                if quantity[p] != 0:
                    open_scope = True
            equity = scope_cash[scope] + pnl
            code = HEALTHY if equity >= initial else (MARGIN_CALL if equity >= maintenance else LIQUIDATION)
            if not open_scope and not equity < 0:
                code = HEALTHY
            worst = max(worst, code)
        status[k] = worst
    return status


@njit(cache=True, nogil=True)
def _affected(instruments: I64, instrument_ptr: I64, instrument_order: I64, position_account: I64,
              seen: NDArray[np.bool_], account_scope_ptr: I64, scope_position_ptr: I64, position_instrument: I64,
              quantity: F64, entry: F64, contract_size: F64, fx: F64, mark: F64, initial_rate: F64,
              maintenance_rate: F64, scope_cash: F64, brackets: Brackets
              ) -> tuple[I64, NDArray[np.int8]]:  # pragma: no cover - compiled
    """`_accounts_of` then `_status_of` in one call (one dispatch per price event)."""
    accounts = _accounts_of(instruments, instrument_ptr, instrument_order, position_account, seen)
    status = _status_of(accounts, account_scope_ptr, scope_position_ptr, position_instrument, quantity, entry,
                        contract_size, fx, mark, initial_rate, maintenance_rate, scope_cash, brackets)
    return accounts, status


def ranges(starts: I64, ends: I64) -> I64:
    """The concatenation of arange(start, end) for each pair, without a Python loop."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = starts - (np.cumsum(lengths) - lengths)
    result: I64 = np.repeat(offsets, lengths) + np.arange(total, dtype=np.int64)
    return result


@dataclass(eq=False)
class RiskState:
    """Mutable arrays of the engine: instruments, positions (sorted by account), scopes and accounts."""

    account_ids: tuple[str, ...]
    instrument_ids: tuple[str, ...]
    underlyings: tuple[str, ...]
    margin_asset: str
    instrument_underlying: I64
    contract_size: F64
    fx: F64  # settlement currency per quote currency unit, per instrument
    mark: F64
    mark_time: F64
    index: F64  # per underlying
    position_account: I64
    position_instrument: I64
    position_scope: I64
    quantity: F64
    entry: F64
    initial_rate: F64
    maintenance_rate: F64
    scope_account: I64
    scope_isolated: NDArray[np.bool_]
    scope_cash: F64  # isolated: the wallet; cross: the account's collateral (settlement currency)
    scope_position_ptr: I64  # positions of scope s: [ptr[s], ptr[s+1])
    account_scope_ptr: I64  # scopes of account a: [ptr[a], ptr[a+1])
    free_cash: F64  # per account: collateral outside isolated wallets (isolated accounts)
    instrument_ptr: I64  # positions of instrument i: order[ptr[i]:ptr[i+1]]
    instrument_order: I64
    status: NDArray[np.int8]  # per account
    deadline: F64  # per account: margin-call deadline, inf if none
    # Tiered bracket tables (models/tiered.py), re-read at every price: a position's table (-1: the fixed rates
    # above), its chosen leverage (0: the bracket's maximum), whether its notional is at entry, and the tables.
    position_table: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    position_leverage: F64 = field(default_factory=lambda: np.zeros(0))
    position_basis_entry: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    table_caps: F64 = field(default_factory=lambda: np.zeros((1, 1)))
    table_counts: I64 = field(default_factory=lambda: np.ones(1, dtype=np.int64))
    table_rates: F64 = field(default_factory=lambda: np.zeros((1, 1)))
    table_amounts: F64 = field(default_factory=lambda: np.zeros((1, 1)))
    table_leverages: F64 = field(default_factory=lambda: np.ones((1, 1)))
    _seen: NDArray[np.bool_] | None = field(default=None, init=False, repr=False)  # scratch of accounts_of_instruments

    @classmethod
    def from_book(cls, book: Book, requirements: Requirements, profile: Profile | None = None) -> RiskState:
        """Arrays of a Book of linear futures and perpetuals in one settlement currency, at the model's rates
        (and, with the tiered `profile`, its bracket tables, re-read at every price)."""
        kind = book.kind
        if book.instruments and (((kind != FUTURE) & (kind != PERPETUAL)).any() or book.inverse.any()):
            raise InputError("the engine margins linear futures and perpetuals only", field="instruments")
        settlements = {int(s) for s in book.settlement[book.position_instrument]} or {int(book.settlement[0])}
        if len(settlements) != 1:
            raise InputError("the engine needs one settlement currency for the whole book", field="instruments")
        settlement = settlements.pop()
        figures = requirements.positions
        if figures is None:
            raise InputError(f"model {requirements.model!r} gives no per-position figures", field="model")
        instrument = book.position_instrument.astype(np.int64)
        account = book.position_account.astype(np.int64)
        fx = book.asset_price[book.quote] / book.asset_price[settlement]
        size = book.contract_size
        notional = np.abs(book.quantity) * size[instrument] * book.mark[instrument] * fx[instrument]
        safe = np.where(notional > 0, notional, 1.0)
        initial_rate = np.where(notional > 0, figures.initial_margin / safe, 0.0)
        maintenance_rate = np.where(notional > 0, figures.maintenance_margin / safe, 0.0)
        cash = book.collateral @ book.asset_price / book.asset_price[settlement]
        isolated = book.account_mode[account] == ISOLATED
        wallet = figures.isolated_wallet if figures.isolated_wallet is not None else np.zeros(account.size)
        wallet = np.where(isolated, wallet, 0.0)
        # Wallets cannot exceed the account's collateral: scale them down where they would.
        wanted = np.bincount(account, weights=wallet, minlength=book.account_count)
        scale = np.where(wanted > cash, np.maximum(cash, 0.0) / np.where(wanted > 0, wanted, 1.0), 1.0)
        wallet = wallet * scale[account]
        free_cash = cash - np.bincount(account, weights=wallet, minlength=book.account_count)
        # Scopes: one per isolated position, one per cross/portfolio account with positions; in position order.
        new_scope = isolated.copy()
        if account.size:
            new_scope[0] = True
            new_scope[1:] |= account[1:] != account[:-1]
        position_scope = np.cumsum(new_scope) - 1
        first = np.flatnonzero(new_scope)
        scope_account = account[first]
        scope_isolated = isolated[first]
        scope_cash = np.where(scope_isolated, wallet[first], cash[scope_account])
        scope_position_ptr = np.append(first, account.size).astype(np.int64)
        account_scope_ptr = np.searchsorted(scope_account, np.arange(book.account_count + 1)).astype(np.int64)
        order = np.argsort(instrument, kind="stable").astype(np.int64)
        instrument_ptr = np.searchsorted(instrument[order], np.arange(len(book.instruments) + 1)).astype(np.int64)
        underlying_assets = sorted({int(u) for u in book.underlying})
        underlying_of = {a: n for n, a in enumerate(underlying_assets)}
        state = cls(
            account_ids=book.account_ids,
            instrument_ids=book.instrument_ids,
            underlyings=tuple(book.assets[a] for a in underlying_assets),
            margin_asset=book.assets[settlement],
            instrument_underlying=np.array([underlying_of[int(u)] for u in book.underlying], dtype=np.int64),
            contract_size=size.astype(np.float64),
            fx=fx.astype(np.float64),
            mark=book.mark.astype(np.float64).copy(),
            mark_time=np.full(len(book.instruments), book.as_of.timestamp()),
            index=np.array([book.asset_price[a] / book.asset_price[settlement] for a in underlying_assets]),
            position_account=account,
            position_instrument=instrument,
            position_scope=position_scope.astype(np.int64),
            quantity=book.quantity.astype(np.float64).copy(),
            entry=np.where(book.entry_price > 0, book.entry_price, book.mark[instrument]).astype(np.float64),
            initial_rate=initial_rate,
            maintenance_rate=maintenance_rate,
            scope_account=scope_account,
            scope_isolated=scope_isolated,
            scope_cash=scope_cash.astype(np.float64),
            scope_position_ptr=scope_position_ptr,
            account_scope_ptr=account_scope_ptr,
            free_cash=np.where(book.account_mode == ISOLATED, free_cash, 0.0),
            instrument_ptr=instrument_ptr,
            instrument_order=order,
            status=np.zeros(book.account_count, dtype=np.int8),
            deadline=np.full(book.account_count, np.inf),
        )
        state.position_table = np.full(account.size, -1, dtype=np.int64)
        state.position_leverage = np.zeros(account.size)
        state.position_basis_entry = np.zeros(account.size, dtype=np.bool_)
        if profile is not None and profile.model == "tiered" and account.size:
            state._use_brackets(book, profile)
        state.status[:] = state.account_status(np.arange(book.account_count, dtype=np.int64))
        return state

    def _use_brackets(self, book: Book, profile: Profile) -> None:
        """The tiered profile's bracket tables for every position (dYdX liquidity tiers keep their fixed rates)."""
        from marginkit.models.tiered import _table_of_positions, compile_tables
        from marginkit.models.tiered_parameters import parse_tiered_parameters

        tables = compile_tables(parse_tiered_parameters(profile))
        table = _table_of_positions(book, tables)
        bracketed = np.array([tier is None for tier in tables.liquidity_tier], dtype=np.bool_)
        entry_basis = np.array([s["mm_basis"] == "entry" for s in tables.settings], dtype=np.bool_)
        self.position_table = np.where(bracketed[table], table, -1).astype(np.int64)
        self.position_leverage = np.nan_to_num(book.leverage.astype(np.float64), nan=0.0)
        self.position_basis_entry = entry_basis[table]
        self.table_caps = tables.caps.astype(np.float64)
        self.table_counts = tables.counts.astype(np.int64)
        self.table_rates = tables.rates.astype(np.float64)
        self.table_amounts = tables.amounts.astype(np.float64)
        self.table_leverages = tables.leverages.astype(np.float64)

    @property
    def account_count(self) -> int:
        return len(self.account_ids)

    def position_figures(self, positions: I64) -> tuple[F64, F64, F64]:
        """P&L, initial and maintenance margin of positions at the current marks (settlement currency)."""
        return _position_figures(np.ascontiguousarray(positions, dtype=np.int64), self.position_instrument,
                                 self.quantity, self.entry, self.contract_size, self.fx, self.mark, self.initial_rate,
                                 self.maintenance_rate, self.brackets)

    @property
    def brackets(self) -> Brackets:
        """The bracket tables in the compiled kernels' argument order."""
        return (self.position_table, self.position_leverage, self.position_basis_entry, self.table_caps,
                self.table_counts, self.table_rates, self.table_amounts, self.table_leverages)

    def scope_figures(self, scopes: I64) -> tuple[F64, F64, F64]:
        """Equity, initial and maintenance margin of scopes (cash + Σ P&L, Σ IM, Σ MM)."""
        equity, initial, maintenance, _ = self._scope_summary(scopes)
        return equity, initial, maintenance

    def _scope_summary(self, scopes: I64) -> tuple[F64, F64, F64, NDArray[np.bool_]]:
        """Equity, initial and maintenance margin of scopes, and whether each still holds a position."""
        starts = self.scope_position_ptr[scopes]
        ends = self.scope_position_ptr[scopes + 1]
        positions = ranges(starts, ends)
        local = np.repeat(np.arange(scopes.size), ends - starts)
        pnl, initial, maintenance = self.position_figures(positions)
        count = scopes.size
        equity: F64 = self.scope_cash[scopes] + np.bincount(local, weights=pnl, minlength=count)
        initial_sum: F64 = np.bincount(local, weights=initial, minlength=count).astype(np.float64)
        maintenance_sum: F64 = np.bincount(local, weights=maintenance, minlength=count).astype(np.float64)
        open_scope: NDArray[np.bool_] = np.bincount(
            local, weights=(self.quantity[positions] != 0).astype(np.float64), minlength=count) > 0
        return equity, initial_sum, maintenance_sum, open_scope

    def scope_status(self, scopes: I64) -> NDArray[np.int8]:
        """healthy (equity ≥ IM), margin_call (≥ MM) or liquidation; a flat scope is healthy unless negative."""
        equity, initial, maintenance, open_scope = self._scope_summary(scopes)
        status = np.where(equity >= initial, HEALTHY, np.where(equity >= maintenance, MARGIN_CALL, LIQUIDATION))
        status = np.where(open_scope | (equity < 0), status, HEALTHY)
        result: NDArray[np.int8] = status.astype(np.int8)
        return result

    def account_status(self, accounts: I64) -> NDArray[np.int8]:
        """Each account's worst scope status (one compiled pass over the accounts' positions)."""
        return _status_of(np.ascontiguousarray(accounts, dtype=np.int64), self.account_scope_ptr,
                          self.scope_position_ptr, self.position_instrument, self.quantity, self.entry,
                          self.contract_size, self.fx, self.mark, self.initial_rate, self.maintenance_rate,
                          self.scope_cash, self.brackets)

    def affected_status(self, instruments: I64) -> tuple[I64, NDArray[np.int8]]:
        """The sorted accounts holding any of the instruments and their statuses (one compiled call)."""
        return _affected(np.ascontiguousarray(instruments, dtype=np.int64), self.instrument_ptr,
                         self.instrument_order, self.position_account, self._scratch(), self.account_scope_ptr,
                         self.scope_position_ptr, self.position_instrument, self.quantity, self.entry,
                         self.contract_size, self.fx, self.mark, self.initial_rate, self.maintenance_rate,
                         self.scope_cash, self.brackets)

    def accounts_of_instruments(self, instruments: I64) -> I64:
        """Sorted accounts holding any of the instruments (the CSR index instrument → positions → accounts)."""
        return _accounts_of(np.ascontiguousarray(instruments, dtype=np.int64), self.instrument_ptr,
                            self.instrument_order, self.position_account, self._scratch())

    def _scratch(self) -> NDArray[np.bool_]:
        """The all-False per-account scratch of the compiled holder search (allocated once)."""
        if self._seen is None or self._seen.size != self.account_count:
            self._seen = np.zeros(self.account_count, dtype=np.bool_)
        return self._seen

    def account_flat(self, account: int) -> bool:
        start, end = self.account_scope_ptr[account], self.account_scope_ptr[account + 1]
        if start == end:
            return True
        first, last = self.scope_position_ptr[start], self.scope_position_ptr[end]
        return bool(np.all(self.quantity[first:last] == 0))

    def account_equity(self) -> F64:
        """Every account's equity: free cash + Σ over its scopes of cash + P&L (settlement currency)."""
        scopes = np.arange(self.scope_account.size, dtype=np.int64)
        equity = self.scope_figures(scopes)[0] if scopes.size else np.zeros(0)
        result: F64 = self.free_cash + np.bincount(self.scope_account, weights=equity, minlength=self.account_count)
        return result
