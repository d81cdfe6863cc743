"""Compose an issue once: Jinja2 -> MJML -> mjml-python -> premailer, plus plain text.

The result, a ``Rendition``, holds the HTML and text with per-recipient
slot markers (see ``layouts.Slots``); ``message.MessageTemplate`` turns it
into bytes per recipient without composing again.

The stages (Jinja2, markdown-it, the text part) are imported when ``compose``
runs, not with this module: ``send`` imports ``Rendition`` (through
``message``) and, when ``cache`` has the rendition, never composes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from markupsafe import Markup

from pbtp_mailer.compose import inline
from pbtp_mailer.compose.images import Asset, IssueImages
from pbtp_mailer.config import Config
from pbtp_mailer.errors import ComposeError
from pbtp_mailer.issue.model import Issue

__all__ = ["Rendition", "compose", "issue_urls", "layout_context"]

T = TypeVar("T")


@dataclass(frozen=True)
class Rendition:
    """An issue composed for e-mail (with slot markers) and for the web (without)."""

    issue_id: str
    subject: str
    preheader: str
    language: str
    html: str
    text: str
    web_html: str | None
    web_url: str
    assets: tuple[Asset, ...] = ()  # local images, published next to the web version
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def issue_urls(issue: Issue, config: Config) -> dict[str, str]:
    archive = config.newsletter.archive_url
    if not archive.endswith("/"):
        archive += "/"
    web = f"{archive}{issue.id}/"
    read_more = issue.read_more.url if issue.read_more and issue.read_more.url else archive
    return {"archive": archive, "web": web, "read_more": read_more or archive}


def _timed(timings: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    result = fn()
    timings[name] = timings.get(name, 0.0) + (time.perf_counter() - t0)
    return result


def compose(issue: Issue, config: Config, *, banner: str | None = None,
            web: bool = True) -> Rendition:
    """Compose ``issue`` with its layout. ``banner`` marks test sends in both parts;
    ``web=False`` skips the browser version (dispatch does not need it)."""
    from pbtp_mailer.compose.layouts import find_layout, known_layouts, render_mjml
    from pbtp_mailer.compose.plaintext import issue_text

    folder = find_layout(issue.layout, config.base_dir)
    if folder is None:
        known = ", ".join(known_layouts(config.base_dir)) or "none found"
        raise ComposeError(f"{issue.place('layout')}: layout: unknown layout "
                           f"'{issue.layout}' (known: {known})")
    nl = config.newsletter
    timings: dict[str, float] = {}
    urls = issue_urls(issue, config)
    lang = issue.language or nl.language

    images = IssueImages(issue, urls["web"])
    content = _timed(timings, "content", lambda: _content(issue, images))

    def context(personal: bool) -> dict[str, object]:
        return _values(issue, config, urls, content, personal=personal, banner=banner)

    def html_for(personal: bool, suffix: str) -> str:
        mjml_src = _timed(timings, "jinja2" + suffix, lambda: render_mjml(folder, context(personal)))
        raw = _timed(timings, "mjml" + suffix,
                     lambda: inline.mjml_to_html(mjml_src, layout=issue.layout))
        raw = inline.fix_preheader(raw)
        return _timed(timings, "premailer" + suffix, lambda: inline.inline_css(raw))

    html = html_for(True, "")
    web_html = html_for(False, " (web)") if web else None
    text = _timed(timings, "text", lambda: issue_text(issue, nl, urls, personal=True,
                                                             banner=banner, layout=folder))
    return Rendition(
        issue_id=issue.id,
        subject=(f"[TEST] {issue.subject}" if banner else issue.subject),
        preheader=issue.preheader,
        language=lang,
        html=html,
        text=text,
        web_html=web_html,
        web_url=urls["web"],
        assets=tuple(images.assets.values()),
        timings=timings,
    )


def layout_context(issue: Issue, config: Config, *, personal: bool,
                   banner: str | None = None) -> dict[str, object]:
    """The values a layout's ``email.mjml.j2`` receives, as ``compose`` builds them
    (for benchmarks and tools that render one stage alone)."""
    urls = issue_urls(issue, config)
    content = _content(issue, IssueImages(issue, urls["web"]))
    return _values(issue, config, urls, content, personal=personal, banner=banner)


def _values(issue: Issue, config: Config, urls: dict[str, str], content: dict[str, object], *,
            personal: bool, banner: str | None) -> dict[str, object]:
    from pbtp_mailer.compose.layouts import Slots

    nl = config.newsletter
    return {**content, "issue": issue, "nl": nl, "lang": issue.language or nl.language,
            "dir": nl.direction, "urls": urls, "personal": personal,
            "banner": banner if personal else None, "slot": Slots()}


def _content(issue: Issue, images: IssueImages) -> dict[str, object]:
    """The issue's Markdown as HTML and its images resolved: the same for every recipient."""
    from pbtp_mailer.compose import markdown

    def md(source: str, *where: str | int) -> Markup:
        return Markup(markdown.to_html(markdown.parse(source, heading_offset=2),
                                       images.markdown_resolver(*where)))

    articles = [
        {"article": a, "body_html": md(a.body, "articles", i, "body"),
         "image": images.show(a.image, "articles", i, "image") if a.image else None}
        for i, a in enumerate(issue.articles)
    ]
    briefs = [
        {"brief": b, "text_html": md(b.text, "briefs", "items", i, "text")}
        for i, b in enumerate(issue.briefs.items)
    ] if issue.briefs else []
    rm = issue.read_more
    return {
        "articles": articles, "briefs": briefs,
        "hero": images.show(issue.hero, "hero") if issue.hero else None,
        "read_more_html": md(rm.text, "read_more", "text") if rm and rm.text else "",
    }


def layouts_root(config: Config) -> Path | None:
    from pbtp_mailer.compose.layouts import find_layout

    folder = find_layout("default", config.base_dir)
    return folder.parent if folder else None
