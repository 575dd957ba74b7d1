"""`marginkit compare BOOK … --cluster`: every profile over partitions of accounts, the same document bit for bit.

As `comparison.run_comparison` does in one process: per profile, the margin document, the capital-efficiency
rows and, with a history, a backtest of each account. On the cluster each partition of accounts is resolved and
valued once and kept in its worker's memory; each profile margins every partition there. The offset benefit needs
each position margined alone (one account per position): that book is cut into its own partitions of positions
(on the same 64-row boundaries as accounts) and summed per account on the client, in book order, as
`capital_efficiency.efficiency` does; as there, if the model refuses any lone position no account gets the
figure. A profile that refuses the book is listed as not covered with the reason a single process gives (the
failing partitions margined again together); backtests run in blocks of days (`distributed.backtest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.accounts import account_state
from marginkit.book import resolve, sum_by_account
from marginkit.capital_efficiency import StandaloneBook, efficiency, efficiency_rows, requirements_for, standalone_spec
from marginkit.collateral import apply_collateral
from marginkit.collateral.schedule import CollateralSchedule
from marginkit.comparison import Comparison, _backtest_fields
from marginkit.domain import BookSpec
from marginkit.errors import InputError, ModelRefusal
from marginkit.io.market_history import read_market_history
from marginkit.io.profile_file import Profile
from marginkit.report import margin_document
from marginkit.validation.backtest import backtest_document

from .backtest import backtest_on_cluster
from .cluster import ClusterClient
from .layout import BookContext, PackedAccounts, blocks, pack_accounts, partition_count, shift_account_field
from .margin import PreparedBook, first_error, prepare_partition, splits_by_account

F64 = NDArray[np.float64]


@dataclass
class CompareOutcome:
    """One partition under one profile: its document entries, efficiency rows (no standalone figures yet), the
    initial margin and USD per unit of margin currency of each account; or the model's error."""

    header: dict[str, Any] | None = None
    accounts: list[dict[str, Any]] | None = None
    rows: list[dict[str, Any]] | None = None
    initial_margin: F64 | None = None
    usd: F64 | None = None
    error: InputError | None = None


def compare_partition(prepared: PreparedBook, profile: Profile, history: Any) -> CompareOutcome:
    """A prepared partition under one profile (on its worker): what `run_comparison` computes for its accounts."""
    book = prepared.book
    assert book is not None
    try:
        requirements = requirements_for(book, profile, history)
    except InputError as error:
        return CompareOutcome(error=error)
    document = margin_document(book, requirements, account_state(book, requirements))
    accounts = document.pop("accounts")
    rows = efficiency_rows(book, requirements, efficiency(book, requirements, None, profile, history))
    return CompareOutcome(header=document, accounts=accounts, rows=rows, initial_margin=requirements.initial_margin,
                          usd=book.asset_price[requirements.margin_asset])


@dataclass
class PreparedStandalone:
    """Rows first..end of the one-account-per-position book, resolved and valued, kept on a worker; or the error."""

    standalone: StandaloneBook | None
    error: InputError | None = None


def prepare_standalone(context: BookContext, accounts: PackedAccounts, first_account: int, rows: slice,
                       schedule: CollateralSchedule | None) -> PreparedStandalone:
    """The standalone accounts `rows` (counted from the first position of `accounts`) of these accounts."""
    split, owner = standalone_spec(context.spec(accounts))
    split = replace(split, accounts=split.accounts[rows])
    book = resolve(split)
    if schedule is not None:
        try:
            book = apply_collateral(book, schedule)
        except InputError as error:
            return PreparedStandalone(None, error)
    return PreparedStandalone(StandaloneBook(book, owner[rows] + np.int32(first_account)))


def standalone_usd(prepared: PreparedStandalone, profile: Profile, history: Any) -> F64 | None:
    """Each lone position's initial margin in USD under the profile, or None if the model refuses any of them."""
    assert prepared.standalone is not None
    book = prepared.standalone.book
    try:
        single = requirements_for(book, profile, history)
    except InputError:
        return None
    result: F64 = single.initial_margin * book.asset_price[single.margin_asset]
    return result


def _value(x: float) -> float | None:
    return float(x) + 0.0 if np.isfinite(x) else None


class _Partitions:
    """The book's partitions prepared on the cluster once, and (lazily) the whole book for whole-book models."""

    def __init__(self, client: ClusterClient, spec: BookSpec, schedule: CollateralSchedule | None,
                 parts: int | None) -> None:
        self.client = client
        self.spec = spec
        self.schedule = schedule
        self.parts = parts if parts is not None else partition_count(client.workers())
        self.context = client.scatter(BookContext.of(spec), broadcast=True)
        self.ranges = blocks(len(spec.accounts), self.parts)
        packed = client.scatter([pack_accounts(spec, start, end) for start, end in self.ranges])
        self.books = [client.submit(prepare_partition, self.context, part, schedule) for part in packed]
        self._whole: list[Any] | None = None
        counts = np.fromiter((len(a.positions) for a in spec.accounts), dtype=np.int64, count=len(spec.accounts))
        self.offsets = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(counts)])
        self.owner = np.repeat(np.arange(len(spec.accounts), dtype=np.int32), counts)
        self.position_count = int(self.offsets[-1])

    def check(self) -> None:
        """Raise the error a single process raises resolving and valuing the book (accounts counted in the book)."""
        failed = self.client.gather([self.client.submit(_has_error, book) for book in self.books])
        if any(failed):
            error, _ = first_error(self.client, self.spec, None, self.schedule, self.ranges, failed)
            raise error

    def whole(self) -> list[Any]:
        """The whole book as one prepared partition (for a model that reads more than an account)."""
        if self._whole is None:
            packed = pack_accounts(self.spec, 0, len(self.spec.accounts))
            self._whole = [self.client.submit(prepare_partition, self.context, packed, self.schedule)]
        return self._whole

    def standalone(self, whole: bool) -> list[Any]:
        """The one-account-per-position book in partitions of rows (one partition if `whole`)."""
        ranges = [(0, self.position_count)] if whole else blocks(self.position_count, self.parts)
        prepared = []
        for start, end in ranges:
            first = int(np.searchsorted(self.offsets, start, side="right")) - 1
            last = int(np.searchsorted(self.offsets, end - 1, side="right")) - 1
            base = int(self.offsets[first])
            packed = pack_accounts(self.spec, first, last + 1)
            prepared.append(self.client.submit(prepare_standalone, self.context, packed, first,
                                               slice(start - base, end - base), self.schedule))
        errors: list[InputError | None] = self.client.gather([self.client.submit(_standalone_error, p)
                                                              for p in prepared])
        for (start, end), error in zip(ranges, errors, strict=True):
            if error is not None:  # (the book's own collateral check passed: not expected on its lone positions)
                raise shift_account_field(error, [(start, end)])
        return prepared


def _has_error(prepared: PreparedBook) -> bool:
    return prepared.error is not None


def _standalone_error(prepared: PreparedStandalone) -> InputError | None:
    return prepared.error


def _assemble(outcomes: Sequence[CompareOutcome]) -> tuple[dict[str, Any], list[dict[str, Any]], F64, F64]:
    header = outcomes[0].header
    assert header is not None
    accounts: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        assert outcome.accounts is not None and outcome.rows is not None
        accounts.extend(outcome.accounts)
        rows.extend(outcome.rows)
    order = ("model", "profile", "profile_version", "as_of")
    document = {**{k: header[k] for k in order}, "accounts": accounts,
                **{k: v for k, v in header.items() if k not in order}}
    initial = np.concatenate([o.initial_margin for o in outcomes if o.initial_margin is not None])
    usd = np.concatenate([o.usd for o in outcomes if o.usd is not None])
    return document, rows, initial, usd


def _offset_figures(rows: list[dict[str, Any]], single_usd: F64 | None, owner: NDArray[np.int32], initial: F64,
                    usd: F64) -> None:
    """Fill each row's standalone figures as `capital_efficiency.efficiency` computes them."""
    alone = np.full(initial.shape[0], np.nan)
    if single_usd is not None:
        alone = sum_by_account(owner, single_usd, initial.shape[0]) / usd
    benefit = alone - initial
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(alone > 0, benefit / np.where(alone > 0, alone, 1.0), np.nan)
    for a, row in enumerate(rows):
        row["standalone_initial_margin"] = _value(alone[a])
        row["offset_benefit"] = _value(benefit[a])
        row["offset_benefit_ratio"] = _value(ratio[a])


def compare_on_cluster(client: ClusterClient, spec: BookSpec, profiles: Sequence[Profile], *, book_path: str,
                       requested: Sequence[str] | None = None, schedule: CollateralSchedule | None = None,
                       history: Path | None = None, level: float = 0.99, horizon: int = 1,
                       not_covered: Sequence[dict[str, str]] = (), parts: int | None = None) -> Comparison:
    """`comparison.run_comparison` on the cluster: the same Comparison (document, series) as in one process."""
    partitions = _Partitions(client, spec, schedule, parts)
    try:
        partitions.check()
    except InputError as error:
        raise error.in_file(book_path) from None
    comparison = Comparison(not_covered=list(not_covered))
    levels = None
    if history is not None:
        comparison.history = {"file": str(history), "available": True, "level": level, "horizon_days": horizon}
        if not 0.0 < level < 1.0:
            raise InputError(f"the level must be in (0, 1), got {level}", field="--level")
        try:
            levels = read_market_history(history)
        except InputError as error:
            raise error.in_file(str(history)) from None
    shared = client.scatter(levels, broadcast=True) if levels is not None else None
    standalone: dict[bool, list[Any]] = {}
    for chosen in profiles:
        whole = not splits_by_account(chosen)
        books = partitions.whole() if whole else partitions.books
        ranges = [(0, len(spec.accounts))] if whole else partitions.ranges
        outcomes: list[CompareOutcome] = client.gather([client.submit(compare_partition, book, chosen, shared)
                                                        for book in books])
        if any(outcome.error is not None for outcome in outcomes):
            refusal, _ = first_error(client, spec, chosen, schedule, ranges,
                                     [outcome.error is not None for outcome in outcomes], levels)
            if isinstance(refusal, ModelRefusal):
                if requested and chosen.name in requested:
                    raise refusal.in_file(book_path) from None
                comparison.not_covered.append({"profile": chosen.name, "reason": str(refusal)})
                continue
            raise refusal
        document, rows, initial, usd = _assemble(outcomes)
        comparison.results.append(document)
        single: F64 | None = None
        if partitions.position_count:
            if whole not in standalone:
                standalone[whole] = partitions.standalone(whole)
            pieces = client.gather([client.submit(standalone_usd, part, chosen, shared)
                                    for part in standalone[whole]])
            single = None if any(p is None for p in pieces) else np.concatenate(pieces)
        _offset_figures(rows, single, partitions.owner, initial, usd)
        if history is not None:
            for row in rows:
                row["backtest"] = None
        if levels is not None:
            try:
                series = backtest_on_cluster(client, spec, chosen, levels, horizon=horizon)
            except InputError as error:
                raise error.in_file(str(history) if error.field == "--history" else book_path) from None
            for row in rows:
                account_series = series.get(row["account"])
                if account_series is not None:
                    comparison.series[(chosen.name, row["account"])] = account_series
                    report = backtest_document(account_series, level, horizon=horizon)
                    row["backtest"] = _backtest_fields(report)
        comparison.efficiency.extend(rows)
    return comparison


__all__ = ["compare_on_cluster"]
