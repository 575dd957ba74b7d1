"""Capital efficiency: what a model charges per unit of exposure, and what it saves by netting positions.

Per account and profile:
- gross notional (USD) = Σ |quantity| × contract size × price × USD per quote unit, where the price is the mark
  for linear futures, perpetuals and spot, 1 for inverse contracts (their size is already in quote currency)
  and the underlying's index for options (an option's notional is its underlying's, not its premium);
- initial margin ÷ gross notional, both in USD;
- the offset benefit = Σ over the account's positions of the initial margin of that position held alone
  (a one-position account with the same mode, position mode, class, credit tier and collateral) − the
  account's initial margin, in the account's margin currency. Positive: netting saves that much collateral.

The standalone requirements come from one book with one account per position, margined once per profile
(no per-position loop over the model).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.accounts import apply_credit_tier
from marginkit.book import OPTION, Book, resolve, sum_by_account
from marginkit.domain import Account, BookSpec
from marginkit.errors import InputError
from marginkit.io.profile_file import Profile
from marginkit.models import MODELS
from marginkit.models.requirements import Requirements

F64 = NDArray[np.float64]
I32 = NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class StandaloneBook:
    """One account per position of a book: `owner[k]` is the original account of standalone account k."""

    book: Book
    owner: I32


def standalone_spec(spec: BookSpec) -> tuple[BookSpec, I32]:
    """A BookSpec with one account per position (same settings and collateral), and each new account's owner.

    An isolated account keeps only the isolated margin assigned to that position's instrument.
    """
    accounts: list[Account] = []
    owner: list[int] = []
    for a, account in enumerate(spec.accounts):
        for j, position in enumerate(account.positions):
            isolated = {k: v for k, v in account.isolated_margin.items() if k == position.instrument}
            accounts.append(dataclasses.replace(
                account, id=f"{account.id}#{j}", positions=(position,), isolated_margin=isolated))
            owner.append(a)
    return dataclasses.replace(spec, accounts=tuple(accounts)), np.array(owner, dtype=np.int32)


def standalone_book(spec: BookSpec, prepare: Callable[[Book], Book] | None = None) -> StandaloneBook:
    """The resolved one-account-per-position book of `spec` (`prepare`: e.g. a collateral profile applied)."""
    split, owner = standalone_spec(spec)
    book = resolve(split)
    return StandaloneBook(prepare(book) if prepare is not None else book, owner)


def gross_notional_usd(book: Book) -> F64:
    """Each account's gross notional in USD: Σ |q| × size × price × USD per quote unit (module docstring)."""
    instrument = book.position_instrument
    kind = book.kind[instrument]
    usd_per_quote = book.asset_price[book.quote[instrument]]
    price = np.where(kind == OPTION, book.underlying_price[instrument],
                     np.where(book.inverse[instrument], 1.0, book.mark[instrument]))
    notional = np.abs(book.quantity) * book.contract_size[instrument] * price * usd_per_quote
    return sum_by_account(book.position_account, notional, book.account_count)


def requirements_for(book: Book, profile: Profile, history: Any = None) -> Requirements:
    """The profile's model applied to the book, credit tiers included (as `marginkit margin` does).

    `history` (a market history) goes to models that take one (`history=`, e.g. VaR); others ignore it.
    """
    model: Callable[..., Requirements] = MODELS[profile.model]
    if history is not None and "history" in inspect.signature(model).parameters:
        return apply_credit_tier(book, model(book, profile, history=history))
    return apply_credit_tier(book, model(book, profile))


@dataclass(frozen=True, eq=False)
class Efficiency:
    """Per-account efficiency figures of one profile (module docstring); NaN where undefined.

    Amounts in the account's margin currency except the `_usd` ones. `standalone_initial_margin` and
    `offset_benefit` are NaN when the model refused the one-position accounts.
    """

    gross_notional_usd: F64
    initial_margin_usd: F64
    maintenance_margin_usd: F64
    initial_margin_to_notional: F64
    standalone_initial_margin: F64
    offset_benefit: F64
    offset_benefit_ratio: F64  # offset benefit ÷ standalone initial margin


def efficiency(book: Book, requirements: Requirements, standalone: StandaloneBook | None,
               profile: Profile, history: Any = None) -> Efficiency:
    """The efficiency figures of `requirements` (the profile's result on `book`); margins `standalone` once."""
    usd = book.asset_price[requirements.margin_asset]
    notional = gross_notional_usd(book)
    initial_usd = requirements.initial_margin * usd
    maintenance_usd = requirements.maintenance_margin * usd
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(notional > 0, initial_usd / np.where(notional > 0, notional, 1.0), np.nan)
    alone = np.full(book.account_count, np.nan)
    if standalone is not None:
        try:
            single = requirements_for(standalone.book, profile, history)
        except InputError:
            single = None
        if single is not None:
            single_usd = single.initial_margin * standalone.book.asset_price[single.margin_asset]
            alone = sum_by_account(standalone.owner, single_usd, book.account_count) / usd
    benefit = alone - requirements.initial_margin
    with np.errstate(divide="ignore", invalid="ignore"):
        benefit_ratio = np.where(alone > 0, benefit / np.where(alone > 0, alone, 1.0), np.nan)
    return Efficiency(notional, initial_usd, maintenance_usd, ratio, alone, benefit, benefit_ratio)


def _value(x: float) -> float | None:
    return float(x) + 0.0 if np.isfinite(x) else None


def efficiency_rows(book: Book, requirements: Requirements, figures: Efficiency) -> list[dict[str, Any]]:
    """JSON rows, one per account: the `efficiency` entries of `marginkit compare --json`."""
    rows: list[dict[str, Any]] = []
    for a, account_id in enumerate(book.account_ids):
        rows.append({
            "profile": requirements.profile,
            "model": requirements.model,
            "account": account_id,
            "currency": book.assets[int(requirements.margin_asset[a])],
            "initial_margin": _value(requirements.initial_margin[a]),
            "maintenance_margin": _value(requirements.maintenance_margin[a]),
            "initial_margin_usd": _value(figures.initial_margin_usd[a]),
            "maintenance_margin_usd": _value(figures.maintenance_margin_usd[a]),
            "gross_notional_usd": _value(figures.gross_notional_usd[a]),
            "initial_margin_to_notional": _value(figures.initial_margin_to_notional[a]),
            "standalone_initial_margin": _value(figures.standalone_initial_margin[a]),
            "offset_benefit": _value(figures.offset_benefit[a]),
            "offset_benefit_ratio": _value(figures.offset_benefit_ratio[a]),
        })
    return rows


__all__ = ["Efficiency", "StandaloneBook", "efficiency", "efficiency_rows", "gross_notional_usd",
           "requirements_for", "standalone_book", "standalone_spec"]
