"""The on-disk cache of composed renditions (compose/cache.py): a hit only for the same
inputs, a miss (compose again) for any change or a damaged entry."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from PIL import Image

from pbtp_mailer.compose import cache, pipeline
from pbtp_mailer.compose.cache import CACHE_DIR, compose_cached
from pbtp_mailer.issue.model import load_issue
from tests.compose.content_issue import write_issue
from tests.conftest import ROOT


@pytest.fixture()
def setup(tmp_path, config, monkeypatch):
    """A project folder (its own layouts and data dir), the content issue, and a counter
    of real compositions."""
    shutil.copytree(ROOT / "layouts", tmp_path / "layouts")
    cfg = dataclasses.replace(config, base_dir=tmp_path)
    calls = []
    real = pipeline.compose

    def counting(*args, **kwargs):
        calls.append(kwargs.get("web"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "compose", counting)
    return cfg, write_issue(tmp_path / "issues"), calls


def _same(a, b) -> None:
    assert (a.subject, a.html, a.text, a.web_url, a.issue_id) == \
        (b.subject, b.html, b.text, b.web_url, b.issue_id)
    assert [(x.name, x.url, x.data, x.width, x.height) for x in a.assets] == \
        [(x.name, x.url, x.data, x.width, x.height) for x in b.assets]


def test_build_then_send_composes_once(setup):
    cfg, path, calls = setup
    built = compose_cached(load_issue(path), cfg, web=True)
    sent = compose_cached(load_issue(path), cfg, web=False)
    assert calls == [True]
    _same(built, sent)
    assert built.web_html and sent.web_html is None  # as compose(web=False) gives
    assert list((cfg.data_dir / CACHE_DIR).glob("*.json"))


def test_send_entry_lacks_web_version_build_composes(setup):
    cfg, path, calls = setup
    compose_cached(load_issue(path), cfg, web=False)
    built = compose_cached(load_issue(path), cfg, web=True)
    assert calls == [False, True] and built.web_html
    compose_cached(load_issue(path), cfg, web=False)
    assert calls == [False, True]


@pytest.mark.parametrize("change", ["issue", "layout", "image", "newsletter"])
def test_any_changed_input_composes_again(setup, change):
    cfg, path, calls = setup
    first = compose_cached(load_issue(path), cfg, web=False)
    if change == "issue":
        path.write_text(path.read_text().replace("the imaging protocol is open",
                                                 "the protocol is open"))
    elif change == "layout":
        entry = cfg.base_dir / "layouts" / "default" / "email.mjml.j2"
        entry.write_text(entry.read_text() + "\n")
    elif change == "image":
        Image.new("RGB", (1600, 900), (0, 0, 0)).save(path.parent / "images" / "figure-1.png")
    else:
        cfg = dataclasses.replace(cfg, newsletter=dataclasses.replace(
            cfg.newsletter, name="Another Newsletter"))
    again = compose_cached(load_issue(path), cfg, web=False)
    assert calls == [False, False]
    if change == "image":
        assert [a.name for a in again.assets] != [a.name for a in first.assets]


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[]", b'{"format": 1}',
                                    b'{"format": 1, "key": "KEY", "html": 3}'])
def test_damaged_entry_is_ignored_and_replaced(setup, damage):
    cfg, path, calls = setup
    issue = load_issue(path)
    good = compose_cached(issue, cfg, web=False)
    key = cache.cache_key(issue, cfg)
    entry = cfg.data_dir / CACHE_DIR / f"{key}.json"
    entry.write_bytes(damage.replace(b"KEY", key.encode()))
    _same(compose_cached(issue, cfg, web=False), good)
    assert calls == [False, False]
    compose_cached(issue, cfg, web=False)  # the damaged entry was rewritten
    assert calls == [False, False]


def test_missing_image_composes_again(setup):
    cfg, path, calls = setup
    compose_cached(load_issue(path), cfg, web=False)
    (path.parent / "images" / "rule.png").unlink()
    with pytest.raises(Exception):  # noqa: B017 - compose's own error for the missing file
        compose_cached(load_issue(path), cfg, web=False)
    assert calls == [False, False]


def test_unwritable_data_dir_still_composes(setup, monkeypatch):
    cfg, path, calls = setup
    (cfg.base_dir / ".pbtp-mailer").write_text("a file, not a folder")
    first = compose_cached(load_issue(path), cfg, web=False)
    _same(compose_cached(load_issue(path), cfg, web=False), first)
    assert calls == [False, False]


def test_test_send_prepares_the_send(setup):
    """test-send composes its [TEST] copy, then the send's rendition into the cache."""
    from pbtp_mailer.dispatch.testsend import send_review_copies
    from pbtp_mailer.senders.memory import MemorySender

    cfg, path, calls = setup
    memory = MemorySender()
    result = send_review_copies(path, cfg, ["reviewer@example.org"], sender=memory)
    assert result.accepted == ["reviewer@example.org"]
    assert result.subject.startswith("[TEST]")
    assert calls == [False]  # the cache's compose (the [TEST] one is not counted here)
    sent = compose_cached(load_issue(path), cfg, web=False)
    assert calls == [False] and not sent.subject.startswith("[TEST]")
    _same(sent, pipeline.compose(load_issue(path), cfg, web=False))


def test_send_imports_no_composer_when_cached(tmp_path: Path) -> None:
    """The point of the cache: a send after build loads neither Jinja2 nor premailer."""
    import subprocess
    import sys

    code = ("import sys; import pbtp_mailer.compose.cache, pbtp_mailer.compose.message; "
            "print([m for m in ('jinja2', 'premailer', 'mjml', 'markdown_it', 'cssutils') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"
