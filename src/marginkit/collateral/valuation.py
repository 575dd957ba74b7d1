"""Collateral and position values in each account's margin currency (book format, "Equity and currency").

Under a collateral profile (docs/collateral.md) every lot — one account's balance of one asset on one chain —
is valued in USD at the asset's index price (a stablecoin at its index, so a depeg shows) and:
- a negative balance (a loan) counts at its full value, no haircut;
- a positive balance loses what is not yet final (deposits younger than the chain's finality delay at as_of);
- the asset's schedule (flat, tiered by quantity, banded by USD value) is applied to the account's counted
  total of that asset, and its effective ratio (value / total) to each of its lots;
- a chain's haircut add-on takes a further fraction off the lots on that chain;
- a halted chain's lots are worth 0 for initial margin and their haircut value for maintenance;
- the account's credit tier caps what one asset may contribute to the initial value (concentration limit).
Vectorised over all lots at once; the only Python loops are over assets and chains (crypto-venues.md (g)).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from marginkit.book import Book
from marginkit.collateral.schedule import USD_VALUE, CollateralSchedule, band_value, compile_bands
from marginkit.errors import InputError

F64 = NDArray[np.float64]
I32 = NDArray[np.int32]
B = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class CollateralValuation:
    """Per lot (account, asset, chain) and per account: balances, USD values and the haircuts applied.

    USD amounts throughout. `schedule_ratio_*` is the effective ratio of the asset's schedule on the
    account's counted total (1 for a loan); `pending` the amount not yet final; `concentration_cut` the USD
    taken off the initial value by the credit tier's concentration limit.
    """

    schedule: CollateralSchedule
    lot_account: I32
    lot_asset: I32
    lot_chain: I32
    balance: F64
    price: F64
    market_value: F64
    pending: F64
    halted: B
    schedule_ratio_initial: F64
    schedule_ratio_maintenance: F64
    add_on: F64
    concentration_cut: F64
    initial_value: F64
    maintenance_value: F64
    account_market_value: F64
    account_initial_value: F64
    account_maintenance_value: F64
    credit_tier: tuple[str | None, ...]
    initial_margin_multiplier: F64
    concentration_limit: F64
    schedule_kind: tuple[str, ...]  # per asset of the book


def _sum(index: NDArray[np.integer], weights: F64, count: int) -> F64:
    """Σ weights per index (bincount), float64, exactly `count` long."""
    result: F64 = np.bincount(index, weights=weights, minlength=count)[:count].astype(np.float64, copy=False)
    return result


def _lots(book: Book) -> tuple[I32, I32, I32, F64]:
    if book.lot_account is not None and book.lot_asset is not None and book.lot_chain is not None \
            and book.lot_amount is not None:
        return book.lot_account, book.lot_asset, book.lot_chain, book.lot_amount
    account, asset = np.nonzero(book.collateral)
    return (account.astype(np.int32), asset.astype(np.int32), np.full(account.shape[0], -1, dtype=np.int32),
            book.collateral[account, asset])


def _lot_field(book: Book, account: int, asset: int, chain: int) -> str:
    name = book.assets[asset]
    if chain < 0:
        return f"accounts[{account}].collateral.{name}"
    return f"accounts[{account}].collateral_chains.{name}.{book.chains[chain]}"


def _chain_terms(book: Book, schedule: CollateralSchedule, lot_account: I32, lot_asset: I32,
                 lot_chain: I32, amount: F64) -> tuple[F64, F64, B]:
    """Per chain of the book: add-on, finality delay (seconds), halted; an unknown chain in use is an error."""
    count = len(book.chains)
    add_on = np.zeros(count)
    finality = np.zeros(count)
    halted = np.zeros(count, dtype=bool)
    chains = schedule.parameters.chains
    if chains is not None:
        for c, name in enumerate(book.chains):
            record = chains.get(name)
            if record is None:
                used = np.flatnonzero((lot_chain == c) & (amount != 0))
                if used.size:
                    lot = int(used[0])
                    raise InputError(f"chain {name!r} is not in collateral profile {schedule.name!r} "
                                     f"(chains: {', '.join(sorted(chains))})",
                                     field=_lot_field(book, int(lot_account[lot]), int(lot_asset[lot]), c))
                continue
            add_on[c] = record.haircut_add_on
            finality[c] = record.finality_seconds
            halted[c] = record.status == "halted"
    if schedule.honour_chain_status:
        if book.chain_halted is not None:
            halted |= book.chain_halted
    else:
        halted[:] = False
    return add_on, finality, halted


def _credit_terms(book: Book, schedule: CollateralSchedule) -> tuple[F64, F64, tuple[str | None, ...]]:
    """Per account: IM multiplier, concentration limit and the tier applied; an unknown tier is an error."""
    count = book.account_count
    stated = book.credit_tier if len(book.credit_tier) == count else (None,) * count
    tiers = schedule.parameters.credit_tiers
    if tiers is None:
        return np.ones(count), np.ones(count), stated
    applied = tuple(tier if tier is not None else tiers.default for tier in stated)
    names = list(tiers.tiers)
    code_of = {name: i for i, name in enumerate(names)}
    code = np.array([code_of.get(t, -1) if t is not None else len(names) for t in applied], dtype=np.int64)
    unknown = np.flatnonzero(code < 0)
    if unknown.size:
        a = int(unknown[0])
        raise InputError(f"unknown credit tier {applied[a]!r} (collateral profile {schedule.name!r} tiers: "
                         f"{', '.join(sorted(names))})", field=f"accounts[{a}].credit_tier")
    # one row per tier, then "no tier" (multiplier 1, no limit)
    multiplier = np.array([t.initial_margin_multiplier for t in tiers.tiers.values()] + [1.0])[code]
    limit = np.array([t.concentration_limit for t in tiers.tiers.values()] + [1.0])[code]
    return multiplier, limit, applied


def value_collateral(book: Book, schedule: CollateralSchedule | None = None) -> CollateralValuation:
    """Value every lot of every account under a collateral schedule (None: no haircuts, today's equity)."""
    schedule = schedule or CollateralSchedule.none()
    lot_account, lot_asset, lot_chain, amount = _lots(book)
    lot_count = amount.shape[0]
    add_on_of, finality_of, halted_of = _chain_terms(book, schedule, lot_account, lot_asset, lot_chain, amount)
    on_chain = lot_chain >= 0
    chain = np.where(on_chain, lot_chain, 0)
    add_on = np.where(on_chain, add_on_of[chain] if add_on_of.size else 0.0, 0.0)
    halted = on_chain & (halted_of[chain] if halted_of.size else False)

    # Not final: deposits younger than their chain's finality delay (at most the lot's balance).
    pending = np.zeros(lot_count)
    if book.deposit_lot is not None and book.deposit_amount is not None and book.deposit_age is not None \
            and book.deposit_lot.size:
        young = book.deposit_age < finality_of[lot_chain[book.deposit_lot]]
        pending = _sum(book.deposit_lot, np.where(young, book.deposit_amount, 0.0), lot_count)
        pending = np.minimum(pending, np.maximum(amount, 0.0))
    price = book.asset_price[lot_asset]
    loan = amount < 0
    counted = np.where(loan, 0.0, amount - pending)
    counted_initial = np.where(halted, 0.0, counted)

    # The schedule applies to the account's counted total of each asset: one entry per (account, asset).
    key = lot_account.astype(np.int64) * len(book.assets) + lot_asset
    entries, entry = np.unique(key, return_inverse=True)
    entry_asset = (entries % len(book.assets)).astype(np.int32)
    entry_account = (entries // len(book.assets)).astype(np.int32)
    bands = compile_bands(schedule, book.assets)
    usd_basis = bands.basis[entry_asset] == USD_VALUE
    entry_price = book.asset_price[entry_asset]
    scale = np.where(usd_basis, entry_price, 1.0)  # basis units per coin

    def ratio(total: F64, ratios: F64, cumulative: F64) -> F64:
        x = total * scale
        value = band_value(x, entry_asset, bands.start, bands.end, ratios, cumulative)
        first = ratios[entry_asset, 0]
        effective: F64 = np.where(x > 0, value / np.where(x > 0, x, 1.0), first)
        return effective

    count = entries.shape[0]
    total_maintenance = _sum(entry, counted, count)
    total_initial = _sum(entry, counted_initial, count)
    ratio_maintenance = np.where(loan, 1.0, ratio(total_maintenance, bands.maintenance_ratio,
                                                  bands.maintenance_cumulative)[entry])
    ratio_initial = np.where(loan, 1.0, ratio(total_initial, bands.initial_ratio, bands.initial_cumulative)[entry])
    market_value = amount * price
    maintenance_value = np.where(loan, market_value, counted * price * ratio_maintenance * (1.0 - add_on))
    initial_value = np.where(loan, market_value, counted_initial * price * ratio_initial * (1.0 - add_on))

    # Credit tier: one asset may contribute at most `limit` of the account's positive initial value
    # (before the limit); the excess counts 0, taken pro rata off that asset's lots. Exempt assets are never cut.
    multiplier, limit, applied = _credit_terms(book, schedule)
    concentration_cut = np.zeros(lot_count)
    if (limit < 1.0).any():
        positive = np.maximum(initial_value, 0.0)
        entry_value = _sum(entry, positive, count)
        account_total = _sum(entry_account, entry_value, book.account_count)
        excess = np.maximum(entry_value - limit[entry_account] * account_total[entry_account], 0.0)
        tiers = schedule.parameters.credit_tiers
        exempt = set(tiers.exempt_assets) if tiers is not None else set()
        excess[np.array([book.assets[s] in exempt for s in entry_asset], dtype=bool)] = 0.0
        share = np.where(entry_value > 0, excess / np.where(entry_value > 0, entry_value, 1.0), 0.0)
        concentration_cut = positive * share[entry]
        initial_value = initial_value - concentration_cut

    def per_account(values: F64) -> F64:
        return _sum(lot_account, values, book.account_count)

    return CollateralValuation(
        schedule=schedule, lot_account=lot_account, lot_asset=lot_asset, lot_chain=lot_chain, balance=amount,
        price=price, market_value=market_value, pending=pending, halted=halted,
        schedule_ratio_initial=ratio_initial, schedule_ratio_maintenance=ratio_maintenance, add_on=add_on,
        concentration_cut=concentration_cut, initial_value=initial_value, maintenance_value=maintenance_value,
        account_market_value=per_account(market_value), account_initial_value=per_account(initial_value),
        account_maintenance_value=per_account(maintenance_value), credit_tier=applied,
        initial_margin_multiplier=multiplier, concentration_limit=limit, schedule_kind=bands.kind,
    )


def apply_collateral(book: Book, schedule: CollateralSchedule) -> Book:
    """The book with its accounts' collateral valued under `schedule` (equity for IM and MM, IM multiplier)."""
    valuation = value_collateral(book, schedule)
    return replace(book, collateral_initial_usd=valuation.account_initial_value,
                   collateral_maintenance_usd=valuation.account_maintenance_value,
                   initial_margin_multiplier=valuation.initial_margin_multiplier,
                   collateral_profile=(schedule.name or "none", schedule.version or ""))


def market_value_of_collateral(book: Book, margin_asset: I32) -> F64:
    """Σ balance × index price of each account's collateral, in its margin asset, no haircut (loans in full)."""
    usd: F64 = book.collateral @ book.asset_price
    result: F64 = usd / book.asset_price[margin_asset]
    return result


def collateral_value(book: Book, margin_asset: I32) -> F64:
    """Each account's collateral value in its margin asset, as models use it for equity.

    Without a collateral profile: Σ balance × index price (negative balances count in full). Under one
    (`apply_collateral`): the maintenance valuation, so liquidation prices reflect maintenance haircuts.
    """
    if book.collateral_maintenance_usd is None:
        return market_value_of_collateral(book, margin_asset)
    result: F64 = book.collateral_maintenance_usd / book.asset_price[margin_asset]
    return result


def collateral_value_initial(book: Book, margin_asset: I32) -> F64:
    """Each account's collateral value for initial margin in its margin asset (no profile: the market value)."""
    if book.collateral_initial_usd is None:
        return market_value_of_collateral(book, margin_asset)
    result: F64 = book.collateral_initial_usd / book.asset_price[margin_asset]
    return result


def position_value_in(book: Book, margin_asset: I32) -> F64:
    """Each position's value (book.position_value, settlement currency) converted to its account's margin asset."""
    usd = book.position_value * book.usd_per_settlement()
    result: F64 = usd / book.asset_price[margin_asset[book.position_account]]
    return result
