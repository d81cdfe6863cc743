"""The newsletter issue: a YAML file validated into an ``Issue``.

``load_issue(path)`` reports *every* problem of an invalid file as
``FILE:LINE:COL: field.path: message`` (an ``IssueError``); unknown keys are
errors so that typos are caught. Content fields are Markdown and are data:
nothing typed here is ever evaluated as a template.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from pbtp_mailer.errors import IssueError, Problem
from pbtp_mailer.issue.yamlsource import Located, dotted_path, load_located

__all__ = [
    "Byline",
    "Reference",
    "Image",
    "Article",
    "Brief",
    "Briefs",
    "ReadMore",
    "Schedule",
    "Issue",
    "load_issue",
    "parse_issue",
    "utf8_place",
    "issue_json_schema",
]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\r\n\x00\u2028\u2029\x85]")


def _one_line(value: str) -> str:
    if _LINE_BREAKS.search(value):
        raise ValueError("must be a single line (CR, LF or NUL found)")
    if _CONTROL.search(value):
        raise ValueError("contains a control character")
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _header_text(value: str) -> str:
    """A subject or preheader: RFC 2047 encoded-words in it must decode to one clean line."""
    if "=?" in value and "?=" in value:
        from email.header import decode_header

        try:
            decoded = "".join(p.decode(c or "ascii", "replace") if isinstance(p, bytes) else p
                              for p, c in decode_header(value))
        except Exception:  # noqa: BLE001 - any malformed encoded-word is refused
            raise ValueError("malformed encoded-word (=?charset?Q/B?...?=); write the text "
                             "itself, it is encoded when sent") from None
        if _LINE_BREAKS.search(decoded) or _CONTROL.search(decoded):
            raise ValueError("an encoded-word (=?...?=) hides a line break or control "
                             "character")
    return value


def _markdown(value: str) -> str:
    if "\x00" in value or _CONTROL.search(value.replace("\t", "").replace("\n", "")
                                         .replace("\r", "")):
        raise ValueError("contains a control character")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _https_url(value: str) -> str:
    value = _one_line(value)
    if not re.match(r"^https?://[^\s/$.?#][^\s]*$", value):
        raise ValueError(f"not a valid http(s) URL: {value!r}")
    return value


def _plausible_time(value: dt.datetime) -> dt.datetime:
    # far years overflow when converted to UTC (year 9999 at -05:00)
    if not 1970 <= value.year <= 9000:
        raise ValueError("the year must be between 1970 and 9000")
    return value


Line = Annotated[str, AfterValidator(_one_line)]
Markdown = Annotated[str, AfterValidator(_markdown)]
SubjectLine = Annotated[Line, StringConstraints(max_length=998), AfterValidator(_header_text)]
Url = Annotated[str, AfterValidator(_https_url)]
Doi = Annotated[str, StringConstraints(pattern=r"^10\.\d{4,9}/[^\s]+$")]
Pmid = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")]
Pmcid = Annotated[str, StringConstraints(pattern=r"^PMC[0-9]{1,9}$")]
IssueId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
LayoutName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Byline(_Model):
    """Who wrote an article."""

    name: Line = Field(description="Author's name, e.g. 'Isabelle Bedrosian'.")
    credentials: Line | None = Field(None, description="Post-nominal letters, e.g. 'MD'.")
    titles: list[Line] = Field(default_factory=list, description="Positions, one per line.")
    affiliation: Line | None = Field(None, description="Institution.")


class Reference(_Model):
    """One cited work. Linked by its DOI; PubMed/PMC links when PMID/PMCID are given."""

    citation: Line = Field(description="The citation text, without the DOI/PMID part.")
    doi: Doi | None = Field(None, description="DOI such as '10.1200/JCO.22.02553' (no URL prefix).")
    url: Url | None = Field(None, description="Link for works without a DOI.")
    pmid: Pmid | None = Field(None, description="PubMed ID (digits).")
    pmcid: Pmcid | None = Field(None, description="PubMed Central ID, e.g. 'PMC6360134'.")
    note: Line | None = Field(None, description="Extra note, e.g. an erratum or 'Epub ...'.")

    @property
    def link(self) -> str | None:
        if self.doi:
            return f"https://doi.org/{self.doi}"
        return self.url

    @property
    def pubmed_url(self) -> str | None:
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/" if self.pmid else None

    @property
    def pmc_url(self) -> str | None:
        return f"https://www.ncbi.nlm.nih.gov/pmc/articles/{self.pmcid}/" if self.pmcid else None


def _image_src(value: str) -> str:
    value = _one_line(value)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//", value):
        if not re.match(r"^https?://[^\s/$.?#][^\s]*$", value, re.I):
            raise ValueError("must be an https:// URL or a file path relative to the issue file")
    elif value.startswith(("/", "\\")) or "\\" in value:
        raise ValueError("a local image is a path relative to the issue file, with '/' "
                         "(such as 'images/figure-1.png')")
    return value


ImageSrc = Annotated[str, AfterValidator(_image_src)]
Pixels = Annotated[int, Field(gt=0, le=20_000)]


class Image(_Model):
    """A picture: a file next to the issue (copied and hashed at build) or an https URL."""

    src: ImageSrc = Field(description="An https:// URL, or a path relative to the issue file "
                          "('images/figure-1.png').")
    alt: str = Field(description="What the image shows, for readers who cannot see it. "
                     "Empty (\"\") only with decorative: true.")
    decorative: bool = Field(False, description="True for an image that carries no "
                             "information; its alt must then be empty.")
    width: Pixels | None = Field(None, description="Pixel width of the file. Read from local "
                                 "files; required for remote images.")
    height: Pixels | None = Field(None, description="Pixel height of the file. Read from local "
                                  "files; required for remote images.")
    link: Url | None = Field(None, description="Makes the image a link.")
    caption: Line | None = Field(None, description="Shown under the image.")

    @property
    def remote(self) -> bool:
        return bool(re.match(r"^https?://", self.src, re.I))

    @model_validator(mode="after")
    def _consistent(self) -> Image:
        if _CONTROL.search(self.alt) or _LINE_BREAKS.search(self.alt):
            raise ValueError("alt: must be a single line without control characters")
        if self.decorative and self.alt.strip():
            raise ValueError("alt: a decorative image has an empty alt (\"\"); drop "
                             "decorative: true if the image carries information")
        if not self.decorative and not self.alt.strip():
            raise ValueError("alt: say what the image shows, or set decorative: true")
        if self.decorative and self.link:
            raise ValueError("link: a linked image needs alt text (it names the link), "
                             "so it cannot be decorative")
        if self.remote and (self.width is None or self.height is None):
            raise ValueError("width and height are required for a remote image (Outlook "
                             "and mobile clients need them); they are read from local files")
        return self


class Article(_Model):
    """One article of the issue."""

    kicker: Line | None = Field(None, description="Short label above the title.")
    title: Line = Field(description="Article title (a level-2 heading).")
    byline: Byline | None = None
    image: Image | None = Field(None, description="Shown after the byline, before the body.")
    body: Markdown = Field(description="Markdown. '#' headings render below the title's level.")
    references: list[Reference] = Field(default_factory=list)


class Brief(_Model):
    """One short news item."""

    title: Line = Field(description="The brief's title.")
    text: Markdown = Field(description="One or two sentences, in Markdown.")
    url: Url | None = Field(None, description="Where to read more (the title links there).")


class Briefs(_Model):
    """Short news items, shown compactly after the articles."""

    heading: Line = Field("News briefs", description="Heading of the section.")
    items: list[Brief] = Field(min_length=1)


class ReadMore(_Model):
    """The closing block pointing readers at more news."""

    heading: Line = Field(description="E.g. 'Read more news briefs from this issue'.")
    text: Markdown | None = Field(None, description="Optional Markdown under the heading.")
    link_text: Line = Field("Read the news briefs", description="Text of the link.")
    url: Url | None = Field(None, description="Defaults to the configured archive URL.")


class Schedule(_Model):
    """When and to whom cron sends the issue (see `pbtp-mailer dispatch-due`)."""

    send_at: Annotated[dt.datetime, AfterValidator(_plausible_time)] = Field(
        description="ISO 8601; with an offset, or local time in the configured time zone."
    )
    lists: list[Line] = Field(min_length=1, description="Subscriber lists to send to.")
    sender: Line | None = Field(None, description="Sender name or URL (default: default_sender).")


class Issue(_Model):
    """One newsletter issue."""

    id: IssueId = Field(description="Stable identifier, e.g. '2024-03'. Used in paths and the ledger.")
    masthead: Line = Field(description="Masthead text, e.g. 'E-Newsletter'.")
    date: dt.date = Field(description="Issue date (YYYY-MM-DD).")
    date_label: Line | None = Field(None, description="Shown date, default 'March 2024'.")
    title: Line = Field(description="The issue's headline (the one level-1 heading).")
    subject: SubjectLine = Field(
        description="E-mail subject (keep it under 78 characters)."
    )
    preheader: Annotated[Line, StringConstraints(max_length=300)] = Field(
        description="Preview text shown after the subject in inboxes (40-100 characters)."
    )
    layout: LayoutName = Field("default", description="Folder under layouts/.")
    language: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None = (
        Field(None, description="BCP 47 tag; default from the config.")
    )
    hero: Image | None = Field(None, description="A picture under the masthead.")
    articles: list[Article] = Field(min_length=1)
    briefs: Briefs | None = Field(None, description="News briefs after the articles.")
    read_more: ReadMore | None = None
    schedule: Schedule | None = None

    _file: str = PrivateAttr(default="<issue>")
    _positions: dict[tuple[str | int, ...], tuple[int, int]] = PrivateAttr(default_factory=dict)

    @property
    def source_file(self) -> str:
        return self._file

    def place(self, *path: str | int) -> str:
        """``FILE:LINE:COL`` of a field, for errors found after validation."""
        p = tuple(path)
        while p and p not in self._positions:
            p = p[:-1]
        line, col = self._positions.get(p, (1, 1))
        return f"{self._file}:{line}:{col}"

    @property
    def shown_date(self) -> str:
        return self.date_label or self.date.strftime("%B %Y")


_PATTERN_HELP = {
    "doi": "must be a bare DOI such as '10.1200/JCO.22.02553' (no 'https://doi.org/')",
    "pmid": "must be a PubMed ID of digits only, such as '30080730'",
    "pmcid": "must be a PubMed Central ID such as 'PMC6360134'",
    "id": "must be lowercase letters, digits, '.', '_' or '-' (such as '2024-03')",
    "layout": "must be a layout folder name: lowercase letters, digits, '_' or '-'",
    "language": "must be a BCP 47 language tag such as 'en' or 'en-US'",
}

_FRIENDLY = {
    "missing": "field required",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "string_type": "must be a string",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_type": "must be a date (YYYY-MM-DD)",
    "datetime_parsing": "must be an ISO 8601 date-time",
    "datetime_type": "must be an ISO 8601 date-time",
    "datetime_from_date_parsing": "must be an ISO 8601 date-time",
}


def _known_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at ``loc`` (for 'did you mean' on unknown keys)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", {})
        field = fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or ()
        nxt = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nxt is None:
            return []
        current = nxt
    return list(getattr(current, "model_fields", {}))


def _message(err: Any, loc: tuple[Any, ...]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_fields(Issue, loc[:-1])
        near = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else (
            f" (known: {', '.join(known)})" if known else "")
        return f"unknown key{hint}"
    if kind == "string_pattern_mismatch":
        name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
        return _PATTERN_HELP.get(name, f"does not match the pattern {err['ctx']['pattern']}")
    if kind == "too_short" and err.get("ctx", {}).get("min_length") == 1:
        return "must have at least one item"
    if kind in _FRIENDLY:
        return _FRIENDLY[kind]
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return msg[0].lower() + msg[1:] if msg else kind


def _problems_from(exc: ValidationError, located: Located) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        # pydantic puts union members / function names into loc; keep data keys only
        loc = tuple(p for p in err["loc"] if isinstance(p, int) or p in _all_field_names()
                    or err["type"] == "extra_forbidden")
        if err["type"] == "missing":
            line, col = located.place(loc[:-1])
        else:
            line, col = located.place(loc, key=err["type"] == "extra_forbidden")
        problems.append(Problem(located.file, line, col, dotted_path(loc), _message(err, loc)))
    return problems


_FIELD_NAMES: set[str] = set()


def _all_field_names() -> set[str]:
    if not _FIELD_NAMES:
        for m in (Issue, Article, Byline, Reference, ReadMore, Schedule, Image, Brief, Briefs):
            _FIELD_NAMES.update(m.model_fields)
    return _FIELD_NAMES


def parse_issue(text: str, file: str) -> Issue:
    """Validate YAML text; raise ``IssueError`` with every problem found."""
    located = load_located(text, file)
    problems = list(located.problems)
    issue: Issue | None = None
    if located.data is not None:
        if not isinstance(located.data, dict):
            problems.append(Problem(file, 1, 1, "", "the top level must be a mapping of fields"))
        else:
            try:
                issue = Issue.model_validate(located.data)
                issue._file = file
                issue._positions = located.values
            except ValidationError as exc:
                # a value the YAML layer refused (None now) is reported once, by that layer
                refused = {(p.line, p.col) for p in located.problems}
                problems.extend(p for p in _problems_from(exc, located)
                                if (p.line, p.col) not in refused)
    if problems or issue is None:
        problems.sort(key=lambda p: (p.line, p.col or 0))
        raise IssueError(problems)
    return issue


def load_issue(path: str | Path) -> Issue:
    """Read and validate an issue file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise IssueError([Problem(str(p), 1, None, "", "file not found")]) from None
    except IsADirectoryError:
        raise IssueError([Problem(str(p), 1, None, "", "is a directory, not an issue file")]) from None
    except OSError as exc:
        raise IssueError([Problem(str(p), 1, None, "", f"cannot read: {exc.strerror or exc}")]
                         ) from None
    if len(raw) > MAX_ISSUE_BYTES:
        raise IssueError([Problem(str(p), 1, None, "", f"{len(raw):,} bytes: an issue file is "
                                  f"limited to {MAX_ISSUE_BYTES:,}")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = utf8_place(raw, exc.start)
        raise IssueError([Problem(str(p), line, col, "",
                                  f"not UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8")]
                         ) from None
    return parse_issue(text, str(p))


MAX_ISSUE_BYTES = 4_000_000
"""Larger files are refused before parsing (a long issue is about 50 kB)."""


def utf8_place(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte ``offset`` of mostly-UTF-8 ``raw``."""
    start = raw.rfind(b"\n", 0, offset) + 1
    head = raw[start:offset].decode("utf-8", "replace")
    if raw.startswith(b"\xef\xbb\xbf") and start == 0:
        head = head[1:]
    return raw.count(b"\n", 0, offset) + 1, len(head) + 1


def issue_json_schema() -> dict[str, Any]:
    """JSON Schema for editors (``# yaml-language-server: $schema=...``)."""
    schema = Issue.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://pbtp-mailer.example.org/issue.schema.json"
    schema["title"] = "pbtp_mailer newsletter issue"
    return schema

