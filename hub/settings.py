"""Typed settings tables: turn an operator's TOML table into a frozen dataclass, or say exactly
which table and key are wrong.

Plugins declare their settings as a dataclass (subclassing `hub.programs.ProgramSettings`); the
core validates every `[programs.<name>]` table against it at start-up.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from hub.errors import StartupError

T = TypeVar("T")


def parse_table(cls: type[T], table: dict[str, Any], where: str) -> T:
    """Build `cls` from `table`; unknown, missing or mistyped keys raise `StartupError`."""
    if not isinstance(table, dict):
        raise StartupError(f"[{where}] must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(fields))
    if unknown:
        what = f"[{where}] unknown key {unknown[0]!r}" if where else f"unknown table [{unknown[0]}]"
        raise StartupError(f"{what}; known: {', '.join(sorted(fields))}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name in table and dataclasses.is_dataclass(hints[name]):
            values[name] = parse_table(hints[name], table[name],
                                       f"{where}.{name}" if where else name)
        elif name in table:
            values[name] = coerce(table[name], hints[name], f"[{where}] {name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise StartupError(f"[{where}] missing required key {name!r}")
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise StartupError(f"[{where}] {exc}") from None


def replace_from_strings(obj: T, changes: dict[str, str], where: str) -> T:
    """A copy of settings `obj` with keys set from command-line strings (`rate=0.25`)."""
    table = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(type(obj))
    for key, raw in changes.items():
        if key not in hints:
            raise StartupError(f"[{where}] unknown key {key!r}")
        table[key] = _from_string(raw, hints[key])
    return parse_table(type(obj), table, where)


def _from_string(raw: str, hint: Any) -> Any:
    import json

    if hint in (str,):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], where)
    if origin is typing.Literal:
        if value not in args:
            raise StartupError(f"{where} must be one of {', '.join(map(repr, args))}, "
                               f"not {value!r}")
        return value
    if origin in (dict, typing.Mapping) or hint is dict:
        if not isinstance(value, dict):
            raise StartupError(f"{where} must be a table")
        kt, vt = args or (str, Any)
        return {coerce(k, kt, f"{where}.{k}"): coerce(v, vt, f"{where}.{k}")
                for k, v in value.items()}
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise StartupError(f"{where} must be a list")
        item = args[0] if args else Any
        return tuple(coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is Any:
        return value
    if hint is Decimal:
        return _decimal(value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise StartupError(f"{where} must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise StartupError(f"{where} must be a whole number, not {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise StartupError(f"{where} must be a string, not {value!r}")
        return value
    return value


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise StartupError(f"{where} must be a number, not {value!r}")
    try:
        # Floats go through their shortest repr so 0.2 becomes Decimal('0.2'), not
        # 0.2000000000000000111.
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise StartupError(f"{where} must be a number, not {value!r}") from None
    if not result.is_finite():
        raise StartupError(f"{where} must be a finite number")
    return result
