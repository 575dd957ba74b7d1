"""`marginkit ccp …`: a clearing house's settlement cycles against a ledger, and its members' margin.

Exit codes as spec/cli.md: 0 ok, 2 bad input (one line naming the file and the field). Amounts in the JSON
documents are exact decimal strings in the clearing house's currency; netting efficiencies are fractions.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError

from marginkit.clearing.calls import DefaultEvent, MarginCall, time_text
from marginkit.clearing.cycle_file import load_cycle
from marginkit.clearing.house import ClearingHouse
from marginkit.clearing.margin import clearing_margins
from marginkit.clearing.settlement import CycleReport
from marginkit.clearing.spec import ClearingSpec, load_clearing
from marginkit.errors import InputError
from marginkit.ledger import Ledger
from marginkit.ledger.journal import format_decimal

ccp_app = typer.Typer(no_args_is_help=True, help="The clearing house: settlement cycles (variation margin, "
                                                 "funding, netting, IM calls) and members' margin.")

ClearingFile = Annotated[Path, typer.Argument(help="The clearing-house file (clearing_house, members, book).")]
Db = Annotated[str | None, typer.Option("--db", help="Database URL or SQLite file (default: MARGINKIT_DATABASE_URL, "
                                                     "else the SQLite file in the user's data directory).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine output.")]
PricesOption = Annotated[list[Path], typer.Option(
    "--prices", help="A cycle file (time, prices, funding_rates, index, trades); repeat for cycles in order.")]


def _fail(error: InputError) -> NoReturn:
    print(str(error).replace("\n", " "), file=sys.stderr)
    raise typer.Exit(2)


def _text(value: Decimal) -> str:
    return format_decimal(value)


def _money(value: Decimal) -> str:
    return f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"{value:,}"


def call_document(call: MarginCall) -> dict[str, Any]:
    """A margin call as JSON: amounts as decimal strings, times as UTC ISO 8601."""
    return {"id": call.id, "account": call.account, "member": call.member,
            "initial_margin": _text(call.initial_margin), "collateral": _text(call.collateral),
            "amount": _text(call.amount), "issued_at": time_text(call.issued_at), "deadline": time_text(call.deadline),
            "status": call.status, "resolved_at": time_text(call.resolved_at) if call.resolved_at else None}


def default_document(event: DefaultEvent) -> dict[str, Any]:
    return {"member": event.member, "time": time_text(event.time), "calls": list(event.calls),
            "shortfall": _text(event.shortfall)}


def cycle_document(report: CycleReport) -> dict[str, Any]:
    """A settlement cycle as JSON: per member gross, house and client nets, cash paid and received; totals."""
    return {
        "cycle": report.cycle, "time": time_text(report.time), "currency": report.currency, "key": report.key,
        "ledger_status": report.ledger_status,
        "members": [{"member": m.member, "currency": m.currency, "gross_paid": _text(m.gross_paid),
                     "gross_received": _text(m.gross_received), "house": _text(m.house), "client": _text(m.client),
                     "pays": _text(m.pays), "receives": _text(m.receives), "net": _text(m.net)}
                    for m in report.members],
        "payments": {account: _text(amount) for account, amount in sorted(report.payments.items())},
        "paid": _text(report.paid), "collected": _text(report.collected), "rounding": _text(report.rounding),
        "gross": _text(report.gross), "variation_margin": _text(report.variation_margin),
        "funding": _text(report.funding), "netting_efficiency": report.netting_efficiency,
        "netting_efficiency_full": report.netting_efficiency_full,
        "calls": [call_document(c) for c in report.calls], "defaults": [default_document(d) for d in report.defaults],
    }


def print_cycle(console: Console, report: CycleReport) -> None:
    """The netting table of one cycle (+ received), its totals, efficiency, calls and defaults."""
    table = Table(title=f"Cycle {report.cycle} at {time_text(report.time)} ({report.currency}, ledger: "
                        f"{report.ledger_status})")
    for column in ("member", "gross paid", "gross received", "house", "client", "pays", "receives", "net"):
        table.add_column(column, justify="left" if column == "member" else "right")
    for m in report.members:
        table.add_row(m.member, *(_money(v) for v in (m.gross_paid, m.gross_received, m.house, m.client, m.pays,
                                                      m.receives, m.net)))
    console.print(table)
    console.print(f"paid {_money(report.paid)} = collected {_money(report.collected)} (rounding kept by the clearing "
                  f"house {_money(report.rounding)}); gross {_money(report.gross)}")
    console.print(f"netting efficiency {report.netting_efficiency:.2%} (house and client apart), "
                  f"{report.netting_efficiency_full:.2%} (netted together)")
    for call in report.calls:
        console.print(f"IM call {call.account} ({call.member}): {_money(call.amount)} by {time_text(call.deadline)} "
                      f"({call.status})")
    for event in report.defaults:
        console.print(f"DEFAULT {event.member} at {time_text(event.time)}: missed {', '.join(event.calls)}")


def _open_ledger(db: str | None) -> Ledger:
    try:
        return Ledger.open(db)
    except OperationalError as error:
        raise InputError(f"cannot open the database: {str(error.orig).splitlines()[0]}", field="--db") from None


def run_cycles(spec: ClearingSpec, ledger: Ledger, cycle_files: list[Path]) -> list[CycleReport]:
    """Open the clearing house on the ledger (idempotent) and run each cycle file in order: trades, then settle."""
    house = ClearingHouse.open(spec, ledger)
    reports = []
    for path in cycle_files:
        cycle = load_cycle(path)
        try:
            if cycle.trades:
                house.novate(cycle.trades)
            reports.append(house.settle(cycle.prices, cycle.funding_rates, cycle.time, index=cycle.index))
        except InputError as error:
            raise error.in_file(str(path)) from None
    return reports


@ccp_app.command()
def settle(clearing_file: ClearingFile, prices: PricesOption, db: Db = None, as_json: JsonFlag = False) -> None:
    """Settle cycles from the book's marks: novate each file's trades, pay variation margin and funding, call IM.

    Re-running the same files on the same ledger changes nothing (each entry's key is derived from its cause).
    """
    try:
        spec = load_clearing(clearing_file)
        with _open_ledger(db) as ledger:
            reports = run_cycles(spec, ledger, prices)
    except InputError as error:
        _fail(error)
    if as_json:
        print(json.dumps({"clearing_house": spec.settings.id, "cycles": [cycle_document(r) for r in reports]},
                         indent=2))
        return
    console = Console(width=None if sys.stdout.isatty() else 140)
    for report in reports:
        print_cycle(console, report)


@ccp_app.command()
def margin(clearing_file: ClearingFile, as_json: JsonFlag = False) -> None:
    """Initial and maintenance margin of every clearing account (its profile's model) and per member."""
    try:
        spec = load_clearing(clearing_file)
        margins = clearing_margins(spec)
    except InputError as error:
        _fail(error)
    accounts = spec.accounts
    rows: list[dict[str, Any]] = [
        {"account": a.id, "member": a.member, "kind": a.kind, "segregation": a.segregation, "model": model,
         "profile": a.profile.name, "initial_margin": float(im), "maintenance_margin": float(mm)}
        for a, model, im, mm in zip(accounts, margins.models, margins.initial_margin.tolist(),
                                    margins.maintenance_margin.tolist(), strict=True)]
    members: list[dict[str, Any]] = []
    for member in spec.members:
        own = [r for r in rows if r["member"] == member.id]
        members.append({"member": member.id, "initial_margin": sum(r["initial_margin"] for r in own),
                        "maintenance_margin": sum(r["maintenance_margin"] for r in own)})
    if as_json:
        print(json.dumps({"clearing_house": spec.settings.id, "currency": spec.settings.currency, "accounts": rows,
                          "members": members}, indent=2))
        return
    console = Console(width=None if sys.stdout.isatty() else 140)
    table = Table(title=f"{spec.settings.id}: margin per account ({spec.settings.currency})")
    for column in ("account", "member", "kind", "model (profile)", "initial margin", "maintenance margin"):
        table.add_column(column, justify="right" if "margin" in column else "left")
    for r in rows:
        kind = r["kind"] if r["segregation"] is None else f"{r['kind']} ({r['segregation']})"
        table.add_row(r["account"], r["member"], kind, f"{r['model']} ({r['profile']})", f"{r['initial_margin']:,.2f}",
                      f"{r['maintenance_margin']:,.2f}")
    for m in members:
        table.add_row(f"[b]{m['member']}[/b]", "", "", "member total", f"{m['initial_margin']:,.2f}",
                      f"{m['maintenance_margin']:,.2f}")
    console.print(table)
