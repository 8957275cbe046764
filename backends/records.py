"""A small schema check for the JSON records that travel with exported models.

An ONNX export's dkt record and a TensorRT engine's sidecar come from files a user passes
in, so they may be hand-edited, truncated or hostile. Each record is parsed with a bound on
its nesting and each value checked against what it must be before any code uses it: a bad
value is reported as "field X must be Y, got Z", not met later as an AttributeError or a
RecursionError deep inside a runtime.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from backends.shapes import ShapeProfile
from dkt.errors import ModelMetadataError, ShapeError

#: Nesting a record may have: the real ones are three levels deep (record, profile, list).
MAX_DEPTH = 16
_SHOWN_CHARS = 60


@dataclass(frozen=True)
class Field:
    """What one key's value must be: ``what`` in words (for the error), ``ok`` as a test."""

    what: str
    ok: Callable[[Any], bool]
    required: bool = False


def is_int(value: Any, minimum: int | None = None) -> bool:
    """A JSON whole number (``true`` is not one), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return minimum is None or value >= minimum


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def optional(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """``test``, or JSON ``null``."""
    return lambda value: value is None or test(value)


def one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and value in choices


PROFILE_WORDS = "{min, opt, max} of [batch, height, width], min <= opt <= max"


def is_profile(value: Any) -> bool:
    """A shape profile record (:meth:`ShapeProfile.to_dict`) that makes a valid profile."""
    triples = isinstance(value, dict) and all(
        isinstance(value.get(k), list)
        and len(value[k]) == 3
        and all(is_int(v, 1) for v in value[k])
        for k in ("min", "opt", "max")
    )
    if not triples:
        return False
    try:
        ShapeProfile.from_dict(value)
    except ShapeError:  # min <= opt <= max broken
        return False
    return True


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def parse_record(text: str, source: str, label: str) -> dict[str, Any]:
    """The JSON object in ``text``; anything else (a list, too deep, not JSON) is refused."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ModelMetadataError(f"{source}: {label} is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError
        raise ModelMetadataError(f"{source}: {label} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelMetadataError(f"{source}: {label} is a JSON {_kind(data)}, not an object")
    if _depth(data) > MAX_DEPTH:
        raise ModelMetadataError(f"{source}: {label} is nested more than {MAX_DEPTH} levels deep")
    return data


def check_fields(
    data: Mapping[str, Any], fields: Mapping[str, Field], source: str, label: str
) -> None:
    """Refuse the first field that is missing (where required) or not what it must be.

    Keys the schema does not name are left alone: they are information only.
    """
    for key, field in fields.items():
        if key not in data:
            if field.required:
                raise ModelMetadataError(f"{source}: {label} has no {key!r}")
            continue
        if not field.ok(data[key]):
            raise ModelMetadataError(
                f"{source}: {label}: {key} must be {field.what}, got {shown(data[key])}"
            )


def shown(value: Any) -> str:
    """A value as JSON, cut short: a tampered record may hold a megabyte in one field."""
    text = json.dumps(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _kind(value: Any) -> str:
    names = {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)
