"""Read a JSON or YAML file strictly: no NaN or infinite numbers, no duplicate keys, YAML 1.2 floats like 1.2e9."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from marginkit.errors import InputError
from marginkit.io.validation_errors import field_path

JSON_SUFFIXES = {".json"}
YAML_SUFFIXES = {".yaml", ".yml"}


class _StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads YAML 1.2 floats (1e9, 1.2e9) as numbers."""


_FLOAT_12 = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
    r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)"
    r"|\.(?:nan|NaN|NAN))$"
)
_StrictYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789.")
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise InputError(
                f"duplicate key {key!r} (line {key_node.start_mark.line + 1})"
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InputError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _check_finite(data: Any) -> None:
    """Refuse the first NaN or infinite number (JSON NaN/Infinity/1e999, YAML .nan/.inf) by its field path."""
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), data)]
    while stack:
        location, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError("must be finite", field=field_path(location) or None)
        if isinstance(value, dict):
            items = [(key if isinstance(key, int | str) else str(key), item) for key, item in value.items()]
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            continue
        stack.extend(((*location, key), item) for key, item in reversed(items))


def _parse(text: str, suffix: str) -> Any:
    if suffix in JSON_SUFFIXES:
        if not text.strip():
            raise InputError("empty file")
        try:
            return json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON (line {error.lineno})") from None
        except RecursionError:
            raise InputError("not valid JSON: nested too deeply") from None
    if suffix in YAML_SUFFIXES:
        if not text.strip():
            raise InputError("empty file")
        try:
            document = yaml.load(text, Loader=_StrictYamlLoader)
        except yaml.MarkedYAMLError as error:
            line = error.problem_mark.line + 1 if error.problem_mark is not None else "?"
            raise InputError(f"not valid YAML (line {line})") from None
        except yaml.YAMLError:
            raise InputError("not valid YAML") from None
        except RecursionError:
            raise InputError("not valid YAML: nested too deeply") from None
        if document is None:
            raise InputError("empty file (no YAML document)")
        return document
    raise InputError(f"unknown file type {suffix!r}: use .json, .yaml or .yml")


def parse_structured(text: str, suffix: str) -> Any:
    """Parse `text` as JSON or YAML by the file suffix; raise InputError (no file name) when it fails.

    Every number must be finite (spec/book-format.md): a NaN or infinity is refused by its field path.
    """
    data = _parse(text, suffix)
    _check_finite(data)
    return data


def load_structured(path: str | Path) -> Any:
    """Read a JSON or YAML file (by extension); errors name the file."""
    name = str(path)
    file_path = Path(path)
    try:
        raw = file_path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", file=name) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", file=name) from None
    except OSError as error:
        raise InputError(f"cannot be read ({error.strerror})", file=name) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=name) from None
    try:
        return parse_structured(text, file_path.suffix.lower())
    except InputError as error:
        raise error.in_file(name) from None
