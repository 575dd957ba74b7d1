"""Profile files (spec/profiles.md): the envelope every model's parameter file follows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from marginkit.errors import InputError
from marginkit.io.structured import load_structured
from marginkit.io.validation_errors import from_validation_error

Text = Annotated[str, Field(strict=True, min_length=1)]


class ProfileRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Text
    name: Text
    version: Text
    source: Text
    notes: list[Text] = []
    parameters: dict[str, Any]
    engine: dict[str, Any] | None = None


@dataclass(frozen=True)
class Profile:
    """One model's parameters as a venue or clearing house publishes them; `parameters` is validated by the model."""

    model: str
    name: str
    version: str
    source: str
    parameters: dict[str, Any]
    notes: tuple[str, ...] = ()
    path: str | None = None
    engine: dict[str, Any] | None = None  # the live engine's settings (engine/settings.py validates them)


def parse_profile(data: Any, path: str | None = None) -> Profile:
    """Validate the envelope of a parsed profile file."""
    if not isinstance(data, dict):
        raise InputError("a profile is a mapping with model, name, version, source and parameters", file=path)
    try:
        record = ProfileRecord.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error).in_file(path or "profile") from None
    return Profile(
        model=record.model,
        name=record.name,
        version=record.version,
        source=record.source,
        parameters=dict(record.parameters),
        notes=tuple(record.notes),
        path=path,
        engine=dict(record.engine) if record.engine is not None else None,
    )


def load_profile_file(path: str | Path) -> Profile:
    """Read a profile file (.yaml, .yml, .json); errors name the file and the key path."""
    return parse_profile(load_structured(path), str(path))


class StrictParameters(BaseModel):
    """Base of every model's parameter schema: unknown keys are an error, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


SchemaT = TypeVar("SchemaT", bound=BaseModel)
BuiltT = TypeVar("BuiltT")
_BUILT: dict[tuple[int, str], tuple[Profile, Any]] = {}


def built_once(profile: Profile, what: str, build: Callable[[Profile], BuiltT]) -> BuiltT:
    """`build(profile)` once per profile object and `what` (a profile is an immutable value): a model's validated
    and compiled parameters are reused by every call with the same profile (the service margins per request)."""
    key = (id(profile), what)
    hit = _BUILT.get(key)
    if hit is not None and hit[0] is profile:
        value: BuiltT = hit[1]
        return value
    value = build(profile)
    if len(_BUILT) >= 256:
        _BUILT.clear()
    _BUILT[key] = (profile, value)  # the entry holds the profile, so its id cannot be reused while cached
    return value


def parse_parameters(profile: Profile, schema: type[SchemaT]) -> SchemaT:
    """Validate a profile's `parameters` with a model's schema; InputError names the key path and the file."""
    try:
        return schema.model_validate(profile.parameters)
    except ValidationError as error:
        raise from_validation_error(error, prefix="parameters").in_file(profile.path or profile.name) from None
