"""pydantic's errors on pbtp-mailer.toml turned into ``FILE:LINE:COL: [table]: 'key' message``.

The one choke point for config validation errors: a missing key points at
its table's header, an unknown key at itself with a "did you mean" hint, a
missing table names the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from pbtp_mailer.errors import ConfigError

if TYPE_CHECKING:
    from pbtp_mailer.config.places import Locator

__all__ = ["file_error", "section_error"]

_FRIENDLY = {
    "int_type": "must be int",
    "int_parsing": "must be int",
    "int_from_float": "must be int",
    "float_type": "must be float",
    "float_parsing": "must be float",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "finite_number": "must be a finite number (not inf or nan)",
    "dict_type": "must be a table",
    "dataclass_type": "must be a table",
    "model_type": "must be a table",
}
_PATTERNS = {
    "direction": "must be 'ltr' or 'rtl'",
    "language": "must be a BCP 47 language tag such as 'en' or 'en-US'",
}
_SHOWN = 5
_EXTRA = ("extra_forbidden", "unexpected_keyword_argument")


def _message(err: Any, key: str) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _FRIENDLY:
        return _FRIENDLY[kind]
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(key, f"does not match {ctx.get('pattern')}")
    if kind == "greater_than":
        return f"must be greater than {ctx['gt']:g}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']:g}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt')):g}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def _hint(key: str, known: Iterable[str], top: Iterable[str] = ()) -> str:
    if key in top:
        return " (a top-level key: put it above the first [table])"
    near = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""


def _fields(model: Any) -> list[str]:
    """The TOML names a table accepts (aliases such as ``from`` included)."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    if not dataclasses.is_dataclass(model):
        return []
    hints = typing.get_type_hints(model, include_extras=True)
    names = []
    for f in dataclasses.fields(model):
        meta = getattr(hints.get(f.name), "__metadata__", ())
        names.append(next((m.alias for m in meta if getattr(m, "alias", None)), f.name))
    return names


def _one(place: Locator, err: Any, tables: dict[str, Any], top: list[str]) -> tuple[str, str]:
    """``(place, text)`` of one error; ``tables`` maps a top-level key to its model."""
    loc = tuple(str(p) for p in err["loc"])
    kind = err["type"]
    if loc[0] == "senders" and len(loc) >= 2:
        table, rest, model = f"senders.{loc[1]}", loc[2:], tables.get("senders.*")
        path: tuple[str, ...] = ("senders", loc[1])
    else:
        table, rest, model = loc[0], loc[1:], tables.get(loc[0])
        path = (loc[0],)
    if not rest:
        if kind == "missing":
            return place(), f"[{table}] table is required"
        if kind in _EXTRA:
            known = sorted(top)
            return (place(table),
                    f"unknown key '{table}'{_hint(table, known)} (known: {', '.join(known)})")
        if table in tables or table.startswith("senders."):
            return place(*path), f"[{table}] must be a table"
        return place(*path), f"'{table}' {_message(err, table)}"
    key = ".".join(rest)
    if kind == "missing":
        return place(*path), f"[{table}]: '{key}' is required"
    if kind in _EXTRA:
        return (place(*path, *rest),
                f"[{table}]: unknown key '{key}'{_hint(key, _fields(model), top)}")
    return place(*path, *rest), f"[{table}]: '{key}' {_message(err, rest[-1])}"


def file_error(place: Locator, exc: ValidationError, tables: dict[str, Any],
               top: list[str]) -> ConfigError:
    """One ``ConfigError`` listing every problem of the file, in file order."""
    found = []
    for err in exc.errors(include_url=False):
        where, text = _one(place, err, tables, top)
        found.append((where.removeprefix(place.file), where, text))
    lines = list(dict.fromkeys(f"{place}: {text}" for _, place, text in sorted(found, key=_order)))
    if len(lines) > _SHOWN:
        lines[_SHOWN:] = [f"... and {len(lines) - _SHOWN} more problems in {place()}"]
    return ConfigError("\n".join(lines))


def _order(item: tuple[str, str, str]) -> tuple[int, int]:
    parts = item[0].split(":")
    nums = [int(p) for p in parts if p.isdigit()]
    return (nums + [0, 0])[0], (nums + [0, 0])[1]


def section_error(place: Locator, name: str, model: type[BaseModel],
                  exc: ValidationError) -> ConfigError:
    """The first problem of a feature's ``[name]`` table, located."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(str(p) for p in err["loc"])
    field = ".".join(loc) or name
    where = place(name, *loc)
    if err["type"] in _EXTRA:
        hint = _hint(loc[-1], _fields(model)) if loc else ""
        return ConfigError(f"{where}: [{name}]: unknown key '{field}'{hint}")
    return ConfigError(f"{where}: [{name}]: '{field}': {err['msg']}")
