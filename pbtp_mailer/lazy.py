"""Lazy re-exports for a package's ``__init__`` (PEP 562).

A feature package re-exports its public names, but loading every module at
import would make each command pay for all of them (the doctor's checks,
the feedback parsers). ``lazy_exports(__name__, WHERE)`` gives the
package a module ``__getattr__`` that imports a name from its module on
first use and keeps it in the package, so the second use is a plain lookup.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """The package's ``__getattr__``: ``where`` maps a public name to its module (relative
    to ``package``)."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        vars(sys.modules[package])[name] = value
        return value

    return __getattr__
