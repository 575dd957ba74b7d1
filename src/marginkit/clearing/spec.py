"""The clearing-house file: the CCP's settings, its members and their accounts, and the book they hold.

A clearing-house file (YAML or JSON) has three sections:

```yaml
clearing_house:
  id: example-ccp
  currency: USD                 # settlement currency of variation margin and the default fund
  im_call_deadline_seconds: 3600
  margin_period_of_risk_days: 2  # close-out horizon of a defaulter's portfolio
  skin_in_the_game: {first: 5000000, second: 10000000}
  default_fund: {cover: 2, minimum_contribution: 100000, assessment_multiple: 1.0}
members:
  - id: M1
    affiliate_group: G1         # Cover-2 counts a member with its affiliates; default: its own id
    accounts:
      - {id: M1.house, kind: house, profile: span-crypto}
      - {id: M1.C1, kind: client, segregation: individual, profile: historical-var-99}
      - {id: M1.OMNI, kind: client, segregation: omnibus, profile: historical-var-99}
book: positions.yaml            # a book file (spec/book-format.md), relative to this file, or inline
```

Every clearing account is an account of the book (same id) and every book account belongs to exactly one
clearing account; each account is margined by the model of its profile (a shipped profile name, or a path
to a profile file relative to the clearing-house file). Amounts are in `currency`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from marginkit.domain import BookSpec
from marginkit.errors import InputError
from marginkit.io.book_file import load_book, parse_book
from marginkit.io.profile_file import Profile, load_profile_file
from marginkit.io.structured import load_structured
from marginkit.io.validation_errors import from_validation_error

Name = Annotated[str, Field(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")]
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]

HOUSE = "house"
CLIENT = "client"
INDIVIDUAL = "individual"
OMNIBUS = "omnibus"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SkinInTheGameRecord(_Strict):
    first: NonNegative = 0.0
    second: NonNegative = 0.0


class DefaultFundRecord(_Strict):
    cover: Annotated[int, Field(strict=True, ge=1, le=10)] = 2
    minimum_contribution: NonNegative = 0.0
    assessment_multiple: NonNegative = 1.0


class ClearingHouseRecord(_Strict):
    id: Name
    currency: Name
    im_call_deadline_seconds: Positive = 3600.0
    margin_period_of_risk_days: Positive = 2.0
    skin_in_the_game: SkinInTheGameRecord = SkinInTheGameRecord()
    default_fund: DefaultFundRecord = DefaultFundRecord()


class ClearingAccountRecord(_Strict):
    id: Name
    kind: Literal["house", "client"]
    segregation: Literal["individual", "omnibus"] | None = None
    profile: Annotated[str, Field(strict=True, min_length=1)]

    @model_validator(mode="after")
    def _segregation(self) -> ClearingAccountRecord:
        if self.kind == CLIENT and self.segregation is None:
            raise ValueError("a client account states its segregation: individual or omnibus")
        if self.kind == HOUSE and self.segregation is not None:
            raise ValueError("a house account has no segregation")
        return self


class MemberRecord(_Strict):
    id: Name
    affiliate_group: Name | None = None
    accounts: list[ClearingAccountRecord] = Field(min_length=1)


class ClearingFileRecord(_Strict):
    clearing_house: ClearingHouseRecord
    members: list[MemberRecord] = Field(min_length=1)
    book: str | dict[str, Any]


@dataclass(frozen=True)
class SkinInTheGame:
    """The clearing house's own capital in the waterfall: first tranche (before survivors) and second."""

    first: float
    second: float


@dataclass(frozen=True)
class DefaultFundSettings:
    """Cover-N sizing, the floor of a member's contribution and the assessment cap (× contribution)."""

    cover: int
    minimum_contribution: float
    assessment_multiple: float


@dataclass(frozen=True)
class ClearingHouseSettings:
    """The clearing house: its id, settlement currency, IM-call deadline, MPOR and waterfall resources."""

    id: str
    currency: str
    im_call_deadline_seconds: float
    margin_period_of_risk_days: float
    skin_in_the_game: SkinInTheGame
    default_fund: DefaultFundSettings


@dataclass(frozen=True)
class ClearingAccount:
    """A member's account at the clearing house: house or client (individually segregated or omnibus)."""

    id: str
    member: str
    kind: str  # "house" or "client"
    segregation: str | None  # "individual" or "omnibus" for client accounts
    profile: Profile


@dataclass(frozen=True)
class Member:
    """A clearing member and its accounts; `affiliate_group` joins affiliates for Cover-2."""

    id: str
    affiliate_group: str
    accounts: tuple[ClearingAccount, ...]


@dataclass(frozen=True)
class ClearingSpec:
    """A parsed clearing-house file: settings, members (in file order) and the book of their positions."""

    settings: ClearingHouseSettings
    members: tuple[Member, ...]
    book: BookSpec

    @property
    def accounts(self) -> tuple[ClearingAccount, ...]:
        return tuple(account for member in self.members for account in member.accounts)

    def member_of(self) -> dict[str, str]:
        """Clearing account id -> member id."""
        return {account.id: account.member for account in self.accounts}


def _profile(reference: str, base: Path | None, where: str) -> Profile:
    from marginkit.profiles import shipped_profiles

    shipped = shipped_profiles()
    if reference in shipped:
        return shipped[reference]
    path = Path(reference) if base is None or Path(reference).is_absolute() else base / reference
    if path.suffix.lower() in (".yaml", ".yml", ".json") and path.exists():
        return load_profile_file(path)
    raise InputError(f"unknown profile {reference!r}: not a shipped profile nor a profile file", field=where)


def parse_clearing(data: Any, base: Path | None = None) -> ClearingSpec:
    """Validate a parsed clearing-house file (relative paths from `base`); InputError names the field."""
    if not isinstance(data, dict):
        raise InputError("a clearing-house file is a mapping with clearing_house, members and book")
    try:
        record = ClearingFileRecord.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error) from None
    if isinstance(record.book, str):
        path = Path(record.book) if base is None or Path(record.book).is_absolute() else base / record.book
        book = load_book(path)
    else:
        try:
            book = parse_book(record.book)
        except InputError as error:
            raise InputError(error.message, field=f"book.{error.field}" if error.field else "book") from None
    house = record.clearing_house
    settings = ClearingHouseSettings(
        id=house.id, currency=house.currency, im_call_deadline_seconds=house.im_call_deadline_seconds,
        margin_period_of_risk_days=house.margin_period_of_risk_days,
        skin_in_the_game=SkinInTheGame(house.skin_in_the_game.first, house.skin_in_the_game.second),
        default_fund=DefaultFundSettings(house.default_fund.cover, house.default_fund.minimum_contribution,
                                         house.default_fund.assessment_multiple))
    members: list[Member] = []
    seen_members: set[str] = set()
    seen_accounts: set[str] = set()
    for m, member in enumerate(record.members):
        if member.id in seen_members:
            raise InputError(f"member {member.id!r} appears twice", field=f"members[{m}].id")
        seen_members.add(member.id)
        accounts = []
        for a, account in enumerate(member.accounts):
            where = f"members[{m}].accounts[{a}]"
            if account.id in seen_accounts:
                raise InputError(f"account {account.id!r} appears twice", field=f"{where}.id")
            seen_accounts.add(account.id)
            accounts.append(ClearingAccount(account.id, member.id, account.kind, account.segregation,
                                            _profile(account.profile, base, f"{where}.profile")))
        members.append(Member(member.id, member.affiliate_group or member.id, tuple(accounts)))
    book_accounts = [account.id for account in book.accounts]
    for n, account_id in enumerate(book_accounts):
        if account_id not in seen_accounts:
            raise InputError(f"book account {account_id!r} belongs to no member", field=f"book.accounts[{n}].id")
    missing = sorted(seen_accounts - set(book_accounts))
    if missing:
        raise InputError(f"clearing account {missing[0]!r} is not in the book", field="book.accounts")
    return ClearingSpec(settings, tuple(members), book)


def load_clearing(path: str | Path) -> ClearingSpec:
    """Read and validate a clearing-house file; errors name the file and the field."""
    path = Path(path)
    data = load_structured(path)
    try:
        return parse_clearing(data, path.parent)
    except InputError as error:
        raise error.in_file(str(path)) from None
