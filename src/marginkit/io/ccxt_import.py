"""Import ccxt-style dumps of positions and balances into a book (spec/book-format.md).

ccxt's unified position structure (`fetch_positions`) maps onto the book format:

| ccxt                         | book                                                                  |
|------------------------------|-----------------------------------------------------------------------|
| `symbol`                     | an instrument (id = the symbol): type, underlying, quote, settlement,  |
|                              | inverse, expiry, strike, option type parsed from the unified symbol    |
| `contractSize`               | `contract_size` (base units for linear contracts and options, quote   |
|                              | currency for inverse futures and perpetuals, as in the book format)    |
| `contracts`, `side`          | `quantity` = ± contracts (+ long)                                      |
| `entryPrice`                 | `entry_price`                                                         |
| `markPrice`                  | `market.marks`; a delta-one mark also gives the underlying's index    |
| `leverage`                   | `leverage`                                                            |
| `marginMode`                 | the account's `mode` (cross / isolated)                               |
| `collateral` (isolated)      | `isolated_margin`                                                     |
| `hedged`, or both sides held | `position_mode: hedge` with `position_side` long / short             |
| `initialMargin`,             | the venue's own figures, kept beside the book (a YAML comment and a   |
| `maintenanceMargin`,         | side JSON file), not in it: the book format has no such fields        |
| `liquidationPrice`, `notional` |                                                                     |

Unified symbols: `BASE/QUOTE` (spot), `BASE/QUOTE:SETTLE` (perpetual; inverse when SETTLE is BASE),
`BASE/QUOTE:SETTLE-YYMMDD` (dated future), `BASE/QUOTE:SETTLE-YYMMDD-STRIKE-C|P` (option). A dated contract
expires at 08:00 UTC of its date (the crypto venues' settlement time) unless `expiry_hour` says otherwise.

Balances come from `fetch_balance`: the `total` per currency (or each currency's `total`) becomes the
account's `collateral`. Index prices (USD per unit): stablecoins at 1.0 and USD, the underlying of a
perpetual (else of a dated future) at its mark × its quote's index, an option's underlying at
`info.index_price` / `info.underlying_price` when no delta-one position gives it; `index` overrides all.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from marginkit.errors import InputError
from marginkit.io.book_file import parse_book, parse_utc
from marginkit.io.structured import load_structured

STABLECOINS = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDP", "USDE", "PYUSD"})
_SYMBOL = re.compile(
    r"^(?P<base>[^/:\-\s]+)/(?P<quote>[^/:\-\s]+)"
    r"(?::(?P<settle>[^/:\-\s]+)(?:-(?P<expiry>\d{6})(?:-(?P<strike>\d+(?:\.\d+)?)-(?P<kind>[CP]))?)?)?$"
)


@dataclass(frozen=True)
class Contract:
    """The terms a ccxt unified symbol states (contract size aside)."""

    type: str  # spot | perpetual | future | option
    underlying: str
    quote: str
    settlement: str
    inverse: bool
    expiry: datetime | None = None
    strike: float | None = None
    option_type: str | None = None


def parse_symbol(symbol: str, expiry_hour: int = 8) -> Contract:
    """The contract terms of a ccxt unified symbol; ValueError when it is not one."""
    match = _SYMBOL.match(symbol)
    if match is None:
        raise ValueError(f"{symbol!r} is not a ccxt unified symbol (e.g. BTC/USDT:USDT, BTC/USD:BTC-261226, "
                         "BTC/USD:BTC-261226-100000-C)")
    base, quote, settle = match["base"], match["quote"], match["settle"]
    if settle is None:
        return Contract("spot", base, quote, quote, False)
    inverse = settle == base
    if match["expiry"] is None:
        return Contract("perpetual", base, quote, settle, inverse)
    text = match["expiry"]
    try:
        day = datetime(2000 + int(text[:2]), int(text[2:4]), int(text[4:]), tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{symbol!r}: {text} is not a date YYMMDD") from None
    expiry = day + timedelta(hours=expiry_hour)
    if match["strike"] is None:
        return Contract("future", base, quote, settle, inverse, expiry)
    strike = float(match["strike"])
    if not strike > 0:
        raise ValueError(f"{symbol!r}: the strike must be positive")
    return Contract("option", base, quote, settle, inverse, expiry, strike, "call" if match["kind"] == "C" else "put")


@dataclass
class ImportResult:
    """A book document (validated by parse_book) and the venue's own figures per position."""

    book: dict[str, Any]
    venue_figures: list[dict[str, Any]] = field(default_factory=list)


def _number(value: Any, where: str, *, positive: bool = False, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError("must be a number", field=where)
    number = float(value)
    if not math.isfinite(number):
        raise InputError("must be finite", field=where)
    if positive and number <= 0:
        raise InputError("must be positive", field=where)
    return number


def _optional_number(entry: dict[str, Any], key: str, where: str) -> float | None:
    """A venue figure that may be absent or null; a present one must be a finite number."""
    return _number(entry.get(key), f"{where}.{key}", allow_none=True)


def _positions_list(data: Any) -> list[Any]:
    if isinstance(data, dict) and "positions" in data:
        data = data["positions"]
    if not isinstance(data, list):
        raise InputError("a ccxt positions dump is a list of positions (fetch_positions' result)")
    return data


def _balances(data: Any) -> dict[str, float]:
    """`total` per currency of a fetch_balance structure (or each currency's own `total`), nonzero only."""
    if not isinstance(data, dict):
        raise InputError("a ccxt balance dump is a mapping (fetch_balance's result)")
    totals: dict[str, float] = {}
    if "total" in data:
        if not isinstance(data["total"], dict):
            raise InputError("must be a mapping of currency to amount", field="total")
        for currency, amount in data["total"].items():
            value = _number(amount, f"total.{currency}", allow_none=True)
            if value:
                totals[str(currency)] = value
        return totals
    for currency, entry in data.items():
        if currency in ("info", "timestamp", "datetime", "free", "used", "debt"):
            continue
        if isinstance(entry, dict) and "total" in entry:
            value = _number(entry["total"], f"{currency}.total", allow_none=True)
            if value:
                totals[str(currency)] = value
    return totals


def _timestamp(entry: dict[str, Any]) -> datetime | None:
    stamp = entry.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and math.isfinite(stamp) and stamp > 0:
        return datetime.fromtimestamp(stamp / 1000.0, tz=UTC).replace(microsecond=0)
    text = entry.get("datetime")
    if isinstance(text, str):
        try:
            return parse_utc(text).replace(microsecond=0)
        except ValueError:
            return None
    return None


def _time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _info_price(info: Any) -> float | None:
    if not isinstance(info, dict):
        return None
    for key in ("index_price", "indexPrice", "underlying_price", "underlyingPrice"):
        value = info.get(key)
        try:
            number = float(value) if value is not None and not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is not None and math.isfinite(number) and number > 0:
            return number
    return None


@dataclass
class _Leg:
    where: str
    symbol: str
    contract: Contract
    contract_size: float
    quantity: float
    side: str  # long | short
    entry_price: float | None
    mark: float | None
    leverage: float | None
    isolated: bool
    hedged: bool
    collateral: float | None
    info_price: float | None
    venue: dict[str, Any]


def _leg(k: int, entry: Any, expiry_hour: int) -> _Leg | None:
    where = f"[{k}]"
    if not isinstance(entry, dict):
        raise InputError("a position is a mapping (ccxt's position structure)", field=where)
    symbol = entry.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise InputError("must be a ccxt unified symbol such as BTC/USDT:USDT", field=f"{where}.symbol")
    try:
        contract = parse_symbol(symbol, expiry_hour)
    except ValueError as error:
        raise InputError(str(error), field=f"{where}.symbol") from None
    contracts = _number(entry.get("contracts"), f"{where}.contracts")
    assert contracts is not None
    if contracts == 0:
        return None
    side = entry.get("side")
    if side is None:
        side = "long" if contracts > 0 else "short"
    if side not in ("long", "short"):
        raise InputError("must be long or short", field=f"{where}.side")
    if contracts < 0 and side == "long":
        raise InputError("a long position cannot have negative contracts", field=f"{where}.contracts")
    quantity = abs(contracts) if side == "long" else -abs(contracts)
    size = _number(entry.get("contractSize", 1.0 if contract.type == "spot" else None), f"{where}.contractSize",
                   positive=True)
    assert size is not None
    entry_price = _number(entry.get("entryPrice"), f"{where}.entryPrice")
    assert entry_price is not None
    if entry_price < 0 or (entry_price == 0 and contract.type != "option"):
        raise InputError("must be positive (only an option's premium may be 0)", field=f"{where}.entryPrice")
    mark = _optional_number(entry, "markPrice", where)
    if mark is not None and (mark < 0 or (mark == 0 and contract.type != "option")):
        raise InputError("must be positive (only an option's premium may be 0)", field=f"{where}.markPrice")
    if mark is None and contract.type == "option":
        raise InputError("an option needs its mark price (the premium)", field=f"{where}.markPrice")
    leverage = _optional_number(entry, "leverage", where)
    if leverage is not None and leverage <= 0:
        leverage = None
    mode = entry.get("marginMode", entry.get("marginType"))
    if mode is not None and mode not in ("cross", "isolated"):
        raise InputError("must be cross or isolated", field=f"{where}.marginMode")
    hedged = entry.get("hedged")
    if hedged is not None and not isinstance(hedged, bool):
        raise InputError("must be true or false", field=f"{where}.hedged")
    collateral = _optional_number(entry, "collateral", where)
    venue = {
        "source_index": k,
        "initial_margin": _optional_number(entry, "initialMargin", where),
        "maintenance_margin": _optional_number(entry, "maintenanceMargin", where),
        "liquidation_price": _optional_number(entry, "liquidationPrice", where),
        "notional": _optional_number(entry, "notional", where),
        "collateral": collateral,
        "margin_mode": mode,
        "margin_currency": contract.settlement,
    }
    return _Leg(where, symbol, contract, size, quantity, side, entry_price, mark, leverage, mode == "isolated",
                bool(hedged), collateral, _info_price(entry.get("info")), venue)


def _instrument(symbol: str, contract: Contract, size: float) -> dict[str, Any]:
    record: dict[str, Any] = {"id": symbol, "type": contract.type, "underlying": contract.underlying,
                              "quote": contract.quote, "settlement": contract.settlement,
                              "inverse": contract.inverse, "contract_size": size}
    if contract.expiry is not None:
        record["expiry"] = _time_text(contract.expiry)
    if contract.type == "option":
        record["option_type"] = contract.option_type
        record["strike"] = contract.strike
    return record


def _index_prices(legs: list[_Leg], given: dict[str, float], needed: set[str]) -> dict[str, float]:
    """USD per unit of every needed asset: given, stablecoins 1, perpetual then future marks, option info."""
    index: dict[str, float] = {a: 1.0 for a in needed if a in STABLECOINS and a != "USD"}
    found: dict[str, tuple[int, float, str]] = {}  # asset -> (rank, price in quote, quote)
    for leg in legs:
        rank = {"perpetual": 0, "spot": 0, "future": 1, "option": 2}[leg.contract.type]
        price = leg.info_price if leg.contract.type == "option" else leg.mark
        held = found.get(leg.contract.underlying)
        if price is not None and price > 0 and (held is None or rank < held[0]):
            found[leg.contract.underlying] = (rank, price, leg.contract.quote)
    for asset, (_, price, quote) in found.items():
        quote_usd = given.get(quote, 1.0 if quote in STABLECOINS else None)
        if quote_usd is None:
            quote_found = found.get(quote)
            quote_usd = quote_found[1] if quote_found is not None and quote_found[2] in STABLECOINS else None
        if quote_usd is not None:
            index[asset] = price * quote_usd
    index.update({a: p for a, p in given.items() if a != "USD"})
    return {a: index[a] for a in sorted(index)}


def ccxt_book(positions: Any, balances: Any | None = None, *, as_of: datetime | None = None,
              account: str = "ccxt", index: dict[str, float] | None = None, expiry_hour: int = 8,
              positions_name: str = "positions", balances_name: str = "balances") -> ImportResult:
    """A book document from ccxt dumps (module docstring); InputError names the file and the field."""
    entries = _positions_list(positions) if not isinstance(positions, list) else positions
    legs = [leg for k, entry in enumerate(entries) if (leg := _leg(k, entry, expiry_hour)) is not None]
    totals: dict[str, float] = {}
    if balances is not None:
        try:
            totals = _balances(balances)
        except InputError as error:
            raise error.in_file(balances_name) from None

    moment = as_of
    if moment is None:
        stamps = [s for e in entries if isinstance(e, dict) and (s := _timestamp(e)) is not None]
        if isinstance(balances, dict) and (stamp := _timestamp(balances)) is not None:
            stamps.append(stamp)
        moment = max(stamps) if stamps else datetime.now(tz=UTC).replace(microsecond=0)

    instruments: dict[str, dict[str, Any]] = {}
    marks: dict[str, float] = {}
    for leg in legs:
        record = _instrument(leg.symbol, leg.contract, leg.contract_size)
        if leg.symbol in instruments and instruments[leg.symbol] != record:
            raise InputError(f"{leg.symbol} appears with another contractSize", field=f"{leg.where}.contractSize")
        if leg.contract.expiry is not None and leg.contract.expiry < moment:
            raise InputError(f"expired at {_time_text(leg.contract.expiry)}, before as_of {_time_text(moment)}",
                             field=f"{leg.where}.symbol")
        instruments[leg.symbol] = record
        if leg.mark is not None:
            marks[leg.symbol] = leg.mark

    needed = {a for leg in legs for a in (leg.contract.underlying, leg.contract.quote, leg.contract.settlement)}
    needed |= set(totals)
    prices = _index_prices(legs, dict(index or {}), needed)
    for leg in legs:
        for role, asset in (("underlying", leg.contract.underlying), ("quote", leg.contract.quote),
                            ("settlement", leg.contract.settlement)):
            if asset != "USD" and asset not in prices:
                raise InputError(f"no index price for {asset} (the {role} of {leg.symbol}): no perpetual or future "
                                 f"mark gives it; give --index {asset}=PRICE", field=f"{leg.where}.markPrice")
    for currency in totals:
        if currency != "USD" and currency not in prices:
            raise InputError(f"no index price for {currency}: give --index {currency}=PRICE",
                             field=f"total.{currency}", file=balances_name)

    hedge = any(leg.hedged for leg in legs) or len({(leg.symbol, leg.isolated) for leg in legs}) < len(legs)
    accounts = _accounts(legs, totals, account, hedge)
    book: dict[str, Any] = {
        "as_of": _time_text(moment),
        "instruments": list(instruments.values()),
        "market": {"index": prices, **({"marks": marks} if marks else {})},
        "accounts": accounts,
    }
    venue = [{"account": a, "instrument": leg.symbol, "position_side": s, "quantity": leg.quantity, **leg.venue}
             for leg, a, s in _placements(legs, account, hedge)]
    try:
        parse_book(book)
    except InputError as error:
        raise InputError(f"the imported book does not validate: {error}", file=positions_name) from None
    return ImportResult(book, venue)


def _group_ids(legs: list[_Leg], account: str) -> dict[tuple[str, str], str]:
    """Account id per (mode, settlement currency) held: cross first, then isolated, in order of appearance.

    Venues keep a wallet per settlement currency (USDⓈ-M and COIN-M, Deribit's BTC and USDC), so contracts
    settled in different currencies go to different accounts (suffix `-CURRENCY`); isolated positions go to an
    account of their own (suffix `-isolated`) when cross positions are held too.
    """
    modes = {"isolated" if leg.isolated else "cross" for leg in legs}
    settlements = {leg.contract.settlement for leg in legs}
    ids: dict[tuple[str, str], str] = {}
    for leg in sorted(legs, key=lambda leg: leg.isolated):  # cross accounts first, each in order of appearance
        mode = "isolated" if leg.isolated else "cross"
        name = account + ("-isolated" if mode == "isolated" and len(modes) > 1 else "")
        ids.setdefault((mode, leg.contract.settlement),
                       name + (f"-{leg.contract.settlement}" if len(settlements) > 1 else ""))
    return ids


def _placements(legs: list[_Leg], account: str, hedge: bool) -> list[tuple[_Leg, str, str]]:
    ids = _group_ids(legs, account)
    return [(leg, ids["isolated" if leg.isolated else "cross", leg.contract.settlement],
             leg.side if hedge else "both") for leg in legs]


def _accounts(legs: list[_Leg], totals: dict[str, float], account: str, hedge: bool) -> list[dict[str, Any]]:
    """The book's accounts (see `_group_ids`) with the balances shared out.

    Isolated accounts hold their positions' isolated collateral; the rest of each balance goes to the cross
    account settled in that currency, else to the first cross account. Without cross positions the isolated
    account of a currency holds its whole balance (at least the isolated collateral).
    """
    ids = _group_ids(legs, account) or {("cross", ""): account}
    assigned: dict[str, dict[str, dict[str, float]]] = {}
    pools: dict[str, dict[str, float]] = {name: {} for name in ids.values()}
    for leg in legs:
        if leg.isolated and leg.collateral is not None and leg.collateral > 0:
            name = ids["isolated", leg.contract.settlement]
            if leg.symbol in assigned.setdefault(name, {}):
                raise InputError("isolated margin of both legs of one instrument cannot be told apart",
                                 field=f"{leg.where}.collateral")
            currency = leg.contract.settlement
            assigned[name][leg.symbol] = {currency: leg.collateral}
            pools[name][currency] = pools[name].get(currency, 0.0) + leg.collateral
    cross = [(settlement, name) for (mode, settlement), name in ids.items() if mode == "cross"]
    for currency, total in totals.items():
        isolated_held = sum(p.get(currency, 0.0) for p in pools.values())  # only isolated collateral so far
        if cross:
            target = dict(cross).get(currency, cross[0][1])
            pools[target][currency] = pools[target].get(currency, 0.0) + total - isolated_held
        else:
            target = ids.get(("isolated", currency), next(iter(ids.values())))
            pools[target][currency] = max(pools[target].get(currency, 0.0), total)
    result: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for (mode, _), name in ids.items():
        if any(entry["id"] == name for entry in result):
            continue
        positions: list[dict[str, Any]] = []
        for leg, at, side in _placements(legs, account, hedge):
            if at != name:
                continue
            if (name, leg.symbol, side) in seen:
                raise InputError(f"{leg.symbol} is held twice on the {side} side", field=f"{leg.where}.symbol")
            seen.add((name, leg.symbol, side))
            position: dict[str, Any] = {"instrument": leg.symbol, "quantity": leg.quantity,
                                        "entry_price": leg.entry_price}
            if leg.leverage is not None:
                position["leverage"] = leg.leverage
            if hedge:
                position["position_side"] = side
            positions.append(position)
        entry: dict[str, Any] = {"id": name, "mode": mode, "position_mode": "hedge" if hedge else "one-way",
                                 "collateral": {c: v for c, v in sorted(pools[name].items()) if v != 0},
                                 "positions": positions}
        if assigned.get(name):
            entry["isolated_margin"] = assigned[name]
        result.append(entry)
    return result


def load_ccxt(positions_path: str | Path, balances_path: str | Path | None = None, **options: Any) -> ImportResult:
    """Read a ccxt positions dump (and balances) and import it; errors name the file and the field."""
    positions = load_structured(positions_path)
    balances = load_structured(balances_path) if balances_path is not None else None
    try:
        return ccxt_book(positions, balances, positions_name=str(positions_path),
                         balances_name=str(balances_path), **options)
    except InputError as error:
        raise error.in_file(str(positions_path)) from None




def venue_comment(result: ImportResult, source: str) -> str:
    """A YAML comment block: the venue's own figures per position, for comparison with `marginkit margin`."""
    lines = [f"# Imported from ccxt dump {source} by `marginkit import ccxt`.",
             "# The venue's own figures (not part of the book; margin currency = the contract's settlement):",
             "#   account | instrument | side | quantity | initial margin | maintenance margin | liquidation price"]
    for row in result.venue_figures:
        cells = [row["account"], row["instrument"], row["position_side"], f"{row['quantity']:g}",
                 *("—" if row[k] is None else f"{row[k]:g}"
                   for k in ("initial_margin", "maintenance_margin", "liquidation_price"))]
        lines.append("#   " + " | ".join(cells))
    return "\n".join(lines) + "\n"


def render_book(result: ImportResult, source: str, json_format: bool) -> str:
    """The book as YAML (with the venue's figures as a leading comment) or as JSON."""
    if json_format:
        return json.dumps(result.book, indent=2) + "\n"
    return venue_comment(result, source) + yaml.safe_dump(result.book, sort_keys=False, allow_unicode=True)


def venue_document(result: ImportResult, source: str) -> dict[str, Any]:
    """The side JSON beside an imported book: the venue's figures per position."""
    return {"source": source, "as_of": result.book["as_of"], "positions": result.venue_figures}


__all__ = ["STABLECOINS", "Contract", "ImportResult", "ccxt_book", "load_ccxt", "parse_symbol", "render_book",
           "venue_comment", "venue_document"]
