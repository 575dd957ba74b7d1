"""Strategy-based worked examples S1–S5 (shared/vectors/ccp-and-validation.json, restated; reference/strategy-based.md).

book → resolve → `strategy-based` model (several through `marginkit margin --json`). The published figures
are gross (the short options' premium included) and are compared with components.venue_initial_margin;
initial_margin is the net-of-proceeds figure on the equity footing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from marginkit.book import resolve
from marginkit.cli import app
from marginkit.io.book_file import parse_book
from marginkit.models.strategy_based import margin
from marginkit.profiles import shipped_profile

AS_OF = "2026-11-24T08:00:00Z"
EXPIRY = "2026-12-18T21:00:00Z"


def option(identifier: str, kind: str, strike: float) -> dict[str, Any]:
    return {"id": identifier, "type": "option", "option_type": kind, "strike": strike, "expiry": EXPIRY,
            "underlying": "XYZ", "quote": "USD", "settlement": "USD", "inverse": False, "contract_size": 100,
            "index_class": "equity"}


def book(stock: float, options: list[dict[str, Any]], marks: dict[str, float],
         positions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "as_of": AS_OF,
        "instruments": [{"id": "XYZ", "type": "spot", "underlying": "XYZ", "quote": "USD", "settlement": "USD",
                         "inverse": False, "contract_size": 1}, *options],
        "market": {"index": {"XYZ": stock}, "marks": marks},
        "accounts": [{"id": "customer", "mode": "cross", "collateral": {"USD": 100000.0}, "positions": positions}],
    }


def cli_account(tmp_path: Path, document: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(app, ["margin", str(path), "--model", "strategy-based", "--json"])
    assert result.exit_code == 0, result.stderr
    account: dict[str, Any] = json.loads(result.stdout)["accounts"][0]
    return account


def test_s1_short_in_the_money_calls(tmp_path: Path) -> None:
    # strategy.S1 (Hull-style textbook exercise): short 4 calls, premium 8, strike 35, stock 38.
    # U = 38 × 100 × 4 = 15,200, OTM 0: max(400·(8 + 7.6), 400·(8 + 3.8)) = 400 × 15.6 = 6,240 gross;
    # net of the proceeds 400 × 8 = 3,200: 3,040.
    document = book(38.0, [option("C35", "call", 35)], {"C35": 8.0},
                    [{"instrument": "C35", "quantity": -4, "entry_price": 8.0}])

    account = cli_account(tmp_path, document)

    assert account["components"]["venue_initial_margin"] == pytest.approx(6240.0, abs=1e-9)
    assert account["initial_margin"] == pytest.approx(3040.0, abs=1e-9)


def test_s2_short_out_of_the_money_puts(tmp_path: Path) -> None:
    # strategy.S2 (FRM practice question): short 3 puts, premium 2.70, strike 20, stock 23 (OTM by 3).
    # max(810 + 0.2 × 6,900 − 900, 810 + 0.1 × 6,000) = max(1,290, 1,410) = 1,410 gross; net 1,410 − 810 = 600.
    document = book(23.0, [option("P20", "put", 20)], {"P20": 2.7},
                    [{"instrument": "P20", "quantity": -3, "entry_price": 2.7}])

    account = cli_account(tmp_path, document)

    assert account["components"]["venue_initial_margin"] == pytest.approx(1410.0, abs=1e-9)
    assert account["initial_margin"] == pytest.approx(600.0, abs=1e-9)


@pytest.mark.parametrize(
    ("vector_id", "kind", "strike", "stock", "premium", "gross"),
    [
        # strategy.S3 (course quiz): max(50 + 520 − 400, 50 + 260) = 310
        ("strategy.S3", "call", 30.0, 26.0, 0.50, 310.0),
        # strategy.S4 (broker knowledge base): 120 + max(4,180 − 900, 2,000) = 3,400
        ("strategy.S4", "put", 200.0, 209.0, 1.20, 3400.0),
    ],
)
def test_s3_s4_single_short_options(vector_id: str, kind: str, strike: float, stock: float, premium: float,
                                    gross: float) -> None:
    spec = parse_book(book(stock, [option("O", kind, strike)], {"O": premium},
                           [{"instrument": "O", "quantity": -1, "entry_price": premium}]))

    requirements = margin(resolve(spec), shipped_profile("cboe-finra"))

    assert requirements.components["venue_initial_margin"][0] == pytest.approx(gross, abs=1e-9), vector_id
    assert requirements.initial_margin[0] == pytest.approx(gross - premium * 100, abs=1e-9), vector_id


def test_s5_credit_put_spread(tmp_path: Path) -> None:
    # strategy.S5 (broker knowledge base): long 120 put at 0.80, short 125 put at 1.24:
    # (125 − 120) × 100 + 80 = 580 gross; 580 − 124 = 456 net of proceeds.
    document = book(130.0, [option("P120", "put", 120), option("P125", "put", 125)], {"P120": 0.8, "P125": 1.24},
                    [{"instrument": "P120", "quantity": 1, "entry_price": 0.8},
                     {"instrument": "P125", "quantity": -1, "entry_price": 1.24}])

    account = cli_account(tmp_path, document)

    assert account["components"]["venue_initial_margin"] == pytest.approx(580.0, abs=1e-9)
    assert account["initial_margin"] == pytest.approx(456.0, abs=1e-9)
    assert account["strategies"][0]["strategy"] == "vertical_spread"
