"""Explain an account's margin: its scenario table and its liquidation price per underlying.

The liquidation price of an underlying is the index level at which, all else equal (other underlyings,
volatilities, balances), the account's equity falls to its maintenance margin under the model: the book's
market is moved (index, forwards and futures marks scale with the level; options keep their volatility and
are repriced) and the model re-run, with the root bracketed on a log grid and refined by bisection.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from marginkit.accounts import account_state
from marginkit.book import Book, resolve
from marginkit.domain import BookSpec, InstrumentType, MarketSnapshot
from marginkit.io.profile_file import Profile
from marginkit.models import MODELS, portfolio_deribit, portfolio_derive

GRID = np.exp(np.linspace(math.log(0.02), math.log(50.0), 241))  # index multipliers searched


def _moved_spec(spec: BookSpec, book: Book, underlying: str, multiplier: float) -> BookSpec:
    market = spec.market
    on_underlying = {i.id for i in spec.instruments if i.underlying == underlying}
    options = {i.id: n for n, i in enumerate(book.instruments) if i.type == InstrumentType.OPTION}
    marks: dict[str, float] = {}
    for identifier, mark in market.marks.items():
        if identifier not in on_underlying:
            marks[identifier] = mark
        elif identifier not in options:  # options on it are repriced from their volatility
            marks[identifier] = mark * multiplier
    vols = dict(market.vols)
    assert book.volatility is not None
    for identifier, n in options.items():
        if identifier in on_underlying:
            vols[identifier] = float(book.volatility[n]) or 1e-9
    forwards = {k: (v * multiplier if k[0] == underlying else v) for k, v in market.forwards.items()}
    index = {k: (v * multiplier if k == underlying else v) for k, v in market.index.items()}
    moved = MarketSnapshot(index=index, marks=marks, forwards=forwards, vols=vols, surfaces={},
                           rates=market.rates, open_interest=market.open_interest)
    return replace(spec, market=moved)


def _surplus(spec: BookSpec, book: Book, profile: Profile, underlying: str, multiplier: float) -> float:
    """Equity − maintenance margin of the (single) account after moving the underlying's index."""
    moved = resolve(_moved_spec(spec, book, underlying, multiplier))
    requirements = MODELS[profile.model](moved, profile)
    state = account_state(moved, requirements)
    return float(state.equity[0] - requirements.maintenance_margin[0])


def liquidation_prices(spec: BookSpec, account: int, profile: Profile) -> dict[str, float | None]:
    """Per underlying held by the account: the nearest index level where equity = maintenance margin, or None."""
    single = replace(spec, accounts=(spec.accounts[account],))
    book = resolve(single)
    held = sorted({book.instruments[int(i)].underlying for i in book.position_instrument})
    result: dict[str, float | None] = {}
    for underlying in held:
        surplus = np.array([_surplus(single, book, profile, underlying, float(x)) for x in GRID])
        signs = np.sign(surplus)
        crossings = np.flatnonzero(signs[1:] != signs[:-1])
        if not crossings.size:
            result[underlying] = None
            continue
        nearest = crossings[np.argmin(np.abs(np.log(GRID[crossings])))]
        low, high = float(GRID[nearest]), float(GRID[nearest + 1])
        f_low = surplus[nearest]
        for _ in range(60):
            middle = math.sqrt(low * high)
            f_middle = _surplus(single, book, profile, underlying, middle)
            if np.sign(f_middle) == np.sign(f_low):
                low, f_low = middle, f_middle
            else:
                high = middle
        result[underlying] = spec.market.index[underlying] * math.sqrt(low * high)
    return result


def explain_account(spec: BookSpec, account_id: str, profile: Profile) -> dict[str, Any]:
    """The explain document: margins, components, the scenario tables (portfolio model) and liquidation prices."""
    from marginkit.errors import InputError

    ids = [a.id for a in spec.accounts]
    if account_id not in ids:
        raise InputError(f"no account {account_id!r} in the book", field="ACCOUNT")
    account = ids.index(account_id)
    single = replace(spec, accounts=(spec.accounts[account],))
    book = resolve(single)
    requirements = MODELS[profile.model](book, profile)
    state = account_state(book, requirements)
    tables: list[dict[str, Any]] = []
    if profile.model == "portfolio" and profile.parameters.get("method") == "deribit-pme":
        tables = portfolio_deribit.scenario_table(book, profile, 0)
    elif profile.model == "portfolio" and profile.parameters.get("method") == "derive-pmrm":
        tables = portfolio_derive.scenario_table(book, profile, 0)
    return {
        "account": account_id,
        "model": profile.model,
        "profile": profile.name,
        "currency": book.assets[int(requirements.margin_asset[0])],
        "equity": float(state.equity[0]),
        "initial_margin": float(requirements.initial_margin[0]),
        "maintenance_margin": float(requirements.maintenance_margin[0]),
        "components": {k: float(v[0]) for k, v in requirements.components.items()},
        "scenarios": tables,
        "liquidation_prices": liquidation_prices(spec, account, profile),
    }
