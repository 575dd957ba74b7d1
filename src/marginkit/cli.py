"""The `marginkit` command (spec/cli.md): exit 0 ok, 2 bad input (one line naming file and field), 1 internal."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from marginkit.accounts import account_state, apply_credit_tier
from marginkit.book import Book, resolve
from marginkit.clearing.commands import ccp_app
from marginkit.clearing.drill_command import register_default_drill
from marginkit.collateral import apply_collateral, load_collateral_schedule, value_collateral
from marginkit.comparison import print_efficiency, run_comparison
from marginkit.comparison_report import write_comparison_report
from marginkit.conformance import report_document, report_lines, run_suite
from marginkit.distributed.commands import backtest_command as cluster_backtest
from marginkit.distributed.commands import cluster_option
from marginkit.distributed.commands import compare_command as cluster_compare
from marginkit.distributed.commands import margin_command as cluster_margin
from marginkit.engine.monitor import read_events as read_price_events
from marginkit.engine.simulate import MODES as SIMULATION_MODES
from marginkit.engine.simulate import simulate as run_simulation
from marginkit.errors import InputError
from marginkit.explain import explain_account
from marginkit.import_commands import import_app
from marginkit.io import load_book
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import Profile, load_profile_file
from marginkit.io.structured import load_structured
from marginkit.ledger import AccountSnapshot, Ledger, MarginCheck
from marginkit.ledger.commands import ledger_app
from marginkit.models import DEFAULT_PROFILES, MODELS
from marginkit.profiles import shipped_profile, shipped_profiles
from marginkit.report import (
    collateral_document,
    margin_document,
    print_collateral,
    print_comparison,
    print_explanation,
    print_margin,
)
from marginkit.validation.backtest import (
    BacktestSeries,
    backtest_book,
    backtest_document,
    book_backtest_document,
    load_history,
)
from marginkit.validation.chart import write_backtest_report
from marginkit.validation.series import read_series
from marginkit.validation.text import print_backtest

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="marginkit: derivatives margin under every model that matters.")
console = Console(width=None if sys.stdout.isatty() else 140)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine output (spec/cli.md).")]
ModelOption = Annotated[str | None, typer.Option("--model", help="Model name (its default profile).")]
ProfileOption = Annotated[str | None, typer.Option("--profile", help="A shipped profile.")]
ParamsOption = Annotated[Path | None, typer.Option("--params", help="A profile file of your own.")]
CollateralOption = Annotated[str | None, typer.Option(
    "--collateral", help="A collateral profile (shipped name or file): haircuts, chains, credit tiers.")]
ClusterOption = Annotated[str | None, typer.Option(
    "--cluster", help="Run on a Dask cluster: local, local:N (N worker processes) or tcp://HOST:PORT (a running "
                      "scheduler); the same results as without it (docs/cluster.md).")]


def _emit(document: dict[str, Any], as_json: bool, printer: Callable[[Console, dict[str, Any]], None]) -> None:
    """The command's result: the JSON document with --json (spec/cli.md), else the human tables."""
    if as_json:
        print(json.dumps(document, indent=2))
    else:
        printer(console, document)


def _fail(error: InputError) -> NoReturn:
    print(str(error).replace("\n", " "), file=sys.stderr)
    raise typer.Exit(2)


def choose_profile(model: str | None, profile: str | None, params: Path | None) -> Profile:
    """The profile named by --profile, --params or --model's default; a --model that disagrees is bad input."""
    if profile is not None and params is not None:
        raise InputError("give --profile or --params, not both", field="--params")
    if model is not None and model not in MODELS:
        raise InputError(f"unknown model {model!r} (models: {', '.join(sorted(MODELS))})", field="--model")
    if params is not None:
        chosen = load_profile_file(params)
    elif profile is not None:
        chosen = shipped_profile(profile)
    else:
        chosen = shipped_profile(DEFAULT_PROFILES[model or "tiered"])
    if chosen.model == "collateral":
        raise InputError(f"{chosen.name!r} is a collateral profile: pass it with --collateral", field="--profile")
    if chosen.model not in MODELS:
        raise InputError(f"unknown model {chosen.model!r}", field="model", file=chosen.path)
    if model is not None and chosen.model != model:
        raise InputError(f"profile {chosen.name!r} is for model {chosen.model!r}, not {model!r}", field="--model")
    return chosen


def margin_result(book: Book, profile: Profile) -> dict[str, Any]:
    """Margin every account of a resolved book under one profile: the spec/cli.md document."""
    requirements = apply_credit_tier(book, MODELS[profile.model](book, profile))
    return margin_document(book, requirements, account_state(book, requirements))


def with_collateral(book: Book, collateral: str | None, book_path: str) -> Book:
    """The book valued under `--collateral` (none: unchanged); a book/profile mismatch names the book's field."""
    if collateral is None:
        return book
    schedule = load_collateral_schedule(collateral)
    try:
        return apply_collateral(book, schedule)
    except InputError as error:
        raise error.in_file(book_path) from None


def _load(book_path: Path) -> Book:
    try:
        return resolve(load_book(book_path))
    except InputError as error:
        raise error.in_file(str(book_path)) from None


@app.command()
def margin(
    book: Annotated[Path | None, typer.Argument(help="Book file (.json, .yaml, .yml); or give --db.")] = None,
    model: ModelOption = None,
    profile: ProfileOption = None,
    params: ParamsOption = None,
    db: Annotated[str | None, typer.Option("--db", help="Margin the accounts stored in this ledger database.")] = None,
    market: Annotated[Path | None, typer.Option("--market", help="With --db: as_of, instruments and market.")] = None,
    collateral: CollateralOption = None,
    cluster: ClusterOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Margin every account of BOOK (or of the ledger at --db, with --market) with one model."""
    try:
        on_cluster = cluster_option(cluster)
        chosen = choose_profile(model, profile, params)
        source = str(book) if book is not None else str(market)
        if on_cluster is not None:
            if book is None:
                raise InputError("--cluster margins a BOOK file, not a ledger's accounts (--db)", field="--cluster")
            document = cluster_margin(on_cluster, book, chosen, collateral)
        else:
            resolved = _load(book) if book is not None else _ledger_book(db, market)
            resolved = with_collateral(resolved, collateral, source)
            try:
                document = margin_result(resolved, chosen)
            except InputError as error:
                raise error.in_file(source if error.field and error.field.startswith("accounts") else
                                    (chosen.path or chosen.name)) from None
    except InputError as error:
        _fail(error)
    _emit(document, as_json, print_margin)


def _market_data(market: Path) -> dict[str, Any]:
    data = load_structured(market)
    if not isinstance(data, dict) or "accounts" in data:
        raise InputError("a market file is a mapping with as_of, instruments and market (no accounts)",
                         file=str(market))
    return data


def _ledger_book_data(market: Mapping[str, Any], stored: Mapping[str, Mapping[str, Decimal]],
                      kinds: Mapping[str, str],
                      entries: Mapping[str, Mapping[str, tuple[Decimal, Decimal | None]]]) -> dict[str, Any]:
    """A book document: the market file's as_of, instruments and market plus stored accounts (cross mode).

    Collateral is each account's balances, positions its net contracts at the average entry price of its
    trades (at the mark where the journal has none, e.g. a trade in the same batch).
    """
    marks = market.get("market", {}).get("marks", {}) if isinstance(market.get("market"), dict) else {}
    accounts = []
    for account, balances in sorted(stored.items()):
        held = entries.get(account, {})
        positions = []
        for name, quantity in balances.items():
            if kinds[name] == "instrument" and quantity != 0:
                entry = held[name][1] if name in held else None
                positions.append({"instrument": name, "quantity": float(quantity),
                                  "entry_price": float(entry) if entry is not None else marks.get(name)})
        accounts.append({
            "id": account, "mode": "cross",
            "collateral": {asset: float(v) for asset, v in balances.items() if kinds[asset] == "asset"},
            "positions": positions,
        })
    return {**market, "accounts": accounts}


def _ledger_book(db: str | None, market: Path | None) -> Book:
    """The Book of the accounts stored in the ledger at `db`, at the market of `market`."""
    if db is None:
        raise InputError("give a BOOK file or --db", field="BOOK")
    if market is None:
        raise InputError("--db needs --market FILE (as_of, instruments, market)", field="--market")
    data = _market_data(market)
    with Ledger.open(db) as ledger:
        kinds = {name: asset.kind for name, asset in ledger.assets().items()}
        stored = {a: b for a, b in ledger.balances().items() if not a.startswith("@")}
        document = _ledger_book_data(data, stored, kinds, ledger.positions())
    try:
        return resolve(parse_book(document))
    except InputError as error:
        raise error.in_file(str(market)) from None


def ledger_margin_check(ledger: Ledger, market: Path, profile: str | None) -> MarginCheck:
    """The withdrawal check of `marginkit ledger`: equity >= initial margin after it, under one profile.

    Read before the ledger's write transaction: the market, the asset kinds and the entry prices.
    """
    chosen = choose_profile(None, profile, None)
    data = _market_data(market)
    kinds = {name: asset.kind for name, asset in ledger.assets(refresh=True).items()}
    entries = ledger.positions()

    def check(snapshot: AccountSnapshot) -> bool:
        stored = {snapshot.account: {**snapshot.collateral, **snapshot.positions}}
        try:
            resolved = resolve(parse_book(_ledger_book_data(data, stored, kinds, entries)))
        except InputError as error:
            raise error.in_file(str(market)) from None
        requirements = MODELS[chosen.model](resolved, chosen)
        state = account_state(resolved, requirements)
        return bool(state.equity[0] >= requirements.initial_margin[0])

    return check


@app.command()
def models(as_json: JsonFlag = False) -> None:
    """The models and their shipped profiles (name, version, source)."""
    rows = [
        {"model": p.model, "profile": p.name, "version": p.version, "source": " ".join(p.source.split()),
         "default": DEFAULT_PROFILES.get(p.model) == p.name}
        for p in sorted(shipped_profiles().values(), key=lambda p: (p.model, p.name))
    ]
    if as_json:
        print(json.dumps({"models": sorted(MODELS), "profiles": rows}, indent=2))
        return
    table = Table(title="models and profiles", title_justify="left")
    width = 56
    cells = [(str(r["model"]), str(r["profile"]) + (" (default)" if r["default"] else ""), str(r["version"]),
              source if len(source := str(r["source"])) <= width else source[:width - 1] + "…") for r in rows]
    for column in ("model", "profile", "version", "source"):
        table.add_column(column, no_wrap=True)
    for row in cells:
        table.add_row(*row)
    console.print(table)


@app.command()
def compare(
    book: Annotated[Path, typer.Argument(help="Book file (.json, .yaml, .yml).")],
    models_option: Annotated[str | None, typer.Option(
        "--models", help="Comma-separated models or profiles (default: every shipped profile that covers BOOK).")
    ] = None,
    collateral: CollateralOption = None,
    history: Annotated[Path | None, typer.Option(
        "--history", help="Market history (CSV/Parquet): backtest each profile (coverage, zone, procyclicality).")
    ] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Write an HTML report with charts (self-contained, opens offline).")] = None,
    level: Annotated[float, typer.Option("--level", help="With --history: the coverage level tested.")] = 0.99,
    horizon: Annotated[int, typer.Option("--horizon", help="With --history: margin period of risk, days.")] = 1,
    cluster: ClusterOption = None,
    as_json: JsonFlag = False,
) -> None:
    """The same book under several models and profiles side by side: IM, MM, IM ÷ notional, offset benefit."""
    try:
        on_cluster = cluster_option(cluster)
        try:
            spec = load_book(book)
        except InputError as error:
            raise error.in_file(str(book)) from None
        resolved = with_collateral(resolve(spec), collateral, str(book)) if on_cluster is None else None
        profiles: list[Profile] = []
        skipped: list[dict[str, str]] = []
        names = [n.strip() for n in models_option.split(",")] if models_option else None
        catalogue = shipped_profiles()
        for name in names or sorted(catalogue):
            if name in catalogue and catalogue[name].model == "collateral":
                if names:
                    raise InputError(f"{name!r} is a collateral profile: pass it with --collateral", field="--models")
                skipped.append({"profile": name, "reason": "a collateral profile (use --collateral)"})
            elif name in catalogue:
                profiles.append(catalogue[name])
            elif name in MODELS:
                profiles.extend(p for p in catalogue.values() if p.model == name)
            else:
                raise InputError(f"{name!r} is neither a model nor a shipped profile", field="--models")
        try:
            if on_cluster is not None:
                comparison = cluster_compare(on_cluster, spec, profiles, book_path=str(book), requested=names,
                                             not_covered=skipped, collateral=collateral, history=history,
                                             level=level, horizon=horizon)
            else:
                assert resolved is not None
                comparison = run_comparison(
                    spec, resolved, profiles, book_path=str(book), requested=names, not_covered=skipped,
                    prepare=lambda split: with_collateral(split, collateral, str(book)),
                    history=history, level=level, horizon=horizon)
        except InputError as error:
            raise error.in_file(str(book)) from None
        if report is not None:
            write_comparison_report(report, comparison, str(book))
    except InputError as error:
        _fail(error)
    document = comparison.document()
    if as_json:
        print(json.dumps(document, indent=2))
    else:
        print_comparison(console, comparison.results, comparison.not_covered)
        print_efficiency(console, document)
        if report is not None:
            console.print(f"report: {report}")


@app.command()
def explain(
    book: Annotated[Path, typer.Argument(help="Book file (.json, .yaml, .yml).")],
    account: Annotated[str, typer.Argument(help="Account id.")],
    model: ModelOption = None,
    profile: ProfileOption = None,
    params: ParamsOption = None,
    as_json: JsonFlag = False,
) -> None:
    """One account's margin explained: scenario losses (price × volatility) and liquidation price per underlying."""
    try:
        chosen = choose_profile(model, profile, params)
        try:
            spec = load_book(book)
            document = explain_account(spec, account, chosen)
        except InputError as error:
            raise error.in_file(str(book)) from None
    except InputError as error:
        _fail(error)
    _emit(document, as_json, print_explanation)


@app.command()
def conformance(
    suite: Annotated[str, typer.Argument(help="The suite: derive-pmrm.")],
    path: Annotated[Path, typer.Argument(help="A directory of case files, or one case file.")],
    as_json: JsonFlag = False,
) -> None:
    """Run an external conformance suite: one line per case, then `N passed, M failed`; exit 3 if any case fails."""
    try:
        report = run_suite(suite, path)
    except InputError as error:
        _fail(error)
    if as_json:
        print(json.dumps(report_document(report), indent=2))
    else:
        print("\n".join(report_lines(report)))
    if report.failed:
        raise typer.Exit(3)


@app.command("collateral")
def collateral_command(
    book: Annotated[Path, typer.Argument(help="Book file (.json, .yaml, .yml).")],
    collateral: CollateralOption = None,
    as_json: JsonFlag = False,
) -> None:
    """What each account's collateral counts for, per asset and chain, with the haircuts applied and why."""
    try:
        resolved = _load(book)
        schedule = load_collateral_schedule(collateral) if collateral is not None else None
        try:
            valuation = value_collateral(resolved, schedule)
        except InputError as error:
            raise error.in_file(str(book)) from None
        document = collateral_document(resolved, valuation)
    except InputError as error:
        _fail(error)
    _emit(document, as_json, print_collateral)


@app.command()
def backtest(
    book: Annotated[Path | None, typer.Argument(help="Book file (.json, .yaml, .yml); or give --series.")] = None,
    model: ModelOption = None,
    profile: ProfileOption = None,
    params: ParamsOption = None,
    history: Annotated[Path | None, typer.Option(
        "--history", help="Index levels per day: CSV `date,UNDERLYING,...` (or what MarketHistory reads).")] = None,
    series: Annotated[Path | None, typer.Option(
        "--series", help="A margin series made elsewhere: CSV `date,requirement,realised_loss`.")] = None,
    level: Annotated[float, typer.Option("--level", help="Coverage level the margin targets.")] = 0.99,
    horizon: Annotated[int | None, typer.Option(
        "--horizon", help="Margin period of risk in days (BOOK runs; default: the profile's, else 1).")] = None,
    account: Annotated[str | None, typer.Option("--account", help="Backtest only this account.")] = None,
    measure: Annotated[str, typer.Option(
        "--measure", help="initial_margin or maintenance_margin (BOOK runs).")] = "initial_margin",
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML chart (plotly, offline).")] = None,
    cluster: ClusterOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Backtest margin against realised losses: Kupiec, Christoffersen, traffic light, per year, procyclicality."""
    try:
        on_cluster = cluster_option(cluster)
        if not 0.0 < level < 1.0:
            raise InputError(f"the level must be in (0, 1), got {level}", field="--level")
        charted: Mapping[str, BacktestSeries]
        if series is not None:
            if book is not None or history is not None:
                raise InputError("give --series alone, or BOOK with --history", field="--series")
            chosen_series = read_series(series)
            document = {"source": "series", "file": str(series), **backtest_document(chosen_series, level)}
            charted = {"series": chosen_series}
        else:
            if book is None or history is None:
                raise InputError("give BOOK with --history FILE, or --series FILE", field="BOOK" if book is None
                                 else "--history")
            chosen = choose_profile(model, profile, params)
            try:
                spec = load_book(book)
            except InputError as error:
                raise error.in_file(str(book)) from None
            levels = load_history(history)
            try:
                charted = (backtest_book(spec, chosen, levels, horizon=horizon, measure=measure,
                                         accounts=[account] if account is not None else None) if on_cluster is None
                           else cluster_backtest(on_cluster, spec, chosen, levels, horizon=horizon, measure=measure,
                                                 accounts=[account] if account is not None else None))
                document = book_backtest_document(spec, chosen, levels, level=level, horizon=horizon,
                                                  measure=measure, computed=charted)
            except InputError as error:
                raise error.in_file(str(history) if error.field == "--history" else str(book)) from None
        if report is not None:
            write_backtest_report(report, charted, document)
    except InputError as error:
        _fail(error)
    _emit(document, as_json, print_backtest)


@app.command()
def simulate(
    book: Annotated[Path, typer.Argument(help="Book file (.json, .yaml, .yml): linear futures and perpetuals.")],
    path: Annotated[Path, typer.Option(
        "--path", help="Price path: CSV `time,underlying,price` (or `time,instrument,price`), or JSON lines; "
                       "times in seconds from the book's as_of, or epoch seconds.")],
    mode: Annotated[str | None, typer.Option(
        "--mode", help="isolated, cross or portfolio (default: all three).")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="A shipped tiered profile.")] = None,
    params: ParamsOption = None,
    insurance_fund: Annotated[str, typer.Option("--insurance-fund", help="The fund at the start.")] = "0",
    as_json: JsonFlag = False,
) -> None:
    """Replay a price path over BOOK per margin mode: liquidations, losses, insurance fund, ADL, contagion."""
    try:
        if mode is not None and mode not in SIMULATION_MODES:
            raise InputError(f"unknown mode {mode!r} (one of {', '.join(SIMULATION_MODES)})", field="--mode")
        chosen = choose_profile("tiered" if profile is None and params is None else None, profile, params)
        spec = load_book(book)
        events = read_price_events(path)
        try:
            document = run_simulation(spec, events, chosen, [mode] if mode else SIMULATION_MODES,
                                      insurance_fund=insurance_fund)
        except InputError as error:
            raise error.in_file(str(book)) from None
    except InputError as error:
        _fail(error)
    if as_json:
        print(json.dumps(document, indent=2))
        return
    table = Table(title=f"simulate {book.name} over {path.name} ({document['profile']})")
    for column in ("mode", "liquidations", "accounts", "realised losses", "fund in", "fund paid", "ADL",
                   "uncovered", "contagion"):
        table.add_column(column)
    for name, row in document["modes"].items():
        fund = row["insurance_fund"]
        table.add_row(name, str(row["liquidations"]), str(row["liquidated_accounts"]),
                      f"{row['realised_losses']:,.2f}", f"{fund['fees_in'] + fund['surplus_in']:,.2f}",
                      f"{fund['paid_out']:,.2f}", f"{row['adl_events']} ({row['adl_amount']:,.2f})",
                      f"{row['uncovered']:,.2f}", str(row["contagion"]["positions_closed_in_profit"]))
    console.print(table)


@app.command()
def serve(
    db: Annotated[str | None, typer.Option("--db", help="Ledger database URL or SQLite path (default: embedded).")
                  ] = None,
    market: Annotated[Path | None, typer.Option(
        "--market", help="as_of, instruments and market (default: examples/usd-perpetuals's market).")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="A shipped profile (default: tiered's).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    keys: Annotated[Path | None, typer.Option(
        "--keys", help="API keys file: key -> account id or 'operator' (default: a fresh operator key, printed).")
    ] = None,
    clearing: Annotated[Path | None, typer.Option(
        "--clearing", help="A clearing-house file: open the house on the ledger and serve its members' routes "
                           "(/members/…, /clearing/…); a key may map to a member id. The house starts from the "
                           "file's book.")] = None,
) -> None:
    """Start the HTTP API (service/): accounts, ledger, margin, what-if, liquidations, events, /openapi.json."""
    import uvicorn

    from marginkit.clearing.house import ClearingHouse
    from marginkit.clearing.spec import load_clearing
    from marginkit.service import create_app, generate_key, load_keys
    from marginkit.service.app import DEFAULT_MARKET

    try:
        chosen = choose_profile(None, profile, None)
        data = _market_data(market) if market is not None else DEFAULT_MARKET
        mapping = load_keys(keys) if keys is not None else None
        spec = load_clearing(clearing) if clearing is not None else None
        ledger = Ledger.open(db)
    except InputError as error:
        _fail(error)
    try:
        house = ClearingHouse.open(spec, ledger) if spec is not None else None
    except InputError as error:
        ledger.close()
        _fail(error.in_file(str(clearing)))
    if mapping is None:
        operator_key = generate_key()
        mapping = {operator_key: "operator"}
        print(f"operator key (shown once): {operator_key}", flush=True)
    try:
        uvicorn.run(create_app(ledger, data, chosen, mapping, clearing=house), host=host, port=port,
                    log_level="warning")
    finally:
        ledger.close()


app.add_typer(ledger_app(ledger_margin_check), name="ledger")
app.add_typer(import_app, name="import")
register_default_drill(ccp_app)
app.add_typer(ccp_app, name="ccp")


def main() -> None:
    """Entry point: run the command; an unexpected error is one line and exit 1 (MARGINKIT_DEBUG=1 re-raises)."""
    try:
        app()
    except SystemExit:
        raise
    except Exception as error:
        if os.environ.get("MARGINKIT_DEBUG"):
            raise
        print(f"marginkit: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
