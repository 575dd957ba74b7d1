"""The clearing house's book: one cell per (clearing account, instrument), sorted, in exact integer lots.

Quantities are signed integer lots of 10⁻⁸ contracts (`QUANTITY_DECIMALS`, the decimals instruments are
journalled with in the ledger), so the clearing house's own net position per instrument (minus the sum of its
members' positions, as it faces every one of them) is exactly zero in integers, never within a tolerance.

Each cell also carries the trade-price adjustment of the contracts traded since the last settlement, per unit
of contract size: Σ Δ·(S_last − price) for linear contracts and Σ Δ·(1/price − 1/S_last) for inverse ones
(Δ signed contracts). A cycle's variation margin on the cell is then q·size·(S_new − S_last) + size·adjustment
(linear), which is q₀·size·(S_new − S_last) + Σ Δ·size·(S_new − price): futures-style variation margin on the
old position from the last settlement price and on each new trade from its own price.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

QUANTITY_DECIMALS = 8
LOTS_PER_CONTRACT: int = 10**QUANTITY_DECIMALS
MAX_LOTS: int = 2**62 // LOTS_PER_CONTRACT * LOTS_PER_CONTRACT  # headroom below int64 for sums of two positions


@dataclass(eq=False)
class PositionCells:
    """Positions per (account, instrument) cell as sorted arrays: key = account × instrument_count + instrument.

    `lots` are signed integer lots (10⁻⁸ contracts, + long); `adjustment` is the trade-price adjustment per
    unit of contract size (see the module doc) in the instrument's price units × contracts.
    """

    instrument_count: int
    key: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lots: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    adjustment: F64 = field(default_factory=lambda: np.zeros(0, dtype=np.float64))

    @property
    def count(self) -> int:
        return int(self.key.shape[0])

    @property
    def account(self) -> I64:
        """Each cell's account index."""
        result: I64 = self.key // self.instrument_count
        return result

    @property
    def instrument(self) -> I64:
        """Each cell's instrument index."""
        result: I64 = self.key % self.instrument_count
        return result

    def add(self, account: I64, instrument: I64, lots: I64, adjustment: F64) -> None:
        """Add signed lots and adjustments to cells (repeated cells are summed; new cells are inserted in order)."""
        if account.size == 0:
            return
        keys = account.astype(np.int64) * self.instrument_count + instrument.astype(np.int64)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        unique = keys[starts]
        lot_sums: I64 = np.add.reduceat(lots.astype(np.int64)[order], starts)
        adjustment_sums: F64 = np.add.reduceat(adjustment.astype(np.float64)[order], starts)
        where = np.searchsorted(self.key, unique)
        found = where < self.count
        found[found] = self.key[where[found]] == unique[found]
        self.lots[where[found]] += lot_sums[found]
        self.adjustment[where[found]] += adjustment_sums[found]
        new = ~found
        if new.any():
            self.key = np.insert(self.key, where[new], unique[new])
            self.lots = np.insert(self.lots, where[new], lot_sums[new])
            self.adjustment = np.insert(self.adjustment, where[new], adjustment_sums[new])

    def lots_of(self, account: I64, instrument: I64) -> I64:
        """The lots held in the given cells (0 where a cell is absent)."""
        keys = account.astype(np.int64) * self.instrument_count + instrument.astype(np.int64)
        where = np.searchsorted(self.key, keys)
        inside = where < self.count
        result = np.zeros(keys.shape[0], dtype=np.int64)
        hit = inside.copy()
        hit[inside] = self.key[where[inside]] == keys[inside]
        result[hit] = self.lots[where[hit]]
        return result

    def net_lots(self) -> I64:
        """Σ lots per instrument over every account, exact in integers (the clearing house holds minus this)."""
        totals = np.zeros(self.instrument_count, dtype=np.int64)
        np.add.at(totals, self.instrument, self.lots)
        return totals

    def settled(self) -> None:
        """After a settlement cycle: adjustments are paid, flat cells are dropped."""
        held = self.lots != 0
        self.key = self.key[held]
        self.lots = self.lots[held]
        self.adjustment = np.zeros(int(held.sum()), dtype=np.float64)

    def copy(self) -> PositionCells:
        return PositionCells(self.instrument_count, self.key.copy(), self.lots.copy(), self.adjustment.copy())
