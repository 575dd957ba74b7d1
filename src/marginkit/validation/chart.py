"""An offline HTML chart of a backtest: requirement, realised loss and exceptions per day, with the per-year table.

plotly draws it; plotly.js is written inline so the file opens without a network.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from marginkit.errors import InputError
from marginkit.validation.backtest import BacktestSeries


def _year_table(report: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{year}</td><td>{row['days']}</td><td>{row['exceptions']}</td>"
        f"<td>{row['expected_exceptions']:.2f}</td><td>{row['coverage']:.2%}</td>"
        f"<td class='{row['zone']}'>{row['zone']}</td></tr>"
        for year, row in report["by_year"].items())
    return ("<table><tr><th>year</th><th>days</th><th>exceptions</th><th>expected</th><th>coverage</th>"
            f"<th>zone</th></tr>{rows}</table>")


def write_backtest_report(path: Path, charted: Mapping[str, BacktestSeries], document: Mapping[str, Any]) -> None:
    """Write the HTML report: per series, a chart of requirement vs realised loss with exceptions marked."""
    import plotly.graph_objects as go

    reports = {r["id"]: r for r in document["accounts"]} if "accounts" in document else {"series": document}
    parts: list[str] = []
    first = True
    for name, series in charted.items():
        report = reports[name]
        hits = series.exceptions
        dates = [d.isoformat() for d in series.dates]
        figure = go.Figure()
        figure.add_trace(go.Scatter(x=dates, y=series.requirement, name="requirement", mode="lines"))
        figure.add_trace(go.Scatter(x=dates, y=series.realised_loss, name="realised loss", mode="lines",
                                    line={"width": 1}, opacity=0.6))
        figure.add_trace(go.Scatter(x=[d for d, h in zip(dates, hits, strict=True) if h],
                                    y=series.realised_loss[hits], name="exceptions", mode="markers",
                                    marker={"color": "red", "size": 7}))
        figure.update_layout(
            title=f"{html.escape(str(name))}: {report['exceptions']} exceptions in {report['days']} days "
                  f"(expected {report['expected_exceptions']:.1f}), zone {report['zone']}, "
                  f"Kupiec p {report['kupiec']['p_value']:.3g}",
            xaxis_title="date", yaxis_title="amount", height=480)
        parts.append(figure.to_html(full_html=False, include_plotlyjs=first))
        parts.append(f"<h3>{html.escape(str(name))}: coverage and zone per year</h3>{_year_table(report)}")
        first = False
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>marginkit backtest</title><style>"
            "body{font-family:sans-serif} td,th{padding:2px 10px;text-align:right} .green{color:green}"
            ".yellow{color:#b8860b} .red{color:red}</style></head><body><h2>marginkit backtest</h2>"
            + "".join(parts) + "</body></html>")
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write the report: {error.strerror or error}", file=str(path),
                         field="--report") from None
