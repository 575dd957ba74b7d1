"""The CME XML SPAN reader (io/span_xml.py) on small files written here, and the `span` model reading them.

Figures: span.md worked examples 1 and 2 (CME spread-calculation page), now with the risk arrays given by the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from marginkit.book import Book, resolve
from marginkit.cli import app
from marginkit.errors import InputError
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import Profile, load_profile_file
from marginkit.io.span_xml import read_span_xml
from marginkit.models.span import margin
from marginkit.models.span_parameters import span_parameters_from_file

AS_OF = "2026-11-24T08:00:00Z"
CLASSIC = [0, 0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3, 1, 1, -1, -1]


def linear_array(scan_range: float) -> list[float]:
    """One long future: loss = −move × PSR, the extremes ±2 PSR weighted 0.35 (as a file publishes it)."""
    return [-p * scan_range for p in CLASSIC] + [-2 * scan_range * 0.35, 2 * scan_range * 0.35]


def ra(losses: list[float], delta: float = 1.0) -> str:
    return "<ra><r>1</r>" + "".join(f"<a>{v!r}</a>" for v in losses) + f"<d>{delta}</d></ra>"


def fut(period: str, scan_range: float) -> str:
    return (f"<fut><cId>{period}</cId><pe>{period}</pe><p>1</p>{ra(linear_array(scan_range))}"
            f"<scanRate><r>1</r><priceScan>{scan_range}</priceScan><volScan>0</volScan></scanRate></fut>")


def point_definitions() -> str:
    # the classic 16 points, written as numerator / denominator thirds, extremes ±2 weighted 0.35
    rows = []
    for r, (thirds, vol) in enumerate([(0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1), (2, 1), (2, -1),
                                       (-2, 1), (-2, -1), (3, 1), (3, -1), (-3, 1), (-3, -1), (6, 0), (-6, 0)],
                                      start=1):
        weight = 0.35 if vol == 0 else 1.0
        rows.append(f"<pointDef><r>{r}</r><priceScanNum>{thirds}</priceScanNum><priceScanDen>3</priceScanDen>"
                    f"<volScan>{vol}</volScan><weight>{weight}</weight></pointDef>")
    return "".join(rows)


def corn_soy_file() -> str:
    """Corn (ZC) and soybeans (ZS) futures, PSR 1,750 and 2,500, a 2:1 inter-commodity spread at 55 %."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<spanFile>
  <fileFormat>4.00</fileFormat>
  <pointInTime>
    <date>20261124</date>
    <clearingOrg>
      <ec>CME</ec>
      {point_definitions()}
      <deltaPointDef><r>1</r><priceScan>0</priceScan><weight>1</weight></deltaPointDef>
      <pbRateDef><r>1</r><isM>1</isM><acctType>S</acctType></pbRateDef>
      <pbRateDef><r>2</r><isM>0</isM><acctType>S</acctType></pbRateDef>
      <pbRateDef><r>3</r><isM>0</isM><acctType>H</acctType></pbRateDef>
      <exchange>
        <exch>CBT</exch>
        <futPf><pfCode>ZC</pfCode><cvf>5000</cvf>{fut("202703", 1750.0)}</futPf>
        <futPf><pfCode>ZS</pfCode><cvf>5000</cvf>{fut("202703", 2500.0)}</futPf>
      </exchange>
      <ccDef>
        <cc>C</cc><wfprMeth>P</wfprMeth>
        <pfLink><exch>CBT</exch><pfCode>ZC</pfCode><pfType>FUT</pfType></pfLink>
        <adjRate><r>2</r><val>1.1</val></adjRate><adjRate><r>3</r><val>1.0</val></adjRate>
      </ccDef>
      <ccDef>
        <cc>S</cc><wfprMeth>P</wfprMeth>
        <pfLink><exch>CBT</exch><pfCode>ZS</pfCode><pfType>FUT</pfType></pfLink>
        <adjRate><r>2</r><val>1.1</val></adjRate><adjRate><r>3</r><val>1.0</val></adjRate>
      </ccDef>
      <interSpreads>
        <dSpread>
          <spread>1</spread><rate><r>1</r><val>0.55</val></rate>
          <pLeg><cc>C</cc><i>2</i><rs>A</rs></pLeg>
          <pLeg><cc>S</cc><i>1</i><rs>B</rs></pLeg>
        </dSpread>
      </interSpreads>
    </clearingOrg>
  </pointInTime>
</spanFile>
"""


def months_file() -> str:
    """Corn months 2, 3, 4 with outrights 500, 500, 750; FLAT month spreads 2v3 200, 2v4 50, 3v4 0 (pLeg)."""
    def leg(period: str, side: str) -> str:
        return f"<pLeg><cc>C</cc><pe>{period}</pe><i>1</i><rs>{side}</rs></pLeg>"

    def spread(priority: int, rate: float, first: str, second: str) -> str:
        return (f"<dSpread><spread>{priority}</spread><chargeMeth>10</chargeMeth><rate><r>1</r><val>{rate}</val>"
                f"</rate>{leg(first, 'A')}{leg(second, 'B')}</dSpread>")

    return f"""<spanFile><fileFormat>4.00</fileFormat><pointInTime><clearingOrg><ec>CME</ec>
      <exchange><exch>CBT</exch>
        <futPf><pfCode>ZC</pfCode>{fut("202702", 500.0)}{fut("202703", 500.0)}{fut("202704", 750.0)}</futPf>
        <oopPf><pfCode>OZC</pfCode><cvf>5000</cvf><series><pe>202703</pe>
          <scanRate><r>1</r><priceScan>500</priceScan><volScan>0.1</volScan></scanRate>
          <opt><o>C</o><k>4.5</k>{ra([0.0] * 16, 0.5)}</opt></series></oopPf>
      </exchange>
      <ccDef><cc>C</cc>
        <pfLink><pfCode>ZC</pfCode></pfLink><pfLink><pfCode>OZC</pfCode></pfLink>
        <somTiers><tier><tn>1</tn><rate><r>1</r><val>25</val></rate></tier></somTiers>
        {spread(1, 200, "202702", "202703")}{spread(2, 50, "202702", "202704")}{spread(3, 0, "202703", "202704")}
        <spotRate><r>1</r><pe>202702</pe><sprd>10</sprd><outr>30</outr></spotRate>
      </ccDef>
    </clearingOrg></pointInTime></spanFile>"""


def write(tmp_path: Path, text: str, name: str = "cme.spn") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def span_profile_file(tmp_path: Path, instrument_ids: dict[str, str]) -> Profile:
    path = tmp_path / "cme-span.yaml"
    path.write_text(yaml.safe_dump({
        "model": "span", "name": "cme-test", "version": "20261124", "source": "a file written by this test",
        "parameters": {"span_file": "cme.spn", "instrument_ids": instrument_ids,
                       "account_class_ratios": {"speculator": 1.1, "hedger": 1.0, "member": 1.0}},
    }))
    return load_profile_file(path)


def grain(identifier: str, expiry: str) -> dict[str, Any]:
    return {"id": identifier, "type": "future", "underlying": identifier[:2], "quote": "USD", "settlement": "USD",
            "inverse": False, "contract_size": 5000, "expiry": expiry}


def grain_book(positions: dict[str, float], expiries: dict[str, str]) -> dict[str, Any]:
    return {
        "as_of": AS_OF,
        "instruments": [grain(i, e) for i, e in expiries.items()],
        "market": {"index": {i[:2]: 5.0 for i in expiries}, "marks": {i: 5.0 for i in expiries}},
        "accounts": [{"id": "farm", "mode": "cross", "collateral": {"USD": 10000},
                      "positions": [{"instrument": i, "quantity": q, "entry_price": 5.0}
                                    for i, q in positions.items()]}],
    }


CORN_SOY_IDS = {"ZC-MAR27": "CBT:ZC:202703", "ZS-MAR27": "CBT:ZS:202703"}
CORN_SOY_EXPIRIES = {"ZC-MAR27": "2027-03-12T18:00:00Z", "ZS-MAR27": "2027-03-12T18:00:00Z"}


def test_reader_maps_the_file_onto_the_model_parameters(tmp_path: Path) -> None:
    data = read_span_xml(write(tmp_path, corn_soy_file()))

    corn = data["combined_commodities"]["C"]
    assert corn["instruments"] == ["CBT:ZC:202703"]
    assert corn["risk_arrays"]["CBT:ZC:202703"]["losses"] == linear_array(1750.0)
    assert corn["risk_arrays"]["CBT:ZC:202703"]["composite_delta"] == 1.0
    assert corn["risk_arrays"]["CBT:ZC:202703"]["price_scan_range"] == 1750.0
    assert corn["risk_arrays"]["CBT:ZC:202703"]["contract_value_factor"] == 5000.0
    assert corn["weighted_futures_price_risk"] == "price_risk"
    assert corn["account_class_ratios"] == {"speculator": 1.1, "hedger": 1.0}
    assert data["inter_spreads"] == [{"priority": 1, "rate": 0.55, "legs": [
        {"combined_commodity": "C", "ratio": 2.0, "side": "A"},
        {"combined_commodity": "S", "ratio": 1.0, "side": "B"}]}]
    # point 3 = 1/3 PSR, vol up; point 15 = +2 PSR, weight 0.35
    assert data["scan_points"][2] == {"price": pytest.approx(1 / 3), "weight": 1.0, "volatility": 1.0}
    assert data["scan_points"][14] == {"price": 2.0, "weight": 0.35, "volatility": 0.0}
    assert data["delta_points"] == [{"price": 0.0, "weight": 1.0}]


def test_corn_soy_credit_from_the_file(tmp_path: Path) -> None:
    # span.md example 1 with the file's arrays: 2 × 1,750 + 2,500 = 6,000; credit 0.55 × (3,500 + 2,500) = 3,300;
    # maintenance 2,700; speculator initial: the file's adjRate 1.1 × 2,700 = 2,970
    write(tmp_path, corn_soy_file())
    profile = span_profile_file(tmp_path, CORN_SOY_IDS)
    book = resolve(parse_book(grain_book({"ZC-MAR27": 2, "ZS-MAR27": -1}, CORN_SOY_EXPIRIES)))

    result = margin(book, profile)

    assert result.components["scan_risk"][0] == pytest.approx(6000.0, rel=1e-12)
    assert result.components["inter_commodity_credit"][0] == pytest.approx(3300.0, rel=1e-12)
    assert result.maintenance_margin[0] == pytest.approx(2700.0, rel=1e-12)
    assert result.initial_margin[0] == pytest.approx(2970.0, rel=1e-12)


@pytest.mark.parametrize(("long", "short", "expected"), [("M2", "M3", 200.0), ("M2", "M4", 300.0), ("M3", "M4", 250.0)])
def test_month_spreads_from_period_legs(tmp_path: Path, long: str, short: str, expected: float) -> None:
    # span.md example 2: (higher outright − lower outright) + intra charge of the month pair; M2 is the spot month
    # in this file (spotRate 202702: 10 per consumed delta, 30 per outright delta): its 1 delta is consumed by the
    # spread, so + 10
    write(tmp_path, months_file())
    ids = {"M2": "CBT:ZC:202702", "M3": "CBT:ZC:202703", "M4": "CBT:ZC:202704"}
    expiries = {"M2": "2027-02-12T18:00:00Z", "M3": "2027-03-12T18:00:00Z", "M4": "2027-04-14T18:00:00Z"}
    profile = span_profile_file(tmp_path, ids)
    book_data = grain_book({long: 1, short: -1}, expiries)
    for instrument in book_data["instruments"]:
        instrument["underlying"] = "ZC"
    book_data["market"]["index"] = {"ZC": 5.0}

    result = margin(resolve(parse_book(book_data)), profile)

    delivery = 10.0 if long == "M2" else 0.0
    assert result.components["delivery_charge"][0] == pytest.approx(delivery, rel=1e-12)
    assert result.maintenance_margin[0] == pytest.approx(expected + delivery, rel=1e-12)


def test_option_series_tiers_and_delivery_are_read(tmp_path: Path) -> None:
    parameters = span_parameters_from_file(write(tmp_path, months_file()),
                                           overrides={"account_class_ratios": {"speculator": 1.1, "hedger": 1.0,
                                                                               "member": 1.0}})

    corn = parameters.combined_commodities["C"]
    option = corn.risk_arrays["CBT:OZC:202703:C:4.5"]
    assert option.composite_delta == 0.5 and option.price_scan_range == 500.0 and option.contract_value_factor == 5000
    assert [(t.tier, t.start_period, t.end_period) for t in corn.intra_tiers] == [
        (1, "202702", "202702"), (2, "202703", "202703"), (3, "202704", "202704")]
    assert [(s.priority, s.rate, [leg.tier for leg in s.legs]) for s in corn.intra_spreads] == [
        (1, 200.0, [1, 2]), (2, 50.0, [1, 3]), (3, 0.0, [2, 3])]
    assert corn.short_option_minimum[0].rate == 25.0
    assert (corn.delivery[0].period, corn.delivery[0].spread_rate, corn.delivery[0].outright_rate) == ("202702", 10, 30)
    assert len(parameters.points()) == 16 and parameters.points()[14].price == 2.0


def test_margin_through_the_command_with_a_span_file(tmp_path: Path) -> None:
    write(tmp_path, corn_soy_file())
    span_profile_file(tmp_path, CORN_SOY_IDS)
    book_path = tmp_path / "book.yaml"
    book_path.write_text(yaml.safe_dump(grain_book({"ZC-MAR27": 2, "ZS-MAR27": -1}, CORN_SOY_EXPIRIES)))

    result = CliRunner().invoke(app, ["margin", str(book_path), "--params", str(tmp_path / "cme-span.yaml"), "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accounts"][0]["maintenance_margin"] == pytest.approx(2700.0, rel=1e-12)


FUTURE_PATH = "spanFile/pointInTime/clearingOrg/exchange[0]/futPf[0]/fut[0]"


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("<a>0.0</a>", "", f"{FUTURE_PATH}/ra[0]", "a risk array has 16 values (a), found 15"),
        ("<a>0.0</a>", "<a>x</a>", f"{FUTURE_PATH}/ra[0]/a[0]", "must be a number, not 'x'"),
        ("<pfCode>ZC</pfCode><cvf>", "<cvf>", "spanFile/pointInTime/clearingOrg/exchange[0]/futPf[0]/pfCode",
         "required element is missing"),
        ("<pe>202703</pe><p>1", "<pe>2027-3</pe><p>1", f"{FUTURE_PATH}/pe", "must be a contract period"),
        ("<fileFormat>4.00", "<fileFormat>3.10", "spanFile/fileFormat", "only 4.00"),
        ("<wfprMeth>P</wfprMeth>", "<wfprMeth>Q</wfprMeth>", "spanFile/pointInTime/clearingOrg/ccDef[0]/wfprMeth",
         "must be one of P, S, C"),
        ("<rs>B</rs>", "<rs>X</rs>", "spanFile/pointInTime/clearingOrg/interSpreads/dSpread[0]/pLeg[1]/rs",
         "must be A or B"),
        ("<adjRate><r>2</r>", "<adjRate><r>7</r>", "spanFile/pointInTime/clearingOrg/ccDef[0]/adjRate[0]/r",
         "no pbRateDef with r = 7"),
        ("<pfCode>ZS</pfCode><pfType>", "<pfCode>ZW</pfCode><pfType>",
         "spanFile/pointInTime/clearingOrg/ccDef[1]/pfLink[0]/pfCode", "no product 'ZW'"),
    ],
)
def test_malformed_elements_are_named(tmp_path: Path, old: str, new: str, field: str, message: str) -> None:
    text = corn_soy_file()
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1))

    with pytest.raises(InputError) as error:
        read_span_xml(path)

    assert error.value.file == str(path)
    assert error.value.field == field
    assert message in error.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<spanFile><fileFormat>4.00</fileFormat>", "not well-formed XML (line 1, column 40)"),
        ("", "not well-formed XML"),
        ('<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa">]><spanFile/>', "entity declarations are not accepted"),
        ("<riskFile/>", "the root element is 'riskFile'"),
    ],
)
def test_unreadable_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(InputError) as error:
        read_span_xml(path)

    assert error.value.file == str(path)
    assert message in error.value.message


def test_malformed_file_exits_2_naming_the_file_and_element(tmp_path: Path) -> None:
    write(tmp_path, corn_soy_file().replace("<a>0.0</a>", "", 1))
    span_profile_file(tmp_path, {})
    book_path = tmp_path / "book.yaml"
    book_path.write_text(yaml.safe_dump(grain_book({"ZC-MAR27": 1}, {"ZC-MAR27": "2027-03-12T18:00:00Z"})))

    result = CliRunner().invoke(app, ["margin", str(book_path), "--params", str(tmp_path / "cme-span.yaml")])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (f"{tmp_path / 'cme.spn'}: {FUTURE_PATH}/ra[0]: "
                                     "a risk array has 16 values (a), found 15")


def test_instrument_ids_must_name_contracts_of_the_file(tmp_path: Path) -> None:
    write(tmp_path, corn_soy_file())
    profile = span_profile_file(tmp_path, {"ZC-MAR27": "CBT:ZC:202712"})
    book: Book = resolve(parse_book(grain_book({"ZC-MAR27": 1}, {"ZC-MAR27": "2027-03-12T18:00:00Z"})))

    with pytest.raises(InputError) as error:
        margin(book, profile)

    assert error.value.field == "parameters.instrument_ids.ZC-MAR27"
    assert "not a contract of cme.spn" in error.value.message
