"""Composition: an ``Issue`` becomes a ``Rendition`` (HTML + text with slots)."""

from .pipeline import Rendition, compose, issue_urls

__all__ = ["Rendition", "compose", "issue_urls"]
