"""A second issue with images, bare URLs, citations and briefs: HTML, text and web version."""

from __future__ import annotations

import hashlib
import re

import lxml.html
import pytest

from pbtp_mailer.errors import ComposeError, IssueError
from tests.compose.content_issue import ISSUE, ISSUE_ID, PROTOCOL, SLIDES, write_issue


@pytest.fixture(scope="module")
def content(tmp_path_factory, config):
    from pbtp_mailer.compose.build import build_issue

    folder = tmp_path_factory.mktemp("content")
    return build_issue(write_issue(folder), config, folder / "build")


@pytest.fixture(scope="module")
def html(content):
    return (content.folder / "email.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def text(content):
    return (content.folder / "email.txt").read_text(encoding="utf-8")


def imgs(html: str) -> dict[str, lxml.html.HtmlElement]:
    return {(i.get("src") or "").rsplit("/", 1)[-1].split(".")[0]: i
            for i in lxml.html.document_fromstring(html).iter("img")}


def test_images_have_width_height_alt(html, config):
    found = imgs(html)
    assert set(found) == {"rule", "figure-1", "enrolment", "muller"}
    sizes = {k: (i.get("width"), i.get("height"), i.get("alt")) for k, i in found.items()}
    assert sizes == {
        "rule": ("592", "8", ""),  # decorative
        "figure-1": ("592", "333", "Flow chart: screening, baseline MRI, surgery, "
                     "follow-up imaging"),  # 1600x900 file shown at the column width
        "enrolment": ("500", "300", "Enrolment by site, January to April"),
        "muller": ("592", "444", "Portrait of Dr. Jürgen Müller"),
    }
    base = f"{config.newsletter.archive_url}{ISSUE_ID}/"
    for name in ("rule", "figure-1", "enrolment"):
        assert found[name].get("src").startswith(base)
    assert found["muller"].get("src") == "https://cdn.example.org/portraits/muller.jpg"


def test_linked_image_with_caption(html):
    fig = imgs(html)["figure-1"]
    assert fig.getparent().tag == "a" and fig.getparent().get("href") == "https://example.org/imaging"
    assert "Figure 1. The protocol&#39;s imaging schedule." in html or \
        "Figure 1. The protocol's imaging schedule." in html


def test_local_images_copied_with_content_hashed_names(content, tmp_path):
    folder = content.folder
    src = folder.parent.parent / "images"
    for stem in ("figure-1", "enrolment", "rule"):
        data = (src / f"{stem}.png").read_bytes()
        name = f"{stem}.{hashlib.sha256(data).hexdigest()[:12]}.png"
        assert (folder / name).read_bytes() == data
        assert name in (folder / "email.html").read_text(encoding="utf-8")
    assert {a.name.split(".")[0] for a in content.rendition.assets} == {"figure-1", "enrolment", "rule"}


def test_text_part_images(text):
    assert "[image: Flow chart: screening, baseline MRI, surgery, follow-up imaging]\n" \
           "<https://example.org/imaging>\nFigure 1. The protocol's imaging schedule." in text
    assert "[image: Enrolment by site, January to April]" in text
    assert "[image: Portrait of Dr. Jürgen Müller]" in text
    assert text.count("[image:") == 3  # the decorative rule shows nothing


def test_bare_urls_linked_in_html_not_in_code(html):
    doc = lxml.html.document_fromstring(html)
    hrefs = [a.get("href") for a in doc.iter("a")]
    for url in ("https://example.org/eligibility?site=12&arm=b", "https://www.example.org/sites",
                "https://en.wikipedia.org/wiki/MRI_(imaging)", PROTOCOL, SLIDES):
        assert url in hrefs
    assert not any("internal.example.org" in (h or "") for h in hrefs)
    assert doc.xpath("//code[text()='https://internal.example.org/x']")


def test_text_part_lines_and_markers(text):
    for line in text.splitlines():
        assert len(line) <= 78 or re.fullmatch(r"<?https://\S+>?", line), line
    assert f"\n{PROTOCOL}\n" in text  # longer than 78: alone on its line
    assert f"\n<{SLIDES}>\n" in text
    assert "[L1]" in text and "[L1]" not in ISSUE  # the article cites [1]-[20] and [3]
    assert "the Imaging Committee's page\n<https://example.org/imaging>" in text


@pytest.mark.parametrize("which", ["email.html", "web.html"])
def test_briefs_in_html(content, which):
    doc = lxml.html.document_fromstring((content.folder / which).read_text(encoding="utf-8"))
    heads = [h.text_content() for h in doc.iter("h2", "h3")]
    i = heads.index("News briefs")
    assert heads[i + 1:i + 3] == ["Steering committee meets in June", "Two new sites"]
    assert heads.index("Read more news briefs from this issue") > i
    link = doc.xpath("//h3/a[text()='Steering committee meets in June']")[0]
    assert link.get("href") == "https://example.org/news/steering-june"
    assert doc.xpath("//a[@href='https://example.org/agenda']")
    assert doc.xpath("//strong[text()='June 12']")


def test_briefs_in_text(text):
    briefs = text.split("News briefs\n-----------\n", 1)[1].split("Read more news briefs", 1)[0]
    assert briefs.strip() == (
        "* Steering committee meets in June\n"
        "  The committee meets on June 12 in Chicago; agenda at\n"
        "  <https://example.org/agenda>.\n"
        "  <https://example.org/news/steering-june>\n\n"
        "* Two new sites\n"
        "  Sites in Lyon and Kraków open for enrolment this month.")


def _variant(tmp_path, old: str, new: str) -> str:
    assert old in ISSUE
    return str(write_issue(tmp_path, ISSUE.replace(old, new, 1)))


@pytest.mark.parametrize("old, new, message", [
    ('  alt: ""\n  decorative: true\n', '  decorative: true\n', "hero.alt: field required"),
    ('  alt: ""\n  decorative: true\n', '  alt: ""\n',
     "alt: say what the image shows, or set decorative: true"),
    ('  alt: ""\n', '  alt: "A rule"\n', "a decorative image has an empty alt"),
    ("      width: 800\n", "", "width and height are required for a remote image"),
    ("src: images/rule.png", "src: /etc/rule.png", "a path relative to the issue file"),
    ("src: images/rule.png", "src: ftp://example.org/x.png", "must be an https:// URL"),
])
def test_image_field_errors(tmp_path, old, new, message):
    from pbtp_mailer.issue.model import load_issue

    with pytest.raises(IssueError) as exc:
        load_issue(_variant(tmp_path, old, new))
    assert message in str(exc.value)
    assert re.search(r"2024-05\.yaml:\d+:\d+: ", str(exc.value))


@pytest.mark.parametrize("old, new, message", [
    ("src: images/rule.png", "src: images/missing.png", "images/missing.png: no such file"),
    ("![Enrolment by site, January to April](images/enrolment.png)",
     "![Enrolment](images/nope.png)", "images/nope.png: no such file"),
    ("src: images/rule.png", "src: images/notes.txt", "not an image file"),
])
def test_bad_local_images_are_one_line_errors(tmp_path, config, old, new, message):
    from pbtp_mailer.compose import compose
    from pbtp_mailer.issue.model import load_issue

    path = _variant(tmp_path, old, new)
    (tmp_path / "images" / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(ComposeError) as exc:
        compose(load_issue(path), config)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert str(exc.value).startswith(f"{path}:")
