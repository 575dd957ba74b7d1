"""The `compare --report FILE.html` page: charts of margin, exceedances and efficiency, opening offline.

One self-contained HTML file: plotly's JavaScript is inlined once (no CDN, no network), then three charts —
margin by model and account (grouped bars, USD), exceedances over time (cumulative backtest exceptions per
profile and account, with a history), efficiency against coverage (IM ÷ gross notional against backtest
coverage with a history, else against the offset benefit) — and the efficiency table.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from marginkit.comparison import Comparison
from marginkit.errors import InputError

TITLES = {
    "margin": "Margin by model and account",
    "exceedances": "Exceedances over time",
    "efficiency": "Efficiency against coverage",
}


def _margin_chart(go: Any, rows: list[dict[str, Any]]) -> Any:
    figure = go.Figure()
    accounts = list(dict.fromkeys(r["account"] for r in rows))
    for profile in dict.fromkeys(r["profile"] for r in rows):
        mine = {r["account"]: r for r in rows if r["profile"] == profile}
        model = next(iter(mine.values()))["model"]
        figure.add_trace(go.Bar(
            name=f"{profile} ({model})", x=accounts,
            y=[mine[a]["initial_margin_usd"] if a in mine else None for a in accounts],
            customdata=[[mine[a]["maintenance_margin_usd"], mine[a]["currency"], mine[a]["initial_margin"]]
                        if a in mine else [None, None, None] for a in accounts],
            hovertemplate="%{x}<br>IM %{y:,.2f} USD (%{customdata[2]:,.6g} %{customdata[1]})"
                          "<br>MM %{customdata[0]:,.2f} USD<extra>%{fullData.name}</extra>"))
    figure.update_layout(title=TITLES["margin"] + " (initial margin, USD)", barmode="group",
                         xaxis_title="account", yaxis_title="initial margin (USD)", legend_title="profile")
    return figure


def _exceedance_chart(go: Any, comparison: Comparison) -> Any:
    figure = go.Figure()
    for (profile, account), series in comparison.series.items():
        hits = np.asarray(series.realised_loss > series.requirement)
        dates = [d.isoformat() for d in series.dates]
        figure.add_trace(go.Scatter(x=dates, y=np.cumsum(hits).tolist(), mode="lines",
                                    name=f"{profile} · {account}"))
        if hits.any():
            picked = np.flatnonzero(hits)
            figure.add_trace(go.Scatter(
                x=[dates[i] for i in picked], y=np.cumsum(hits)[picked].tolist(), mode="markers",
                marker={"symbol": "x", "size": 8}, name=f"{profile} · {account} exceptions", showlegend=False,
                customdata=np.stack([series.realised_loss[picked], series.requirement[picked]], axis=1).tolist(),
                hovertemplate="%{x}: loss %{customdata[0]:,.4g} > requirement %{customdata[1]:,.4g}"))
    figure.update_layout(title=TITLES["exceedances"] + " (cumulative backtest exceptions)",
                         xaxis_title="date", yaxis_title="exceptions so far")
    return figure


def _efficiency_chart(go: Any, rows: list[dict[str, Any]], with_coverage: bool) -> Any:
    figure = go.Figure()
    for profile in dict.fromkeys(r["profile"] for r in rows):
        mine = [r for r in rows if r["profile"] == profile]
        if with_coverage:
            y = [(r.get("backtest") or {}).get("coverage") for r in mine]
        else:
            y = [r["offset_benefit_ratio"] for r in mine]
        figure.add_trace(go.Scatter(
            x=[r["initial_margin_to_notional"] for r in mine], y=y, mode="markers+text",
            text=[r["account"] for r in mine], textposition="top center", name=profile,
            marker={"size": 11}))
    against = "backtest coverage" if with_coverage else "offset benefit (share of the positions' margin alone)"
    figure.update_layout(title=f"{TITLES['efficiency']}: IM ÷ gross notional against {against}",
                         xaxis_title="initial margin ÷ gross notional (lower: more capital-efficient)",
                         yaxis_title=against, xaxis_tickformat=".2%", yaxis_tickformat=".2%")
    return figure


def _table(rows: list[dict[str, Any]], with_backtest: bool) -> str:
    def cell(value: Any, percent: bool = False) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value * 100:.2f}%" if percent else f"{value:,.6g}"
        return html.escape(str(value))

    head = ["account", "profile", "model", "currency", "IM", "MM", "gross notional (USD)", "IM ÷ notional",
            "positions alone IM", "offset benefit", "offset benefit share"]
    if with_backtest:
        head += ["coverage", "exceptions", "days", "zone"]
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        cells = [cell(r["account"]), cell(r["profile"]), cell(r["model"]), cell(r["currency"]),
                 cell(r["initial_margin"]), cell(r["maintenance_margin"]), cell(r["gross_notional_usd"]),
                 cell(r["initial_margin_to_notional"], True), cell(r["standalone_initial_margin"]),
                 cell(r["offset_benefit"]), cell(r["offset_benefit_ratio"], True)]
        if with_backtest:
            test = r.get("backtest") or {}
            cells += [cell(test.get("coverage"), True), cell(test.get("exceptions")), cell(test.get("days")),
                      cell(test.get("zone"))]
        lines.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def comparison_html(comparison: Comparison, book_path: str) -> str:
    """The report page as one HTML string with plotly's JavaScript inlined."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise InputError("the HTML report needs plotly (pip install 'plotly>=5')", field="--report") from None
    rows = comparison.efficiency
    history = comparison.history
    with_backtest = bool(history and history.get("available"))
    figures = [_margin_chart(go, rows)]
    notes: list[str] = []
    if with_backtest and comparison.series:
        figures.append(_exceedance_chart(go, comparison))
    elif history is None:
        notes.append(f"{TITLES['exceedances']}: no market history given (compare … --history FILE).")
    else:
        notes.append(f"{TITLES['exceedances']}: {html.escape(str(history.get('reason', 'no backtest ran')))}.")
    figures.append(_efficiency_chart(go, rows, with_backtest))
    parts = [figure.to_html(full_html=False, include_plotlyjs=(k == 0), include_mathjax=False,
                            default_width="100%", default_height="480px")
             for k, figure in enumerate(figures)]
    as_of = comparison.results[0]["as_of"] if comparison.results else "—"
    uncovered = "".join(f"<li>{html.escape(item['profile'])}: {html.escape(item['reason'])}</li>"
                        for item in comparison.not_covered)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>marginkit compare · {html.escape(book_path)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;} table{border-collapse:collapse;font-size:90%;}"
        " td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;} th{background:#f4f4f4;}"
        " .note{color:#666;}</style>",
        "</head><body>",
        f"<h1>Capital efficiency · {html.escape(book_path)}</h1>",
        f"<p>as of {html.escape(str(as_of))}; initial margin ÷ gross notional (Σ |q| × size × price, options at "
        "their underlying's notional, in USD); offset benefit = Σ of each position's initial margin alone − the "
        "account's initial margin.</p>",
        *parts,
        *(f'<p class="note">{note}</p>' for note in notes),
        "<h2>Figures</h2>",
        _table(rows, with_backtest),
        *([f"<h2>Not covered</h2><ul>{uncovered}</ul>"] if uncovered else []),
        "</body></html>",
    ])


def write_comparison_report(path: Path, comparison: Comparison, book_path: str) -> None:
    """Write the report page to `path` (InputError naming --report when it cannot be written)."""
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError("the report is an HTML file: give a path ending in .html", field="--report")
    text = comparison_html(comparison, book_path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write the report: {error.strerror}", field="--report", file=str(path)) from None


__all__ = ["TITLES", "comparison_html", "write_comparison_report"]
