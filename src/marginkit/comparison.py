"""`marginkit compare`: one book under several profiles side by side, with capital-efficiency figures.

Per profile: the `marginkit margin` document (spec/cli.md) and, per account, the efficiency figures of
`marginkit.capital_efficiency` (IM, MM, IM ÷ gross notional, offset benefit against the positions margined
alone). With a market history, each profile is backtested day by day (`marginkit.validation.backtest`: the
book's positions held fixed, the market moved to each day) and each account gets its coverage, exceptions,
traffic-light zone and procyclicality.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from marginkit.accounts import account_state
from marginkit.book import Book
from marginkit.capital_efficiency import efficiency, efficiency_rows, requirements_for, standalone_book
from marginkit.domain import BookSpec
from marginkit.errors import InputError, ModelRefusal
from marginkit.io.profile_file import Profile
from marginkit.report import margin_document

PROGRESS_FROM = 200  # profile × account combinations (or any history) from which a progress bar is shown
BACKTEST_UNAVAILABLE = "backtesting is not available in this installation (marginkit.validation.backtest)"


@dataclass
class Comparison:
    """What `compare` computed: margin documents, efficiency rows, backtests and what was not covered."""

    results: list[dict[str, Any]] = field(default_factory=list)
    not_covered: list[dict[str, str]] = field(default_factory=list)
    efficiency: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, Any] | None = None
    series: dict[tuple[str, str], Any] = field(default_factory=dict)  # (profile, account) -> BacktestSeries

    def document(self) -> dict[str, Any]:
        """The `compare --json` document: `as_of`, `results`, `not_covered` (stable), then the additions."""
        return {"as_of": self.results[0]["as_of"] if self.results else None, "results": self.results,
                "not_covered": self.not_covered, "efficiency": self.efficiency, "history": self.history}


def _backtest_module() -> Any:
    """marginkit.validation.backtest where this installation has it (load_history, backtest_book, …), else None."""
    try:
        module = importlib.import_module("marginkit.validation.backtest")
    except ImportError:
        return None
    needed = ("load_history", "backtest_book", "backtest_document")
    return module if all(callable(getattr(module, name, None)) for name in needed) else None


def backtest_available() -> bool:
    """Whether `compare --history` can backtest here."""
    return _backtest_module() is not None


def _read_history(module: Any, path: Path) -> Any:
    """The market history at `path`: a MarketHistory where installed (models such as VaR margin from it; the
    backtest reads its index levels), else what the backtest module's `load_history` reads."""
    try:
        reader = importlib.import_module("marginkit.io.market_history").read_market_history
    except (ImportError, AttributeError):
        return module.load_history(path)
    try:
        return reader(path)
    except InputError as error:
        raise error.in_file(str(path)) from None


@contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[[str], None]]:
    """A Rich progress bar on stderr (only on a terminal) advanced by the callable it yields."""
    console = Console(stderr=True)
    if not show or not console.is_terminal:
        yield lambda _: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("comparing", total=total)

        def advance(label: str) -> None:
            progress.update(task, advance=1, description=label)

        yield advance


def _backtest_fields(report: dict[str, Any]) -> dict[str, Any]:
    cyclicality = report.get("procyclicality", {})
    return {
        "days": report.get("days"),
        "exceptions": report.get("exceptions"),
        "expected_exceptions": report.get("expected_exceptions"),
        "coverage": report.get("coverage"),
        "zone": report.get("zone"),
        "kupiec_p_value": report.get("kupiec", {}).get("p_value"),
        "procyclicality": cyclicality,
        "exception_dates": report.get("exception_dates", []),
    }


def run_comparison(spec: BookSpec, book: Book, profiles: Sequence[Profile], *, book_path: str,
                   requested: Sequence[str] | None = None, prepare: Callable[[Book], Book] | None = None,
                   history: Path | None = None, level: float = 0.99, horizon: int = 1,
                   progress: bool = True, not_covered: Sequence[dict[str, str]] = ()) -> Comparison:
    """Margin `book` (resolved from `spec`, `prepare`d) under each profile, with efficiency and backtests.

    A profile that refuses the book is listed in `not_covered`, unless it was named in `requested` (then the
    refusal is raised, naming the book); `not_covered` starts the list (e.g. collateral profiles). A history
    without the backtest module is recorded as unavailable.
    """
    comparison = Comparison(not_covered=list(not_covered))
    module = _backtest_module() if history is not None else None
    levels = None
    if history is not None:
        comparison.history = {"file": str(history), "available": module is not None, "level": level,
                              "horizon_days": horizon}
        if module is None:
            comparison.history["reason"] = BACKTEST_UNAVAILABLE
        else:
            if not 0.0 < level < 1.0:
                raise InputError(f"the level must be in (0, 1), got {level}", field="--level")
            levels = _read_history(module, history)
    standalone = standalone_book(spec, prepare) if book.position_count else None
    show = history is not None or len(profiles) * book.account_count >= PROGRESS_FROM
    with _progress(show and progress, len(profiles)) as advance:
        for chosen in profiles:
            try:
                requirements = requirements_for(book, chosen, levels)
            except ModelRefusal as refusal:
                if requested and chosen.name in requested:
                    raise refusal.in_file(book_path) from None
                comparison.not_covered.append({"profile": chosen.name, "reason": str(refusal)})
                advance(chosen.name)
                continue
            comparison.results.append(margin_document(book, requirements, account_state(book, requirements)))
            rows = efficiency_rows(book, requirements, efficiency(book, requirements, standalone, chosen, levels))
            if history is not None:
                for row in rows:
                    row["backtest"] = None
            if module is not None and levels is not None:
                try:
                    series = module.backtest_book(spec, chosen, levels, horizon=horizon)
                except InputError as error:
                    raise error.in_file(str(history) if error.field == "--history" else book_path) from None
                for row in rows:
                    account_series = series.get(row["account"])
                    if account_series is not None:
                        comparison.series[(chosen.name, row["account"])] = account_series
                        report = module.backtest_document(account_series, level, horizon=horizon)
                        row["backtest"] = _backtest_fields(report)
            comparison.efficiency.extend(rows)
            advance(chosen.name)
    return comparison


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 1e6 else f"{value:,.6g}"


def _percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def print_efficiency(console: Console, document: dict[str, Any]) -> None:
    """The capital-efficiency table (one row per profile and account) and the history's status."""
    rows = document.get("efficiency", [])
    history = document.get("history")
    if rows:
        table = Table(title="capital efficiency (IM ÷ gross notional; offset benefit = Σ positions alone − IM)",
                      title_justify="left")
        columns = ["account", "profile", "IM / MM", "notional USD", "IM/notional", "offset benefit"]
        with_backtest = history is not None and history.get("available")
        if with_backtest:
            columns += ["coverage", "exceptions", "zone", "peak/trough"]
        for column in columns:
            table.add_column(column, justify="left" if column in ("account", "profile", "zone") else "right",
                             overflow="fold")
        for row in sorted(rows, key=lambda r: (r["account"], r["profile"])):
            benefit = row["offset_benefit"]
            cells = [row["account"], row["profile"],
                     f"{_fmt(row['initial_margin'])} / {_fmt(row['maintenance_margin'])} {row['currency']}",
                     _fmt(row["gross_notional_usd"]), _percent(row["initial_margin_to_notional"]),
                     "—" if benefit is None else f"{_fmt(benefit)} ({_percent(row['offset_benefit_ratio'], 1)})"]
            if with_backtest:
                test = row.get("backtest")
                if test is None:
                    cells += ["—", "—", "—", "—"]
                else:
                    ratio = (test.get("procyclicality") or {}).get("peak_to_trough")
                    cells += [_percent(test["coverage"]), f"{test['exceptions']} / {test['days']}",
                              str(test["zone"]), "—" if ratio is None else f"{ratio:.2f}"]
            table.add_row(*cells)
        console.print(table)
    if history is not None and not history.get("available"):
        console.print(f"[yellow]--history {history['file']}: {history.get('reason', BACKTEST_UNAVAILABLE)}[/yellow]")


__all__ = ["BACKTEST_UNAVAILABLE", "Comparison", "backtest_available", "print_efficiency", "run_comparison"]
