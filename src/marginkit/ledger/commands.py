"""`marginkit ledger …`: the ledger's commands (spec/cli.md exit codes: 0 ok, 2 bad input, 3 check failed).

`withdraw`, `transfer` and `apply` check initial margin through a function built by the caller
(`marginkit.cli` passes one that runs a margin model on `--market FILE`), so this module imports
no model. Without `--market`, an account that holds positions cannot take collateral out.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.exc import OperationalError

from marginkit.errors import InputError
from marginkit.ledger.journal import (
    AccountSnapshot,
    LedgerRefusal,
    MarginCheck,
    Operation,
    WithdrawalRefused,
    format_decimal,
    make_operation,
)
from marginkit.ledger.service import Ledger, Result

# (ledger, market file, profile name or None) -> a margin check that runs a model on the market.
MarginCheckFactory = Callable[[Ledger, Path, str | None], MarginCheck]

Db = Annotated[str | None, typer.Option("--db", help="Database URL or SQLite file (default: MARGINKIT_DATABASE_URL, "
                                                     "else the SQLite file in the user's data directory).")]
Key = Annotated[str, typer.Option("--key", help="Idempotency key: a replay changes nothing.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine output.")]
Market = Annotated[Path | None, typer.Option("--market", help="Market file (as_of, instruments, market) to check "
                                                             "initial margin of an account with positions.")]
ProfileName = Annotated[str | None, typer.Option("--profile", help="Profile for the margin check (default: tiered).")]


def _fail(error: InputError) -> NoReturn:
    print(str(error).replace("\n", " "), file=sys.stderr)
    raise typer.Exit(2)


def _open(db: str | None) -> Ledger:
    try:
        return Ledger.open(db)
    except OperationalError as error:
        raise InputError(f"cannot open the database: {str(error.orig).splitlines()[0]}", field="--db") from None


def no_positions_check(snapshot: AccountSnapshot) -> bool:
    """The check without a market: an account with open positions cannot take collateral out."""
    if snapshot.positions:
        raise WithdrawalRefused("the account holds positions: give --market so its initial margin can be checked")
    return True


def ledger_app(margin_check_for: MarginCheckFactory | None = None) -> typer.Typer:
    """The `ledger` sub-command group; `margin_check_for` builds the initial-margin check from --market."""
    app = typer.Typer(no_args_is_help=True, help="The double-entry ledger: deposits, withdrawals, transfers, "
                                                 "batches, balances, journal and verify.")

    def check(ledger: Ledger, market: Path | None, profile: str | None) -> MarginCheck:
        if market is None:
            if profile is not None:
                raise InputError("--profile needs --market", field="--profile")
            return no_positions_check
        if margin_check_for is None:  # pragma: no cover - the marginkit command always passes one
            raise InputError("no margin model is available here", field="--market")
        return margin_check_for(ledger, market, profile)

    def single(db: str | None, operation: Operation, market: Path | None = None, profile: str | None = None,
               as_json: bool = False) -> None:
        try:
            with _open(db) as ledger:
                result = ledger.submit(operation, check(ledger, market, profile))
        except InputError as error:
            _fail(error)
        if as_json:
            print(json.dumps({"key": result.key, "op": operation.kind, "status": result.status}))
        elif result.status == "duplicate":
            print(f"{operation.kind} {result.key}: already applied (no change)")
        else:
            print(f"{operation.kind} {result.key}: applied")

    def build(kind: str, key: str, fields: dict[str, Any]) -> Operation:
        try:
            return make_operation(kind, key, fields)
        except InputError as error:
            _fail(error)

    @app.command()
    def deposit(account: str, asset: str, amount: str, key: Key, db: Db = None, as_json: JsonFlag = False) -> None:
        """Deposit AMOUNT of ASSET into ACCOUNT."""
        single(db, build("deposit", key, {"account": account, "asset": asset, "amount": amount}), as_json=as_json)

    @app.command()
    def withdraw(account: str, asset: str, amount: str, key: Key, db: Db = None, market: Market = None,
                 profile: ProfileName = None, as_json: JsonFlag = False) -> None:
        """Withdraw AMOUNT of ASSET from ACCOUNT if it still covers initial margin after it."""
        operation = build("withdraw", key, {"account": account, "asset": asset, "amount": amount})
        single(db, operation, market, profile, as_json)

    @app.command()
    def transfer(source: Annotated[str, typer.Argument(metavar="FROM")], target: Annotated[str, typer.Argument(
                 metavar="TO")], asset: str, amount: str, key: Key, db: Db = None, market: Market = None,
                 profile: ProfileName = None, as_json: JsonFlag = False) -> None:
        """Transfer AMOUNT of ASSET from FROM to TO (FROM must still cover initial margin)."""
        operation = build("transfer", key, {"from": source, "to": target, "asset": asset, "amount": amount})
        single(db, operation, market, profile, as_json)

    @app.command("add-asset")
    def add_asset(name: str, decimals: int, db: Db = None,
                  instrument: Annotated[bool, typer.Option("--instrument", help="An instrument's contracts.")] = False,
                  ) -> None:
        """Register an asset (or with --instrument an instrument's contracts) with its decimal places."""
        try:
            with _open(db) as ledger:
                asset = ledger.add_asset(name, decimals, "instrument" if instrument else "asset")
        except InputError as error:
            _fail(error)
        print(f"{asset.kind} {asset.name}: {asset.decimals} decimals")

    @app.command()
    def balances(account: Annotated[str | None, typer.Argument(help="One account (default: all).")] = None,
                 db: Db = None, as_json: JsonFlag = False) -> None:
        """Balances per account and asset (instruments: positions in contracts), from the journal."""
        try:
            with _open(db) as ledger:
                table = ledger.balances(account)
                kinds = {name: asset.kind for name, asset in ledger.assets().items()}
        except InputError as error:
            _fail(error)
        rows = [{"account": a, "asset": s, "kind": kinds[s], "amount": format_decimal(v)}
                for a, per in table.items() for s, v in per.items()]
        if as_json:
            print(json.dumps({"balances": rows}, indent=2))
            return
        for row in rows:
            print(f"{row['account']:<24} {row['asset']:<16} {row['amount']:>28}")

    @app.command()
    def journal(db: Db = None, as_json: JsonFlag = False) -> None:
        """Every operation in order with its postings."""
        try:
            with _open(db) as ledger:
                entries = list(ledger.journal())
        except InputError as error:
            _fail(error)
        if as_json:
            print(json.dumps({"operations": [
                {"sequence": e.sequence, "key": e.key, "op": e.kind, "body": e.body,
                 "postings": [{"account": a, "asset": s, "amount": format_decimal(v)} for a, s, v in e.postings]}
                for e in entries]}, indent=2))
            return
        for e in entries:
            legs = ", ".join(f"{a} {'+' if v > 0 else ''}{format_decimal(v)} {s}" for a, s, v in e.postings)
            print(f"{e.sequence:>8} {e.kind:<20} {e.key:<24} {legs}")

    @app.command()
    def verify(db: Db = None, as_json: JsonFlag = False) -> None:
        """Replay the journal: every posting, the balances and conservation per asset; exit 3 on any mismatch."""
        try:
            with _open(db) as ledger:
                problems = ledger.verify()
                count = sum(1 for _ in ledger.journal())
        except InputError as error:
            _fail(error)
        if as_json:
            print(json.dumps({"operations": count, "ok": not problems, "problems": problems}, indent=2))
        else:
            for problem in problems:
                print(problem)
            print(f"{count} operations, {len(problems)} problems" if problems else
                  f"{count} operations verified: every posting balances, balances match the journal, "
                  "each asset's balances sum to deposits - withdrawals")
        if problems:
            raise typer.Exit(3)

    @app.command("apply")
    def apply_file(file: Annotated[Path, typer.Argument(help="Operations, one JSON object per line.")],
                   db: Db = None, market: Market = None, profile: ProfileName = None,
                   chunk: Annotated[int, typer.Option("--chunk", min=1, help="Operations per transaction.")] = 500,
                   as_json: JsonFlag = False) -> None:
        """Apply a batch (JSON lines: {"op": …, "key": …, fields}); safe to rerun; exit 3 if any line is refused.

        Fields as the single commands: deposit/withdraw/fee {account, asset, amount}; transfer {from, to,
        asset, amount}; trade {buyer, seller, instrument, quantity, price[, cash_asset, cash_amount]};
        funding {account, asset, amount (+ received, - paid)[, instrument]}; also realised_pnl,
        variation_margin {asset, payments}, liquidation_transfer, insurance_fund.
        """
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            _fail(InputError(f"cannot read: {error}", file=str(file)))
        parsed: list[tuple[int, Operation | Result]] = []
        for number, line in enumerate(lines, start=1):
            if line.strip():
                parsed.append((number, _parse_line(line)))
        try:
            with _open(db) as ledger:
                operations = [item for _, item in parsed if isinstance(item, Operation)]
                results = iter(ledger.apply(operations, check(ledger, market, profile), chunk=chunk))
        except InputError as error:
            _fail(error)
        report: list[dict[str, Any]] = []
        for number, item in parsed:
            result = next(results) if isinstance(item, Operation) else item
            report.append({"line": number, "key": result.key, "status": result.status, "field": result.field,
                           "reason": result.reason})
        counts = {s: sum(1 for r in report if r["status"] == s) for s in ("applied", "duplicate", "refused")}
        if as_json:
            print(json.dumps({**counts, "refused_lines": [r for r in report if r["status"] == "refused"]}, indent=2))
        else:
            for r in report:
                if r["status"] == "refused":
                    where = f": {r['field']}" if r["field"] else ""
                    print(f"{file}:{r['line']} ({r['key'] or 'no key'}) refused{where}: {r['reason']}")
            print(f"{counts['applied']} applied, {counts['duplicate']} already applied, {counts['refused']} refused")
        if counts["refused"]:
            raise typer.Exit(3)

    return app


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _parse_line(line: str) -> Operation | Result:
    try:
        data = json.loads(line, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError as error:
        return Result("", "refused", f"not a JSON object: {error}", None, "invalid")
    if not isinstance(data, dict):
        return Result("", "refused", "not a JSON object", None, "invalid")
    key = data.get("key")
    try:
        return make_operation(data.get("op"), key, {k: v for k, v in data.items() if k not in ("op", "key")})
    except LedgerRefusal as error:
        return Result(key if isinstance(key, str) else "", "refused", error.message, error.field, "invalid")
