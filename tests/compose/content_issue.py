"""A second issue as the program office would write it: a hero, article images (local,
remote, decorative, linked with a caption), a Markdown image, bare and long URLs,
bracketed citations, a quote, non-ASCII names and news briefs. Images are made here
with Pillow."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

ISSUE_ID = "2024-05"
PROTOCOL = ("https://www.example.org/alliance/protocols/a011202/amendment-7/"
            "full-text-with-appendices-and-consent-forms.pdf?version=7&lang=en")
SLIDES = ("https://www.example.org/alliance/meetings/2024-spring/presentations/"
          "mueller-imaging-site-lead-introduction-slides-final-version.pdf")

ISSUE = f"""\
id: "{ISSUE_ID}"
masthead: E-Newsletter
date: 2024-05-07
title: Imaging Committee launches the new protocol
subject: "Alliance PBTP News: the imaging protocol is open"
preheader: "The imaging protocol is open, a new site lead in Zürich, and news briefs."
hero:
  src: images/rule.png
  alt: ""
  decorative: true
articles:
  - kicker: Research
    title: The imaging protocol is open
    byline:
      name: Zoë Ångström-Núñez
      credentials: MD
    image:
      src: images/figure-1.png
      alt: "Flow chart: screening, baseline MRI, surgery, follow-up imaging"
      link: https://example.org/imaging
      caption: "Figure 1. The protocol's imaging schedule."
    body: |
      Earlier work [1]–[20] shaped this protocol. Read
      [the Imaging Committee's page](https://example.org/imaging) and
      [the full protocol]({PROTOCOL}) before enrolling.

      Sites can check eligibility at https://example.org/eligibility?site=12&arm=b
      or at www.example.org/sites (see https://en.wikipedia.org/wiki/MRI_(imaging)).
      Do not type `https://internal.example.org/x` into a browser.

      ![Enrolment by site, January to April](images/enrolment.png)

      > "We expect the first results within two years," said Dr. Ångström-Núñez,
      > who chairs the committee that wrote the imaging protocol [3].
  - title: A new site lead in Zürich
    image:
      src: https://cdn.example.org/portraits/muller.jpg
      alt: "Portrait of Dr. Jürgen Müller"
      width: 800
      height: 600
    body: |
      Dr. Jürgen Müller joins the program as site lead. His slides:
      {SLIDES}
briefs:
  heading: News briefs
  items:
    - title: Steering committee meets in June
      text: The committee meets on **June 12** in Chicago; agenda at https://example.org/agenda.
      url: https://example.org/news/steering-june
    - title: Two new sites
      text: Sites in Lyon and Kraków open for enrolment this month.
read_more:
  heading: Read more news briefs from this issue
"""


def write_issue(folder: Path, text: str = ISSUE) -> Path:
    """The issue file and its images (figure 1600x900, enrolment 500x300, rule 592x8)."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (1600, 900), (30, 90, 160)).save(images / "figure-1.png")
    Image.new("RGB", (500, 300), (200, 120, 40)).save(images / "enrolment.png")
    Image.new("RGB", (592, 8), (199, 210, 224)).save(images / "rule.png")
    path = folder / f"{ISSUE_ID}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
