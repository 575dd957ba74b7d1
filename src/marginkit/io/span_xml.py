"""Read the parts of a CME XML SPAN risk-parameter file (file format 4.00) that the `span` model uses.

The layout (shared/reference/span.md, "File formats"): `spanFile/pointInTime/clearingOrg` holds the scan points
(`pointDef`), the composite-delta points (`deltaPointDef`), the performance-bond rate definitions (`pbRateDef`),
the exchanges with their products (`phyPf`, `futPf`, `oopPf`/`series`, contracts with `ra` risk arrays,
`scanRate` and `cvf`), the combined commodities (`ccDef`: `pfLink`, `intraTiers`, `scanTiers`, `somTiers`,
`dSpread` with `tLeg`/`pLeg`, `spotRate`, `adjRate`, `wfprMeth`) and `interSpreads`. The result is a mapping in
the shape of the model's parameters (models/span_parameters.py), which validates it.

What is read, element by element (a missing required element or a value that is not a finite number is an
error naming the file and the element path, e.g. `spanFile/pointInTime/clearingOrg/exchange[0]/futPf[0]/fut[1]/ra`):
- `pointDef`: `r` (1–16), `priceScan` (multiple of the price scan range; or `priceScanNum`/`priceScanDen`),
  `volScan` (multiple of the volatility scan range; or `volScanNum`/`volScanDen`), `weight`;
- `deltaPointDef`: `r`, `priceScan` (or num/den), `weight`;
- `pbRateDef`: `r`, `isM` (1 maintenance, 0 initial), `acctType` (S speculator, H hedger, M member);
- contracts: `fut`, `phy` (`pe`, `ra`, `scanRate`, `cvf`) and `oopPf/series` (`pe`, `scanRate`, `cvf`) with `opt`
  (`o` C or P, `k`, `ra`, `cvf`); `ra` with `r` = 1 (or the only one): sixteen `a` (losses of one long contract,
  + loss, extreme weight included) and `d` (composite delta); `scanRate` with `r` = 1: `priceScan` (the price scan
  range per contract); `cvf` the contract value factor (pf level unless the contract or series gives one);
- rates (`rate`, in `dSpread`, `somTiers/tier`) are the `val` of `r` = 1, the first requirement level;
- `adjRate` (`r`, `val`) is the initial-to-maintenance ratio of the initial rate definition `r`, whose `acctType`
  names the account class;
- `wfprMeth`: P (price risk ÷ net delta), S (the scan range), C (the former capped at the scan range);
- inter-commodity legs (`pLeg` or `tLeg` in `interSpreads/dSpread`): `cc`, `i` (delta per spread), `rs` (A or B);
  a leg limited to a tier (`tn` other than 0) is not read: inter-commodity spreads use the whole commodity.

Contract keys: `EXCH:PF:YYYYMM` for futures and physicals, `EXCH:PF:YYYYMM:C:STRIKE` (P for puts) for options,
the strike as written in the file. Intra-commodity spreads are read as FLAT (`chargeMeth` is not read).

The element and code names follow span.md's digest and marginkit's reading of the 4.00 layout; CME's layout
document was not at hand to check every code. A file with a document type or entity declarations is refused
(a SPAN file has none, and refusing them rules out entity-expansion attacks); the standard library's parser
never fetches external entities.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marginkit.errors import InputError

FILE_FORMAT = "4.00"
RISK_ARRAY_LENGTH = 16
ACCOUNT_TYPES = {"S": "speculator", "H": "hedger", "M": "member"}
WFPR_METHODS = {"P": "price_risk", "S": "scan_range", "C": "capped"}
PRODUCT_TAGS = (("futPf", "fut"), ("phyPf", "phy"))


@dataclass(frozen=True)
class _Node:
    """An element and its path from the root, for error messages."""

    element: ET.Element
    path: str
    file: str

    def error(self, message: str, tag: str | None = None) -> InputError:
        return InputError(message, field=f"{self.path}/{tag}" if tag else self.path, file=self.file)

    def children(self, tag: str) -> list[_Node]:
        found = self.element.findall(tag)
        return [_Node(e, f"{self.path}/{tag}[{i}]", self.file) for i, e in enumerate(found)]

    def child(self, tag: str) -> _Node:
        found = self.children(tag)
        if len(found) != 1:
            raise self.error("required element is missing" if not found else "appears more than once", tag)
        return _Node(found[0].element, f"{self.path}/{tag}", self.file)

    def optional_child(self, tag: str) -> _Node | None:
        return self.child(tag) if self.element.find(tag) is not None else None

    def text(self, tag: str) -> str:
        value = (self.child(tag).element.text or "").strip()
        if not value:
            raise self.error("must not be empty", tag)
        return value

    def optional_text(self, tag: str) -> str | None:
        return self.text(tag) if self.element.find(tag) is not None else None

    def number(self, tag: str) -> float:
        return self._parse_number(self.text(tag), tag)

    def optional_number(self, tag: str) -> float | None:
        return self.number(tag) if self.element.find(tag) is not None else None

    def integer(self, tag: str) -> int:
        value = self.text(tag)
        try:
            return int(value)
        except ValueError:
            raise self.error(f"must be an integer, not {value!r}", tag) from None

    def _parse_number(self, value: str, tag: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise self.error(f"must be a number, not {value!r}", tag) from None
        if not math.isfinite(number):
            raise self.error("must be finite", tag)
        return number

    def period(self, tag: str) -> str:
        """A contract month YYYYMM (a YYYYMMDD value keeps its month)."""
        value = self.text(tag)
        if not (value.isdigit() and len(value) in (6, 8) and 1 <= int(value[4:6]) <= 12):
            raise self.error(f"must be a contract period YYYYMM or YYYYMMDD, not {value!r}", tag)
        return value[:6]

    def scan_multiple(self, stem: str) -> float:
        """`stem` as a number, or `stemNum` / `stemDen`."""
        if self.element.find(stem) is not None:
            return self.number(stem)
        numerator = self.number(f"{stem}Num")
        denominator = self.number(f"{stem}Den")
        if denominator == 0:
            raise self.error("must not be 0", f"{stem}Den")
        return numerator / denominator


def _rate(node: _Node) -> float:
    """The `val` of the `rate` with r = 1 (the first requirement level)."""
    for rate in node.children("rate"):
        if rate.integer("r") == 1:
            return rate.number("val")
    raise node.error("no rate with r = 1", "rate")


def _risk_array(contract: _Node) -> dict[str, Any]:
    arrays = contract.children("ra")
    if not arrays:
        raise contract.error("required element is missing", "ra")
    chosen = arrays[0] if len(arrays) == 1 else next((a for a in arrays if a.integer("r") == 1), None)
    if chosen is None:
        raise contract.error("no risk array with r = 1", "ra")
    values = [chosen._parse_number((a.text or "").strip(), f"a[{i}]") for i, a in
              enumerate(chosen.element.findall("a"))]
    if len(values) != RISK_ARRAY_LENGTH:
        raise chosen.error(f"a risk array has {RISK_ARRAY_LENGTH} values (a), found {len(values)}")
    return {"losses": values, "composite_delta": chosen.number("d")}


def _scan_range(*nodes: _Node | None) -> float | None:
    """`scanRate` (r = 1) `priceScan` of the first node that has one."""
    for node in nodes:
        if node is None:
            continue
        for rate in node.children("scanRate"):
            if rate.integer("r") == 1:
                value = rate.number("priceScan")
                if value < 0:
                    raise rate.error("must not be negative", "priceScan")
                return value
    return None


def _add_contract(arrays: dict[str, dict[str, Any]], key: str, contract: _Node, period: str,
                  scan: float | None, value_factor: float | None) -> None:
    if key in arrays:
        raise contract.error(f"contract {key!r} appears twice")
    entry = _risk_array(contract)
    entry["period"] = period
    if scan is not None:
        entry["price_scan_range"] = scan
    if value_factor is not None:
        if not value_factor > 0:
            raise contract.error("must be positive", "cvf")
        entry["contract_value_factor"] = value_factor
    arrays[key] = entry


def _products(organisation: _Node) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """(exchange, pfCode) -> contract key -> risk array, period, scan range and contract value factor."""
    products: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for exchange in organisation.children("exchange"):
        exch = exchange.text("exch")
        for pf_tag, contract_tag in PRODUCT_TAGS:
            for pf in exchange.children(pf_tag):
                code = pf.text("pfCode")
                arrays = products.setdefault((exch, code), {})
                for contract in pf.children(contract_tag):
                    period = contract.period("pe")
                    factor = contract.optional_number("cvf") or pf.optional_number("cvf")
                    _add_contract(arrays, f"{exch}:{code}:{period}", contract, period,
                                  _scan_range(contract, pf), factor)
        for pf in exchange.children("oopPf"):
            code = pf.text("pfCode")
            arrays = products.setdefault((exch, code), {})
            for series in pf.children("series"):
                period = series.period("pe")
                for option in series.children("opt"):
                    kind = option.text("o").upper()
                    if kind not in ("C", "P"):
                        raise option.error(f"must be C or P, not {kind!r}", "o")
                    option.number("k")
                    factor = (option.optional_number("cvf") or series.optional_number("cvf")
                              or pf.optional_number("cvf"))
                    _add_contract(arrays, f"{exch}:{code}:{period}:{kind}:{option.text('k')}", option, period,
                                  _scan_range(option, series, pf), factor)
    return products


def _points(organisation: _Node, tag: str, with_volatility: bool) -> list[dict[str, float]] | None:
    nodes = organisation.children(tag)
    if not nodes:
        return None
    numbered: dict[int, dict[str, float]] = {}
    for node in nodes:
        number = node.integer("r")
        if number in numbered:
            raise node.error(f"point {number} is defined twice", "r")
        point = {"price": node.scan_multiple("priceScan"), "weight": node.number("weight")}
        if with_volatility:
            point["volatility"] = node.scan_multiple("volScan")
        numbered[number] = point
    if with_volatility and sorted(numbered) != list(range(1, RISK_ARRAY_LENGTH + 1)):
        raise organisation.error(f"the scan points must be numbered 1 to {RISK_ARRAY_LENGTH}", tag)
    return [numbered[r] for r in sorted(numbered)]


def _tiers(node: _Node, group: str) -> list[_Node]:
    holder = node.optional_child(group)
    return holder.children("tier") if holder is not None else []


def _period_range(tier: _Node) -> dict[str, str]:
    bounds: dict[str, str] = {}
    if tier.element.find("sPe") is not None:
        bounds["start_period"] = tier.period("sPe")
    if tier.element.find("ePe") is not None:
        bounds["end_period"] = tier.period("ePe")
    return bounds


def _side(leg: _Node) -> str:
    side = leg.text("rs").upper()
    if side not in ("A", "B"):
        raise leg.error(f"must be A or B, not {side!r}", "rs")
    return side


def _intra_spreads(definition: _Node, tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`dSpread` of a ccDef; period legs (`pLeg`) become one-month tiers numbered after the others."""
    spreads: list[dict[str, Any]] = []
    period_tiers: dict[str, int] = {}
    tier_legs = False
    for spread in definition.children("dSpread"):
        legs: list[dict[str, Any]] = []
        for leg in spread.children("tLeg"):
            tier_legs = True
            legs.append({"tier": leg.integer("tn"), "ratio": leg.number("i"), "side": _side(leg)})
        for leg in spread.children("pLeg"):
            period = leg.period("pe")
            if period not in period_tiers:
                period_tiers[period] = len(tiers) + len(period_tiers) + 1
            legs.append({"tier": period_tiers[period], "ratio": leg.number("i"), "side": _side(leg)})
        if tier_legs and period_tiers:
            raise spread.error("a combined commodity's spreads use tier legs (tLeg) or period legs (pLeg), not both")
        spreads.append({"priority": spread.integer("spread"), "rate": _rate(spread), "legs": legs})
    if period_tiers and tiers:
        raise definition.error("period legs (pLeg) with intraTiers: tiers would overlap", "intraTiers")
    tiers.extend({"tier": number, "start_period": period, "end_period": period}
                 for period, number in period_tiers.items())
    return spreads


def _account_ratios(definition: _Node, rate_definitions: dict[int, tuple[bool, str | None]]
                    ) -> dict[str, float] | None:
    ratios: dict[str, float] = {}
    for adjustment in definition.children("adjRate"):
        number = adjustment.integer("r")
        if number not in rate_definitions:
            raise adjustment.error(f"no pbRateDef with r = {number}", "r")
        maintenance, account_type = rate_definitions[number]
        if maintenance:
            continue
        if account_type not in ACCOUNT_TYPES:
            raise adjustment.error(f"pbRateDef {number} names no account type (S, H or M)", "r")
        ratios[ACCOUNT_TYPES[account_type]] = adjustment.number("val")
    return ratios or None


def _combined_commodity(definition: _Node, products: dict[tuple[str, str], dict[str, dict[str, Any]]],
                        rate_definitions: dict[int, tuple[bool, str | None]]) -> dict[str, Any]:
    arrays: dict[str, dict[str, Any]] = {}
    for link in definition.children("pfLink"):
        code = link.text("pfCode")
        exch = link.optional_text("exch")
        matches = [k for k in products if k[1] == code and (exch is None or k[0] == exch)]
        if not matches:
            raise link.error(f"no product {code!r} in the file's exchanges", "pfCode")
        for key in matches:
            arrays.update(products[key])
    intra_tiers = [{"tier": t.integer("tn"), **_period_range(t)} for t in _tiers(definition, "intraTiers")]
    scan_tiers = [_period_range(t) for t in _tiers(definition, "scanTiers")]
    som = [{**_period_range(t), "rate": _rate(t)} for t in _tiers(definition, "somTiers")]
    spreads = _intra_spreads(definition, intra_tiers)
    delivery = [{"period": s.period("pe"), "spread_rate": s.number("sprd"), "outright_rate": s.number("outr")}
                for s in definition.children("spotRate")]
    commodity: dict[str, Any] = {
        "instruments": list(arrays),
        "risk_arrays": {k: {f: v for f, v in a.items() if f != "period"} for k, a in arrays.items()},
        "intra_tiers": intra_tiers,
        "intra_spreads": spreads,
        "delivery": delivery,
        "short_option_minimum": som,
    }
    if scan_tiers:
        commodity["scan_tiers"] = scan_tiers
    method = definition.optional_text("wfprMeth")
    if method is not None:
        if method.upper() not in WFPR_METHODS:
            raise definition.error(f"must be one of {', '.join(WFPR_METHODS)}, not {method!r}", "wfprMeth")
        commodity["weighted_futures_price_risk"] = WFPR_METHODS[method.upper()]
    ratios = _account_ratios(definition, rate_definitions)
    if ratios is not None:
        commodity["account_class_ratios"] = ratios
    return commodity


def _inter_spreads(organisation: _Node) -> list[dict[str, Any]]:
    holder = organisation.optional_child("interSpreads")
    if holder is None:
        return []
    spreads: list[dict[str, Any]] = []
    for spread in holder.children("dSpread"):
        legs: list[dict[str, Any]] = []
        for leg in [*spread.children("pLeg"), *spread.children("tLeg")]:
            tier = leg.optional_text("tn")
            if tier is not None and tier != "0":
                raise leg.error("inter-commodity legs limited to a tier are not supported", "tn")
            legs.append({"combined_commodity": leg.text("cc"), "ratio": leg.number("i"), "side": _side(leg)})
        spreads.append({"priority": spread.integer("spread"), "rate": _rate(spread), "legs": legs})
    return spreads


def _root(path: Path) -> _Node:
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read the file ({error.strerror})", file=name) from None
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InputError("document type and entity declarations are not accepted in a SPAN file", file=name)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        line, column = error.position
        raise InputError(f"not well-formed XML (line {line}, column {column + 1})", file=name) from None
    if root.tag != "spanFile":
        raise InputError(f"the root element is {root.tag!r}, not 'spanFile'", file=name, field=root.tag)
    return _Node(root, "spanFile", name)


def read_span_xml(path: str | Path) -> dict[str, Any]:
    """The model's parameters (as a mapping, models/span_parameters.py shape) from a CME XML SPAN file.

    Risk arrays are keyed by contract key (module docstring); each combined commodity lists its contracts
    (`instruments`). InputError names the file and the element
    path of the first problem. Reference: CME XML SPAN risk-parameter file, format 4.00 (span.md).
    """
    root = _root(Path(path))
    file_format = root.text("fileFormat")
    if file_format != FILE_FORMAT:
        raise root.error(f"file format {file_format!r} is not read (only {FILE_FORMAT})", "fileFormat")
    organisation = root.child("pointInTime").child("clearingOrg")
    rate_definitions: dict[int, tuple[bool, str | None]] = {}
    for definition in organisation.children("pbRateDef"):
        rate_definitions[definition.integer("r")] = (definition.integer("isM") == 1,
                                                     definition.optional_text("acctType"))
    products = _products(organisation)
    commodities: dict[str, dict[str, Any]] = {}
    for definition in organisation.children("ccDef"):
        code = definition.text("cc")
        if code in commodities:
            raise definition.error(f"combined commodity {code!r} is defined twice", "cc")
        commodities[code] = _combined_commodity(definition, products, rate_definitions)
    if not commodities:
        raise organisation.error("required element is missing", "ccDef")
    result: dict[str, Any] = {"combined_commodities": commodities, "inter_spreads": _inter_spreads(organisation)}
    scan_points = _points(organisation, "pointDef", with_volatility=True)
    if scan_points is not None:
        result["scan_points"] = scan_points
    delta_points = _points(organisation, "deltaPointDef", with_volatility=False)
    if delta_points is not None:
        result["delta_points"] = delta_points
    return result
