"""Engine events: price events in, status changes, liquidations, insurance-fund moves and ADL fills out.

Times are seconds (UTC epoch or any monotone clock the feed uses); prices are quote currency per unit of
underlying; amounts are in the book's margin (settlement) currency. Each event that moves value has a
matching ledger entry (its `key`), so the engine's story can be replayed from the journal (DESIGN.md
principle 7). The fields follow crypto-venues.md (e): bankruptcy price, surplus or deficit, fund delta,
ADL fill price.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PriceEvent:
    """A new mark for one instrument, or a new index for one underlying (its instruments move in proportion)."""

    price: float
    time: float
    instrument: str | None = None
    underlying: str | None = None

    def __post_init__(self) -> None:
        if (self.instrument is None) == (self.underlying is None):
            raise ValueError("a price event names exactly one of instrument or underlying")
        if not (self.price > 0 and self.price < float("inf")):
            raise ValueError(f"price must be positive and finite, got {self.price!r}")


@dataclass(frozen=True, slots=True)
class StatusChange:
    """An account's status moved (healthy, margin_call, liquidation); a margin call carries its deadline."""

    account: str
    old: str
    new: str
    time: float
    deadline: float | None = None
    frozen: bool = False  # liquidation due but frozen: a price it depends on is older than the staleness limit


@dataclass(frozen=True, slots=True)
class Liquidation:
    """One liquidation fill: `quantity` contracts (signed, the part of the position closed) at `price`.

    `bankruptcy_price` is where the position's scope (isolated position or whole account) has zero equity,
    others unchanged; `fee` goes to the insurance fund; `surplus` (fill better than bankruptcy, after the
    fee) goes to the fund; `deficit` (fill worse than bankruptcy) is what the fund and then ADL must cover.
    """

    account: str
    instrument: str
    quantity: float
    price: float
    bankruptcy_price: float
    fee: float
    surplus: float
    deficit: float
    realised_pnl: float
    time: float
    reason: str  # "maintenance" (below MM), "margin_call_expired" (deadline passed) or "bankrupt"


@dataclass(frozen=True, slots=True)
class InsuranceFundMove:
    """+ into the fund (fee or surplus), - paid out of it to cover an account's deficit; `balance` after."""

    account: str
    amount: float
    balance: float
    reason: str  # "fee", "surplus" or "deficit"
    time: float


@dataclass(frozen=True, slots=True)
class AdlEvent:
    """Auto-deleveraging: `quantity` of a profitable opposite position closed at the bankrupt one's price."""

    account: str
    counterparty: str
    instrument: str
    quantity: float
    price: float
    mark: float
    rank: float  # PnL% × effective leverage (BitMEX/Bybit), the order it was chosen in
    amount: float  # what the account gave up to the bankrupt counterparty: |quantity|·size·|mark − price|
    time: float


EngineEvent = StatusChange | Liquidation | InsuranceFundMove | AdlEvent
