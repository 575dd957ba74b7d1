"""Turn pydantic validation errors into one line naming the field path (spec/cli.md error contract)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from marginkit.errors import InputError

_MESSAGES = {
    "finite_number": "must be finite",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "missing": "required field is missing",
    "extra_forbidden": "unknown field",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
}


def field_path(location: Sequence[int | str]) -> str:
    """('accounts', 0, 'positions', 1, 'quantity') -> 'accounts[0].positions[1].quantity'."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("[key]",):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def _message(error: dict[str, object]) -> str:
    kind = str(error["type"])
    context = error.get("ctx") or {}
    assert isinstance(context, dict)
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "greater_than":
        bound = context.get("gt")
        return "must be positive" if bound in (0, 0.0) else f"must be greater than {bound}"
    if kind == "greater_than_equal":
        bound = context.get("ge")
        return "must not be negative" if bound in (0, 0.0) else f"must be at least {bound}"
    if kind == "less_than_equal":
        return f"must be at most {context.get('le')}"
    if kind == "less_than":
        return f"must be less than {context.get('lt')}"
    if kind in ("literal_error", "enum"):
        expected = str(context.get("expected", "")).replace("'", "")
        return f"must be one of {expected}"
    message = str(error.get("msg", kind))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    return message[:1].lower() + message[1:]


def from_validation_error(error: ValidationError, prefix: str = "") -> InputError:
    """The first validation error as an InputError with the field path (prefixed, e.g. 'parameters').

    An unknown field comes first: a misspelt key (`acounts`) is the cause of the `accounts` that is missing.
    """
    errors = error.errors(include_url=False)
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    location = tuple(first["loc"])
    # A union of literal strings reports its members as separate locations: keep the field path.
    path = field_path(location)
    if prefix:
        path = f"{prefix}.{path}" if path else prefix
    return InputError(_message(dict(first)), field=path or None)
