"""Malformed books: each exits 2 with one line naming the file and the field, never a traceback or a figure.

spec/cli.md: bad input exits 2 with one line on stderr naming the file and field, nothing on stdout.
spec/book-format.md "Rules": every number finite, prices and sizes positive, known instruments and
fields only, no expiry before as_of, an index price for every asset, entry_price when quantity ≠ 0.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from marginkit.cli import app

Book = dict[str, Any]
Mutation = Callable[[Book], None]

OPTION_ID = "BTC-26DEC26-100000-C"


def valid_book() -> Book:
    """A small book the default profile margins (exit 0): a linear perpetual and future held, an option listed."""
    return {
        "as_of": "2026-11-24T08:00:00Z",
        "instruments": [
            {"id": "BTC-USDT-PERP", "type": "perpetual", "underlying": "BTC", "quote": "USD",
             "settlement": "USDT", "inverse": False, "contract_size": 0.001, "tick_size": 0.1},
            {"id": "BTC-26DEC26", "type": "future", "underlying": "BTC", "quote": "USD",
             "settlement": "USDT", "inverse": False, "contract_size": 0.001, "expiry": "2026-12-26T08:00:00Z"},
            {"id": OPTION_ID, "type": "option", "option_type": "call", "strike": 100000,
             "expiry": "2026-12-26T08:00:00Z", "underlying": "BTC", "quote": "USD", "settlement": "BTC",
             "inverse": True, "contract_size": 1},
        ],
        "market": {
            "index": {"BTC": 95000.0, "USDT": 1.0},
            "marks": {"BTC-USDT-PERP": 95012.5},
            "vols": {OPTION_ID: 0.55},
        },
        "accounts": [
            {"id": "alice", "mode": "cross", "collateral": {"USDT": 20000},
             "positions": [
                 {"instrument": "BTC-USDT-PERP", "quantity": 2500, "entry_price": 94000},
                 {"instrument": "BTC-26DEC26", "quantity": -1000, "entry_price": 95500},
             ]},
        ],
    }


def dump(book: Book, suffix: str) -> str:
    """The book as JSON or YAML text; float('nan') and infinities become NaN/Infinity or .nan/.inf literals."""
    if suffix == ".json":
        return json.dumps(book, indent=2)
    return yaml.safe_dump(book, sort_keys=False)


def edited(suffix: str, old: str, new: str) -> str:
    """The valid book's text with `old` replaced by `new` (which must occur, so no case passes by accident)."""
    text = dump(valid_book(), suffix)
    assert old in text, (old, text)
    return text.replace(old, new)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_bad_input(result: Result, file: str, field: str | None, message: str | None = None) -> str:
    """Exit 2, nothing on stdout, one line on stderr: `FILE: FIELD: message`, no traceback. Returns the line."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    prefix = f"{file}: {field}: " if field else f"{file}: "
    assert line.startswith(prefix), (line, prefix)
    assert len(line) > len(prefix), line
    if message is not None:
        assert message in line[len(prefix):], (line, message)
    return line


def _position(book: Book, index: int) -> dict[str, Any]:
    position: dict[str, Any] = book["accounts"][0]["positions"][index]
    return position


def _set(path: tuple[str | int, ...], value: Any) -> Mutation:
    def mutate(book: Book) -> None:
        target: Any = book
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _drop(path: tuple[str | int, ...]) -> Mutation:
    def mutate(book: Book) -> None:
        target: Any = book
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return mutate


def _rename(path: tuple[str | int, ...], new_key: str) -> Mutation:
    def mutate(book: Book) -> None:
        target: Any = book
        for key in path[:-1]:
            target = target[key]
        renamed = {(new_key if k == path[-1] else k): v for k, v in target.items()}
        target.clear()
        target.update(renamed)
    return mutate


def _all(*mutations: Mutation) -> Mutation:
    def mutate(book: Book) -> None:
        for mutation in mutations:
            mutation(book)
    return mutate


def _append(path: tuple[str | int, ...], item: Any) -> Mutation:
    def mutate(book: Book) -> None:
        target: Any = book
        for key in path:
            target = target[key]
        target.append(copy.deepcopy(item))
    return mutate


def _copy_of(path: tuple[str | int, ...], into: tuple[str | int, ...]) -> Mutation:
    def mutate(book: Book) -> None:
        source: Any = book
        for key in path:
            source = source[key]
        _append(into, source)(book)
    return mutate


HEDGE = _set(("accounts", 0, "position_mode"), "hedge")
ISOLATED = _set(("accounts", 0, "mode"), "isolated")

# (id, mutation of the valid book, field path, part of the message). Each runs as .json and as .yaml.
BOOK_CASES: list[tuple[str, Mutation, str, str]] = [
    ("nan-quantity", _set(("accounts", 0, "positions", 1, "quantity"), float("nan")),
     "accounts[0].positions[1].quantity", "must be finite"),
    ("plus-infinity-quantity", _set(("accounts", 0, "positions", 0, "quantity"), float("inf")),
     "accounts[0].positions[0].quantity", "must be finite"),
    ("minus-infinity-quantity", _set(("accounts", 0, "positions", 0, "quantity"), float("-inf")),
     "accounts[0].positions[0].quantity", "must be finite"),
    ("infinite-index-price", _set(("market", "index", "BTC"), float("inf")),
     "market.index.BTC", "must be finite"),
    ("nan-collateral", _set(("accounts", 0, "collateral", "USDT"), float("nan")),
     "accounts[0].collateral.USDT", "must be finite"),
    ("negative-strike", _set(("instruments", 2, "strike"), -100000),
     "instruments[2].strike", "must be positive"),
    ("zero-contract-size", _set(("instruments", 0, "contract_size"), 0),
     "instruments[0].contract_size", "must be positive"),
    ("zero-tick-size", _set(("instruments", 0, "tick_size"), 0),
     "instruments[0].tick_size", "must be positive"),
    ("negative-mark", _set(("market", "marks", "BTC-USDT-PERP"), -95012.5),
     "market.marks.BTC-USDT-PERP", "must not be negative"),
    ("zero-perpetual-mark", _set(("market", "marks", "BTC-USDT-PERP"), 0.0),
     "market.marks.BTC-USDT-PERP", "must be positive"),
    ("zero-index-price", _set(("market", "index", "USDT"), 0),
     "market.index.USDT", "must be positive"),
    ("negative-vol", _set(("market", "vols", OPTION_ID), -0.55),
     f"market.vols.{OPTION_ID}", "must be positive"),
    ("negative-entry-price", _set(("accounts", 0, "positions", 0, "entry_price"), -94000),
     "accounts[0].positions[0].entry_price", "must not be negative"),
    ("zero-perpetual-entry-price", _set(("accounts", 0, "positions", 0, "entry_price"), 0),
     "accounts[0].positions[0].entry_price", "must be positive"),
    ("zero-leverage", _set(("accounts", 0, "positions", 0, "leverage"), 0),
     "accounts[0].positions[0].leverage", "must be positive"),
    ("unknown-instrument-in-position", _set(("accounts", 0, "positions", 0, "instrument"), "ETH-USDT-PERP"),
     "accounts[0].positions[0].instrument", "unknown instrument 'ETH-USDT-PERP'"),
    ("unknown-instrument-in-marks", _set(("market", "marks", "ETH-USDT-PERP"), 3300.0),
     "market.marks.ETH-USDT-PERP", "unknown instrument"),
    ("vol-for-a-perpetual", _set(("market", "vols", "BTC-USDT-PERP"), 0.5),
     "market.vols.BTC-USDT-PERP", "not an option"),
    ("unknown-top-level-field-typo", _rename(("accounts",), "acounts"), "acounts", "unknown field"),
    ("unknown-instrument-field-typo", _rename(("instruments", 0, "tick_size"), "tick"),
     "instruments[0].tick", "unknown field"),
    ("unknown-position-field-typo", _set(("accounts", 0, "positions", 1, "levarage"), 20),
     "accounts[0].positions[1].levarage", "unknown field"),
    ("unknown-account-field-typo", _rename(("accounts", 0, "collateral"), "colateral"),
     "accounts[0].colateral", "unknown field"),
    ("unknown-market-field-typo", _rename(("market", "marks"), "mark"), "market.mark", "unknown field"),
    ("unknown-instrument-type", _set(("instruments", 0, "type"), "perp"),
     "instruments[0].type", "must be one of spot, future, perpetual or option"),
    ("unknown-margin-mode", _set(("accounts", 0, "mode"), "crosss"),
     "accounts[0].mode", "must be one of isolated, cross or portfolio"),
    ("expiry-before-as-of", _set(("instruments", 1, "expiry"), "2026-01-01T00:00:00Z"),
     "instruments[1].expiry", "is before as_of"),
    ("option-expiry-before-as-of", _set(("instruments", 2, "expiry"), "2026-11-24T07:59:59Z"),
     "instruments[2].expiry", "is before as_of"),
    ("missing-index-price-for-underlying", _drop(("market", "index", "BTC")),
     "instruments[0].underlying", "'BTC' has no index price"),
    ("missing-index-price-for-collateral", _set(("accounts", 0, "collateral", "ETH"), 1.5),
     "accounts[0].collateral.ETH", "'ETH' has no index price"),
    ("missing-index-price-for-settlement", _set(("instruments", 1, "settlement"), "USDC"),
     "instruments[1].settlement", "'USDC' has no index price"),
    ("string-quantity", _set(("accounts", 0, "positions", 0, "quantity"), "2500"),
     "accounts[0].positions[0].quantity", "must be a number"),
    ("bool-quantity", _set(("accounts", 0, "positions", 0, "quantity"), True),
     "accounts[0].positions[0].quantity", "must be a number"),
    ("null-quantity", _set(("accounts", 0, "positions", 0, "quantity"), None),
     "accounts[0].positions[0].quantity", "must be a number"),
    ("string-inverse", _set(("instruments", 0, "inverse"), "false"),
     "instruments[0].inverse", "must be true or false"),
    ("list-for-market", _set(("market",), [1, 2]), "market", "must be a mapping"),
    ("mapping-for-positions", _set(("accounts", 0, "positions"), {}), "accounts[0].positions", "must be a list"),
    ("number-for-a-position", _set(("accounts", 0, "positions", 1), 7), "accounts[0].positions[1]",
     "must be a mapping"),
    ("missing-accounts", _drop(("accounts",)), "accounts", "required field is missing"),
    ("empty-instrument-id", _set(("instruments", 0, "id"), ""), "instruments[0].id", "must not be empty"),
    ("missing-entry-price", _drop(("accounts", 0, "positions", 0, "entry_price")),
     "accounts[0].positions[0].entry_price", "required when quantity is not 0"),
    ("duplicate-instrument-id", _copy_of(("instruments", 0), ("instruments",)),
     "instruments[3].id", "duplicate instrument id 'BTC-USDT-PERP'"),
    ("duplicate-account-id", _copy_of(("accounts", 0), ("accounts",)),
     "accounts[1].id", "duplicate account id 'alice'"),
    ("one-way-position-twice", _copy_of(("accounts", 0, "positions", 0), ("accounts", 0, "positions")),
     "accounts[0].positions[2].instrument", "appears twice"),
    ("hedge-long-leg-negative", _all(HEDGE, _set(("accounts", 0, "positions", 1, "position_side"), "long")),
     "accounts[0].positions[1].quantity", "a long leg cannot have a negative quantity"),
    ("hedge-short-leg-positive", _all(HEDGE, _set(("accounts", 0, "positions", 0, "position_side"), "short")),
     "accounts[0].positions[0].quantity", "a short leg cannot have a positive quantity"),
    ("hedge-side-both", _all(HEDGE, _set(("accounts", 0, "positions", 0, "position_side"), "both")),
     "accounts[0].positions[0].position_side", "a hedge-mode position is a long or a short leg"),
    ("one-way-side-long", _set(("accounts", 0, "positions", 0, "position_side"), "long"),
     "accounts[0].positions[0].position_side", "position_side both"),
    ("hedge-leg-twice", _all(HEDGE, _append(("accounts", 0, "positions"),
                                            {"instrument": "BTC-26DEC26", "quantity": -3, "entry_price": 95000})),
     "accounts[0].positions[2].instrument", "appears twice for position side short"),
    ("option-without-strike", _drop(("instruments", 2, "strike")), "instruments[2].strike", "an option needs a strike"),
    ("option-without-option-type", _drop(("instruments", 2, "option_type")),
     "instruments[2].option_type", "an option needs option_type"),
    ("future-without-expiry", _drop(("instruments", 1, "expiry")), "instruments[1].expiry", "a future needs an expiry"),
    ("perpetual-with-expiry", _set(("instruments", 0, "expiry"), "2026-12-26T08:00:00Z"),
     "instruments[0].expiry", "a perpetual has no expiry"),
    ("perpetual-with-strike", _set(("instruments", 0, "strike"), 100000),
     "instruments[0].strike", "a perpetual has no strike"),
    ("as-of-without-time-zone", _set(("as_of",), "2026-11-24T08:00:00"), "as_of", "time zone"),
    ("expiry-without-time-zone", _set(("instruments", 1, "expiry"), "2026-12-26T08:00:00"),
     "instruments[1].expiry", "time zone"),
    ("as-of-not-a-time", _set(("as_of",), "yesterday"), "as_of", "must be an ISO 8601 time"),
    ("isolated-margin-exceeds-balance",
     _all(ISOLATED, _set(("accounts", 0, "isolated_margin"), {"BTC-USDT-PERP": {"USDT": 30000}})),
     "accounts[0].isolated_margin", "exceeds the balance"),
    ("isolated-margin-split-exceeds-balance",
     _all(ISOLATED, _set(("accounts", 0, "isolated_margin"),
                         {"BTC-USDT-PERP": {"USDT": 12000}, "BTC-26DEC26": {"USDT": 9000}})),
     "accounts[0].isolated_margin", "exceeds the balance"),
    ("isolated-margin-negative",
     _all(ISOLATED, _set(("accounts", 0, "isolated_margin"), {"BTC-USDT-PERP": {"USDT": -5}})),
     "accounts[0].isolated_margin.BTC-USDT-PERP.USDT", "must not be negative"),
    ("isolated-margin-in-a-cross-account", _set(("accounts", 0, "isolated_margin"), {"BTC-USDT-PERP": {"USDT": 5}}),
     "accounts[0].isolated_margin.BTC-USDT-PERP", "isolated accounts only"),
    ("isolated-margin-without-a-position",
     _all(ISOLATED, _set(("accounts", 0, "isolated_margin"), {OPTION_ID: {"USDT": 5}})),
     f"accounts[0].isolated_margin.{OPTION_ID}", "no position"),
    ("malformed-forward-key", _set(("market", "forwards"), {"BTC": 95400.0}),
     "market.forwards.BTC", "UNDERLYING@EXPIRY"),
    ("svi-rho-out-of-range",
     _set(("market", "surfaces"), {"BTC": {"2026-12-26T08:00:00Z":
                                           {"a": 0.004, "b": 0.05, "rho": -1.5, "m": 0.0, "sigma": 0.15}}}),
     "market.surfaces.BTC.2026-12-26T08:00:00Z.rho", "must be greater than -1"),
    ("option-without-any-price", _drop(("market", "vols")), f"market.marks.{OPTION_ID}", "an option needs a mark"),
]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_the_valid_book_margins(tmp_path: Path, suffix: str) -> None:
    # Arrange: the book every malformed case starts from
    book = tmp_path / f"book{suffix}"
    book.write_text(dump(valid_book(), suffix))

    # Act
    result = invoke("margin", str(book), "--json")

    # Assert: it is valid, so each case below fails for its own defect only
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert [a["id"] for a in json.loads(result.stdout)["accounts"]] == ["alice"]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
@pytest.mark.parametrize(("mutate", "field", "message"),
                         [pytest.param(m, f, s, id=name) for name, m, f, s in BOOK_CASES])
def test_a_malformed_book_is_refused_naming_file_and_field(
    tmp_path: Path, suffix: str, mutate: Mutation, field: str, message: str
) -> None:
    # Arrange
    data = valid_book()
    mutate(data)
    book = tmp_path / f"book{suffix}"
    book.write_text(dump(data, suffix))

    # Act
    result = invoke("margin", str(book), "--json")

    # Assert
    assert_bad_input(result, str(book), field, message)


# (id, file name, text, field path or None for the whole file, part of the message)
RAW_CASES: list[tuple[str, str, str, str | None, str]] = [
    ("json-nan-literal", "book.json", edited(".json", "-1000", "NaN"),
     "accounts[0].positions[1].quantity", "must be finite"),
    ("json-infinity-literal", "book.json", edited(".json", "-1000", "Infinity"),
     "accounts[0].positions[1].quantity", "must be finite"),
    ("json-minus-infinity-literal", "book.json", edited(".json", "-1000", "-Infinity"),
     "accounts[0].positions[1].quantity", "must be finite"),
    ("json-overflowing-number", "book.json", edited(".json", "-1000", "-1e999"),
     "accounts[0].positions[1].quantity", "must be finite"),
    ("yaml-nan-literal", "book.yaml", edited(".yaml", "quantity: -1000", "quantity: .nan"),
     "accounts[0].positions[1].quantity", "must be finite"),
    ("yaml-minus-inf-literal", "book.yml", edited(".yaml", "quantity: -1000", "quantity: -.inf"),
     "accounts[0].positions[1].quantity", "must be finite"),
    ("yaml-overflowing-number", "book.yaml", edited(".yaml", "quantity: -1000", "quantity: 1e999"),
     "accounts[0].positions[1].quantity", "must be finite"),
    ("yaml-integer-key", "book.yaml", edited(".yaml", "USDT: 1.0", "1: 1.0"),
     "market.index[1]", "must be a string"),
    ("empty-json", "book.json", "", None, "empty file"),
    ("empty-yaml", "book.yaml", "", None, "empty file"),
    ("blank-yml", "book.yml", "\n   \n\t\n", None, "empty file"),
    ("not-json", "book.json", '{"as_of": "2026-11-24T08:00:00Z",\n "instruments": [\n  oops\n', None,
     "not valid JSON (line 3)"),
    ("json-trailing-comma", "book.json", '{"as_of": "2026-11-24T08:00:00Z",}', None, "not valid JSON (line 1)"),
    ("yaml-in-a-json-file", "book.json", dump(valid_book(), ".yaml"), None, "not valid JSON"),
    ("not-yaml", "book.yaml", "as_of: [2026-11-24\ninstruments: {\n", None, "not valid YAML"),
    ("yaml-tab-indent", "book.yaml", "as_of: x\ninstruments:\n\t- id: a\n", None, "not valid YAML (line 3)"),
    ("yaml-python-tag", "book.yaml", "!!python/object/apply:os.system ['true']\n", None, "not valid YAML"),
    ("json-list", "book.json", "[1, 2, 3]", None, "a book is a mapping"),
    ("json-string", "book.json", '"book"', None, "a book is a mapping"),
    ("yaml-scalar", "book.yaml", "just some words\n", None, "a book is a mapping"),
    ("yaml-comment-only", "book.yaml", "# nothing here\n", None, "empty file"),
    ("json-duplicate-key", "book.json",
     edited(".json", '"as_of": "2026-11-24T08:00:00Z",', '"as_of": "2026-11-24T08:00:00Z", "as_of": "2026-11-25",'),
     None, "duplicate key 'as_of'"),
    ("yaml-duplicate-key", "book.yaml", edited(".yaml", "- id: alice\n", "- id: alice\n  id: bob\n"),
     None, "duplicate key 'id'"),
    ("json-nested-too-deeply", "book.json", "[" * 100_000 + "]" * 100_000, None, "nested too deeply"),
    ("unknown-extension-txt", "book.txt", dump(valid_book(), ".json"), None, "unknown file type '.txt'"),
    ("unknown-extension-toml", "book.toml", 'as_of = "2026-11-24T08:00:00Z"\n', None, "unknown file type '.toml'"),
    ("no-extension", "book", dump(valid_book(), ".json"), None, "unknown file type"),
]


@pytest.mark.parametrize(("name", "text", "field", "message"),
                         [pytest.param(n, t, f, m, id=i) for i, n, t, f, m in RAW_CASES])
def test_a_malformed_book_file_is_refused_naming_the_file(
    tmp_path: Path, name: str, text: str, field: str | None, message: str
) -> None:
    # Arrange
    book = tmp_path / name
    book.write_text(text)

    # Act
    result = invoke("margin", str(book), "--json")

    # Assert
    assert_bad_input(result, str(book), field, message)


def test_a_missing_book_file_is_named(tmp_path: Path) -> None:
    # Arrange
    book = tmp_path / "absent.json"

    # Act
    result = invoke("margin", str(book), "--json")

    # Assert
    assert_bad_input(result, str(book), None, "no such file")


def test_a_directory_is_not_a_book(tmp_path: Path) -> None:
    # Arrange
    folder = tmp_path / "book.json"
    folder.mkdir()

    # Act
    result = invoke("margin", str(folder), "--json")

    # Assert
    assert_bad_input(result, str(folder), None, "is a directory")


def test_a_book_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    # Arrange
    book = tmp_path / "book.yaml"
    book.write_bytes(b"as_of: \xff\xfe\n")

    # Act
    result = invoke("margin", str(book), "--json")

    # Assert
    assert_bad_input(result, str(book), None, "not UTF-8")


@pytest.mark.parametrize(("name", "text", "expected"), [
    pytest.param("book.json", edited(".json", "-1000", "NaN"),
                 "book.json: accounts[0].positions[1].quantity: must be finite", id="json-nan"),
    pytest.param("book.yaml", edited(".yaml", "quantity: -1000", "quantity: .nan"),
                 "book.yaml: accounts[0].positions[1].quantity: must be finite", id="yaml-nan"),
    pytest.param("book.json", edited(".json", "94000", "-94000"),
                 "book.json: accounts[0].positions[0].entry_price: must not be negative", id="negative-entry"),
    pytest.param("book.json", "[\n1,\n]", "book.json: not valid JSON (line 3)", id="not-json"),
    pytest.param("book.yaml", "", "book.yaml: empty file", id="empty-yaml"),
    pytest.param("book.json", edited(".json", '"2026-12-26T08:00:00Z"', '"2026-11-01T08:00:00Z"'),
                 "book.json: instruments[1].expiry: expiry 2026-11-01T08:00:00Z is before as_of 2026-11-24T08:00:00Z",
                 id="expiry-before-as-of"),
    pytest.param("book.json", edited(".json", '"instrument": "BTC-26DEC26"', '"instrument": "BTC-27DEC26"'),
                 "book.json: accounts[0].positions[1].instrument: unknown instrument 'BTC-27DEC26'",
                 id="unknown-instrument"),
])
def test_the_message_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              name: str, text: str, expected: str) -> None:
    # Arrange: a relative path, as a user types it
    (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)

    # Act
    result = invoke("margin", name, "--json")

    # Assert
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == expected + "\n"


def test_compare_refuses_a_malformed_book_the_same_way(tmp_path: Path) -> None:
    # Arrange
    data = valid_book()
    _position(data, 1)["quantity"] = float("nan")
    book = tmp_path / "book.json"
    book.write_text(dump(data, ".json"))

    # Act
    result = invoke("compare", str(book), "--json")

    # Assert
    assert_bad_input(result, str(book), "accounts[0].positions[1].quantity", "must be finite")


def test_the_command_as_a_process_prints_no_traceback(tmp_path: Path) -> None:
    # Arrange
    data = valid_book()
    _position(data, 1)["quantity"] = float("nan")
    book = tmp_path / "book.json"
    book.write_text(dump(data, ".json"))
    environment = {k: v for k, v in os.environ.items() if k != "MARGINKIT_DEBUG"}

    # Act
    completed = subprocess.run(
        [sys.executable, "-m", "marginkit", "margin", str(book), "--json"],
        capture_output=True, text=True, env=environment, timeout=300, check=False,
    )

    # Assert
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    assert "Traceback" not in completed.stderr
    assert completed.stderr == f"{book}: accounts[0].positions[1].quantity: must be finite\n"


def test_a_deeply_nested_book_as_a_process_is_bad_input_not_an_internal_error(tmp_path: Path) -> None:
    # Arrange
    book = tmp_path / "book.yaml"
    book.write_text("as_of: " + "[" * 50_000 + "]" * 50_000 + "\n")
    environment = {k: v for k, v in os.environ.items() if k != "MARGINKIT_DEBUG"}

    # Act
    completed = subprocess.run(
        [sys.executable, "-m", "marginkit", "margin", str(book), "--json"],
        capture_output=True, text=True, env=environment, timeout=300, check=False,
    )

    # Assert
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    assert "Traceback" not in completed.stderr
    assert completed.stderr.startswith(f"{book}: ") and completed.stderr.count("\n") == 1
