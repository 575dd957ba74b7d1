"""The human table of a backtest document (`marginkit backtest` without --json)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table


def _summary(console: Console, title: str, document: Mapping[str, Any]) -> None:
    kupiec, christoffersen = document["kupiec"], document["christoffersen"]
    console.print(f"[bold]{title}[/bold]  {document['start']} … {document['end']}, level {document['level']:.4g}, "
                  f"margin period {document['horizon_days']} day(s)")
    console.print(f"days {document['days']}, exceptions {document['exceptions']} "
                  f"(expected {document['expected_exceptions']:.2f}), coverage {document['coverage']:.4%}, "
                  f"zone {document['zone']}")
    console.print(f"Kupiec LR {kupiec['lr']:.4f} (p {kupiec['p_value']:.4g}); Christoffersen LR_ind "
                  f"{christoffersen['lr_ind']:.4f} (p {christoffersen['p_value_ind']:.4g}), LR_cc "
                  f"{christoffersen['lr_cc']:.4f} (p {christoffersen['p_value_cc']:.4g})")
    cyclicality = document["procyclicality"]
    ratio = cyclicality["peak_to_trough"]
    increases = ", ".join(f"{n}d {v:.2f}%" for n, v in cyclicality["largest_increase_pct"].items() if v is not None)
    console.print(f"procyclicality: peak/trough {'n/a' if ratio is None else f'{ratio:.3f}'}; "
                  f"largest increase {increases or 'n/a'}")
    table = Table(title="per year", title_justify="left")
    for column in ("year", "days", "exceptions", "expected", "coverage", "zone"):
        table.add_column(column, justify="left" if column in ("year", "zone") else "right")
    for year, row in document["by_year"].items():
        table.add_row(year, str(row["days"]), str(row["exceptions"]), f"{row['expected_exceptions']:.2f}",
                      f"{row['coverage']:.2%}", row["zone"])
    console.print(table)
    dates = document["exception_dates"]
    if dates:
        shown = ", ".join(dates[:40]) + (f", … ({len(dates) - 40} more)" if len(dates) > 40 else "")
        console.print(f"exception dates: {shown}")


def print_backtest(console: Console, document: Mapping[str, Any]) -> None:
    """A summary, the per-year coverage and zone table and the exception dates, per account for a book."""
    if "accounts" in document:
        console.print(f"model {document['model']}, profile {document['profile']}")
        for account in document["accounts"]:
            _summary(console, f"account {account['id']}", account)
    else:
        _summary(console, f"series {document.get('file', '')}", document)
