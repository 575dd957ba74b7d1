"""Liquidation: partial, at the mark, riskiest first; bankruptcy price; insurance fund; auto-deleveraging.

The waterfall of crypto-venues.md (e):

1. A scope below its maintenance margin is reduced step by step: the position with the largest maintenance
   margin first, in clips (`clip_fraction` of it, the whole of it under `min_clip_notional`), at the mark,
   until equity ≥ maintenance margin or the scope is flat. Each fill pays the liquidation fee
   (`fee_rate` × notional, at most the equity left) into the insurance fund. A cross or portfolio account
   is one scope; an isolated position is a scope of its own and is liquidated alone, taken over whole.
2. A scope that is taken over (isolated) or bankrupt (equity ≤ 0) closes entirely at the mark. Its
   bankruptcy price is where its equity is zero: BP = mark − equity / (q · size) for a position (others as
   they are). A fill better than BP leaves equity: the fee, then the rest (surplus) to the fund; a fill worse
   than BP leaves a deficit that the fund pays.
3. What the fund cannot pay is auto-deleveraged: profitable positions on the other side of the bankrupt
   one's instrument are ranked by PnL% × effective leverage (BitMEX/Bybit: PnL% = (MV − AEV)/|AEV|,
   EffLev = |MV|/(MV − BV), MV − BV being the position's scope equity), highest first, and closed at the
   bankrupt position's bankruptcy price: each is closed at the mark and pays |q|·size·|mark − BP| to the
   bankrupt account, which is what a fill at BP instead of the mark means.

Every movement of value is a ledger operation (realised P&L, fees and surpluses into the fund, payouts
out of it, ADL transfers) whose idempotency key is derived from the event that caused it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np

from marginkit.engine.events import AdlEvent, EngineEvent, InsuranceFundMove, Liquidation
from marginkit.engine.state import LIQUIDATION, MARGIN_CALL, RiskState
from marginkit.ledger import DEFAULT_ASSETS, Ledger, Operation, make_operation

INSURANCE_SEED_ACCOUNT = "engine.insurance-seed"


def product(*factors: float) -> Decimal:
    """The exact product of floats as written (shortest repr): 625 × 0.001 × 7,700 is 4,812.5, not 4,812.4999…."""
    result = Decimal(1)
    for factor in factors:
        result *= Decimal(repr(float(factor)))
    return result


@dataclass(frozen=True)
class LiquidationSettings:
    """The liquidation engine's parameters (a venue's published ones go in a profile's engine section)."""

    fee_rate: float = 0.005  # of the notional closed, into the insurance fund
    clip_fraction: float = 0.25  # of a position per step
    min_clip_notional: float = 1_000.0  # a position below this notional closes whole
    max_steps: int = 200  # per scope and call; a safety bound, never reached with clip_fraction > 0


@dataclass
class LiquidationTotals:
    """Running totals over a run, for reports: counts and amounts in the settlement currency."""

    liquidations: int = 0
    liquidated_accounts: set[str] = field(default_factory=set)
    realised_losses: float = 0.0
    fees: float = 0.0
    surplus: float = 0.0
    fund_paid: float = 0.0
    adl_events: int = 0
    adl_amount: float = 0.0
    uncovered: float = 0.0
    # Contagion: positions closed while their own P&L was ≥ 0, because their scope's other positions lost.
    contagion_positions: int = 0
    contagion_notional: float = 0.0


class LiquidationEngine:
    """Liquidates scopes of a RiskState, journalling every transfer to a ledger (or collecting them)."""

    def __init__(self, state: RiskState, settings: LiquidationSettings | None = None, ledger: Ledger | None = None,
                 insurance_fund: Decimal | float | str = 0, *, counterparty: str | None = None,
                 quantity_decimals: np.ndarray[tuple[int], np.dtype[np.int64]] | None = None) -> None:
        """`counterparty`: when positions live in the ledger (the service), every close is also journalled as a
        trade with this account (the venue's liquidation book) at the fill price. `quantity_decimals`: per
        instrument, the decimals of a contract quantity (lot size 10^-d): clips and ADL sizes are whole lots."""
        self.state = state
        self.counterparty = counterparty
        self.quantity_decimals = quantity_decimals
        self.settings = settings or LiquidationSettings()
        self.ledger = ledger
        self.asset = state.margin_asset
        decimals = ledger.assets()[self.asset].decimals if ledger is not None and self.asset in ledger.assets() \
            else DEFAULT_ASSETS.get(self.asset, 8)
        self.step = Decimal(1).scaleb(-decimals)
        self.fund = Decimal(str(insurance_fund)).quantize(self.step, rounding=ROUND_FLOOR)
        self.operations: list[Operation] = []
        self.totals = LiquidationTotals()
        self._counter = 0

    # -- money at the ledger boundary ---------------------------------------------------------------------
    def _floor(self, value: float | Decimal) -> Decimal:
        return Decimal(value).quantize(self.step, rounding=ROUND_FLOOR)

    def _ceil(self, value: float | Decimal) -> Decimal:
        return Decimal(value).quantize(self.step, rounding=ROUND_CEILING)

    def _op(self, kind: str, key: str, fields: dict[str, object]) -> None:
        self._counter += 1
        self.operations.append(make_operation(kind, f"{key}:{self._counter}", fields))

    def flush(self) -> None:
        """Apply the collected operations to the ledger in one batch (nothing to do without a ledger)."""
        if self.ledger is not None and self.operations:
            results = self.ledger.apply(self.operations)
            refused = [r for r in results if r.status == "refused"]
            if refused:
                raise RuntimeError(f"the ledger refused {refused[0].key}: {refused[0].reason}")
        self.operations = []

    def open_ledger(self) -> None:
        """Deposit every account's collateral (rounded down to the asset's decimals) and seed the fund."""
        state = self.state
        equity_cash = state.free_cash + np.bincount(state.scope_account, weights=state.scope_cash,
                                                    minlength=state.account_count)
        for a, account in enumerate(state.account_ids):
            amount = self._floor(float(equity_cash[a]))
            shortfall = float(equity_cash[a]) - float(amount)
            start = state.account_scope_ptr[a]
            if state.account_scope_ptr[a + 1] > start and not state.scope_isolated[start]:
                state.scope_cash[start] -= shortfall
            else:
                state.free_cash[a] -= shortfall
            if amount > 0:
                fields = {"account": account, "asset": self.asset, "amount": amount}
                self.operations.append(make_operation("deposit", f"engine:deposit:{account}", fields))
        if self.fund > 0:
            seed = {"account": INSURANCE_SEED_ACCOUNT, "asset": self.asset, "amount": self.fund}
            self.operations.append(make_operation("deposit", "engine:insurance-seed", seed))
            self.operations.append(make_operation("insurance_fund", "engine:insurance-fund", seed))
        self.flush()

    # -- the waterfall ------------------------------------------------------------------------------------
    def liquidate_account(self, account: int, time: float, key: str, *, expired_margin_call: bool = False
                          ) -> list[EngineEvent]:
        """Liquidate an account's scopes that are below maintenance (or, after an expired margin call, below
        initial margin: reduced until healthy). Returns the events; the operations wait for `flush`."""
        state = self.state
        events: list[EngineEvent] = []
        scopes = np.arange(state.account_scope_ptr[account], state.account_scope_ptr[account + 1], dtype=np.int64)
        if not scopes.size:
            return events
        status = state.scope_status(scopes)
        for scope, code in zip(scopes.tolist(), status.tolist(), strict=True):
            if code == LIQUIDATION:
                if state.scope_isolated[scope]:
                    events += self._close_scope(scope, time, key, "maintenance")
                else:
                    events += self._reduce(scope, time, key, "maintenance")
            elif code == MARGIN_CALL and expired_margin_call:
                events += self._reduce(scope, time, key, "margin_call_expired")
        return events

    def _positions(self, scope: int) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
        ptr = self.state.scope_position_ptr
        return np.arange(ptr[scope], ptr[scope + 1], dtype=np.int64)

    def _equity(self, scope: int) -> tuple[float, float, float]:
        equity, initial, maintenance = self.state.scope_figures(np.array([scope], dtype=np.int64))
        return float(equity[0]), float(initial[0]), float(maintenance[0])

    def _reduce(self, scope: int, time: float, key: str, reason: str) -> list[EngineEvent]:
        """Step by step, riskiest position first, until equity covers the target margin or the scope is flat."""
        state = self.state
        settings = self.settings
        events: list[EngineEvent] = []
        positions = self._positions(scope)
        for _ in range(settings.max_steps):
            equity, initial, maintenance = self._equity(scope)
            target = initial if reason == "margin_call_expired" else maintenance
            open_mask = state.quantity[positions] != 0
            if not open_mask.any() or equity >= target:
                break
            if equity <= 0:
                return events + self._close_scope(scope, time, key, "bankrupt")
            _, _, position_mm = state.position_figures(positions)
            p = int(positions[np.argmax(np.where(open_mask, position_mm, -1.0))])
            quantity = float(state.quantity[p])
            instrument = int(state.position_instrument[p])
            unit = float(state.contract_size[instrument] * state.fx[instrument])
            mark = float(state.mark[instrument])
            notional = abs(quantity) * unit * mark
            clip = quantity if notional * settings.clip_fraction < settings.min_clip_notional \
                else self._whole_lots(instrument, quantity * settings.clip_fraction, quantity)
            bankruptcy = mark - equity / (quantity * unit)
            realised = self._realise(p, clip, key)
            fee = min(self._ceil(product(settings.fee_rate, abs(clip), unit, mark)),
                      max(self._floor(equity), Decimal(0)))
            if fee > 0:
                self._into_fund(scope, fee, key, "fee", time, events)
            self._count_close(p, clip, realised, unit, mark)
            events.append(Liquidation(
                account=state.account_ids[int(state.scope_account[scope])], instrument=state.instrument_ids[instrument],
                quantity=clip, price=mark, bankruptcy_price=bankruptcy, fee=float(fee), surplus=0.0, deficit=0.0,
                realised_pnl=realised, time=time, reason=reason))
        return events

    def _close_scope(self, scope: int, time: float, key: str, reason: str) -> list[EngineEvent]:
        """Close a scope whole at the mark: fee and surplus to the fund, or a deficit for the fund, then ADL."""
        state = self.state
        events: list[EngineEvent] = []
        account = state.account_ids[int(state.scope_account[scope])]
        positions = self._positions(scope)
        positions = positions[state.quantity[positions] != 0]
        if not positions.size:
            return events
        equity, _, _ = self._equity(scope)
        pnl, _, maintenance = state.position_figures(positions)
        order = np.argsort(-maintenance, kind="stable")
        positions, pnl = positions[order], pnl[order]
        closes: list[tuple[int, float, float, float, float, float]] = []  # p, q, mark, unit, bankruptcy, realised
        notional_total = Decimal(0)
        for p in positions.tolist():
            quantity = float(state.quantity[p])
            instrument = int(state.position_instrument[p])
            unit = float(state.contract_size[instrument] * state.fx[instrument])
            mark = float(state.mark[instrument])
            bankruptcy = mark - equity / (quantity * unit)
            realised = self._realise(p, quantity, key)
            notional_total += product(abs(quantity), unit, mark)
            closes.append((p, quantity, mark, unit, bankruptcy, realised))
        cash = Decimal(repr(float(state.scope_cash[scope])))
        fee = surplus = deficit = Decimal(0)
        if cash > 0:
            fee = min(self._ceil(product(self.settings.fee_rate) * notional_total), self._floor(float(cash)))
            surplus = max(self._floor(float(cash)) - fee, Decimal(0))
            if fee > 0:
                self._into_fund(scope, fee, key, "fee", time, events)
            if surplus > 0:
                self._into_fund(scope, surplus, key, "surplus", time, events)
        elif cash < 0:
            deficit = self._ceil(float(-cash))
            paid = min(deficit, self.fund)
            if paid > 0:
                self._op("insurance_fund", key, {"account": account, "asset": self.asset, "amount": -paid})
                self.fund -= paid
                state.scope_cash[scope] += float(paid)
                self.totals.fund_paid += float(paid)
                events.append(InsuranceFundMove(account, -float(paid), float(self.fund), "deficit", time))
            rest = deficit - paid
            if rest > 0:
                worst = min(closes, key=lambda c: c[5])  # the position with the largest loss
                events += self._deleverage(scope, worst[0], worst[1], worst[4], rest, time, key)
        for n, (p, quantity, mark, unit, bankruptcy, realised) in enumerate(closes):
            first = n == 0
            self._count_close(p, quantity, realised, unit, mark)
            events.append(Liquidation(
                account=account, instrument=state.instrument_ids[int(state.position_instrument[p])], quantity=quantity,
                price=mark, bankruptcy_price=bankruptcy, fee=float(fee) if first else 0.0,
                surplus=float(surplus) if first else 0.0, deficit=float(deficit) if first else 0.0,
                realised_pnl=realised, time=time, reason=reason))
        return events

    def _deleverage(self, scope: int, bankrupt_position: int, bankrupt_quantity: float, bankruptcy: float,
                    amount: Decimal, time: float, key: str) -> list[EngineEvent]:
        """ADL: profitable opposite positions, by PnL% × effective leverage, pay the gap at the bankruptcy price."""
        state = self.state
        events: list[EngineEvent] = []
        account = int(state.scope_account[scope])
        instrument = int(state.position_instrument[bankrupt_position])
        mark = float(state.mark[instrument])
        unit = float(state.contract_size[instrument] * state.fx[instrument])
        per_contract = unit * abs(mark - bankruptcy)
        ptr = state.instrument_ptr
        candidates = state.instrument_order[ptr[instrument]:ptr[instrument + 1]]
        quantity = state.quantity[candidates]
        entry = state.entry[candidates]
        candidates = candidates[(np.sign(quantity) == -np.sign(bankrupt_quantity)) & (quantity != 0)
                                & (state.position_scope[candidates] != scope)
                                & (np.sign(quantity) * (mark - entry) > 0)]
        remaining = amount
        if candidates.size and per_contract > 0:
            quantity = state.quantity[candidates]
            entry = state.entry[candidates]
            pnl_pct = np.sign(quantity) * (mark - entry) / entry
            market_value = np.abs(quantity) * unit * mark
            scope_equity = state.scope_figures(state.position_scope[candidates])[0]
            leverage = np.where(scope_equity > 0, market_value / np.where(scope_equity > 0, scope_equity, 1.0), np.inf)
            rank = pnl_pct * leverage
            for j in np.argsort(-rank, kind="stable").tolist():
                if remaining <= 0:
                    break
                p = int(candidates[j])
                held = float(state.quantity[p])
                size = self._lots_up(instrument, min(abs(held), float(remaining) / per_contract), abs(held))
                closed = float(np.sign(held)) * size
                counterparty = state.account_ids[int(state.position_account[p])]
                self._realise(p, closed, key)
                pay = min(self._ceil(product(size, unit) * abs(product(mark) - product(bankruptcy))), remaining)
                if pay <= 0:
                    continue
                self._op("liquidation_transfer", key, {"from": counterparty, "to": state.account_ids[account],
                                                       "asset": self.asset, "amount": pay})
                state.scope_cash[int(state.position_scope[p])] -= float(pay)
                state.scope_cash[scope] += float(pay)
                remaining -= pay
                self.totals.adl_events += 1
                self.totals.adl_amount += float(pay)
                events.append(AdlEvent(account=counterparty, counterparty=state.account_ids[account],
                                       instrument=state.instrument_ids[instrument], quantity=closed, price=bankruptcy,
                                       mark=mark, rank=float(rank[j]), amount=float(pay), time=time))
        if remaining > 0:
            self.totals.uncovered += float(remaining)
        return events

    # -- helpers --------------------------------------------------------------------------------------------
    def _realise(self, position: int, closed: float, key: str) -> float:
        """Close `closed` contracts of a position at the mark: its P&L moves into the scope's cash (ledger)."""
        state = self.state
        instrument = int(state.position_instrument[position])
        unit = float(state.contract_size[instrument] * state.fx[instrument])
        exact = product(closed, unit) * (product(state.mark[instrument]) - product(state.entry[position]))
        remainder = float(state.quantity[position]) - closed
        if self.quantity_decimals is not None:
            remainder = round(remainder, int(self.quantity_decimals[instrument]))
        state.quantity[position] = 0.0 if abs(remainder) <= 1e-12 * abs(closed) else remainder
        account = state.account_ids[int(state.position_account[position])]
        if self.counterparty is not None:
            size = Decimal(repr(abs(closed)))
            if self.quantity_decimals is not None:
                size = size.quantize(Decimal(1).scaleb(-int(self.quantity_decimals[instrument])))
            buyer, seller = (self.counterparty, account) if closed > 0 else (account, self.counterparty)
            self._op("trade", key, {"buyer": buyer, "seller": seller, "instrument": state.instrument_ids[instrument],
                                    "quantity": size, "price": Decimal(repr(float(state.mark[instrument])))})
        amount = self._floor(exact)
        if amount != 0:
            self._op("realised_pnl", key, {"account": state.account_ids[int(state.position_account[position])],
                                           "asset": self.asset, "amount": amount})
        # The position's entry stays; its unrealised P&L shrinks with the quantity; the cash gets the rounded P&L.
        state.scope_cash[int(state.position_scope[position])] += float(amount)
        return float(amount)

    def _whole_lots(self, instrument: int, clip: float, quantity: float) -> float:
        """A clip rounded down to whole lots (at least one), the whole position if that is all that is left."""
        if self.quantity_decimals is None:
            return clip
        decimals = int(self.quantity_decimals[instrument])
        step = 10.0 ** -decimals
        size = round(max(math.floor(abs(clip) / step + 1e-9), 1) * step, decimals)
        return quantity if size >= abs(quantity) else math.copysign(size, quantity)

    def _lots_up(self, instrument: int, size: float, held: float) -> float:
        """A size rounded up to whole lots, at most `held`."""
        if self.quantity_decimals is None:
            return size
        decimals = int(self.quantity_decimals[instrument])
        step = 10.0 ** -decimals
        return min(held, round(math.ceil(size / step - 1e-9) * step, decimals))

    def _into_fund(self, scope: int, amount: Decimal, key: str, reason: str, time: float,
                   events: list[EngineEvent]) -> None:
        state = self.state
        account = state.account_ids[int(state.scope_account[scope])]
        self._op("insurance_fund", key, {"account": account, "asset": self.asset, "amount": amount})
        self.fund += amount
        state.scope_cash[scope] -= float(amount)
        if reason == "fee":
            self.totals.fees += float(amount)
        else:
            self.totals.surplus += float(amount)
        events.append(InsuranceFundMove(account, float(amount), float(self.fund), reason, time))

    def _count_close(self, position: int, quantity: float, realised: float, unit: float, mark: float) -> None:
        totals = self.totals
        totals.liquidations += 1
        totals.liquidated_accounts.add(self.state.account_ids[int(self.state.position_account[position])])
        if realised < 0:
            totals.realised_losses += -realised
        elif not self.state.scope_isolated[int(self.state.position_scope[position])]:
            totals.contagion_positions += 1
            totals.contagion_notional += abs(quantity) * unit * mark
