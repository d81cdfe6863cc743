"""``check``'s look at the issue's local image files (see ``compose.images``).

A file is weighed (``img-bytes`` over 200 KB), measured (``img-wide`` over
1,200 px: twice the column is enough for retina screens) and its published URL
checked: the e-mail loads it from ``archive_url`` + id + ``/``, which exists only
once the issue's archive is published (``img-unpublished``: offline, while the
ledger has no sent delivery of the issue; with ``--online``, while the URL does
not answer). Findings are ``(FILE:LINE, code, message)``, all warnings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pbtp_mailer.compose.images import Asset
from pbtp_mailer.config import Config
from pbtp_mailer.editor.archive import sent_issues
from pbtp_mailer.editor.htmlcheck import fetch_urls
from pbtp_mailer.errors import MailerError
from pbtp_mailer.issue.model import Image, Issue

__all__ = ["IMAGE_MAX_BYTES", "IMAGE_MAX_WIDTH", "image_places", "decorative_srcs",
           "image_findings"]

IMAGE_MAX_BYTES = 200 * 1024
IMAGE_MAX_WIDTH = 1200
Fetch = Callable[[list[str]], dict[str, str | None]]


def _fields(issue: Issue) -> list[tuple[tuple[str | int, ...], Image]]:
    fields: list[tuple[tuple[str | int, ...], Image | None]] = [(("hero",), issue.hero)]
    fields += [(("articles", i, "image"), a.image) for i, a in enumerate(issue.articles)]
    return [(where, img) for where, img in fields if img is not None]


def image_places(issue: Issue, assets: Sequence[Asset], places: Any) -> dict[str, str]:
    """``FILE:LINE`` naming each local image, by its published URL: the ``image:`` or
    ``hero:`` field's ``src``, else the line of the body that names the file."""
    folder = Path(issue.source_file).resolve().parent
    at = {(folder / img.src).resolve(): places.at(*where, "src")
          for where, img in _fields(issue) if not img.remote}
    return {a.url: at.get(a.source) or places.find(a.source.name, places.layout())
            for a in assets}


def decorative_srcs(issue: Issue, assets: Sequence[Asset]) -> set[str]:
    """The ``src`` in the HTML of every ``decorative: true`` image (its empty alt is right)."""
    folder = Path(issue.source_file).resolve().parent
    local = {a.source: a.url for a in assets}
    return {img.src if img.remote else local.get((folder / img.src).resolve(), "")
            for _, img in _fields(issue) if img.decorative}


def _line(place: str) -> int:
    tail = place.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def image_findings(issue: Issue, assets: Sequence[Asset], config: Config, places: Any,
                   online: bool, fetch: Fetch | None) -> Iterable[tuple[str, str, str]]:
    """Weight, pixel width, and whether each image's URL can exist yet."""
    if not assets:
        return
    where = image_places(issue, assets, places)
    for a in assets:
        if len(a.data) > IMAGE_MAX_BYTES:
            yield (where[a.url], "img-bytes",
                   f"image {a.source.name}: {len(a.data) // 1024:,} KB; keep e-mail images "
                   f"under {IMAGE_MAX_BYTES // 1024} KB (compress or resize it)")
        if a.width > IMAGE_MAX_WIDTH:
            yield (where[a.url], "img-wide",
                   f"image {a.source.name}: {a.width:,} px wide; {IMAGE_MAX_WIDTH:,} px is "
                   "plenty for the column even on retina screens (resize it)")
    if online:
        results = (fetch or fetch_urls)([a.url for a in assets])
        missing = [a for a in assets if results.get(a.url)]
    else:
        try:
            missing = [] if issue.id in sent_issues(config, [issue.id]) else list(assets)
        except MailerError:
            missing = list(assets)
    if missing:
        first = min(missing, key=lambda a: _line(where[a.url]))
        yield (where[first.url], "img-unpublished",
               f"{len(missing)} local image{'s' * (len(missing) != 1)} load from "
               f"{first.url.rsplit('/', 1)[0]}/, which exists only once this issue's archive "
               "is published (pbtp-mailer archive --all, then upload the site folder) — do "
               "that before sending")
