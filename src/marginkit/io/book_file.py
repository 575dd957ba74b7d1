"""The book file (spec/book-format.md): JSON or YAML, validated with pydantic, into domain objects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from marginkit.domain import (
    Account,
    BookSpec,
    Deposit,
    Instrument,
    InstrumentType,
    MarginMode,
    MarketSnapshot,
    OptionType,
    Position,
    PositionMode,
    PositionSide,
    SviSlice,
)
from marginkit.errors import InputError
from marginkit.io.structured import load_structured
from marginkit.io.validation_errors import from_validation_error


def parse_utc(value: Any) -> datetime:
    """An ISO 8601 time with a zone (e.g. '2026-11-24T08:00:00Z'), returned in UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise ValueError("must be an ISO 8601 time such as 2026-11-24T08:00:00Z") from None
    else:
        raise ValueError("must be an ISO 8601 time such as 2026-11-24T08:00:00Z")
    if moment.tzinfo is None:
        raise ValueError("must state its time zone (UTC: a trailing Z)")
    return moment.astimezone(UTC)


UtcTime = Annotated[datetime, BeforeValidator(parse_utc)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Name = Annotated[str, Field(strict=True, min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstrumentRecord(_Strict):
    id: Name
    type: Literal["spot", "future", "perpetual", "option"]
    underlying: Name
    quote: Name
    settlement: Name
    inverse: bool = Field(strict=True)
    contract_size: Positive
    tick_size: Positive | None = None
    expiry: UtcTime | None = None
    option_type: Literal["call", "put"] | None = None
    strike: Positive | None = None
    index_class: Literal["broad", "narrow", "equity"] | None = None
    leverage_factor: Positive = 1.0


class SviRecord(_Strict):
    a: Finite
    b: NonNegative
    rho: Annotated[float, Field(strict=True, allow_inf_nan=False, gt=-1, lt=1)]
    m: Finite
    sigma: Positive


class MarketRecord(_Strict):
    index: dict[Name, Positive]
    marks: dict[Name, NonNegative] = {}
    forwards: dict[Name, Positive] = {}
    vols: dict[Name, Positive] = {}
    surfaces: dict[Name, dict[Name, SviRecord]] = {}
    rates: dict[Name, Finite] = {}
    open_interest: dict[Name, NonNegative] = {}
    chain_status: dict[Name, Literal["active", "halted"]] = {}  # docs/collateral.md: absent = active


class PositionRecord(_Strict):
    instrument: Name
    quantity: Finite
    entry_price: NonNegative | None = None
    leverage: Positive | None = None
    position_side: Literal["both", "long", "short"] | None = None


class DepositRecord(_Strict):
    asset: Name
    chain: Name
    amount: Positive
    time: UtcTime


class AccountRecord(_Strict):
    id: Name
    mode: Literal["isolated", "cross", "portfolio"]
    position_mode: Literal["one-way", "hedge"] = "one-way"
    account_class: Literal["speculator", "hedger", "member"] | None = None
    collateral: dict[Name, Finite] = {}
    isolated_margin: dict[Name, dict[Name, NonNegative]] = {}
    positions: list[PositionRecord] = []
    credit_tier: Name | None = None  # docs/collateral.md: a collateral profile's credit tier
    collateral_chains: dict[Name, dict[Name, NonNegative]] = {}  # {asset: {chain: amount}}, part of `collateral`
    deposits: list[DepositRecord] = []  # recent deposits, part of their chain's balance


class BookRecord(_Strict):
    as_of: UtcTime
    instruments: list[InstrumentRecord]
    market: MarketRecord
    accounts: list[AccountRecord]


def _check_instruments(book: BookRecord) -> dict[str, InstrumentRecord]:
    by_id: dict[str, InstrumentRecord] = {}
    for i, instrument in enumerate(book.instruments):
        where = f"instruments[{i}]"
        if instrument.id in by_id:
            raise InputError(f"duplicate instrument id {instrument.id!r}", field=f"{where}.id")
        by_id[instrument.id] = instrument
        needs_expiry = instrument.type in ("future", "option")
        if needs_expiry and instrument.expiry is None:
            raise InputError(f"a {instrument.type} needs an expiry", field=f"{where}.expiry")
        if not needs_expiry and instrument.expiry is not None:
            raise InputError(f"a {instrument.type} has no expiry", field=f"{where}.expiry")
        if instrument.expiry is not None and instrument.expiry < book.as_of:
            raise InputError(
                f"expiry {instrument.expiry:%Y-%m-%dT%H:%M:%SZ} is before as_of "
                f"{book.as_of:%Y-%m-%dT%H:%M:%SZ}",
                field=f"{where}.expiry",
            )
        if instrument.type == "option":
            if instrument.option_type is None:
                raise InputError("an option needs option_type (call | put)", field=f"{where}.option_type")
            if instrument.strike is None:
                raise InputError("an option needs a strike", field=f"{where}.strike")
        else:
            if instrument.option_type is not None:
                raise InputError(f"a {instrument.type} has no option_type", field=f"{where}.option_type")
            if instrument.strike is not None:
                raise InputError(f"a {instrument.type} has no strike", field=f"{where}.strike")
        for key in ("underlying", "quote", "settlement"):
            asset = getattr(instrument, key)
            if asset != "USD" and asset not in book.market.index:
                raise InputError(
                    f"{asset!r} has no index price in market.index", field=f"{where}.{key}"
                )
    return by_id


def _parse_forward_key(key: str) -> tuple[str, datetime]:
    underlying, at, expiry = key.partition("@")
    if not at or not underlying:
        raise ValueError("must be UNDERLYING@EXPIRY, e.g. BTC@2026-12-26T08:00:00Z")
    return underlying, parse_utc(expiry)


def _market(book: BookRecord, instruments: dict[str, InstrumentRecord]) -> MarketSnapshot:
    market = book.market
    for section in ("marks", "vols", "open_interest"):
        for key in getattr(market, section):
            if key not in instruments:
                raise InputError(f"unknown instrument {key!r}", field=f"market.{section}.{key}")
    for key, value in market.marks.items():
        if value <= 0 and instruments[key].type != "option":
            raise InputError("must be positive (only an option's premium may be 0)", field=f"market.marks.{key}")
    for key in market.vols:
        if instruments[key].type != "option":
            raise InputError("a vol is given for an instrument that is not an option", field=f"market.vols.{key}")
    forwards: dict[tuple[str, datetime], float] = {}
    for key, value in market.forwards.items():
        try:
            forwards[_parse_forward_key(key)] = value
        except ValueError as error:
            raise InputError(str(error), field=f"market.forwards.{key}") from None
    surfaces: dict[str, dict[datetime, SviSlice]] = {}
    for underlying, smiles in market.surfaces.items():
        surfaces[underlying] = {}
        for expiry_text, svi in smiles.items():
            try:
                expiry = parse_utc(expiry_text)
            except ValueError as error:
                raise InputError(str(error), field=f"market.surfaces.{underlying}.{expiry_text}") from None
            surfaces[underlying][expiry] = SviSlice(svi.a, svi.b, svi.rho, svi.m, svi.sigma)
    return MarketSnapshot(
        index=market.index,
        marks=market.marks,
        forwards=forwards,
        vols=market.vols,
        surfaces=surfaces,
        rates=market.rates,
        open_interest=market.open_interest,
        chain_status=market.chain_status,
    )


def _account(index: int, record: AccountRecord, book: BookRecord,
             instruments: dict[str, InstrumentRecord], seen_ids: set[str]) -> Account:
    where = f"accounts[{index}]"
    if record.id in seen_ids:
        raise InputError(f"duplicate account id {record.id!r}", field=f"{where}.id")
    seen_ids.add(record.id)
    for asset in record.collateral:
        if asset != "USD" and asset not in book.market.index:
            raise InputError(f"{asset!r} has no index price in market.index", field=f"{where}.collateral.{asset}")
    hedge = record.position_mode == "hedge"
    positions: list[Position] = []
    legs: set[tuple[str, str]] = set()
    for j, entry in enumerate(record.positions):
        at = f"{where}.positions[{j}]"
        if entry.instrument not in instruments:
            raise InputError(f"unknown instrument {entry.instrument!r}", field=f"{at}.instrument")
        side = entry.position_side or ("long" if hedge and entry.quantity > 0 else
                                       "short" if hedge and entry.quantity < 0 else "both")
        if hedge and side == "both":
            raise InputError("a hedge-mode position is a long or a short leg", field=f"{at}.position_side")
        if not hedge and side != "both":
            raise InputError("a one-way account's positions have position_side both", field=f"{at}.position_side")
        if side == "long" and entry.quantity < 0:
            raise InputError("a long leg cannot have a negative quantity", field=f"{at}.quantity")
        if side == "short" and entry.quantity > 0:
            raise InputError("a short leg cannot have a positive quantity", field=f"{at}.quantity")
        if (entry.instrument, side) in legs:
            raise InputError(
                f"instrument {entry.instrument!r} appears twice for position side {side}", field=f"{at}.instrument"
            )
        legs.add((entry.instrument, side))
        if entry.quantity != 0 and entry.entry_price is None:
            raise InputError("required when quantity is not 0", field=f"{at}.entry_price")
        if entry.entry_price == 0 and instruments[entry.instrument].type != "option":
            raise InputError("must be positive (only an option's premium may be 0)", field=f"{at}.entry_price")
        positions.append(
            Position(entry.instrument, entry.quantity, entry.entry_price, entry.leverage, PositionSide(side))
        )
    held = {p.instrument for p in positions}
    for instrument_id, assets in record.isolated_margin.items():
        at = f"{where}.isolated_margin.{instrument_id}"
        if record.mode != "isolated":
            raise InputError("isolated_margin is for isolated accounts only", field=at)
        if instrument_id not in held:
            raise InputError(f"no position in {instrument_id!r}", field=at)
        if hedge and sum(1 for p in positions if p.instrument == instrument_id) > 1:
            raise InputError("ambiguous: the account holds a long and a short leg of it", field=at)
        for asset in assets:
            if asset not in record.collateral:
                raise InputError(f"{asset!r} is not in the account's collateral", field=f"{at}.{asset}")
    for asset, balance in record.collateral.items():
        assigned = sum(assets.get(asset, 0.0) for assets in record.isolated_margin.values())
        if assigned > max(balance, 0.0) * (1 + 1e-12):
            raise InputError(
                f"isolated margin assigned ({assigned:g}) exceeds the balance ({balance:g})",
                field=f"{where}.isolated_margin",
            )
    deposits = _check_chains(where, record, book)
    return Account(
        id=record.id,
        mode=MarginMode(record.mode),
        position_mode=PositionMode(record.position_mode),
        account_class=record.account_class,
        collateral=record.collateral,
        isolated_margin=record.isolated_margin,
        positions=tuple(positions),
        credit_tier=record.credit_tier,
        collateral_chains=record.collateral_chains,
        deposits=deposits,
    )


def _check_chains(where: str, record: AccountRecord, book: BookRecord) -> tuple[Deposit, ...]:
    """Chain balances are part of `collateral`; deposits are part of their chain's balance, not after as_of."""
    for asset, chains in record.collateral_chains.items():
        at = f"{where}.collateral_chains.{asset}"
        if asset not in record.collateral:
            raise InputError(f"{asset!r} is not in the account's collateral", field=at)
        on_chains = sum(chains.values())
        if on_chains > max(record.collateral[asset], 0.0) * (1 + 1e-12):
            raise InputError(f"balances on chains ({on_chains:g}) exceed the balance ({record.collateral[asset]:g})",
                             field=at)
    deposited: dict[tuple[str, str], float] = {}
    deposits: list[Deposit] = []
    for k, entry in enumerate(record.deposits):
        at = f"{where}.deposits[{k}]"
        if entry.chain not in record.collateral_chains.get(entry.asset, {}):
            raise InputError(f"no {entry.asset} balance on chain {entry.chain!r} in collateral_chains",
                             field=f"{at}.chain")
        if entry.time > book.as_of:
            raise InputError("a deposit cannot be after as_of", field=f"{at}.time")
        key = (entry.asset, entry.chain)
        deposited[key] = deposited.get(key, 0.0) + entry.amount
        if deposited[key] > record.collateral_chains[entry.asset][entry.chain] * (1 + 1e-12):
            raise InputError(f"deposits ({deposited[key]:g}) exceed the {entry.asset} balance on {entry.chain}",
                             field=f"{at}.amount")
        deposits.append(Deposit(entry.asset, entry.chain, entry.amount, entry.time))
    return tuple(deposits)


def _instrument(record: InstrumentRecord) -> Instrument:
    return Instrument(
        id=record.id,
        type=InstrumentType(record.type),
        underlying=record.underlying,
        quote=record.quote,
        settlement=record.settlement,
        inverse=record.inverse,
        contract_size=record.contract_size,
        tick_size=record.tick_size,
        expiry=record.expiry,
        option_type=OptionType(record.option_type) if record.option_type else None,
        strike=record.strike,
        index_class=record.index_class,
        leverage_factor=record.leverage_factor,
    )


def parse_book(data: Any) -> BookSpec:
    """Validate parsed book data (dicts and lists) into a BookSpec; InputError names the field."""
    if not isinstance(data, dict):
        raise InputError("a book is a mapping with as_of, instruments, market and accounts")
    try:
        record = BookRecord.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error) from None
    instruments = _check_instruments(record)
    market = _market(record, instruments)
    seen: set[str] = set()
    accounts = tuple(_account(i, a, record, instruments, seen) for i, a in enumerate(record.accounts))
    return BookSpec(
        as_of=record.as_of,
        instruments=tuple(_instrument(r) for r in record.instruments),
        market=market,
        accounts=accounts,
    )


def load_book(path: str | Path) -> BookSpec:
    """Read and validate a book file (.json, .yaml, .yml); errors name the file and the field."""
    data = load_structured(path)
    try:
        return parse_book(data)
    except InputError as error:
        raise error.in_file(str(path)) from None
