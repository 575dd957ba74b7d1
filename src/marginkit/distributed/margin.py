"""`marginkit margin … --cluster`: every account margined on a Dask cluster, the same document bit for bit.

The client cuts the book into contiguous partitions of accounts (`layout.blocks`), ships each to a worker once,
and each worker resolves its partition, applies the collateral profile, runs the model and builds its part of
the spec/cli.md document; the client concatenates the parts in book order. Every model margins an account from
its own positions and the market alone (checked model by model in docs/cluster.md), so a partition's figures
are the whole book's; the one exception, VaR by a parametric method (its covariance matrix spans the risk
factors the whole book holds), runs as a single partition.

Bad input is found where a single process finds it: the instruments and market by resolving the book without
accounts on the client; an account's by its partition. When partitions fail, the failing partitions are
margined again together, as one book, so that the error names the same position as a single-process run
(checks run in the same order, each over the book in account order), with `accounts[i]` counted in the book.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from marginkit.accounts import account_state
from marginkit.book import Book, resolve
from marginkit.capital_efficiency import requirements_for
from marginkit.collateral import apply_collateral
from marginkit.collateral.schedule import CollateralSchedule
from marginkit.domain import BookSpec
from marginkit.errors import InputError
from marginkit.io.profile_file import Profile
from marginkit.models.requirements import Requirements
from marginkit.report import margin_document

from .cluster import ClusterClient
from .layout import (
    BookContext,
    PackedAccounts,
    blocks,
    empty_spec,
    pack_accounts,
    pack_ranges,
    partition_count,
    shift_account_field,
)

F64 = NDArray[np.float64]
PARAMETRIC_VAR_METHODS = ("delta_normal", "delta_gamma_vega")
RESOLVE, COLLATERAL, MODEL = "resolve", "collateral", "model"


@dataclass
class MarginArrays:
    """Per-account and per-position results of a partition (or of the whole book, concatenated in order).

    Amounts in each account's margin currency (`margin_asset` indexes the book's assets), as in Requirements.
    """

    initial_margin: F64
    maintenance_margin: F64
    margin_asset: NDArray[np.int32]
    equity: F64
    margin_ratio: F64
    status: NDArray[np.int8]
    components: dict[str, F64] = field(default_factory=dict)
    positions: dict[str, NDArray[np.generic]] | None = None  # PositionFigures' arrays and details, by name


@dataclass
class PartitionOutcome:
    """A worker's answer for one partition: its document entries and/or arrays, or the error and its stage."""

    header: dict[str, Any] | None = None
    accounts: list[dict[str, Any]] | None = None
    arrays: MarginArrays | None = None
    error: InputError | None = None
    stage: str | None = None


def arrays_of(book: Book, requirements: Requirements) -> MarginArrays:
    """The arrays of a model's result on a book, with account state."""
    state = account_state(book, requirements)
    positions: dict[str, NDArray[np.generic]] | None = None
    figures = requirements.positions
    if figures is not None:
        positions = {"initial_margin": figures.initial_margin, "maintenance_margin": figures.maintenance_margin,
                     "liquidation_price": figures.liquidation_price,
                     "liquidation_price_defined": figures.liquidation_price_defined,
                     "bankruptcy_price": figures.bankruptcy_price,
                     "bankruptcy_price_defined": figures.bankruptcy_price_defined,
                     **{f"details.{k}": v for k, v in figures.details.items()}}
        if figures.isolated_wallet is not None:
            positions["isolated_wallet"] = figures.isolated_wallet
    return MarginArrays(initial_margin=requirements.initial_margin,
                        maintenance_margin=requirements.maintenance_margin,
                        margin_asset=requirements.margin_asset, equity=state.equity, margin_ratio=state.margin_ratio,
                        status=state.status, components={k: np.asarray(v) for k, v in requirements.components.items()},
                        positions=positions)


@dataclass
class PreparedBook:
    """A partition resolved and valued under the collateral profile, kept in a worker's memory; or its error."""

    book: Book | None
    error: InputError | None = None
    stage: str | None = None


def prepare_partition(context: BookContext, accounts: PackedAccounts,
                      schedule: CollateralSchedule | None) -> PreparedBook:
    """Resolve a partition and apply the collateral profile (as `marginkit margin` does before the model)."""
    try:
        book = resolve(context.spec(accounts))
    except InputError as error:
        return PreparedBook(None, error, RESOLVE)
    if schedule is not None:
        try:
            book = apply_collateral(book, schedule)
        except InputError as error:
            return PreparedBook(None, error, COLLATERAL)
    return PreparedBook(book)


def margin_partition(context: BookContext, accounts: PackedAccounts, profile: Profile | None,
                     schedule: CollateralSchedule | None, as_arrays: bool = False, history: Any = None
                     ) -> PartitionOutcome:
    """Margin one partition on a worker: resolve, collateral, model; the document part (or arrays) or the error.

    `history` goes to models that take a market history (`capital_efficiency.requirements_for`); with no
    `profile` the partition is only resolved and valued (its errors, else an empty outcome).
    """
    prepared = prepare_partition(context, accounts, schedule)
    if prepared.book is None:
        return PartitionOutcome(error=prepared.error, stage=prepared.stage)
    book = prepared.book
    if profile is None:
        return PartitionOutcome()
    try:
        requirements = requirements_for(book, profile, history)
    except InputError as error:
        return PartitionOutcome(error=error, stage=MODEL)
    if as_arrays:
        return PartitionOutcome(arrays=arrays_of(book, requirements))
    document = margin_document(book, requirements, account_state(book, requirements))
    accounts_part = document.pop("accounts")
    return PartitionOutcome(header=document, accounts=accounts_part)


def splits_by_account(profile: Profile) -> bool:
    """Whether the profile's model margins each account from its own positions alone (see the module docstring)."""
    if profile.model != "var":
        return True
    return profile.parameters.get("method", "filtered_historical") not in PARAMETRIC_VAR_METHODS


def attribute(error: InputError, stage: str | None, book_path: str | None, profile: Profile) -> InputError:
    """Name the file of an error as `marginkit margin` does: the book for its accounts, else the profile."""
    if book_path is None:
        return error
    if stage in (RESOLVE, COLLATERAL):
        return error.in_file(book_path)
    if error.field and error.field.startswith("accounts"):
        return error.in_file(book_path)
    return error.in_file(profile.path or profile.name)


@dataclass
class PartitionedRun:
    """The outcomes of a run over the ranges of a book, in book order."""

    ranges: list[tuple[int, int]]
    outcomes: list[PartitionOutcome]

    @property
    def failed(self) -> list[bool]:
        return [outcome.error is not None for outcome in self.outcomes]


def account_ranges(client: ClusterClient, spec: BookSpec, profile: Profile, parts: int | None = None
                   ) -> list[tuple[int, int]]:
    """The account ranges to margin: `parts` (default: a few per worker), one if the model must see the whole book."""
    count = len(spec.accounts)
    if not splits_by_account(profile):
        return [(0, count)]
    return blocks(count, parts if parts is not None else partition_count(client.workers()))


def run_partitions(client: ClusterClient, spec: BookSpec, profile: Profile, schedule: CollateralSchedule | None,
                   ranges: list[tuple[int, int]], as_arrays: bool, history: Any = None) -> PartitionedRun:
    """Ship each range's accounts to the cluster once and margin them there; outcomes in range order."""
    context = client.scatter(BookContext.of(spec), broadcast=True)
    packed = [pack_accounts(spec, start, end) for start, end in ranges]
    parts = client.scatter(packed)
    del packed
    shared = client.scatter(history, broadcast=True) if history is not None else None
    outcomes: list[PartitionOutcome] = client.gather(
        [client.submit(margin_partition, context, part, profile, schedule, as_arrays, shared) for part in parts])
    return PartitionedRun(ranges, outcomes)


def first_error(client: ClusterClient, spec: BookSpec, profile: Profile | None, schedule: CollateralSchedule | None,
                ranges: Sequence[tuple[int, int]], failed: Sequence[bool], history: Any = None
                ) -> tuple[InputError, str | None]:
    """The error a single process would raise: the failing partitions margined again together, as one book."""
    failing = [r for r, bad in zip(ranges, failed, strict=True) if bad]
    accounts = pack_ranges(spec, failing)
    outcome: PartitionOutcome = client.submit(margin_partition, BookContext.of(spec), accounts, profile, schedule,
                                              True, history).result()
    if outcome.error is not None:
        return shift_account_field(outcome.error, failing), outcome.stage
    # The failing partitions pass together: a check that reads more than an account; the whole book decides.
    whole = [(0, len(spec.accounts))]
    outcome = client.submit(margin_partition, BookContext.of(spec), pack_accounts(spec, 0, len(spec.accounts)),
                            profile, schedule, True, history).result()
    if outcome.error is not None:
        return shift_account_field(outcome.error, whole), outcome.stage
    raise RuntimeError("partitions failed but the whole book margins: a model reads more than an account")


def check_market(spec: BookSpec, book_path: str | None) -> None:
    """Resolve the book's instruments and market alone (cheap): their errors, as a single process raises them."""
    try:
        resolve(empty_spec(spec))
    except InputError as error:
        raise error.in_file(book_path) if book_path is not None else error from None


def margin_on_cluster(client: ClusterClient, spec: BookSpec, profile: Profile, *,
                      schedule: CollateralSchedule | None = None, book_path: str | None = None,
                      parts: int | None = None) -> dict[str, Any]:
    """The `marginkit margin --json` document of `spec` under `profile`, computed on the cluster.

    Identical to `margin_document` of the whole book in one process. Errors name the book (`book_path`) or the
    profile file as the single-process command does.
    """
    check_market(spec, book_path)
    run = run_partitions(client, spec, profile, schedule, account_ranges(client, spec, profile, parts), False)
    if any(outcome.error is not None for outcome in run.outcomes):
        error, stage = first_error(client, spec, profile, schedule, run.ranges, run.failed)
        raise attribute(error, stage, book_path, profile)
    header = run.outcomes[0].header
    assert header is not None
    accounts: list[dict[str, Any]] = []
    for outcome in run.outcomes:
        assert outcome.accounts is not None
        accounts.extend(outcome.accounts)
    document = {**header, "accounts": accounts}
    order = ("model", "profile", "profile_version", "as_of", "accounts")
    return {**{k: document[k] for k in order}, **{k: v for k, v in document.items() if k not in order}}


def concatenate(parts: Sequence[MarginArrays]) -> MarginArrays:
    """Partitions' arrays joined in order (positions follow their accounts, so they join in order too)."""
    first = parts[0]

    def join(values: Sequence[NDArray[Any]]) -> NDArray[Any]:
        return np.concatenate(values) if len(values) > 1 else values[0]

    positions: dict[str, NDArray[np.generic]] | None = None
    if first.positions is not None:
        positions = {k: join([p.positions[k] for p in parts if p.positions is not None]) for k in first.positions}
    return MarginArrays(
        initial_margin=join([p.initial_margin for p in parts]),
        maintenance_margin=join([p.maintenance_margin for p in parts]),
        margin_asset=join([p.margin_asset for p in parts]),
        equity=join([p.equity for p in parts]),
        margin_ratio=join([p.margin_ratio for p in parts]),
        status=join([p.status for p in parts]),
        components={k: join([p.components[k] for p in parts]) for k in first.components},
        positions=positions)


def margin_arrays_on_cluster(client: ClusterClient, spec: BookSpec, profile: Profile, *,
                             schedule: CollateralSchedule | None = None, history: Any = None,
                             parts: int | None = None) -> MarginArrays:
    """Per-account and per-position arrays of `spec` under `profile`, computed on the cluster (for programs and
    tests: the same arrays as the model's Requirements and account state of the whole book). `history`: a market
    history for the models that take one (VaR)."""
    check_market(spec, None)
    run = run_partitions(client, spec, profile, schedule, account_ranges(client, spec, profile, parts), True,
                         history)
    if any(outcome.error is not None for outcome in run.outcomes):
        error, _ = first_error(client, spec, profile, schedule, run.ranges, run.failed, history)
        raise error
    arrays = [outcome.arrays for outcome in run.outcomes]
    return concatenate([a for a in arrays if a is not None])


def whole_book_arrays(spec: BookSpec, profile: Profile, schedule: CollateralSchedule | None = None,
                      history: Any = None) -> MarginArrays:
    """The same arrays computed in this process on the whole book (the reference a cluster run must equal)."""
    book = resolve(spec)
    if schedule is not None:
        book = apply_collateral(book, schedule)
    return arrays_of(book, requirements_for(book, profile, history))


__all__ = ["MarginArrays", "PartitionOutcome", "margin_arrays_on_cluster", "margin_on_cluster", "splits_by_account",
           "whole_book_arrays"]
