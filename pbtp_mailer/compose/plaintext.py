"""The text/plain part of an issue, built from the issue itself (not from HTML)."""

from __future__ import annotations

from pbtp_mailer.compose import markdown
from pbtp_mailer.compose.layouts import Slots
from pbtp_mailer.compose.text import WIDTH, MarkdownText, article_text, underline, wrap
from pbtp_mailer.compose.textparts import briefs_text, image_text
from pbtp_mailer.config import Newsletter
from pbtp_mailer.issue.model import Issue

__all__ = ["issue_text"]


def issue_text(issue: Issue, nl: Newsletter, urls: dict[str, str], *,
               personal: bool, banner: str | None) -> str:
    slot = Slots()
    out: list[str] = []
    if banner:
        out.append("*" * WIDTH + "\n" + wrap(banner) + "\n" + "*" * WIDTH)
    out.append(wrap(f"{nl.name} | {issue.masthead} | {issue.shown_date}"))
    if personal:
        out.append(f"View this issue in your browser:\n<{urls['web']}>")
    out.append("=" * WIDTH + "\n" + wrap(issue.title) + "\n" + "=" * WIDTH)
    if issue.hero:
        out.append(image_text(issue.hero))
    for article in issue.articles:
        renderer = MarkdownText(avoid=article_text(article))
        if article.kicker:
            out.append(wrap(article.kicker.upper()))
        out.append(underline(article.title, "-"))
        if article.byline:
            b = article.byline
            lines = [wrap(f"By {b.name}" + (f", {b.credentials}" if b.credentials else ""))]
            lines += [wrap(t) for t in b.titles]
            if b.affiliation:
                lines.append(wrap(b.affiliation))
            out.append("\n".join(lines))
        if article.image:
            out.append(image_text(article.image))
        out.append(renderer.render(markdown.parse(article.body, heading_offset=2)))
        if renderer.links:
            out.append("Links:\n" + renderer.footnotes())
        if article.references:
            out.append(underline("References", "-"))
            refs = []
            for n, ref in enumerate(article.references, 1):
                marker = f"{n:>2}. "
                pad = " " * len(marker)
                cite = ref.citation + (f" {ref.note}" if ref.note else "")
                lines = [wrap(cite, indent=marker, hanging=pad)]
                if ref.link:
                    lines.append(f"{pad}{ref.link}")
                if ref.pmid:
                    lines.append(f"{pad}PubMed: {ref.pubmed_url}")
                if ref.pmcid:
                    lines.append(f"{pad}PMC: {ref.pmc_url}")
                refs.append("\n".join(lines))
            out.append("\n\n".join(refs))
    if issue.briefs:
        out.append(briefs_text(issue.briefs))
    if issue.read_more:
        rm = issue.read_more
        out.append(underline(rm.heading, "-"))
        if rm.text:
            renderer = MarkdownText(avoid=rm.text)
            out.append(renderer.render(markdown.parse(rm.text, heading_offset=2)))
            if renderer.links:
                out.append("Links:\n" + renderer.footnotes())
        out.append(f"{rm.link_text}:\n<{urls['read_more']}>")
    footer = ["-- ", wrap(f"{nl.name} is the e-newsletter of the Alliance Procedure-Based "
                          "Therapy Program.")]
    if personal:
        footer.append(wrap(f"You receive it because {slot.email} is subscribed."))
        footer.append(f"Unsubscribe with one click:\n<{slot.unsubscribe_url}>")
        footer.append(f"Manage your subscription:\n<{slot.preferences_url}>")
    else:
        footer.append(f"Newsletter archive:\n<{urls['archive']}>")
    footer.append(wrap(nl.postal_address))
    out.append("\n".join(footer))
    return "\n\n".join(b for b in out if b) + "\n"
