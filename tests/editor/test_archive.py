"""pbtp-mailer archive: sent issues only (from the ledger), relative links, Atom feed."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
import pytest
from click.testing import CliRunner

from pbtp_mailer.cli import main

A = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def second_issue(project: Path) -> None:
    """A valid April issue next to March's (never sent)."""
    text = (project / "issues" / "2024-03.yaml").read_text(encoding="utf-8")
    text = (text.replace('id: "2024-03"', 'id: "2024-04"')
            .replace("date: 2024-03-01", "date: 2024-04-01")
            .replace('date_label: "March 2024"', 'date_label: "April 2024"')
            .replace("Spotlight on New Alliance Program", "Imaging Biomarkers & <Trials>"))
    (project / "issues" / "2024-04.yaml").write_text(text, encoding="utf-8")


def send_march(project: Path) -> dt.datetime:
    """Send the March issue to two subscribers through the memory sender."""
    from pbtp_mailer.config import load_config
    from pbtp_mailer.dispatch.dispatcher import Dispatcher, DispatchOptions, plan_dispatch
    from pbtp_mailer.senders.memory import MemorySender
    from pbtp_mailer.store import Store

    config = load_config(project / "pbtp-mailer.toml")
    with Store.open(config) as store:
        store.create_list("members")
        store.add_subscriber("members", "ann@example.com")
        store.add_subscriber("members", "bob@example.com")
        opts = DispatchOptions(list_name="members")
        plan = plan_dispatch(project / "issues" / "2024-03.yaml", config, store, opts)
        report = Dispatcher(plan, opts, sender=MemorySender()).run()
        assert report.sent == 2
        when = store.ledger().find("2024-03")[0].created_at
    MemorySender.reset()
    return when


def feed_of(site: Path) -> ET.Element:
    root = ET.parse(site / "feed.xml").getroot()
    assert root.tag == f"{A}feed"
    return root


def check_feed(root: ET.Element) -> list[ET.Element]:
    for tag in ("id", "title", "updated"):
        assert (root.findtext(f"{A}{tag}") or "").strip(), tag
    assert RFC3339.match(root.findtext(f"{A}updated"))
    rels = {link.get("rel"): link.get("href") for link in root.findall(f"{A}link")}
    assert rels["self"].endswith("/feed.xml") and rels["alternate"]
    assert root.find(f"{A}author/{A}name") is not None
    entries = root.findall(f"{A}entry")
    for e in entries:
        for tag in ("id", "title", "updated", "summary"):
            assert (e.findtext(f"{A}{tag}") or "").strip(), tag
        assert RFC3339.match(e.findtext(f"{A}updated"))
        assert RFC3339.match(e.findtext(f"{A}published"))
        link = e.find(f"{A}link")
        assert link is not None and link.get("rel") == "alternate" and link.get("href")
    return entries


def local_links(page: Path) -> list[Path]:
    doc = lxml.html.document_fromstring(page.read_text(encoding="utf-8"))
    out = []
    for el in doc.xpath("//a[@href]|//link[@href]"):
        href = el.get("href")
        if urlsplit(href).scheme or href.startswith(("//", "#", "mailto:")):
            continue
        out.append((page.parent / href.split("#")[0]).resolve())
    return out


def test_nothing_sent_without_a_database(project):
    result = run("archive", "-o", "site")
    assert result.exit_code == 0, result.output
    assert result.output == ("Wrote site/: 0 issues, index.html, feed.xml\n"
                             "No issue has been sent yet (use --all to include unsent issues).\n")
    assert not (project / ".pbtp-mailer").exists()  # read-only: no database created
    assert check_feed(feed_of(project / "site")) == []
    assert "No issues have been sent yet." in (project / "site" / "index.html").read_text()


def test_all_issues_pages_index_and_feed(project):
    second_issue(project)
    result = run("archive", "--all", "-o", "site")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Wrote site/: 2 issues, index.html, feed.xml\n"
        "  2024-04/index.html  2024-04-01  Imaging Biomarkers & <Trials>\n"
        "  2024-03/index.html  2024-03-01  Spotlight on New Alliance Program\n")
    site = project / "site"
    entries = check_feed(feed_of(site))
    assert [e.findtext(f"{A}id") for e in entries] == [
        "https://news.example.org/pbtp/archive/2024-04/",
        "https://news.example.org/pbtp/archive/2024-03/"]
    assert entries[1].findtext(f"{A}updated") == "2024-03-01T06:00:00Z"  # midnight, Chicago
    assert entries[0].findtext(f"{A}title") == "Imaging Biomarkers & <Trials>"
    assert entries[1].findtext(f"{A}summary").startswith("Breaking new ground")
    index = site / "index.html"
    links = local_links(index)
    assert {p.relative_to(site.resolve()).as_posix() for p in links} == {
        "2024-04/index.html", "2024-03/index.html", "feed.xml"}
    assert all(p.is_file() for p in links)
    html = index.read_text(encoding="utf-8")
    assert html.index("2024-04/index.html") < html.index("2024-03/index.html")  # newest first
    assert "Imaging Biomarkers &amp; &lt;Trials&gt;" in html
    assert "Breaking new ground: how the Procedure-Based Therapy Program" in html


def test_issue_page_is_the_web_version_with_relative_links(project):
    run("archive", "--all", "-o", "site")
    page = project / "site" / "2024-03" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert "@@PBTP" not in html and "SAMPLE-TOKEN" not in html and "Unsubscribe" not in html
    assert "View this issue in your browser" not in html
    assert "news.example.org/pbtp/archive" not in html  # archive links made relative
    links = local_links(page)
    assert links and all(p.is_file() for p in links)
    assert (project / "site" / "index.html").resolve() in links
    assert '<link rel="alternate" type="application/atom+xml"' in html


def test_sent_issue_is_archived_and_unsent_is_not(project):
    second_issue(project)
    when = send_march(project)
    result = run("archive", "-o", "site")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Wrote site/: 1 issue, index.html, feed.xml\n"
        "  2024-03/index.html  2024-03-01  Spotlight on New Alliance Program\n")
    assert not (project / "site" / "2024-04").exists()
    entries = check_feed(feed_of(project / "site"))
    stamp = when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    assert [e.findtext(f"{A}published") for e in entries] == [stamp]


def test_the_email_links_to_its_archive_page(rendition):
    # "View in browser" in each message = archive_url + id + '/', served as <id>/index.html
    assert rendition.web_url == "https://news.example.org/pbtp/archive/2024-03/"
    assert f'href="{rendition.web_url}"' in rendition.html
    assert rendition.web_url in rendition.text


def test_invalid_issue_is_left_out_with_a_warning(project):
    (project / "issues" / "draft.yaml").write_text("id: draft\n", encoding="utf-8")
    result = run("archive", "--all", "-o", "site")
    assert result.exit_code == 0
    assert "warning: issues/draft.yaml: invalid, left out (issues/draft.yaml:1:1: " in (
        result.stderr)
    assert (project / "site" / "2024-03" / "index.html").is_file()


@pytest.mark.parametrize("archive_url",
                         ["https://pbtp.example.org/news", "https://x.example.org/a/b/"])
def test_relative_rewrite_handles_any_archive_url(archive_url):
    from pbtp_mailer.editor.archive import _relative

    base = archive_url.rstrip("/") + "/"
    html = (f'<a href="{base}">all</a><a href="{base}2024-03/">this</a>'
            f'<a href="{base}2024-02/">older</a><a href="{base}files/x.pdf">pdf</a>')
    assert _relative(html, archive_url, "2024-03") == (
        '<a href="../index.html">all</a><a href="index.html">this</a>'
        f'<a href="../2024-02/index.html">older</a><a href="{base}files/x.pdf">pdf</a>')


def test_local_images_are_published_next_to_the_issue_page(project):
    from pbtp_mailer.config import load_config
    from pbtp_mailer.editor.archive import build_archive
    from tests.compose.content_issue import ISSUE_ID, write_issue

    write_issue(project / "issues")
    config = load_config(project / "pbtp-mailer.toml", environ={"PBTP_MAILER_SECRET": "x" * 32})
    result = build_archive(config, project / "site", include_all=True)
    page_dir = project / "site" / ISSUE_ID
    names = sorted(p.name for p in page_dir.glob("*.png"))
    assert [n.split(".")[0] for n in names] == ["enrolment", "figure-1", "rule"]
    entry = next(e for e in result.entries if e.issue.id == ISSUE_ID)
    srcs = [i.get("src") for i in lxml.html.document_fromstring(entry.html).iter("img")]
    assert sorted(s for s in srcs if "/" not in s) == names  # relative: opens from disk too
    for name in names:
        original = project / "issues" / "images" / f"{name.split('.')[0]}.png"
        assert (page_dir / name).read_bytes() == original.read_bytes()
