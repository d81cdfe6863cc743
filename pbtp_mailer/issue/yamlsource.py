"""YAML to plain Python data that remembers where every key and value stood.

PyYAML's C composer (``CSafeLoader``, ~10x the pure-Python loader) builds the
node tree; we construct the data ourselves so that each path such as
``("articles", 0, "title")`` maps to its ``(line, col)``, and so that
duplicate keys, which PyYAML silently overwrites, are reported.
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

__all__ = ["Located", "load_located"]

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
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self._problem(key_node, path, "keys must be plain scalars")
                    continue
                key = self._scalar(key_node)
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
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            return self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._problem(node, (), getattr(exc, "problem", None) or str(exc))
            return None

    def _problem(self, node: yaml.Node, path: Path, message: str) -> None:
        m = node.start_mark
        dotted = _dotted(path)
        self.out.problems.append(Problem(self.out.file, m.line + 1, m.column + 1, dotted, message))


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_located(text: str, file: str) -> Located:
    """Parse one YAML document. Syntax errors come back as problems, never raised."""
    builder = _Builder(file)
    try:
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
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        col = mark.column + 1 if mark else 1
        builder.out.problems.append(Problem(file, line, col, "", f"YAML: {exc}"))
        return builder.out
    if node is None:
        builder.out.problems.append(Problem(file, 1, 1, "", "the file is empty"))
        return builder.out
    builder.out.data = builder.build(node, ())
    return builder.out


dotted_path = _dotted
