"""Images of an issue: local files resolved, hashed and sized; every ``<img>`` gets its size.

A local image (a path relative to the issue file) is read once: Pillow gives
its pixel size, SHA-256 its content-hashed name (``figure-1.3f2a9c0b1d2e.png``).
The e-mail references it by absolute URL in the issue's web folder,
``archive_url`` + id + ``/`` + name, the folder where ``pbtp-mailer archive``
publishes the browser version (and copies the image); ``build`` copies it
into ``build/<id>/`` too. Every image is shown at most ``CONTENT_WIDTH``
pixels wide (a larger, retina, file is scaled down by the ``width``/``height``
attributes, which also reserve its box before it loads).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pbtp_mailer.errors import ComposeError
from pbtp_mailer.issue.model import Image, Issue
from pbtp_mailer.issue.yamlsource import dotted_path

__all__ = ["CONTENT_WIDTH", "WEB_FORMATS", "Asset", "Shown", "IssueImages"]

#: the default layout's column: mj-body 640px less 2 x 24px of text padding
CONTENT_WIDTH = 592
#: what every mail client displays
WEB_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif"}
_MAX_BYTES = 20 * 1024 * 1024  # refuse to read larger files at all


@dataclass(frozen=True)
class Asset:
    """A local image file, published under ``name`` next to the issue's web version."""

    source: Path
    name: str
    url: str
    data: bytes = field(repr=False)
    width: int
    height: int


@dataclass(frozen=True)
class Shown:
    """An image as the layout shows it: ``width``/``height`` are display pixels."""

    src: str
    alt: str
    width: int
    height: int
    link: str | None = None
    caption: str | None = None
    decorative: bool = False
    asset: Asset | None = None


def display_size(width: int, height: int, limit: int = CONTENT_WIDTH) -> tuple[int, int]:
    if width <= limit:
        return width, height
    return limit, max(1, round(height * limit / width))


def is_local(src: str) -> bool:
    return not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//", src)


class IssueImages:
    """Resolves the images of one issue; ``assets`` holds each local file once."""

    def __init__(self, issue: Issue, base_url: str) -> None:
        self.issue = issue
        self.folder = Path(issue.source_file).resolve().parent
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.assets: dict[str, Asset] = {}  # by source path as written

    def asset(self, src: str, *where: str | int) -> Asset:
        """The local file ``src`` (relative to the issue file), read and hashed once;
        ``where`` is the field naming it, for errors."""
        if src in self.assets:
            return self.assets[src]
        place = f"{self.issue.place(*where)}: {dotted_path(where)}"
        from PIL import Image as PILImage
        from PIL import UnidentifiedImageError

        path = (self.folder / src).resolve()
        try:
            if path.stat().st_size > _MAX_BYTES:
                raise ComposeError(f"{place}: {src}: larger than 20 MB; not an e-mail image")
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise ComposeError(f"{place}: {src}: no such file (paths are relative to "
                               "the issue file)") from None
        except IsADirectoryError:
            raise ComposeError(f"{place}: {src}: is a folder, not an image") from None
        import io

        try:
            with PILImage.open(io.BytesIO(data)) as img:
                fmt, (width, height) = img.format or "", img.size
        except (UnidentifiedImageError, OSError) as exc:
            raise ComposeError(f"{place}: {src}: not an image file ({exc.__class__.__name__})"
                               ) from None
        if fmt not in WEB_FORMATS:
            raise ComposeError(f"{place}: {src}: {fmt or 'unknown'} image; mail clients show "
                               "PNG, JPEG and GIF (convert it)")
        digest = hashlib.sha256(data).hexdigest()[:12]
        stem = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-") or "image"
        name = f"{stem[:40]}.{digest}.{WEB_FORMATS[fmt]}"
        asset = Asset(path, name, f"{self.base_url}{name}", data, width, height)
        self.assets[src] = asset
        return asset

    def show(self, image: Image, *where: str | int) -> Shown:
        """An ``image:``/``hero:`` field as displayed."""
        asset = None
        if image.remote:
            assert image.width and image.height  # the model requires them for remote images
            src, natural = image.src, (image.width, image.height)
        else:
            asset = self.asset(image.src, *where, "src")
            src, natural = asset.url, (asset.width, asset.height)
        width, height = display_size(*natural)
        return Shown(src=src, alt="" if image.decorative else image.alt, width=width,
                     height=height, link=image.link, caption=image.caption,
                     decorative=image.decorative, asset=asset)

    def markdown_resolver(self, *where: str | int) -> Callable[[str], tuple[str, int, int] | None]:
        """For ``markdown.to_html``: a local ``![alt](file)`` -> (url, width, height)."""
        def resolve(src: str) -> tuple[str, int, int] | None:
            if not src or not is_local(src):
                return None
            asset = self.asset(_unquote(src), *where)
            return (asset.url, *display_size(asset.width, asset.height))

        return resolve


def _unquote(src: str) -> str:
    from urllib.parse import unquote

    return unquote(src)
