"""The ledger's domain: operations, their postings and exact amounts (pure: no database).

Amounts are `Decimal` at the API and integer minor units of each asset in the journal (an asset with
`decimals = 8` stores 1.5 as 150000000), so sums are exact in SQL on every backend (DESIGN.md,
principle 5). An operation turns into balanced postings: for every asset, its postings sum to zero.
System accounts start with `@`: `@external` (the world outside: deposits come from it, withdrawals go
to it), `@fees`, `@funding`, `@settlement` (realised P&L and variation margin counterparty),
`@insurance` (the insurance fund). Positions are journalled like assets: an instrument's postings are
signed contract quantities, so a trade's position legs also sum to zero.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Literal

from marginkit.errors import InputError

EXTERNAL = "@external"
FEES = "@fees"
FUNDING = "@funding"
SETTLEMENT = "@settlement"
INSURANCE = "@insurance"
SYSTEM_ACCOUNTS = (EXTERNAL, FEES, FUNDING, SETTLEMENT, INSURANCE)
MAX_MINOR = 2**63 - 1  # a BIGINT on every backend
MAX_DECIMALS = 18
ACCOUNT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")

AssetKind = Literal["asset", "instrument"]
OPERATION_KINDS = (
    "deposit", "withdraw", "transfer", "trade", "fee", "funding", "realised_pnl", "variation_margin",
    "liquidation_transfer", "insurance_fund",
)
# The shipped assets: name -> decimals (a venue adds its own with `Ledger.add_asset`).
DEFAULT_ASSETS: Mapping[str, int] = {"USD": 2, "USDT": 6, "USDC": 6, "BTC": 8, "ETH": 8, "SOL": 8}


class LedgerRefusal(InputError):
    """An operation the ledger refuses (bad amount, unknown asset, reused key, margin): nothing is written."""


class IdempotencyConflict(LedgerRefusal):
    """A key already used by an operation with other content."""


class WithdrawalRefused(LedgerRefusal):
    """A withdrawal or transfer out that would leave the account short of its margin or its balance."""


@dataclass(frozen=True, slots=True)
class Asset:
    """A journalled unit: a collateral asset or an instrument's contracts, with its decimal places."""

    name: str
    decimals: int
    kind: AssetKind = "asset"


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg: `amount` minor units of `asset` into `account` (negative: out of it)."""

    account: str
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class Operation:
    """A request to the ledger: its kind, idempotency key and fields (amounts as exact Decimal strings)."""

    kind: str
    key: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The canonical content (kind and fields) that is stored, hashed and replayed."""
        return {"op": self.kind, **{k: _canonical(v) for k, v in sorted(self.fields.items())}}

    def content_hash(self) -> str:
        """SHA-256 of the canonical body: the same key with another hash is a conflict."""
        return content_hash(self.body())


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """An account as a margin check sees it: collateral balances and positions after the proposed debit."""

    account: str
    collateral: Mapping[str, Decimal]
    positions: Mapping[str, Decimal]


MarginCheck = Callable[[AccountSnapshot], bool]


def content_hash(body: Mapping[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    return value


def format_decimal(value: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros ('1.5', '100', '-0.00000001')."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def parse_decimal(value: Any, field_name: str) -> Decimal:
    """An exact decimal from a string, int or Decimal; floats, booleans, NaN and infinities are refused."""
    if isinstance(value, bool | float):
        raise LedgerRefusal("must be a decimal string or an integer (not a binary float)", field=field_name)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text):
            raise LedgerRefusal(f"{value!r} is not a finite decimal number", field=field_name)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise LedgerRefusal(f"{value!r} is not a decimal number", field=field_name) from None
    else:
        raise LedgerRefusal("must be a decimal number", field=field_name)
    if not number.is_finite():
        raise LedgerRefusal("must be finite", field=field_name)
    if number != 0 and not -40 <= number.adjusted() <= 40:
        raise LedgerRefusal(f"{value!r} is out of the ledger's range (10^-40 to 10^40)", field=field_name)
    return number


def to_minor(amount: Decimal, asset: Asset, field_name: str) -> int:
    """`amount` in integer minor units of `asset`; more decimals than the asset has is refused."""
    scaled = amount.scaleb(asset.decimals)
    if scaled != scaled.to_integral_value():
        raise LedgerRefusal(f"{format_decimal(amount)} has more than {asset.decimals} decimals for {asset.name}",
                            field=field_name)
    minor = int(scaled)
    if minor == 0 and amount != 0:  # an amount so small that scaling underflowed to zero
        raise LedgerRefusal(f"{amount} has more than {asset.decimals} decimals for {asset.name}", field=field_name)
    if abs(minor) > MAX_MINOR:
        raise LedgerRefusal(f"{format_decimal(amount)} {asset.name} is too large for the ledger", field=field_name)
    return minor


def from_minor(minor: int, decimals: int) -> Decimal:
    """Minor units back to an exact Decimal."""
    return Decimal(minor).scaleb(-decimals)


def round_requirement(value: float | Decimal, asset: Asset) -> Decimal:
    """A requirement (what is owed) at the ledger boundary: rounded up to the asset's decimals."""
    return Decimal(value).quantize(Decimal(1).scaleb(-asset.decimals), rounding=ROUND_CEILING)


def round_credit(value: float | Decimal, asset: Asset) -> Decimal:
    """A credit (what is paid out) at the ledger boundary: rounded down to the asset's decimals."""
    return Decimal(value).quantize(Decimal(1).scaleb(-asset.decimals), rounding=ROUND_FLOOR)


def check_account(name: Any, field_name: str, *, system_allowed: bool = False) -> str:
    """A user account id (letters, digits, `_ . : -`, at most 64); `@` names are the ledger's own."""
    if not isinstance(name, str):
        raise LedgerRefusal("must be an account id (text)", field=field_name)
    if system_allowed and name in SYSTEM_ACCOUNTS:
        return name
    if not ACCOUNT_PATTERN.match(name):
        raise LedgerRefusal(f"{name!r} is not a valid account id (letters, digits, _ . : -; at most 64)",
                            field=field_name)
    return name


def check_key(key: Any, field_name: str = "key") -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise LedgerRefusal("must be 1 to 128 printable characters without spaces", field=field_name)
    return key


def _positive(fields: Mapping[str, Any], name: str) -> Decimal:
    value = parse_decimal(fields.get(name), name)
    if value <= 0:
        raise LedgerRefusal("must be positive", field=name)
    return value


def _nonzero(fields: Mapping[str, Any], name: str) -> Decimal:
    value = parse_decimal(fields.get(name), name)
    if value == 0:
        raise LedgerRefusal("must not be zero", field=name)
    return value


_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required fields, optional fields)
    "deposit": (("account", "asset", "amount"), ()),
    "withdraw": (("account", "asset", "amount"), ()),
    "transfer": (("from", "to", "asset", "amount"), ()),
    "trade": (("buyer", "seller", "instrument", "quantity", "price"), ("cash_asset", "cash_amount")),
    "fee": (("account", "asset", "amount"), ()),
    "funding": (("account", "asset", "amount"), ("instrument",)),
    "realised_pnl": (("account", "asset", "amount"), ("instrument",)),
    "variation_margin": (("asset", "payments"), ()),
    "liquidation_transfer": (("from", "to", "asset", "amount"), ()),
    "insurance_fund": (("account", "asset", "amount"), ()),
}


def make_operation(kind: Any, key: Any, fields: Mapping[str, Any]) -> Operation:
    """Validate an operation's shape and amounts (not yet its assets) into canonical form."""
    if kind not in _FIELDS:
        raise LedgerRefusal(f"unknown operation {kind!r} (one of {', '.join(_FIELDS)})", field="op")
    check_key(key)
    required, optional = _FIELDS[kind]
    unknown = sorted(set(fields) - set(required) - set(optional))
    if unknown:
        raise LedgerRefusal(f"unknown field for {kind}", field=unknown[0])
    for name in required:
        if fields.get(name) is None:
            raise LedgerRefusal(f"required for {kind}", field=name)
    clean: dict[str, Any] = {}
    for name in ("account", "from", "to", "buyer", "seller"):
        if name in fields:
            clean[name] = check_account(fields[name], name)
    for name in ("asset", "instrument", "cash_asset"):
        if fields.get(name) is not None:
            if not isinstance(fields[name], str) or not fields[name]:
                raise LedgerRefusal("must be a name", field=name)
            clean[name] = fields[name]
    if kind in ("deposit", "withdraw", "transfer", "fee", "liquidation_transfer"):
        clean["amount"] = _positive(fields, "amount")
    elif kind in ("funding", "realised_pnl", "insurance_fund"):
        clean["amount"] = _nonzero(fields, "amount")
    if kind in ("transfer", "liquidation_transfer") and clean["from"] == clean["to"]:
        raise LedgerRefusal("from and to are the same account", field="to")
    if kind == "trade":
        clean["quantity"] = _positive(fields, "quantity")
        clean["price"] = _positive(fields, "price")
        if clean["buyer"] == clean["seller"]:
            raise LedgerRefusal("buyer and seller are the same account", field="seller")
        if (fields.get("cash_asset") is None) != (fields.get("cash_amount") is None):
            raise LedgerRefusal("cash_asset and cash_amount go together", field="cash_amount")
        if fields.get("cash_amount") is not None:
            clean["cash_amount"] = _positive(fields, "cash_amount")
    if kind == "variation_margin":
        payments = fields["payments"]
        if not isinstance(payments, Mapping) or not payments:
            raise LedgerRefusal("must map account ids to signed amounts", field="payments")
        clean_payments = {check_account(a, f"payments.{a}"): parse_decimal(v, f"payments.{a}")
                          for a, v in payments.items()}
        if sum(clean_payments.values(), Decimal(0)) != 0:
            raise LedgerRefusal("variation margin payments must sum to zero", field="payments")
        clean["payments"] = clean_payments
    return Operation(kind=str(kind), key=key, fields=clean)


def postings(operation: Operation, assets: Mapping[str, Asset]) -> tuple[Posting, ...]:
    """The balanced postings of an operation (every asset's legs sum to zero); unknown assets are refused."""
    f = operation.fields

    def asset(name_field: str, kind: AssetKind = "asset") -> Asset:
        name = f[name_field]
        known = assets.get(name)
        if known is None or known.kind != kind:
            what = "instrument" if kind == "instrument" else "asset"
            raise LedgerRefusal(f"unknown {what} {name!r}", field=name_field)
        return known

    def move(source: str, target: str, unit: Asset, amount: Decimal, name: str) -> list[Posting]:
        minor = to_minor(amount, unit, name)
        return [Posting(source, unit.name, -minor), Posting(target, unit.name, minor)]

    kind = operation.kind
    legs: list[Posting]
    if kind == "deposit":
        legs = move(EXTERNAL, f["account"], asset("asset"), f["amount"], "amount")
    elif kind == "withdraw":
        legs = move(f["account"], EXTERNAL, asset("asset"), f["amount"], "amount")
    elif kind in ("transfer", "liquidation_transfer"):
        legs = move(f["from"], f["to"], asset("asset"), f["amount"], "amount")
    elif kind == "fee":
        legs = move(f["account"], FEES, asset("asset"), f["amount"], "amount")
    elif kind in ("funding", "realised_pnl", "insurance_fund"):
        pool = {"funding": FUNDING, "realised_pnl": SETTLEMENT, "insurance_fund": INSURANCE}[kind]
        amount: Decimal = f["amount"]
        unit = asset("asset")
        if kind == "insurance_fund":  # + contribution into the fund, - payout from it
            legs = move(f["account"], pool, unit, amount, "amount") if amount > 0 else \
                move(pool, f["account"], unit, -amount, "amount")
        else:  # + received by the account, - paid by it
            legs = move(pool, f["account"], unit, amount, "amount") if amount > 0 else \
                move(f["account"], pool, unit, -amount, "amount")
        if "instrument" in f:
            asset("instrument", "instrument")
    elif kind == "trade":
        legs = move(f["seller"], f["buyer"], asset("instrument", "instrument"), f["quantity"], "quantity")
        if "cash_asset" in f:
            legs += move(f["buyer"], f["seller"], asset("cash_asset"), f["cash_amount"], "cash_amount")
    elif kind == "variation_margin":
        unit = asset("asset")
        legs = [Posting(a, unit.name, to_minor(v, unit, f"payments.{a}")) for a, v in f["payments"].items()]
    else:  # pragma: no cover - make_operation refuses unknown kinds
        raise LedgerRefusal(f"unknown operation {kind!r}", field="op")
    legs = [leg for leg in legs if leg.amount != 0]
    totals: dict[str, int] = {}
    for leg in legs:
        totals[leg.asset] = totals.get(leg.asset, 0) + leg.amount
    if any(totals.values()):  # pragma: no cover - every branch above is balanced by construction
        raise AssertionError(f"unbalanced operation {operation.key}")
    return tuple(legs)


def operation_from_body(key: str, body: Mapping[str, Any]) -> Operation:
    """Rebuild an operation from its stored body (replay): the inverse of `Operation.body`."""
    fields = {k: v for k, v in body.items() if k != "op"}
    return make_operation(body.get("op"), key, fields)


def debited_account(operation: Operation) -> str | None:
    """The user account a withdrawal or transfer takes collateral out of (margin-checked), else None."""
    if operation.kind == "withdraw":
        return str(operation.fields["account"])
    if operation.kind == "transfer":
        return str(operation.fields["from"])
    return None


def touched_accounts(legs: tuple[Posting, ...]) -> set[str]:
    """The user (non-system) accounts an operation posts to."""
    return {leg.account for leg in legs if not leg.account.startswith("@")}
