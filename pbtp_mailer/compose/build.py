"""``pbtp-mailer build``: one issue file to email.html, email.txt, message.eml and web.html,
plus the issue's local images under their content-hashed names.

Validation and composition finish before anything is written; the files are
written into a temporary folder and moved into place, so a failed build
leaves the previous output untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pbtp_mailer.compose import Rendition
from pbtp_mailer.compose.cache import compose_cached
from pbtp_mailer.compose.message import MessageTemplate, Personal
from pbtp_mailer.config import Config
from pbtp_mailer.issue.model import Issue, load_issue

__all__ = ["SAMPLE_RECIPIENT", "BuildResult", "sample_personal", "build_issue", "warnings_for", "fill_slots"]

SAMPLE_RECIPIENT = "reader@example.org"
GMAIL_CLIP_BUDGET = 90_000


@dataclass
class BuildResult:
    issue: Issue
    rendition: Rendition
    folder: Path
    files: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def preferences_base(config: Config) -> str:
    """``…/preferences/`` on the site ``serve`` runs (see ``subscribe.settings.site_base``)."""
    from pbtp_mailer.subscribe.settings import site_url

    return site_url(config, "preferences", "")


def sample_personal(config: Config) -> Personal:
    """The stand-in recipient of built previews (no real token: nobody is subscribed)."""
    base = config.newsletter.unsubscribe_base_url
    token = "SAMPLE-TOKEN"
    mailto = config.newsletter.unsubscribe_mailto
    return Personal(
        email=SAMPLE_RECIPIENT,
        name="Sample Reader",
        unsubscribe_url=f"{base}{token}",
        unsubscribe_mailto=f"mailto:{mailto}?subject=unsubscribe%20{token}" if mailto else None,
        preferences_url=preferences_base(config) + token,
    )


def warnings_for(issue: Issue, rendition: Rendition) -> list[str]:
    out = []
    size = len(rendition.html.encode("utf-8"))
    if size > GMAIL_CLIP_BUDGET:
        out.append(f"{issue.place()}: HTML is {size:,} bytes; Gmail clips messages near 102 KB "
                   f"(budget {GMAIL_CLIP_BUDGET:,})")
    if len(issue.subject) > 78:
        out.append(f"{issue.place('subject')}: subject: {len(issue.subject)} characters; "
                   "inboxes cut it near 78")
    if not 40 <= len(issue.preheader) <= 100:
        out.append(f"{issue.place('preheader')}: preheader: {len(issue.preheader)} characters; "
                   "aim for 40-100")
    return out


def build_issue(path: str | os.PathLike[str], config: Config,
                out_dir: str | os.PathLike[str] = "build") -> BuildResult:
    issue = load_issue(Path(path))
    rendition = compose_cached(issue, config)  # and what a send of this issue will use
    personal = sample_personal(config)
    template = MessageTemplate(rendition, config.newsletter)
    values = template.values(personal)
    html = fill_slots(rendition.html, values, escape=True)
    text = fill_slots(rendition.text, values, escape=False)
    eml = template.render(personal)
    outputs = {
        "email.html": html.encode("utf-8"),
        "email.txt": text.encode("utf-8"),
        "message.eml": eml,
        "web.html": (rendition.web_html or "").encode("utf-8"),
        **{asset.name: asset.data for asset in rendition.assets},  # images, content-hashed
    }
    final = Path(out_dir) / issue.id
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{issue.id}.", dir=final.parent))
    try:
        for name, data in outputs.items():
            (tmp / name).write_bytes(data)
        if final.exists():
            old = final.with_name(f".{issue.id}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return BuildResult(
        issue=issue,
        rendition=rendition,
        folder=final,
        files={name: len(data) for name, data in outputs.items()},
        warnings=warnings_for(issue, rendition),
    )


def fill_slots(source: str, values: dict[str, str], *, escape: bool) -> str:
    import html as _html

    from pbtp_mailer.compose.message import SLOT_RE

    return SLOT_RE.sub(lambda m: _html.escape(values[m.group(1)]) if escape
                        else values[m.group(1)], source)
