"""YAML to plain Python data that remembers where every key and value stood.

PyYAML's C composer (``CSafeLoader``, ~10x the pure-Python loader) builds the
node tree; we construct the data ourselves so that each path such as
``("articles", 0, "title")`` maps to its ``(line, col)``, and so that
duplicate keys, which PyYAML silently overwrites, are reported.

The loader is bounded, because an issue file may come from anyone with
write access to the issues folder and is read by cron: aliases (``*name``)
are refused before anything is built (an alias bomb expands exponentially
and a self-referencing alias never ends), nesting deeper than ``MAX_DEPTH``
is refused (far below Python's recursion limit), only the plain YAML types
are accepted (``!!binary``, ``!!set`` or custom tags are refused, not
decoded) and values Python cannot hold (``2024-02-30``, a 5,000-digit
integer) are problems with their place. Nothing but ``Problem`` comes out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from pbtp_mailer.errors import Problem

try:  # pragma: no cover - depends on how PyYAML was built
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = ["Located", "load_located", "MAX_DEPTH"]

MAX_DEPTH = 32
"""Deepest nesting of mappings and lists accepted (an issue needs about 5)."""

_YAML = "tag:yaml.org,2002:"
_PLAIN_TAGS = {
    yaml.ScalarNode: {f"{_YAML}{t}" for t in ("str", "int", "float", "bool", "null",
                                               "timestamp", "merge")},
    yaml.SequenceNode: {f"{_YAML}seq"},
    yaml.MappingNode: {f"{_YAML}map"},
}

Path = tuple[str | int, ...]


@dataclass
class Located:
    """Loaded data plus a map from each path to the 1-based (line, col) of its node."""

    data: Any
    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def place(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """The closest known place for ``path`` (the node itself, else its nearest parent)."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))


class _Builder:
    def __init__(self, file: str) -> None:
        self.out = Located(data=None, file=file)
        self._scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path) -> Any:
        mark = node.start_mark
        self.out.values[path] = (mark.line + 1, mark.column + 1)
        if node.tag not in _PLAIN_TAGS[type(node)]:
            tag = node.tag.replace(_YAML, "!!")
            self._problem(node, path, f"the tag {tag} is not accepted: write plain text, "
                                      "numbers, dates, lists and mappings")
            return None
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self._problem(key_node, path, "keys must be plain scalars")
                    continue
                key = self._scalar(key_node, path)
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self._problem(key_node, path, "merge keys (<<) are not supported")
                    continue
                key = str(key)
                sub = (*path, key)
                if key in result:
                    first = self.out.keys[sub]
                    self._problem(key_node, sub, f"duplicate key (first at line {first[0]})")
                    continue
                km = key_node.start_mark
                self.out.keys[sub] = (km.line + 1, km.column + 1)
                result[key] = self.build(value_node, sub)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        try:
            return self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._problem(node, path, getattr(exc, "problem", None) or str(exc))
        except (ValueError, OverflowError) as exc:  # 2024-02-30, 5,000 digits, +99:00
            self._problem(node, path, _unreadable(node, exc))
        return None

    def _problem(self, node: yaml.Node, path: Path, message: str) -> None:
        m = node.start_mark
        dotted = _dotted(path)
        self.out.problems.append(Problem(self.out.file, m.line + 1, m.column + 1, dotted, message))


def _unreadable(node: yaml.Node, exc: Exception) -> str:
    kind = node.tag.replace(_YAML, "")
    value = str(node.value)
    shown = repr(value) if len(value) <= 40 else f"{value[:20]!r}... ({len(value)} characters)"
    if kind == "int" and len(value) > 100:
        return f"integer {shown} is too long"
    why = str(exc).split(";")[0]
    why = why if len(why) <= 60 else why[:57] + "..."
    return f"not a valid {'date' if kind == 'timestamp' else kind}: {shown} ({why})"


def _bounds(text: str, file: str) -> Problem | None:
    """The first alias or too-deep nesting, found on the event stream before any node is built."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            return _at(file, event, f"aliases (*{event.anchor}) are not supported: "
                                    "write the value out")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return _at(file, event, f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _at(file: str, event: yaml.Event, message: str) -> Problem:
    m = event.start_mark
    line, col = (m.line + 1, m.column + 1) if m is not None else (1, 1)
    return Problem(file, line, col, "", message)


def _reader_place(text: str, exc: yaml.YAMLError) -> tuple[int, int]:
    """Line and column of a reader error (a control character): its offset, counted in text."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return mark.line + 1, mark.column + 1
    position = getattr(exc, "position", None)
    if not isinstance(position, int):
        return 1, 1
    encoded = text.encode("utf-8")  # the C reader counts bytes of UTF-8
    if position <= len(encoded):
        before = encoded[:position].decode("utf-8", "replace")
    else:
        before = text[:position]
    head = before.rsplit("\n", 1)
    return before.count("\n") + 1, len(head[-1]) + 1


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_located(text: str, file: str) -> Located:
    """Parse one YAML document. Syntax errors come back as problems, never raised."""
    builder = _Builder(file)
    try:
        bound = _bounds(text, file)
        if bound is not None:
            builder.out.problems.append(bound)
            return builder.out
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or "invalid YAML"
        if exc.context:
            what = f"{exc.context}, {what}"
        lines = text.splitlines()
        if 0 < line <= len(lines) and lines[line - 1][col - 1: col] == "\t":
            what += " (a tab: YAML is indented with spaces, not tabs)"
        builder.out.problems.append(Problem(file, line, col, "", f"YAML syntax: {what}"))
        return builder.out
    except yaml.YAMLError as exc:  # e.g. reader errors for control characters
        line, col = _reader_place(text, exc)
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        builder.out.problems.append(Problem(file, line, col, "", f"YAML: {what}"))
        return builder.out
    if node is None:
        builder.out.problems.append(Problem(file, 1, 1, "", "the file is empty"))
        return builder.out
    builder.out.data = builder.build(node, ())
    return builder.out


dotted_path = _dotted
