"""``pbtp-mailer archive``: a static web archive of the issues, with an Atom feed.

Output (``site/`` by default), matching the e-mail's "View in browser" link
(``archive_url`` + id + ``/``)::

    index.html          every issue, newest first: date, title, preheader
    feed.xml            Atom (RFC 4287), absolute URLs under archive_url
    <id>/index.html     the browser version of each issue (no per-recipient parts)
    <id>/NAME.HASH.png  its local images (the e-mail loads them from archive_url + id + /)

Pages link to each other relatively (``../index.html``), so the folder can be
served from any path or opened from disk. An issue is in the archive once
the ledger has a dispatch of it with at least one ``sent`` delivery
(``include_all`` takes every valid issue). The database is only read; when
there is none yet, nothing has been sent.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from pbtp_mailer.config import Config
from pbtp_mailer.errors import IssueError, MailerError
from pbtp_mailer.files import atomic_write
from pbtp_mailer.issue.model import Issue, load_issue

__all__ = ["ArchiveEntry", "ArchiveResult", "build_archive", "sent_issues", "atom_feed",
           "FEED_NAME"]

FEED_NAME = "feed.xml"
ATOM_NS = "http://www.w3.org/2005/Atom"
_TEMPLATES = Path(__file__).resolve().parents[2] / "layouts" / "archive"


@dataclass(frozen=True)
class ArchiveEntry:
    issue: Issue
    html: str
    sent_at: dt.datetime | None
    updated: dt.datetime
    images: dict[str, bytes] = field(default_factory=dict)  # content-hashed name -> bytes

    @property
    def href(self) -> str:
        return f"{self.issue.id}/index.html"


@dataclass
class ArchiveResult:
    folder: Path
    entries: list[ArchiveEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "FILE: why" for issues left out


def sent_issues(config: Config, issue_ids: Iterable[str]) -> dict[str, dt.datetime]:
    """When each sent issue was first dispatched (only issues with a 'sent' delivery).

    The database is only read, never created or migrated: none yet, or one
    without the ledger's tables, means nothing was sent.
    """
    from pbtp_mailer.store import Store

    store = Store.existing(config)
    if store is None:
        return {}
    with store:
        return store.ledger().first_sent(issue_ids)


def _relative(html: str, archive_url: str, issue_id: str) -> str:
    """Absolute links into the archive become relative (page is ``<id>/index.html``)."""
    base = archive_url if archive_url.endswith("/") else archive_url + "/"

    def sub(m: re.Match[str]) -> str:
        rest = m.group(2)
        if rest == "":
            target = "../index.html"
        elif rest == f"{issue_id}/":
            target = "index.html"
        elif re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}/", rest):
            target = f"../{rest}index.html"
        else:
            return m.group(0)
        return f'{m.group(1)}="{target}"'

    html = html.replace(f'src="{base}{issue_id}/', 'src="')  # its images sit next to it
    return re.sub(r'\b(href)="' + re.escape(base) + r'([^"#?]*)"', sub, html)


def _with_feed_link(html: str, title: str) -> str:
    link = (f'<link rel="alternate" type="application/atom+xml" title="{_attr(title)}" '
            f'href="../{FEED_NAME}">')
    return re.sub(r"</head>", link + "\n</head>", html, count=1, flags=re.I)


def _attr(value: str) -> str:
    import html

    return html.escape(value, quote=True)


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def atom_feed(entries: list[ArchiveEntry], config: Config, *,
              now: dt.datetime | None = None) -> bytes:
    """The Atom document of ``entries`` (newest first), with absolute URLs."""
    nl = config.newsletter
    base = nl.archive_url if nl.archive_url.endswith("/") else nl.archive_url + "/"
    ET.register_namespace("", ATOM_NS)

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", config.newsletter.language)
    el(feed, "id", base)
    el(feed, "title", nl.name)
    updated = max((e.updated for e in entries), default=now or dt.datetime.now(dt.UTC))
    el(feed, "updated", _rfc3339(updated))
    el(feed, "link", rel="self", type="application/atom+xml", href=base + FEED_NAME)
    el(feed, "link", rel="alternate", type="text/html", href=base)
    author = el(feed, "author")
    el(author, "name", nl.name)
    el(feed, "generator", "pbtp-mailer")
    for e in entries:
        entry = el(feed, "entry")
        url = f"{base}{e.issue.id}/"
        el(entry, "id", url)
        el(entry, "title", e.issue.title)
        el(entry, "updated", _rfc3339(e.updated))
        el(entry, "published", _rfc3339(e.sent_at or e.updated))
        el(entry, "link", rel="alternate", type="text/html", href=url)
        el(entry, "summary", e.issue.preheader)
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n"


def _index_template(config: Config) -> jinja2.Template:
    own = config.base_dir / "layouts" / "archive"
    dirs = [str(d) for d in (own, _TEMPLATES) if (d / "index.html.j2").is_file()]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(dirs), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    try:
        return env.get_template("index.html.j2")
    except jinja2.TemplateError as exc:
        raise MailerError(f"archive index template: {exc}") from None


def build_archive(config: Config, out_dir: str | os.PathLike[str] = "site", *,
                  issues_dir: str | os.PathLike[str] | None = None, include_all: bool = False,
                  now: dt.datetime | None = None,
                  sent: Callable[[Config, list[str]], dict[str, dt.datetime]] | None = None,
                  ) -> ArchiveResult:
    """Write the archive of the issues in ``issues_dir`` (default: ``issues/`` by the config)."""
    from pbtp_mailer.compose import compose

    folder = Path(issues_dir) if issues_dir is not None else _near(config.base_dir / "issues")
    if not folder.is_dir():
        raise MailerError(f"{folder}: no such folder of issues")
    result = ArchiveResult(Path(out_dir))
    issues: list[Issue] = []
    for path in sorted(folder.glob("*.yaml"))[:10_000]:
        try:
            issues.append(load_issue(path))
        except IssueError as exc:
            first = exc.problems[0] if exc.problems else None
            result.skipped.append(f"{path}: invalid, left out ({first or 'unknown problem'})")
    seen: dict[str, Issue] = {}
    for issue in issues:
        if issue.id in seen:
            raise MailerError(f"{issue.source_file}: id '{issue.id}' is also the id of "
                              f"{seen[issue.id].source_file}")
        seen[issue.id] = issue
    sent_at = (sent or sent_issues)(config, [i.id for i in issues])
    tz = ZoneInfo(config.newsletter.timezone)
    entries = []
    for issue in issues:
        when = sent_at.get(issue.id)
        if when is None and not include_all:
            continue
        rendition = compose(issue, config, web=True)
        html = _relative(rendition.web_html or "", config.newsletter.archive_url, issue.id)
        html = _with_feed_link(html, config.newsletter.name)
        day = dt.datetime.combine(issue.date, dt.time(0, 0), tzinfo=tz)
        entries.append(ArchiveEntry(issue, html, when, when or day,
                                    {a.name: a.data for a in rendition.assets}))
    entries.sort(key=lambda e: (e.issue.date, e.updated, e.issue.id), reverse=True)
    result.entries = entries

    out = result.folder
    out.mkdir(parents=True, exist_ok=True)
    for e in entries:
        (out / e.issue.id).mkdir(exist_ok=True)
        for name, data in e.images.items():
            _write(out / e.issue.id / name, data)
        _write(out / e.issue.id / "index.html", e.html.encode("utf-8"))
    index = _index_template(config).render(
        nl=config.newsletter, lang=config.newsletter.language, dir=config.newsletter.direction,
        feed_href=FEED_NAME,
        entries=[{"issue": e.issue, "href": e.href, "date_text": e.issue.shown_date}
                 for e in entries])
    _write(out / "index.html", index.encode("utf-8"))
    _write(out / FEED_NAME, atom_feed(entries, config, now=now))
    return result


def _near(path: Path) -> Path:
    """``path`` relative to the working directory when below it (shorter messages)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _write(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically, so a web server never serves half a page."""
    atomic_write(path, data)

