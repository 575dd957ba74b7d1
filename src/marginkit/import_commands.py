"""`marginkit import …`: books from other tools' dumps (ccxt positions and balances)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from marginkit.errors import InputError
from marginkit.io.book_file import parse_utc
from marginkit.io.ccxt_import import load_ccxt, render_book, venue_document

import_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                         help="Write a book from another tool's dump (ccxt positions and balances).")


def _index_option(values: list[str]) -> dict[str, float]:
    prices: dict[str, float] = {}
    for text in values:
        asset, equals, price = text.partition("=")
        try:
            value = float(price)
        except ValueError:
            value = float("nan")
        if not equals or not asset or not value > 0 or value == float("inf"):
            raise InputError(f"{text!r}: must be ASSET=PRICE with a positive price (USD per unit)", field="--index")
        prices[asset.strip()] = value
    return prices


def venue_path(output: Path) -> Path:
    """Where the venue's own figures go beside a book written to `output`: BOOK.venue.json."""
    return output.with_name(output.stem + ".venue.json")


@import_app.command("ccxt")
def import_ccxt(
    positions: Annotated[Path, typer.Argument(help="ccxt fetch_positions dump (JSON list of positions).")],
    balances: Annotated[Path | None, typer.Option("--balances", help="ccxt fetch_balance dump (JSON).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Book file to write (.yaml, .yml or .json; default: YAML on stdout).")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Valuation time (default: the dumps' latest timestamp, else now).")] = None,
    account: Annotated[str, typer.Option("--account", help="Account id in the book.")] = "ccxt",
    index: Annotated[list[str] | None, typer.Option(
        "--index", help="ASSET=PRICE: USD index price of an asset (repeatable; overrides marks and stablecoins).")
    ] = None,
) -> None:
    """Write a book from ccxt-style dumps of positions and balances; the venue's figures go beside it.

    The venue's own initial and maintenance margin and liquidation price per position are written as a
    comment at the top of a YAML book and, with --output, to BOOK.venue.json beside it.
    """
    try:
        moment = None
        if as_of is not None:
            try:
                moment = parse_utc(as_of)
            except ValueError as error:
                raise InputError(str(error), field="--as-of") from None
        if output is not None and output.suffix not in (".yaml", ".yml", ".json"):
            raise InputError("the book file's extension must be .yaml, .yml or .json", field="--output")
        result = load_ccxt(positions, balances, as_of=moment, account=account, index=_index_option(index or []))
    except InputError as error:
        print(str(error).replace("\n", " "), file=sys.stderr)
        raise typer.Exit(2) from None
    text = render_book(result, positions.name, output is not None and output.suffix == ".json")
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    venue_path(output).write_text(json.dumps(venue_document(result, str(positions)), indent=2) + "\n",
                                  encoding="utf-8")
    print(f"wrote {output} ({len(result.book['accounts'])} account(s), {len(result.venue_figures)} position(s)); "
          f"the venue's figures: {venue_path(output)}")
