"""Public pages rendered from Jinja2 templates that a layout can override.

A page ``NAME`` is ``pages/NAME.html.j2`` in the configured layout folder
(``[web] layout``, default ``default``), looked up first in the project's
``layouts/`` and then in the shipped ones, so a program can restyle every
page by copying one file. Templates run with autoescape and StrictUndefined:
anything a visitor typed reaches them as data and is printed, never executed.
``pages/_base.html.j2`` holds the shared frame (light and dark, 320–1024 px).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from pbtp_mailer.compose.layouts import layout_dirs
from pbtp_mailer.errors import ComposeError

if TYPE_CHECKING:
    from pbtp_mailer.config import Newsletter

__all__ = ["PageRenderer", "SECURITY_HEADERS"]

#: sent with every page: never cached, never framed, nothing loaded from elsewhere
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Robots-Tag", "noindex"),
    ("Content-Security-Policy",
     "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
     "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
)


class PageRenderer:
    """Renders ``pages/*.html.j2`` of one layout with the newsletter's common values."""

    def __init__(self, base_dir: Path | None, layout: str = "default",
                 common: Mapping[str, Any] | None = None) -> None:
        folders: list[str] = []
        for root in layout_dirs(base_dir):
            for name in dict.fromkeys((layout, "default")):
                folder = root / name / "pages"
                if folder.is_dir():
                    folders.append(str(folder))
        if not folders:
            raise ComposeError(f"layout {layout!r} has no pages/ folder")
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self._common = dict(common or {})

    @classmethod
    def for_newsletter(cls, base_dir: Path | None, newsletter: Newsletter,
                       layout: str = "default") -> PageRenderer:
        """A renderer whose pages know the site's name, language and direction."""
        return cls(base_dir, layout, {"site": newsletter.name, "language": newsletter.language,
                                      "direction": newsletter.direction})

    def render(self, name: str, **values: Any) -> bytes:
        """The page ``name`` as UTF-8 bytes; a broken template is a ``ComposeError`` with file:line."""
        try:
            template = self._env.get_template(f"{name}.html.j2")
            return template.render(**self._common, **values).encode("utf-8")
        except jinja2.TemplateSyntaxError as exc:
            raise ComposeError(f"{exc.filename}:{exc.lineno}: {exc.message}") from None
        except jinja2.TemplateNotFound:
            raise ComposeError(f"no page template pages/{name}.html.j2 in the layout") from None
        except jinja2.UndefinedError as exc:
            raise ComposeError(f"pages/{name}.html.j2: {exc.message}") from None
