"""Initial and maintenance margin of every clearing account under its own profile, in the CCP's currency.

Accounts are grouped by profile; each group's accounts form one sub-book that is resolved once and margined
by the group's model (SPAN, VaR/ES, portfolio, …), so a clearing house whose members chose three models runs
three whole-book passes, not one per account. Each requirement is converted from the account's margin
currency into the clearing house's settlement currency at the book's asset prices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from marginkit.book import resolve
from marginkit.clearing.spec import ClearingSpec
from marginkit.domain import BookSpec
from marginkit.errors import InputError
from marginkit.models import MODELS

F64 = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ClearingMargins:
    """Per clearing account (in `ClearingSpec.accounts` order): IM and MM in the CCP currency, and the model."""

    account_ids: tuple[str, ...]
    initial_margin: F64
    maintenance_margin: F64
    models: tuple[str, ...]

    def by_member(self, spec: ClearingSpec) -> dict[str, float]:
        """Σ initial margin of each member's accounts (house and clients)."""
        member_of = spec.member_of()
        totals: dict[str, float] = {member.id: 0.0 for member in spec.members}
        for account, value in zip(self.account_ids, self.initial_margin.tolist(), strict=True):
            totals[member_of[account]] += value
        return totals


def clearing_margins(spec: ClearingSpec, book: BookSpec | None = None) -> ClearingMargins:
    """IM and MM of every clearing account of `spec` (positions and market from `book`, default the spec's)."""
    book = book or spec.book
    accounts = spec.accounts
    position_of = {account.id: n for n, account in enumerate(accounts)}
    book_accounts = {account.id: account for account in book.accounts}
    initial = np.zeros(len(accounts))
    maintenance = np.zeros(len(accounts))
    groups: dict[str, list[str]] = {}
    for account in accounts:
        key = account.profile.path or account.profile.name
        groups.setdefault(key, []).append(account.id)
    for ids in groups.values():
        profile = accounts[position_of[ids[0]]].profile
        missing = [i for i in ids if i not in book_accounts]
        if missing:
            raise InputError(f"clearing account {missing[0]!r} is not in the book", field="book.accounts")
        resolved = resolve(replace(book, accounts=tuple(book_accounts[i] for i in ids)))
        requirements = MODELS[profile.model](resolved, profile)
        currency = resolved.asset_index.get(spec.settings.currency)
        if currency is None:
            raise InputError(f"the book has no price for the clearing currency {spec.settings.currency!r}",
                             field="clearing_house.currency")
        rate = resolved.asset_price[requirements.margin_asset] / resolved.asset_price[currency]
        where = np.array([position_of[i] for i in resolved.account_ids], dtype=np.int64)
        initial[where] = requirements.initial_margin * rate
        maintenance[where] = requirements.maintenance_margin * rate
    return ClearingMargins(tuple(a.id for a in accounts), initial, maintenance,
                           tuple(a.profile.model for a in accounts))
