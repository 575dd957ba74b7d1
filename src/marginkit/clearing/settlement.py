"""One settlement cycle on whole-book arrays: variation margin, perpetual funding, rounding and netting.

Conventions (amounts in the clearing house's currency C, + received by the account):

* Variation margin per cell (account × instrument), futures-style against the last settlement price S₀ and
  each new trade's own price p: linear q·size·(S₁ − S₀) + size·Σ Δ·(S₀ − p), in the quote currency;
  inverse futures and perpetuals q·size·(1/S₀ − 1/S₁) + size·Σ Δ·(1/p − 1/S₀), in the coin; options
  (futures-style) as linear contracts, in their premium (settlement) currency. Converted into C at the cycle's
  asset prices (USD value of the native unit ÷ USD value of C).
* Perpetual funding per cell: −q·size·S₁·rate (linear, quote currency) or −q·size·rate/S₁ (inverse, coin):
  longs pay when the rate is positive; S₁ is the cycle's settlement price (the mark funding is charged at).
* Gross: a cell's flow is its variation margin plus funding; a member's gross paid (received) is the sum of
  its cells' negative (positive) flows, position by position, before any netting: what it would pay and
  receive if every position settled on its own.
* Rounding (DESIGN.md principle 5): each clearing account's net flow is rounded down to the currency's minor
  units (floor of the signed amount: a payer's debit rounds up, a receiver's credit rounds down); the
  residual, a non-negative number of minor units below the number of accounts, is collected by the clearing
  house's rounding account, so the journalled payments sum to exactly zero.
* Netting: every clearing account's payment is journalled on its own (segregation of collateral). Cash moves
  per member per currency and origin: the house accounts' payments net into one house amount, the client
  accounts' (individually segregated and omnibus) into one client amount; house and client are not netted
  against each other (client money stays segregated). Netting efficiency = 1 − Σ|net| / Σ gross
  (risk-models.md, "Clearing house mechanics", on the amounts before rounding), reported with the origins'
  nets (what is settled) and with the member's single net house + client (what full netting would settle).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from marginkit.clearing.calls import DefaultEvent, MarginCall
from marginkit.clearing.positions import LOTS_PER_CONTRACT, PositionCells
from marginkit.errors import InputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

MAX_MINOR = 2**62  # a journalled amount and the sum of two stay below the ledger's BIGINT


@dataclass(frozen=True, eq=False)
class InstrumentTerms:
    """Per instrument, what a cycle needs: contract size, which P&L formula, funding, and the native unit.

    `inverse` marks inverse futures and perpetuals (P&L in the coin, in 1/price); `unit` is the index in
    `assets` of the currency their variation margin is native in (quote; coin or premium currency otherwise);
    `option` marks instruments whose settlement price may be 0.
    """

    ids: tuple[str, ...]
    contract_size: F64
    inverse: B
    perpetual: B
    option: B
    unit: NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class CellFlows:
    """A cycle's flows per cell, in the clearing house's currency: variation margin and funding (+ received)."""

    variation_margin: F64
    funding: F64

    @property
    def total(self) -> F64:
        result: F64 = self.variation_margin + self.funding
        return result


def cell_flows(cells: PositionCells, terms: InstrumentTerms, previous: F64, current: F64, funding_rate: F64,
               unit_to_currency: F64) -> CellFlows:
    """Variation margin and funding of every cell (module doc), vectorised: per-instrument factors, one gather each.

    `previous` and `current` are the last and the new settlement prices per instrument; `funding_rate` is the
    rate of this cycle per instrument (0 for non-perpetuals); `unit_to_currency` converts each instrument's
    native unit into the clearing house's currency.
    """
    safe_previous = np.where(previous > 0, previous, 1.0)
    safe_current = np.where(current > 0, current, 1.0)
    move = np.where(terms.inverse, 1.0 / safe_previous - 1.0 / safe_current, current - previous)
    size_in_currency = terms.contract_size * unit_to_currency
    funding_per_contract = np.where(terms.perpetual, -funding_rate * size_in_currency *
                                    np.where(terms.inverse, 1.0 / safe_current, current), 0.0)
    instrument = cells.instrument
    quantity = cells.lots.astype(np.float64) * (1.0 / LOTS_PER_CONTRACT)
    variation = (quantity * move[instrument] + cells.adjustment) * size_in_currency[instrument]
    funding = quantity * funding_per_contract[instrument]
    return CellFlows(variation, funding)


def trade_adjustment(quantity: F64, price: F64, last_price: F64, inverse: B) -> F64:
    """A new trade's adjustment per unit of contract size: Δ·(S_last − p) linear, Δ·(1/p − 1/S_last) inverse."""
    safe_last = np.where(last_price > 0, last_price, 1.0)
    result: F64 = np.where(inverse, quantity * (1.0 / price - 1.0 / safe_last), quantity * (last_price - price))
    return result


def journal_amounts(account_flow: F64, decimals: int) -> I64:
    """Each account's payment in minor units: the signed amount rounded down (module doc, "Rounding").

    The amount is first rounded to 10⁻⁶ of a minor unit, so float noise on an exact cent (12.34 computed as
    12.339999999) does not cost a unit. An amount beyond the ledger's range is refused.
    """
    scaled = np.round(account_flow * float(10**decimals), 6)
    if not np.all(np.isfinite(scaled)) or np.any(np.abs(scaled) >= MAX_MINOR):
        raise InputError("the variation margin of an account is not a finite amount the ledger can hold",
                         field="prices")
    result: I64 = np.floor(scaled).astype(np.int64)
    return result


@dataclass(frozen=True, eq=False)
class Netting:
    """A cycle's money per account, member and origin: exact minor units, and float gross figures."""

    account_minor: I64  # per account: the journalled payment (+ received)
    rounding_minor: int  # collected by the clearing house's rounding account (≥ 0)
    origin_minor: I64  # per member × (house, client): the net each origin settles
    origin_flow: F64  # the same before rounding (the netting statistics use it)
    gross_paid: F64  # per member, position by position
    gross_received: F64

    @property
    def paid_minor(self) -> int:
        """Σ of the positive payments (to receivers and the rounding account)."""
        return int(self.account_minor[self.account_minor > 0].sum()) + self.rounding_minor

    @property
    def collected_minor(self) -> int:
        """Σ of what payers pay."""
        return -int(self.account_minor[self.account_minor < 0].sum())

    def netting_efficiency(self, *, house_and_client_netted: bool = False) -> float:
        """1 − Σ|net| / Σ gross over members (origins netted apart unless `house_and_client_netted`); 0 if no gross.

        On the amounts before rounding, so a fraction of a cent cannot push it below 0: it lies in [0, 1].
        """
        gross = float(self.gross_paid.sum() + self.gross_received.sum())
        if gross <= 0:
            return 0.0
        nets = self.origin_flow.sum(axis=1) if house_and_client_netted else self.origin_flow
        return min(max(1.0 - float(np.abs(nets).sum()) / gross, 0.0), 1.0)


def net(cell_flow: F64, cell_account: I64, account_member: I64, account_is_client: B, member_count: int,
        decimals: int) -> Netting:
    """Round each account's flow (`journal_amounts`), net it per member and origin, and sum gross per member."""
    account_count = account_member.shape[0]
    account_flow = np.bincount(cell_account, weights=cell_flow, minlength=account_count).astype(np.float64)
    account_minor = journal_amounts(account_flow, decimals)
    rounding = -int(account_minor.sum())
    origin = account_member * 2 + account_is_client.astype(np.int64)
    origin_minor = np.zeros(member_count * 2, dtype=np.int64)
    np.add.at(origin_minor, origin, account_minor)
    origin_flow = np.bincount(origin, weights=account_flow, minlength=member_count * 2).astype(np.float64)
    cell_member = account_member[cell_account]
    gross_paid = np.bincount(cell_member, weights=np.maximum(-cell_flow, 0.0),
                             minlength=member_count).astype(np.float64)
    gross_received = np.bincount(cell_member, weights=np.maximum(cell_flow, 0.0),
                                 minlength=member_count).astype(np.float64)
    return Netting(account_minor, rounding, origin_minor.reshape(member_count, 2),
                   origin_flow.reshape(member_count, 2), gross_paid, gross_received)


@dataclass(frozen=True)
class MemberSettlement:
    """One member's settlement in one currency (+ received): gross before netting, the origins' nets, the cash.

    `house` and `client` are the nets of the member's house and client accounts, settled apart; `pays` and
    `receives` are the cash that moves (the negative and positive origin nets); `net` = house + client, the
    member's single net amount were house and client netted.
    """

    member: str
    currency: str
    gross_paid: Decimal
    gross_received: Decimal
    house: Decimal
    client: Decimal

    @property
    def net(self) -> Decimal:
        return self.house + self.client

    @property
    def pays(self) -> Decimal:
        return -min(self.house, Decimal(0)) - min(self.client, Decimal(0))

    @property
    def receives(self) -> Decimal:
        return max(self.house, Decimal(0)) + max(self.client, Decimal(0))


@dataclass(frozen=True)
class CycleReport:
    """A settlement cycle: per member settlements, totals (paid = collected, exactly), efficiency, calls, defaults.

    `paid` is Σ of the journalled positive payments (receivers and the rounding account), `collected` Σ of
    what payers pay; `rounding` is the part of `paid` kept by the clearing house's rounding account.
    `netting_efficiency` nets house and client apart (what is settled); `netting_efficiency_full` nets them
    together. `ledger_status` is the variation-margin operation's: applied, duplicate (the cycle was
    journalled before: nothing changed) or empty (no payment). `payments` are the journalled amounts per
    clearing account (nonzero only). `calls` are the initial-margin calls issued or still open after the
    cycle; `defaults` the members flagged at the cycle's time.
    """

    cycle: int
    time: datetime
    currency: str
    key: str
    ledger_status: str
    members: tuple[MemberSettlement, ...]
    payments: dict[str, Decimal]
    paid: Decimal
    collected: Decimal
    rounding: Decimal
    gross: Decimal
    netting_efficiency: float
    netting_efficiency_full: float
    variation_margin: Decimal  # Σ|variation margin| over cells, before netting
    funding: Decimal  # Σ|funding| over cells, before netting
    calls: tuple[MarginCall, ...] = ()
    defaults: tuple[DefaultEvent, ...] = ()
