"""The default drill end to end (clearing/drill.py, drill_command.py): every waterfall layer computed by hand.

The clearing house of tests/clearing/data/drill-house.yaml (currency USD, MPOR 2 days, skin in the game 2,000 then
3,000, Cover 2, minimum contribution 5,000, assessments 1 × contribution) clears one linear future XYZ-FUT at
100. Every account is margined by span-flat-10 (tests/clearing/data): IM = |quantity| × 100 × 10 %.

| account | member | kind                      | quantity | IM     |
|---------|--------|---------------------------|---------:|-------:|
| A.house | A      | house                     |    1,000 | 10,000 |
| A.C1    | A      | client, individual (port) |      100 |  1,000 |
| B.house | B      | house                     |     −400 |  4,000 |
| C.house | C      | house                     |      400 |  4,000 |
| D.house | D      | house                     |   −1,100 | 11,000 |

The book is flat (1000 + 100 − 400 + 400 − 1100 = 0). Stress scenarios: crash XYZ −30 %, rally XYZ +20 %.

The default fund, by hand (A.C1 is ported, so A counts A.house only, IM 10,000):
- crash: A 1000 × −30 = −30,000 → 30,000 − 10,000 = 20,000 beyond IM; C 400 × −30 = −12,000 → 8,000; B, D gain.
- rally: B −400 × 20 = −8,000 → 4,000; D −1100 × 20 = −22,000 → 11,000; A, C gain.
- Cover 2 in a common scenario: crash 20,000 + 8,000 = 28,000 > rally 11,000 + 4,000 = 15,000 → fund 28,000.
- Contributions pro rata to each member's IM over all its accounts (A 11,000, B 4,000, C 4,000, D 11,000; Σ 30,000):
  28,000 × 4/30 = 3,733.33 < 5,000, so B and C pay the floor 5,000; the rest 28,000 − 10,000 = 18,000 is shared by
  A and D (11,000 each): 9,000 each. Contributions: A 9,000, B 5,000, C 5,000, D 9,000.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from marginkit.clearing.drill import run_drill
from marginkit.clearing.drill_command import register_default_drill
from marginkit.errors import InputError

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parents[2] / "examples" / "ccp"
HOUSE = str(DATA / "drill-house.yaml")
STRESS = {"hypothetical": {"crash": {"XYZ": {"price": -0.30}}, "rally": {"XYZ": {"price": 0.20}}}}


def drill_file(tmp_path: Path, **overrides: Any) -> Path:
    document: dict[str, Any] = {"clearing_house": HOUSE, "defaulters": ["A"], "stress": STRESS,
                                "close_out": {"scenario": "crash"}}
    document.update(overrides)
    path = tmp_path / "drill.json"
    path.write_text(json.dumps(document))
    return path


def layers(document: dict[str, Any]) -> dict[str, tuple[str, dict[str, str]]]:
    """layer -> (used, {party: used} for the parties that lost something)."""
    return {layer["layer"]: (layer["used"], {p["party"]: p["used"] for p in layer["parties"] if p["used"] != "0.00"})
            for layer in document["waterfall"]["layers"]}


def test_default_drill_every_layer_by_hand() -> None:
    document = run_drill(DATA / "drill-a-default.yaml")
    fund = document["default_fund"]
    assert (fund["scenario"], fund["size"]) == ("crash", "28000.00")
    assert {row["member"]: row["contribution"] for row in fund["contributions"]} == {
        "A": "9000.00", "B": "5000.00", "C": "5000.00", "D": "9000.00"}
    # Close-out: XYZ −30 % then −50 % over the 2-day MPOR: 100 → 70 → 35.
    # A's house (A.C1 is ported): day 1 1000 × (70 − 100) = −30,000; day 2 1000 × (35 − 70) = −35,000;
    # loss from the last settlement 65,000. A's IM in the waterfall: A.house's 10,000.
    (defaulter,) = document["close_out"]["defaulters"]
    assert defaulter["accounts"] == ["A.house"]
    assert defaulter["ported_accounts"] == ["A.C1"]
    assert defaulter["pnl_by_day"] == ["-30000.00", "-35000.00"]
    assert (defaulter["initial_margin"], defaulter["loss"]) == ("10000.00", "65000.00")
    # Survivors' VM gains over the close-out, Σ of each day's gain:
    #   B −400: +12,000 (day 1) + 400 × 35 = +14,000 (day 2) = 26,000; C +400 loses both days: 0;
    #   D −1100: +33,000 + 1100 × 35 = +38,500 = 71,500.
    assert {row["member"]: row["gain"] for row in document["close_out"]["variation_margin_gains"]} == {
        "B": "26000.00", "C": "0.00", "D": "71500.00"}
    # The waterfall, loss 65,000:
    #   1 A's IM                      10,000 → 55,000 left
    #   2 A's contribution             9,000 → 46,000
    #   3 first skin in the game       2,000 → 44,000
    #   4 survivors' contributions: B 5,000 + C 5,000 + D 9,000 = 19,000, all of it → 25,000
    #   5 second skin in the game      3,000 → 22,000
    #   6 assessments, capped at 1 × contribution: B 5,000 + C 5,000 + D 9,000 = 19,000 → 3,000
    #   7 VM gains haircut: 3,000 of 26,000 + 71,500 = 97,500: B 3,000 × 26,000/97,500 = 800,
    #     D 3,000 × 71,500/97,500 = 2,200 → 0 uncovered
    assert layers(document) == {
        "defaulter_initial_margin": ("10000.00", {"A": "10000.00"}),
        "defaulter_default_fund": ("9000.00", {"A": "9000.00"}),
        "first_skin_in_the_game": ("2000.00", {"test-ccp": "2000.00"}),
        "survivors_default_fund": ("19000.00", {"B": "5000.00", "C": "5000.00", "D": "9000.00"}),
        "second_skin_in_the_game": ("3000.00", {"test-ccp": "3000.00"}),
        "assessments": ("19000.00", {"B": "5000.00", "C": "5000.00", "D": "9000.00"}),
        "variation_margin_haircut": ("3000.00", {"B": "800.00", "D": "2200.00"}),
    }
    assert (document["waterfall"]["loss"], document["waterfall"]["uncovered"]) == ("65000.00", "0.00")
    # Who lost what: A 10,000 + 9,000 = 19,000; the clearing house 2,000 + 3,000 = 5,000;
    # B 5,000 + 5,000 + 800 = 10,800; C 5,000 + 5,000 = 10,000; D 9,000 + 9,000 + 2,200 = 20,200; Σ 65,000.
    assert {row["party"]: row["amount"] for row in document["losses_by_party"]} == {
        "A": "19000.00", "test-ccp": "5000.00", "B": "10800.00", "C": "10000.00", "D": "20200.00"}


def test_close_out_on_a_stress_scenario_uses_survivors_pro_rata(tmp_path: Path) -> None:
    document = run_drill(drill_file(tmp_path))
    # crash in one step: A 1000 × −30 = −30,000 → loss 30,000.
    #   1 IM 10,000 → 20,000; 2 contribution 9,000 → 11,000; 3 first SITG 2,000 → 9,000;
    #   4 9,000 of the survivors' 19,000 pro rata to contribution: B 9,000 × 5/19 = 2,368.421…, C 2,368.421…,
    #     D 9,000 × 9/19 = 4,263.157…; in cents 2,368.42 + 2,368.42 + 4,263.15 = 8,999.99 and the cent goes to
    #     the largest remainder, D's (.0079 against .0011): 4,263.16.
    assert layers(document)["survivors_default_fund"] == (
        "9000.00", {"B": "2368.42", "C": "2368.42", "D": "4263.16"})
    assert layers(document)["second_skin_in_the_game"] == ("0.00", {})
    assert document["close_out"]["source"] == "scenario crash"


def test_cover_two_defaulters_are_covered_by_the_fund(tmp_path: Path) -> None:
    document = run_drill(drill_file(tmp_path, defaulters=["A", "C"]))
    # The two members the fund was sized on default in its scenario, crash:
    #   A loses 30,000: IM 10,000 + contribution 9,000 → 11,000 left;
    #   C loses 400 × 30 = 12,000: IM 4,000 + contribution 5,000 → 3,000 left;
    #   together 14,000: first SITG 2,000 → 12,000; survivors B 5,000 and D 9,000 (14,000) pay 12,000:
    #   B 12,000 × 5/14 = 4,285.714…, D 12,000 × 9/14 = 7,714.285… → 4,285.71 + 7,714.28 = 11,999.99,
    #   the cent to D (remainder .0057 against .0043): 7,714.29. Nothing beyond: the fund covers Cover 2.
    result = layers(document)
    assert result["defaulter_initial_margin"] == ("14000.00", {"A": "10000.00", "C": "4000.00"})
    assert result["defaulter_default_fund"] == ("14000.00", {"A": "9000.00", "C": "5000.00"})
    assert result["survivors_default_fund"] == ("12000.00", {"B": "4285.71", "D": "7714.29"})
    assert result["second_skin_in_the_game"] == ("0.00", {})


def test_unported_clients_close_out_with_their_member(tmp_path: Path) -> None:
    document = run_drill(drill_file(tmp_path, port_individual_clients=False,
                                    close_out={"path": {"XYZ": [-0.30, -0.50]}}))
    # A counts A.house + A.C1 (1,100 contracts, IM 11,000). Stress crash: −33,000 → 22,000 beyond IM; with C's 8,000
    # the fund is 30,000; pro rata 30,000 × 4/30 = 4,000 < 5,000 → B, C at 5,000; A, D share 20,000: 10,000 each.
    assert {row["member"]: row["contribution"] for row in document["default_fund"]["contributions"]} == {
        "A": "10000.00", "B": "5000.00", "C": "5000.00", "D": "10000.00"}
    # Close-out: 1,100 × (−30 − 35) = −71,500 → loss 71,500:
    #   IM 11,000 → 60,500; contribution 10,000 → 50,500; SITG 2,000 → 48,500; survivors 20,000 → 28,500;
    #   SITG 3,000 → 25,500; assessments 20,000 → 5,500; VM haircut 5,500 of 97,500:
    #   B 5,500 × 26,000/97,500 = 1,466.666…, D 5,500 × 71,500/97,500 = 4,033.333… → 1,466.66 + 4,033.33 =
    #   5,499.99, the cent to B (.0067 against .0033): 1,466.67.
    assert document["close_out"]["defaulters"][0]["loss"] == "71500.00"
    assert layers(document)["variation_margin_haircut"] == ("5500.00", {"B": "1466.67", "D": "4033.33"})


def test_historical_scenarios_size_the_fund(tmp_path: Path) -> None:
    history = str(DATA / "history.csv")
    document = run_drill(drill_file(tmp_path, stress={"historical": [{"name": "hist", "history": history}]},
                                    close_out={"scenario": "hist@2026-11-04"}))
    # Windows (tests/clearing/test_stress.py): −25 % (4th), −20 % (5th), +20 % (6th).
    # Beyond IM: 4th A 25,000 − 10,000 = 15,000, C 10,000 − 4,000 = 6,000 → 21,000; 5th A 10,000 + C 4,000 = 14,000;
    # 6th D 22,000 − 11,000 = 11,000 + B 8,000 − 4,000 = 4,000 → 15,000. Fund 21,000 (the 4th).
    # Pro rata 21,000 × 4/30 = 2,800 < 5,000 → B, C floored; A, D share 11,000: 5,500 each.
    fund = document["default_fund"]
    assert (fund["scenario"], fund["size"]) == ("hist@2026-11-04", "21000.00")
    assert [row["contribution"] for row in fund["contributions"]] == ["5500.00", "5000.00", "5000.00", "5500.00"]
    # Close-out on the 4th's move: A loses 25,000: IM 10,000 → 15,000; contribution 5,500 → 9,500; SITG 2,000
    # → 7,500 of the survivors' 15,500: B 7,500 × 5,000/15,500 = 2,419.354…, C the same, D 7,500 × 5,500/15,500 =
    # 2,661.290… → 2,419.35 + 2,419.35 + 2,661.29 = 7,499.99; B and C tie on the largest remainder (.0048): B first.
    assert layers(document)["survivors_default_fund"] == (
        "7500.00", {"B": "2419.36", "C": "2419.35", "D": "2661.29"})


def test_the_example_drill_closes_out_m1() -> None:
    document = run_drill(EXAMPLES / "drill-m1-default.yaml")
    # M1.house: long 10 BTC-FUT-DEC26 at 95,400, short 100 ETH-FUT-DEC26 at 3,315 (M1.C1 is ported).
    # Day 1: BTC −12 %: 10 × 95,400 × −0.12 = −114,480; ETH +4 %: −100 × 3,315 × 0.04 = −13,260 → −127,740.
    # Day 2: BTC −10 % of 83,952: −83,952; ETH +5 % of 3,447.6: −100 × 172.38 = −17,238 → −101,190.
    (defaulter,) = document["close_out"]["defaulters"]
    assert defaulter["ported_accounts"] == ["M1.C1"]
    assert defaulter["pnl_by_day"] == ["-127740.00", "-101190.00"]
    assert defaulter["loss"] == "228930.00"
    waterfall = document["waterfall"]
    assert waterfall["loss"] == "228930.00"
    assert waterfall["uncovered"] == "0.00"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"defaulters": ["Z"]}, "defaulters[0]"),
    ({"defaulters": ["A", "A"]}, "defaulters[1]"),
    ({"defaulter": ["A"]}, "defaulter"),
    ({"close_out": {"scenario": "crash", "path": {"XYZ": [-0.1, -0.1]}}}, "close_out"),
    ({"close_out": {"path": {"XYZ": [-0.1]}}}, "close_out.path.XYZ"),
    ({"close_out": {"scenario": "melt-up"}}, "close_out.scenario"),
    ({"fund": {"scenarios": ["melt-up"]}}, "fund.scenarios[0]"),
    ({"stress": {"hypothetical": {"crash": {"XYZ": {"price": -1.5}}}}}, "stress.hypothetical.crash.XYZ.price"),
    ({"stress": {}}, "stress"),
])
def test_bad_drill_files_name_the_field(tmp_path: Path, overrides: dict[str, Any], field: str) -> None:
    path = drill_file(tmp_path, **overrides)
    with pytest.raises(InputError) as caught:
        run_drill(path)
    assert caught.value.field == field
    assert caught.value.file == str(path)


def test_a_missing_clearing_house_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        run_drill(drill_file(tmp_path, clearing_house="nowhere.yaml"))
    assert caught.value.file == str(tmp_path / "nowhere.yaml")


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def ccp() -> None:
        """The ccp group."""

    register_default_drill(app)
    return app


def test_the_command_prints_json_and_tables() -> None:
    result = CliRunner().invoke(cli(), ["default-drill", str(DATA / "drill-a-default.yaml"), "--json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["waterfall"]["loss"] == "65000.00"  # by hand in test_default_drill_every_layer_by_hand
    tables = CliRunner().invoke(cli(), ["default-drill", str(DATA / "drill-a-default.yaml")])
    assert tables.exit_code == 0
    assert "variation margin haircut" in tables.stdout
    assert "B 800.00, D 2200.00" in tables.stdout


def test_the_command_exits_2_on_bad_input(tmp_path: Path) -> None:
    path = drill_file(tmp_path, defaulters=["Z"])
    result = CliRunner().invoke(cli(), ["default-drill", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"{path}: defaulters[0]: 'Z' is not a member of test-ccp"
