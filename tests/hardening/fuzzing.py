"""Strategies for the parser fuzz suite: hostile text, and mutations of a valid file.

Random text alone rarely gets past the first character of a YAML or TOML
parser, so most examples start from the real sample file (issue, config)
and change it: a value replaced by something hostile, a key dropped or
added, a YAML/TOML construct spliced into the text.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

CONTROL = "".join(chr(c) for c in (*range(0, 32), 0x7F, 0x85, 0x9B, 0x2028, 0x202E, 0xFEFF))

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(CONTROL + "ab=+-@\"'\\:{}[]#&*!|>%\u00e9"), max_size=30),
    st.sampled_from(["", " ", "2024-02-30", "=?utf-8?q?a=0D=0Ab?=", "null", "~", "yes", "NaN",
                     "1e309", "https://", "10.1/x", "PMC", "&a", "*a", "!!binary", "\t", "a\nb"]),
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.integers(1, 4000).map(lambda n: "x" * n),
)

scalars = st.one_of(
    hostile_text,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.dates().map(lambda d: d.isoformat()),
)

values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)

SPLICES = ["&a ", "*a", "!!binary ", "!!python/object:os.system ", "[" * 40, "{", "- ", ": ",
           "\t", "\x00", "\x1b", "<<: *a\n", "---\n", "...\n", "%YAML 1.1\n", "? ", "|\n",
           "\"\\x", "'''", "[table]\n", "[[x]]\n", "= ", "\"\"\"", "\ufeff", "\r", "\\u0000",
           "0x" + "f" * 50, "inf", "-nan", "1979-05-27T07:32:00Z"]


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into nested dicts and lists."""
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths(v, (*prefix, i))
    return out


def set_path(data: Any, path: tuple[Any, ...], value: Any, drop: bool = False) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy = dict(data)
        if drop and not rest:
            copy.pop(head, None)
        else:
            copy[head] = set_path(data[head], rest, value, drop) if rest else value
        return copy
    copy_list = list(data)
    if drop and not rest:
        del copy_list[head]
    else:
        copy_list[head] = set_path(data[head], rest, value, drop) if rest else value
    return copy_list


BASES: dict[str, Any] = {}
"""Valid sample data by name (the test module fills it; names keep failure reports short)."""


@st.composite
def mutated(draw: st.DrawFn, base: str, dump: Any) -> str:
    """``BASES[base]`` with a few structural changes, dumped, then a few textual ones."""
    data = BASES[base]
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(paths(data)))
        how = draw(st.sampled_from(["replace", "drop", "add"]))
        if how == "drop" and where:
            data = set_path(data, where, None, drop=True)
        elif how == "add" and isinstance(_get(data, where), dict):
            data = set_path(data, (*where, draw(st.text(max_size=12))), draw(values))
        else:
            data = set_path(data, where, draw(values))
    text = dump(data)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(SPLICES) | hostile_text) + text[at:]
    return text


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


def toml_dump(data: Any) -> str:
    """A small TOML writer (strings, numbers, booleans, arrays, tables); None is left out."""
    lines: list[str] = []
    _table(data if isinstance(data, dict) else {"value": data}, (), lines)
    return "\n".join(lines) + "\n"


def _table(table: dict[Any, Any], name: tuple[str, ...], lines: list[str]) -> None:
    if name:
        lines.append("[" + ".".join(_key(k) for k in name) + "]")
    subtables = []
    for k, v in table.items():
        if isinstance(v, dict):
            subtables.append((k, v))
        elif v is not None:
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in subtables:
        _table(v, (*name, str(k)), lines)


def _key(k: Any) -> str:
    k = str(k)
    return k if k and all(c.isascii() and (c.isalnum() or c in "-_") for c in k) else (
        json.dumps(k, ensure_ascii=False))


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else
                                     "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v if x is not None and
                                not isinstance(x, dict)) + "]"
    return json.dumps(str(v), ensure_ascii=False)
