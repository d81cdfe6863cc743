"""``pbtp-mailer check``: everything ``build`` validates, plus a lint of the issue.

Findings carry the place an editor should look at, ``FILE:LINE``: the
issue's YAML is read again with ``yamlsource.load_located`` so a warning on
``preheader`` points at the preheader's line. Findings about the composed
HTML point at the line of the issue where the offending text or URL is
written (found by searching the file), else at ``layout:`` when the layout
produced it, else at line 1. Only ``online=True`` touches the network.

Codes and levels are listed in docs/editor.md; ``CheckReport.exit_code``:
0 clean, 1 warnings only, 2 errors (or any warning with ``strict``).
"""

from __future__ import annotations

import datetime as dt
import html as _html
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from .build import GMAIL_CLIP_BUDGET, sample_personal
from .compose.layouts import SLOT_PREFIX, SLOT_SUFFIX
from .config import Config
from .errors import IssueError, MailerError
from .htmlcheck import heading_levels, heading_problems, text_contrasts
from .issue import Issue, load_issue
from .yamlsource import Located, load_located

__all__ = ["Finding", "CheckReport", "check_issue", "config_placeholders", "CODES"]

#: every code ``check`` can report, with its level (see docs/editor.md)
CODES = {
    "invalid": "error", "compose": "error",
    "html-size": "warning", "img-alt": "warning", "img-size": "warning", "img-http": "warning",
    "link-malformed": "warning", "link-http": "warning", "link-placeholder": "warning",
    "link-broken": "warning",
    "preheader-missing": "warning", "preheader-length": "warning", "subject-length": "warning",
    "unsubscribe-missing": "warning", "postal-address-missing": "warning",
    "ref-no-doi": "warning", "ref-doi-malformed": "warning", "ref-pmid-malformed": "warning",
    "ref-id-in-citation": "warning", "ref-duplicate": "warning",
    "heading-order": "warning", "contrast": "warning", "content-todo": "warning",
    "schedule-past": "warning", "schedule": "error", "config-placeholder": "warning",
}

PREHEADER_RANGE = (40, 100)
SUBJECT_MAX = 78
_PLACEHOLDER_HOST = re.compile(
    r"(?:^|\.)(?:example\.(?:org|com|net)|example|invalid|test|localhost)$")
_PLACEHOLDER_TEXT = re.compile(r"placeholder|lorem ipsum|changeme|\bTODO\b|example street",
                               re.I)
_HOST_OK = re.compile(r"^(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_][\w-]*[^\W_]\.?$"
                      r"|^\d{1,3}(?:\.\d{1,3}){3}$|^\[[0-9a-f:.]+\]$|^localhost$")
_DOI_BAD_END = re.compile(r"[.,;:\]]$")
_TODO = re.compile(r"\bTODO\b")
_NEWSLETTER_KEYS = ("from", "reply_to", "postal_address", "web_base_url", "archive_url",
                    "unsubscribe_base_url", "unsubscribe_mailto", "list_id", "message_id_domain")


@dataclass(frozen=True, slots=True)
class Finding:
    level: str  # "error" or "warning"
    place: str  # FILE:LINE
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.place}: {self.level}: {self.message} [{self.code}]"


@dataclass
class CheckReport:
    file: str
    findings: list[Finding] = field(default_factory=list)
    strict: bool = False

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 2
        return 1 if self.warnings else 0

    def strictly(self) -> CheckReport:
        """The report with every warning turned into an error (``--strict``)."""
        return CheckReport(self.file, [replace(f, level="error") for f in self.findings], True)

    def summary(self) -> str:
        if not self.findings:
            return f"{self.file}: no problems found"
        e, w = len(self.errors), len(self.warnings)
        return (f"{self.file}: {e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"
                + (" (--strict: warnings count as errors)" if self.strict else ""))

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "strict": self.strict, "exit_code": self.exit_code,
                "errors": len(self.errors), "warnings": len(self.warnings),
                "findings": [asdict(f) for f in self.findings]}


class _Places:
    """``FILE:LINE`` of a field, or of the first line where some text is written."""

    def __init__(self, file: str, text: str, located: Located) -> None:
        self.file = file
        self.located = located
        self.lines = text.splitlines()

    def at(self, *path: str | int) -> str:
        return f"{self.file}:{self.located.place(tuple(path))[0]}"

    def layout(self) -> str:
        return self.at("layout") if ("layout",) in self.located.values else f"{self.file}:1"

    def find(self, snippet: str, default: str | None = None) -> str:
        candidates = [c.strip() for c in dict.fromkeys(
            (snippet, _html.unescape(snippet), unquote(snippet))) if len(c.strip()) >= 3]
        for comments in (False, True):  # a '#' line may be a comment or a Markdown heading
            for n, line in enumerate(self.lines, 1):
                if line.lstrip().startswith("#") != comments:
                    continue
                if any(c in line for c in candidates):
                    return f"{self.file}:{n}"
        return default or f"{self.file}:1"


def _line_of(place: str) -> int:
    try:
        return int(place.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


def check_issue(path: str | os.PathLike[str], config: Config, *,
                now: dt.datetime | None = None, online: bool = False,
                fetch: Callable[[list[str]], dict[str, str | None]] | None = None) -> CheckReport:
    """Validate, compose and lint one issue file. ``fetch`` (tests) replaces the
    online link checker: it maps each URL to an error text, or None when fine."""
    file = str(path)
    report = CheckReport(file)
    out = report.findings
    try:
        issue = load_issue(Path(path))
    except IssueError as exc:
        for p in exc.problems:
            msg = f"{p.path}: {p.message}" if p.path else p.message
            out.append(Finding("error", f"{p.file}:{p.line}", "invalid", msg))
        out.extend(config_placeholders(config))
        return report
    text = Path(path).read_bytes().decode("utf-8-sig")
    places = _Places(file, text, load_located(text, file))
    out.extend(_content_todos(places))
    out.extend(_lengths(issue, places))
    out.extend(_references(issue, places))
    out.extend(_schedule(issue, config, places, now or dt.datetime.now(dt.UTC)))
    try:
        from .compose import compose
        from .message import MessageTemplate

        rendition = compose(issue, config, web=False)
        MessageTemplate(rendition, config.newsletter).render(sample_personal(config))
    except MailerError as exc:
        out.append(Finding("error", places.layout(), "compose", str(exc)))
    else:
        out.extend(_html_findings(rendition.html, rendition.text, issue, config, places))
        if online:
            out.extend(_online(rendition.html, places, fetch))
    out.extend(config_placeholders(config))
    issue_first = [f for f in out if f.place.startswith(file + ":")]
    others = [f for f in out if not f.place.startswith(file + ":")]
    report.findings = sorted(issue_first, key=lambda f: (_line_of(f.place), f.code)) + others
    return report


def _content_todos(places: _Places) -> Iterable[Finding]:
    for key, value in _strings(places.located.data, ()):
        if _TODO.search(value):
            yield Finding("warning", places.at(*key), "content-todo",
                          f"{_dotted(key)}: still says TODO")


def _strings(data: Any, path: tuple[str | int, ...]) -> Iterable[tuple[tuple[str | int, ...], str]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _strings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _strings(v, (*path, i))
    elif isinstance(data, str):
        yield path, data


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _lengths(issue: Issue, places: _Places) -> Iterable[Finding]:
    n = len(issue.subject)
    if n > SUBJECT_MAX:
        yield Finding("warning", places.at("subject"), "subject-length",
                      f"subject: {n} characters; inboxes cut it near {SUBJECT_MAX}")
    n = len(issue.preheader)
    lo, hi = PREHEADER_RANGE
    if not lo <= n <= hi:
        yield Finding("warning", places.at("preheader"), "preheader-length",
                      f"preheader: {n} characters; aim for {lo}-{hi}")


def _references(issue: Issue, places: _Places) -> Iterable[Finding]:
    for i, article in enumerate(issue.articles):
        seen: dict[str, int] = {}
        for j, ref in enumerate(article.references):
            where = ("articles", i, "references", j)
            name = f"articles[{i}].references[{j}]"
            if not ref.doi:
                hint = (": the url is a doi.org link, put the DOI itself in 'doi'"
                        if ref.url and "doi.org/" in ref.url else "; add one if the work has it")
                yield Finding("warning", places.at(*where), "ref-no-doi",
                              f"{name}: no DOI{hint}")
            else:
                why = _doi_problem(ref.doi)
                if why:
                    yield Finding("warning", places.at(*where, "doi"), "ref-doi-malformed",
                                  f"{name}.doi: {ref.doi!r} {why}")
            for key, value in (("pmid", ref.pmid), ("pmcid", ref.pmcid)):
                digits = (value or "").removeprefix("PMC")
                if value and (digits.startswith("0") or len(digits) > 8):
                    yield Finding("warning", places.at(*where, key), "ref-pmid-malformed",
                                  f"{name}.{key}: {value!r} is not a real "
                                  f"{'PubMed' if key == 'pmid' else 'PubMed Central'} ID "
                                  "(leading zero or more than 8 digits)")
            if re.search(r"\bdoi:\s*10\.|doi\.org/|\bPMID:?\s*\d", ref.citation, re.I):
                yield Finding("warning", places.at(*where, "citation"), "ref-id-in-citation",
                              f"{name}.citation: has a DOI or PMID in its text; put it in "
                              "'doi' or 'pmid' so it is linked (and not printed twice)")
            keys = [f"doi:{(ref.doi or '').lower()}", f"pmid:{ref.pmid or ''}",
                    "cite:" + re.sub(r"\W+", " ", ref.citation).strip().lower()]
            for key in keys:
                if key.split(":", 1)[1] and key in seen:
                    first = seen[key]
                    yield Finding("warning", places.at(*where), "ref-duplicate",
                                  f"{name}: same {key.split(':')[0].replace('cite', 'citation')}"
                                  f" as reference {first + 1} "
                                  f"(line {_line_of(places.at(*where[:-1], first))})")
                    break
            for key in keys:
                if key.split(":", 1)[1]:
                    seen.setdefault(key, j)


def _doi_problem(doi: str) -> str | None:
    if _DOI_BAD_END.search(doi):
        return "ends with punctuation copied from the citation"
    if doi.endswith(")") and doi.count("(") < doi.count(")"):
        return "ends with an unmatched ')'"
    if re.search(r'[<>"{}|\\^`]', doi):
        return "contains a character DOIs never have"
    if "%2f" in doi.lower():
        return "is URL-encoded; write it as shown on the paper"
    return None


def _schedule(issue: Issue, config: Config, places: _Places,
              now: dt.datetime) -> Iterable[Finding]:
    if issue.schedule is None:
        return
    import importlib

    try:  # the scheduler's own rule when it is there
        problems_fn = getattr(importlib.import_module(f"{__package__}.schedule"),
                              "schedule_problems", None)
    except ImportError:
        problems_fn = None
    if problems_fn is not None:
        try:
            found = list(problems_fn(issue, config, now))
        except TypeError:  # another signature than we know: use our own rule
            found = None
        if found is not None:
            for p in found:
                prob = getattr(p, "problem", None)
                level = "error" if getattr(p, "severity", "warning") == "error" else "warning"
                if prob is not None:
                    msg = f"{prob.path}: {prob.message}" if prob.path else prob.message
                    place = f"{places.file}:{prob.line}"
                else:
                    msg, place = str(p), places.at("schedule", "send_at")
                yield Finding(level, place, "schedule-past" if level == "warning"
                              else "schedule", msg)
            return
    send_at = issue.schedule.send_at
    if send_at.tzinfo is None:
        send_at = send_at.replace(tzinfo=ZoneInfo(config.newsletter.timezone))
    if send_at < now:
        yield Finding("warning", places.at("schedule", "send_at"), "schedule-past",
                      f"schedule.send_at: {send_at.isoformat()} is in the past; cron would "
                      "send the issue at once")


def config_placeholders(config: Config) -> list[Finding]:
    """Example hosts and placeholder text left in [newsletter] (the shipped config has them)."""
    raw = config.raw.get("newsletter", {}) if isinstance(config.raw, dict) else {}
    file = _shown(config.path) if config.path else "config"
    lines = config.path.read_text(encoding="utf-8").splitlines() if config.path else []
    out = []
    for key in _NEWSLETTER_KEYS:
        value = raw.get(key)
        if not isinstance(value, str):
            continue
        why = None
        for host in _hosts_in(value):
            if _PLACEHOLDER_HOST.search(host):
                why = f"uses the placeholder host {host}"
                break
        m = _PLACEHOLDER_TEXT.search(value)
        if why is None and m:
            why = f"contains {m.group(0)!r}"
        if why:
            out.append(Finding("warning", f"{file}:{_toml_line(lines, 'newsletter', key)}",
                               "config-placeholder",
                               f"[newsletter] {key}: {why}; set the real value before sending"))
    return out


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _hosts_in(value: str) -> list[str]:
    hosts = []
    for m in re.finditer(r"(?:https?://|@|<)([A-Za-z0-9.-]+)", value):
        hosts.append(m.group(1).lower().rstrip("."))
    if re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}", value):
        hosts.append(value.lower())
    return hosts


def _toml_line(lines: list[str], table: str, key: str) -> int:
    current = ""
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            current = s.strip("[]").strip()
        elif current == table and re.match(rf'^{re.escape(key)}\s*=|^"{re.escape(key)}"\s*=', s):
            return n
    return 1


def _html_findings(html: str, text: str, issue: Issue, config: Config,
                   places: _Places) -> Iterable[Finding]:
    import lxml.html

    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BUDGET:
        yield Finding("warning", f"{places.file}:1", "html-size",
                      f"HTML is {size:,} bytes; Gmail clips messages near 102 KB "
                      f"(budget {GMAIL_CLIP_BUDGET:,}): shorten or split the issue")
    root = lxml.html.document_fromstring(html)
    layout = f"layout '{issue.layout}'"
    body = root.body
    first = body[0] if len(body) else None
    shown = " ".join(first.text_content().split()) if first is not None else ""
    if shown != " ".join(issue.preheader.split()):
        yield Finding("warning", places.at("preheader"), "preheader-missing",
                      f"preheader: {layout} does not put it first in the body "
                      "(add <mj-preview>), so inboxes show other text")
    unsub = f"{SLOT_PREFIX}unsubscribe_url{SLOT_SUFFIX}"
    parts = [name for name, ok in (
        ("HTML", any(unsub in (a.get("href") or "") for a in root.iter("a"))),
        ("plain-text", unsub in text)) if not ok]
    if parts:
        yield Finding("warning", places.layout(), "unsubscribe-missing",
                      f"{layout}: no unsubscribe link in the {' and '.join(parts)} part "
                      "(required by Gmail, Yahoo and CAN-SPAM)")
    address = " ".join(config.newsletter.postal_address.split())
    parts = [name for name, ok in (
        ("HTML", address in " ".join(root.text_content().split())),
        ("plain-text", address in " ".join(text.split()))) if not ok]
    if parts:
        yield Finding("warning", places.layout(), "postal-address-missing",
                      f"{layout}: the postal address is missing from the "
                      f"{' and '.join(parts)} part (required by CAN-SPAM)")
    yield from _links_and_images(root, config, places)
    for heading, why in heading_problems(heading_levels(root)):
        shown_h = f"heading {heading[:60]!r}: " if heading else ""
        yield Finding("warning", places.find(heading, places.layout()) if heading
                      else places.layout(), "heading-order", f"{shown_h}{why}")
    low: dict[tuple[Any, ...], list[Any]] = {}
    for item in text_contrasts(root):
        if item.ratio < item.minimum:
            low.setdefault((item.fg, item.bg, item.minimum), []).append(item)
    for (fg, bg, minimum), items in low.items():
        example = items[0]
        more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
        yield Finding("warning", places.find(example.text, places.layout()), "contrast",
                      f"text {example.text[:40]!r}{more}: {_hex(fg)} on {_hex(bg)} has "
                      f"contrast {example.ratio:.2f}:1, below {minimum:g}:1")


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _config_url(url: str, config: Config) -> bool:
    nl = config.newsletter
    return any(base and url.startswith(base) for base in
               (nl.archive_url, nl.web_base_url, nl.unsubscribe_base_url))


def _links_and_images(root: Any, config: Config, places: _Places) -> Iterable[Finding]:
    seen: set[tuple[str, str]] = set()

    def once(code: str, url: str) -> bool:
        if (code, url) in seen:
            return False
        seen.add((code, url))
        return True

    for a in root.iter("a"):
        href = (a.get("href") or "").strip()
        if SLOT_PREFIX in href:
            continue
        where = places.find(href, places.layout())
        label = " ".join(a.text_content().split())[:40]
        why = _malformed(href)
        if why:
            if once("link-malformed", href):
                yield Finding("warning", where, "link-malformed",
                              f"link {label!r}: {href!r} {why}")
            continue
        parts = urlsplit(href)
        if parts.scheme == "http" and once("link-http", href):
            yield Finding("warning", where, "link-http",
                          f"link {label!r}: {href} is http:, use https:")
        host = (parts.hostname or href.partition("@")[2]).lower()
        if _PLACEHOLDER_HOST.search(host) and not _config_url(href, config) \
                and once("link-placeholder", href):
            yield Finding("warning", where, "link-placeholder",
                          f"link {label!r}: {href} points at the placeholder host {host}")
    for img in root.iter("img"):
        src = (img.get("src") or "").strip()
        where = places.find(src, places.layout())
        alt = img.get("alt")
        from_issue = where != places.layout() and where != f"{places.file}:1"
        if alt is None or (not alt.strip() and from_issue):
            yield Finding("warning", where, "img-alt",
                          f"image {src}: no alt text (say what it shows; "
                          "Outlook and Thunderbird block images by default)")
        if not img.get("width") or not img.get("height"):
            yield Finding("warning", where, "img-size",
                          f"image {src}: no width or height (clients show it at full size "
                          "or collapse it while loading)")
        if src.startswith("http:"):
            yield Finding("warning", where, "img-http",
                          f"image {src} is hosted over http:; clients block or warn")
        elif host_is_placeholder(src):
            yield Finding("warning", where, "link-placeholder",
                          f"image {src} points at a placeholder host")


def host_is_placeholder(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return bool(host) and bool(_PLACEHOLDER_HOST.search(host))


def _malformed(href: str) -> str | None:
    if not href:
        return "is empty"
    if re.search(r"\s", href):
        return "contains a space"
    parts = urlsplit(href)
    scheme = parts.scheme.lower()
    if scheme == "mailto":
        return None if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", unquote(parts.path)) \
            else "is not a valid mailto: address"
    if scheme == "tel":
        return None
    if scheme not in ("http", "https"):
        if not scheme:
            return "has no https:// (links in e-mail must be absolute)"
        return f"has an unknown scheme {scheme!r}"
    host = parts.hostname or ""
    if not host:
        return "has no host"
    if not _HOST_OK.match(unquote(host)):
        return f"has an invalid host {host!r}"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "has an invalid port"
    return None


def _online(html: str, places: _Places,
            fetch: Callable[[list[str]], dict[str, str | None]] | None) -> Iterable[Finding]:
    import lxml.html

    root = lxml.html.document_fromstring(html)
    urls: list[str] = []
    for el, attr in [(a, "href") for a in root.iter("a")] + [(i, "src") for i in root.iter("img")]:
        url = (el.get(attr) or "").strip()
        if (url.startswith(("http://", "https://")) and SLOT_PREFIX not in url
                and not _malformed(url) and not host_is_placeholder(url) and url not in urls):
            urls.append(url)
    results = (fetch or fetch_urls)(urls[:MAX_ONLINE_URLS])
    for url in urls[:MAX_ONLINE_URLS]:
        error = results.get(url)
        if error:
            yield Finding("warning", places.find(url, places.layout()), "link-broken",
                          f"{url}: {error}")


MAX_ONLINE_URLS = 200


def fetch_urls(urls: list[str], *, timeout: float = 10.0, workers: int = 8,
               transport: Any = None) -> dict[str, str | None]:
    """HEAD (then GET when HEAD is refused) each URL; an error text per broken one."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    headers = {"User-Agent": "pbtp-mailer-check/1 (link check)"}
    with httpx.Client(follow_redirects=True, timeout=timeout, headers=headers,
                      transport=transport, max_redirects=5) as client:
        def one(url: str) -> str | None:
            try:
                r = client.head(url)
                if r.status_code in (403, 405, 501):
                    r = client.get(url)
            except httpx.HTTPError as exc:
                return f"unreachable ({type(exc).__name__}: {exc})"
            return f"HTTP {r.status_code}" if r.status_code >= 400 else None

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(urls) or 1))) as pool:
            return dict(zip(urls, pool.map(one, urls), strict=True))
