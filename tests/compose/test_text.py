"""The plain-text part: made from the issue, faithful to the seed, readable at 78 columns."""

from __future__ import annotations

import re

import pytest

from tests.conftest import SEED

# Seed typos the issue file fixes on purpose (documented at its top).
SEED_FIXES = {
    "Alliance Program-Based Therapy Program": "Alliance Procedure-Based Therapy Program",
    "PrograM": "Program",
}


def norm(text: str) -> str:
    return " ".join(text.split())


def seed_parts():
    raw = SEED.read_text(encoding="utf-8")
    for wrong, right in SEED_FIXES.items():
        raw = raw.replace(wrong, right)
    body, _, refs = raw.partition("\n  1. ")
    refs = "  1. " + refs
    return body, refs


@pytest.fixture(scope="module")
def text(built):
    return (built.folder / "email.txt").read_text(encoding="utf-8")


def test_every_sentence_of_the_seed_article_is_in_the_text(text):
    body, _ = seed_parts()
    article = body.split("Breaking New Ground:", 1)[1].split("\n", 2)[2]
    article = re.sub(r"^\d\) ", "", article, flags=re.M)  # the seed's "1) " list markers
    flat = norm(re.sub(r"^\s*\d+\. ", "", text, flags=re.M))
    sentences = [s for s in re.split(r"(?<=[.;:])\s+(?=[A-Z0-9])", norm(article)) if s]
    assert len(sentences) > 20
    for sentence in sentences:
        sentence = sentence.strip()
        if sentence == "Read more news briefs from this issue:":
            assert "Read more news briefs from this issue" in text
            continue
        assert sentence in flat, sentence


def test_byline_and_masthead_in_text(text):
    for line in ("By Isabelle Bedrosian, MD",
                 "Professor, Department of Breast Surgical Oncology, Division of Surgery",
                 "University of Texas MD Anderson Cancer Center",
                 "Principal Investigator and Director, Alliance Procedure-Based Therapy Program",
                 "E-Newsletter", "March 2024", "Spotlight on New Alliance Program"):
        assert line in text


def test_every_reference_with_its_urls(text, march):
    _, refs = seed_parts()
    seed_refs = re.findall(r"^\s+\d+\. (.*)$", refs, flags=re.M)
    assert len(seed_refs) == len(march.articles[0].references) == 16
    flat = norm(text)
    for ref, seed_ref in zip(march.articles[0].references, seed_refs, strict=True):
        assert norm(ref.citation) in flat
        assert norm(ref.citation)[:60] in norm(seed_ref)
        assert f"https://doi.org/{ref.doi}" in text
        assert ref.doi in seed_ref
        if ref.pmid:
            assert f"PubMed: https://pubmed.ncbi.nlm.nih.gov/{ref.pmid}/" in text
        if ref.pmcid:
            assert f"PMC: https://www.ncbi.nlm.nih.gov/pmc/articles/{ref.pmcid}/" in text


def test_lines_wrap_at_78_except_unbreakable_urls(text):
    for line in text.splitlines():
        if len(line) > 78:
            assert re.fullmatch(r"\s*(\S+: )?<?https?://\S+>?", line), line


def test_numbered_priorities(text):
    assert re.search(r"^1\. identifying the optimal approach", text, re.M)
    assert re.search(r"^4\. developing imaging biomarkers", text, re.M)


def test_footer_unsubscribe_and_postal_address(text, config):
    assert f"<{config.newsletter.unsubscribe_base_url}SAMPLE-TOKEN>" in text
    assert config.newsletter.postal_address in norm(text)


def test_no_preheader_filler_no_markup_noise(text, built):
    assert built.rendition.preheader not in text
    for junk in ("\u200c", "\u034f", "\u00a0\u00a0", "<p>", "</", "**", "](", "{{", "@@PBTP"):
        assert junk not in text


def test_read_more_points_at_configured_archive(text, config):
    assert f"<{config.newsletter.archive_url}>" in text
