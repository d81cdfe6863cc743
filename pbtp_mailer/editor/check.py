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
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from pbtp_mailer.compose.build import GMAIL_CLIP_BUDGET, sample_personal
from pbtp_mailer.compose.layouts import SLOT_PREFIX, SLOT_SUFFIX
from pbtp_mailer.config import Config
from pbtp_mailer.editor.htmlcheck import (
    MAX_ONLINE_URLS,
    fetch_urls,
    html_problems,
    is_placeholder_host,
    web_urls,
)
from pbtp_mailer.editor.imagecheck import decorative_srcs, image_findings, image_places
from pbtp_mailer.errors import IssueError, MailerError
from pbtp_mailer.issue.model import Issue, load_issue
from pbtp_mailer.issue.yamlsource import Located, dotted_path, load_located

__all__ = ["Finding", "CheckReport", "check_issue", "config_placeholders", "fetch_urls",
           "CODES"]

#: every code ``check`` can report, with its level (see docs/editor.md)
CODES = {
    "invalid": "error", "compose": "error",
    "html-size": "warning", "img-alt": "warning", "img-size": "warning", "img-http": "warning",
    "img-bytes": "warning", "img-wide": "warning", "img-unpublished": "warning",
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
_PLACEHOLDER_TEXT = re.compile(r"placeholder|lorem ipsum|changeme|\bTODO\b|example street",
                               re.I)
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
            (snippet, _html.unescape(snippet), unquote(snippet),
             re.sub(r"^https://(?=www\.)", "", snippet))) if len(c.strip()) >= 3]
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
        from pbtp_mailer.compose.cache import compose_cached
        from pbtp_mailer.compose.message import MessageTemplate

        rendition = compose_cached(issue, config, web=False)  # what send will use
        MessageTemplate(rendition, config.newsletter).render(sample_personal(config))
    except MailerError as exc:
        out.append(Finding("error", places.layout(), "compose", str(exc)))
    else:
        out.extend(_html_findings(rendition.html, rendition.text, issue, config, places,
                                  image_places(issue, rendition.assets, places),
                                  decorative_srcs(issue, rendition.assets)))
        out.extend(Finding("warning", *found) for found in
                   image_findings(issue, rendition.assets, config, places, online, fetch))
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
                          f"{dotted_path(key)}: still says TODO")


def _strings(data: Any, path: tuple[str | int, ...]) -> Iterable[tuple[tuple[str | int, ...], str]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _strings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _strings(v, (*path, i))
    elif isinstance(data, str):
        yield path, data


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
        problems_fn = getattr(importlib.import_module("pbtp_mailer.schedule.state"),
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
            if is_placeholder_host(host):
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
                   places: _Places, images: dict[str, str],
                   decorative: set[str]) -> Iterable[Finding]:
    problems = html_problems(
        html, text, preheader=issue.preheader, postal_address=config.newsletter.postal_address,
        unsubscribe=f"{SLOT_PREFIX}unsubscribe_url{SLOT_SUFFIX}", layout=issue.layout,
        budget=GMAIL_CLIP_BUDGET, skip=lambda url: SLOT_PREFIX in url)
    for p in problems:
        if p.code == "link-placeholder" and _config_url(p.anchor, config):
            continue  # config-placeholder reports the config's own URLs once
        if p.field == "preheader":
            where = places.at("preheader")
        elif p.field == "top":
            where = f"{places.file}:1"
        elif p.anchor in images:  # a local image, named by its published URL
            where = images[p.anchor]
        else:
            where = places.find(p.anchor, places.layout()) if p.anchor else places.layout()
        if p.empty_alt and (where in (places.layout(), f"{places.file}:1")
                            or p.anchor in decorative):
            continue  # an empty alt in the layout, or decorative: true, marks decoration
        yield Finding("warning", where, p.code, p.message)


def _config_url(url: str, config: Config) -> bool:
    nl = config.newsletter
    return any(base and url.startswith(base) for base in
               (nl.archive_url, nl.web_base_url, nl.unsubscribe_base_url))


def _online(html: str, places: _Places,
            fetch: Callable[[list[str]], dict[str, str | None]] | None) -> Iterable[Finding]:
    import lxml.html

    urls = web_urls(lxml.html.document_fromstring(html), skip=lambda u: SLOT_PREFIX in u)
    urls = urls[:MAX_ONLINE_URLS]
    results = (fetch or fetch_urls)(urls)
    for url in urls:
        error = results.get(url)
        if error:
            yield Finding("warning", places.find(url, places.layout()), "link-broken",
                          f"{url}: {error}")
