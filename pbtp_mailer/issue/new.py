"""``pbtp-mailer new``: start an issue file from a commented template or the last issue.

From a previous issue the *structure and settings* are kept (masthead,
layout, language, the hero image, how many articles, which have a kicker,
byline, image or references, the news briefs' heading and how many there are,
the read-more heading and link text, the schedule's lists and sender) and
every piece of content becomes a ``TODO`` that ``check`` flags (an image's
file becomes ``images/TODO.png``, which ``check`` reports until it exists).
A schedule is written commented out: a copied ``send_at`` is in the past
and would make cron send the new issue at once. The file starts with the
schema comment so YAML editors complete and check fields.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

from pbtp_mailer.errors import IssueError, MailerError, Problem
from pbtp_mailer.files import atomic_write
from pbtp_mailer.issue.yamlsource import load_located

__all__ = ["new_issue", "issue_template"]

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SCHEMA_NAME = "issue.schema.json"

_SKELETON: dict[str, Any] = {
    "masthead": "E-Newsletter",
    "layout": "default",
    "articles": [{"kicker": "x", "title": "x", "byline": {"name": "x", "credentials": "x",
                                                         "titles": ["x"], "affiliation": "x"},
                  "body": "x", "references": [{"citation": "x"}]}],
    "read_more": {"heading": "Read more news briefs from this issue",
                  "link_text": "Read the news briefs"},
}


def _yaml_str(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def issue_template(issue_id: str, *, previous: dict[str, Any] | None = None,
                   schema_ref: str = f"../docs/{SCHEMA_NAME}",
                   today: dt.date | None = None, source: str | None = None) -> str:
    """The YAML text of a new issue (content TODOs, settings from ``previous``)."""
    prev = previous or _SKELETON
    day = today or dt.date.today()
    origin = f"Started from {source}: structure and settings kept, content cleared." \
        if source else "Started from the template."
    out = [
        f"# yaml-language-server: $schema={schema_ref}",
        "#",
        f"# Newsletter issue {issue_id}. {origin}",
        "# Replace every TODO, then: pbtp-mailer check THIS-FILE ; pbtp-mailer preview THIS-FILE",
        "# Fields: docs/issue-format.md. Markdown fields take **bold**, [links](https://...),",
        "# lists and '#' headings.",
        f"id: {_yaml_str(issue_id)}",
        f"masthead: {_yaml_str(str(prev.get('masthead') or 'E-Newsletter'))}",
        f"date: {day.isoformat()}",
        "# date_label: \"March 2024\"   # how the date is shown; default: month and year",
        "title: \"TODO: the issue's headline\"",
        "# Subject: under 78 characters. Preheader: 40-100 characters, shown after the subject.",
        "subject: \"TODO: subject line\"",
        "preheader: \"TODO: one sentence that makes readers open the issue, "
        "40 to 100 characters.\"",
        f"layout: {_yaml_str(str(prev.get('layout') or 'default'))}",
    ]
    if prev.get("language"):
        out.append(f"language: {_yaml_str(str(prev['language']))}")
    if isinstance(prev.get("hero"), dict):
        out += ["", "hero:"] + _image_lines(prev["hero"], "  ")
    elif previous is None:
        out += ["", "# A picture under the masthead (also 'image:' on an article, same fields):",
                "# hero:", "#   src: images/hero.png   # next to this file, or an https:// URL",
                "#   alt: \"what the picture shows\"", "#   caption: \"optional\""]
    out += ["", "articles:"]
    articles = prev.get("articles") if isinstance(prev.get("articles"), list) else None
    for n, art in enumerate(articles or _SKELETON["articles"], 1):
        out += _article_lines(n, art if isinstance(art, dict) else {})
    out += _briefs_lines(prev.get("briefs"), example=previous is None)
    out += _closing_lines(prev)
    return "\n".join(out) + "\n"


def _article_lines(n: int, art: dict[str, Any]) -> list[str]:
    """One article of the template: TODOs in the shape of the previous issue's article."""
    out = [f"  # Article {n}"]
    first = "  - "
    if art.get("kicker"):
        out.append(f"{first}kicker: \"TODO: short label above the title\"")
        first = "    "
    out.append(f"{first}title: \"TODO: article title\"")
    byline = art.get("byline")
    if isinstance(byline, dict):
        out += ["    byline:", "      name: \"TODO: author's name\""]
        if byline.get("credentials"):
            out.append("      credentials: \"TODO: e.g. MD\"")
        titles = byline.get("titles")
        if isinstance(titles, list) and titles:
            out += ["      titles:"] + ["        - \"TODO: position\""] * len(titles)
        if byline.get("affiliation"):
            out.append("      affiliation: \"TODO: institution\"")
    if isinstance(art.get("image"), dict):
        out += ["    image:"] + _image_lines(art["image"], "      ")
    out += ["    body: |", "      TODO: the article, in Markdown.", "",
            "      A new paragraph after a blank line."]
    if art.get("references"):
        out += ["    references:",
                "      # One per cited work; the DOI (bare, no https://doi.org/) is linked.",
                "      - citation: \"TODO: Authors. Title. Journal. Year;Vol(Issue):pages.\"",
                "        doi: \"10.0000/TODO\"",
                "        # pmid: \"12345678\"",
                "        # pmcid: \"PMC1234567\""]
    return out


def _closing_lines(prev: dict[str, Any]) -> list[str]:
    """``read_more`` and a commented-out ``schedule``, kept from the previous issue."""
    out: list[str] = []
    rm = prev.get("read_more")
    if isinstance(rm, dict):
        out += ["", "read_more:", f"  heading: {_yaml_str(str(rm.get('heading') or 'Read more'))}"]
        if rm.get("link_text"):
            out.append(f"  link_text: {_yaml_str(str(rm['link_text']))}")
        out.append("  # url: \"https://...\"   # default: the configured archive_url")
    sched = prev.get("schedule")
    if isinstance(sched, dict):
        lists: list[Any] = sched["lists"] if isinstance(sched.get("lists"), list) else ["TODO"]
        out += ["", "# Uncomment to let cron send it (pbtp-mailer dispatch-due):", "# schedule:",
                "#   send_at: \"TODO: 2024-03-05T09:00:00\"   # local time (config timezone)",
                "#   lists: [" + ", ".join(_yaml_str(str(x)) for x in lists) + "]"]
        if sched.get("sender"):
            out.append(f"#   sender: {_yaml_str(str(sched['sender']))}")
    return out


def _image_lines(image: dict[str, Any], pad: str) -> list[str]:
    """An image block with its file and texts to replace (decorative stays decorative)."""
    lines = [f"{pad}# A file next to this issue (copied and hashed by build), or an https://",
             f"{pad}# URL with width and height.",
             f"{pad}src: \"images/TODO.png\""]
    if image.get("decorative") is True:
        lines += [f"{pad}alt: \"\"", f"{pad}decorative: true"]
    else:
        lines.append(f"{pad}alt: \"TODO: what the image shows\"")
    if image.get("link"):
        lines.append(f"{pad}link: \"https://TODO.invalid/\"")
    if image.get("caption"):
        lines.append(f"{pad}caption: \"TODO: caption\"")
    return lines


def _briefs_lines(briefs: Any, *, example: bool) -> list[str]:
    """The briefs section: the heading kept, one TODO item per previous item."""
    if not isinstance(briefs, dict):
        return ["", "# News briefs after the articles:", "# briefs:",
                "#   heading: \"News briefs\"", "#   items:",
                "#     - title: \"A short title\"",
                "#       text: \"One or two sentences, in Markdown.\"",
                "#       url: \"https://...\"   # optional: the title links there"] if example else []
    lines = ["", "briefs:", f"  heading: {_yaml_str(str(briefs.get('heading') or 'News briefs'))}",
             "  items:"]
    items = briefs.get("items") if isinstance(briefs.get("items"), list) else [{}]
    for item in items or [{}]:
        lines += ["    - title: \"TODO: brief title\"",
                  "      text: \"TODO: one or two sentences, in Markdown.\""]
        if isinstance(item, dict) and item.get("url"):
            lines.append("      url: \"https://TODO.invalid/\"")
    return lines


def new_issue(issue_id: str, issues_dir: str | os.PathLike[str], *,
              from_file: str | os.PathLike[str] | None = None,
              today: dt.date | None = None) -> Path:
    """Write ``issues_dir/ISSUE_ID.yaml``; never overwrites. Returns the path written."""
    if not _ID.match(issue_id):
        raise MailerError(f"{issue_id!r} is not a valid issue ID: use lowercase letters, "
                          "digits, '.', '_' or '-' (such as '2024-04')")
    folder = Path(issues_dir)
    target = folder / f"{issue_id}.yaml"
    if target.exists():
        raise MailerError(f"{target}: already exists; not overwriting it",
                          hint="pick another ID, or delete the file first")
    previous = None
    if from_file is not None:
        src = Path(from_file)
        try:
            text = src.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            raise IssueError([Problem(str(src), 1, None, "", "file not found")]) from None
        except UnicodeDecodeError:
            raise IssueError([Problem(str(src), 1, None, "", "not UTF-8")]) from None
        located = load_located(text, str(src))
        if located.problems:
            raise IssueError(located.problems)
        if not isinstance(located.data, dict):
            raise IssueError([Problem(str(src), 1, 1, "", "the top level must be a mapping")])
        previous = located.data
    try:
        schema_ref = _schema_ref(folder)
        body = issue_template(issue_id, previous=previous, schema_ref=schema_ref, today=today,
                              source=str(from_file) if from_file is not None else None)
        folder.mkdir(parents=True, exist_ok=True)
        # never overwrite, not even a file created meanwhile; never leave half a file
        atomic_write(target, body.encode("utf-8"), overwrite=False)
    except FileExistsError:
        raise MailerError(f"{target}: already exists; not overwriting it") from None
    except OSError as exc:
        where = exc.filename or folder
        raise MailerError(f"{where}: cannot write: {exc.strerror or exc}") from None
    return target


def _schema_ref(folder: Path) -> str:
    """Where the issue's schema comment points: docs/ of the project, else a copy next to it."""
    docs = folder.resolve().parent / "docs" / SCHEMA_NAME
    if docs.is_file():
        return f"../docs/{SCHEMA_NAME}"
    local = folder / SCHEMA_NAME
    if not local.exists():
        from pbtp_mailer.issue.model import issue_json_schema

        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(issue_json_schema(), indent=2, ensure_ascii=False) + "\n"
        atomic_write(local, text.encode("utf-8"))
    return f"./{SCHEMA_NAME}"
