"""The composed rendition of an issue, cached on disk so ``send`` need not compose again.

Composing (Jinja2, mjml-python, premailer) and importing those libraries costs
~0.3 s of every ``send``: a fixed cost that dominates a small list. The
operator's flow is ``build`` (or a ``--dry-run``) before ``send``, and a
resumed send composes the same issue again, so the rendition is kept under
``.pbtp-mailer/compose-cache/`` (the project's git-ignored runtime folder).

Safe because it is content-addressed: the file's name is a SHA-256 of every
input compose reads (the validated issue and its file's folder, the
``[newsletter]`` values, every layout file, the code of ``compose``/``issue``
and the versions of the libraries it calls). Local images are read during
composition, so an entry lists each one with its SHA-256 and is used only
while every image still has those bytes. A missing, unreadable, corrupt or
foreign entry is a miss (compose as before); writes are atomic
(``files.atomic_write``) and a failed write is ignored (read-only project).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbtp_mailer.compose.images import Asset
from pbtp_mailer.compose.pipeline import Rendition

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.issue.model import Issue

__all__ = ["CACHE_DIR", "compose_cached", "cache_key"]

CACHE_DIR = "compose-cache"
FORMAT = 1
_KEEP = 32  # entries kept (the newest); one issue has one or two
_PACKAGE = Path(__file__).resolve().parents[1]
_LIBRARIES = ("mjml-python", "premailer", "cssutils", "markdown-it-py", "linkify-it-py",
              "Jinja2", "MarkupSafe", "pillow", "lxml")
_TEXT_FIELDS = ("issue_id", "subject", "preheader", "language", "html", "text", "web_html",
                "web_url")


def compose_cached(issue: Issue, config: Config, *, web: bool = True) -> Rendition:
    """``compose(issue, config, web=web)``, from the cache when an entry matches."""
    key = cache_key(issue, config)
    folder = config.data_dir / CACHE_DIR
    found = _load(folder / f"{key}.json", key, web=web)
    if found is not None:
        return found
    from pbtp_mailer.compose.pipeline import compose

    rendition = compose(issue, config, web=web)
    _store(folder, key, rendition)
    return rendition


def cache_key(issue: Issue, config: Config) -> str:
    """SHA-256 of everything ``compose`` reads except the images (checked on load)."""
    h = hashlib.sha256()
    facts = {
        "format": FORMAT,
        "code": _code_fingerprint(),
        "issue": issue.model_dump(mode="json"),
        "issue_folder": str(Path(issue.source_file).resolve().parent),
        "newsletter": dataclasses.asdict(config.newsletter),
        "base_dir": str(config.base_dir),
    }
    h.update(json.dumps(facts, sort_keys=True, default=str).encode("utf-8"))
    from pbtp_mailer.compose.layouts import layout_dirs

    for root in layout_dirs(config.base_dir):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            h.update(f"\0{path}\0".encode("utf-8", "surrogateescape"))
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """The code that composes: our compose/issue/config modules and the libraries' versions."""
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    for sub in ("compose", "issue", "config"):
        for path in sorted((_PACKAGE / sub).glob("*.py")):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in _LIBRARIES:
        try:
            h.update(f"{name}={version(name)}\0".encode())
        except PackageNotFoundError:
            h.update(f"{name}=-\0".encode())
    return h.hexdigest()


def _load(path: Path, key: str, *, web: bool) -> Rendition | None:
    """The cached rendition, or None: no entry, a corrupt one, or an image that changed."""
    try:
        entry = json.loads(path.read_bytes())
        if entry.get("format") != FORMAT or entry.get("key") != key:
            return None
        texts = {name: entry[name] for name in _TEXT_FIELDS}
        if not all(isinstance(v, str) for n, v in texts.items() if n != "web_html"):
            return None
        if web and not isinstance(texts["web_html"], str):
            return None  # cached by a send (no browser version); build needs it
        assets = tuple(_asset(a) for a in entry["assets"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if any(a is None for a in assets):
        return None
    if not web:
        texts["web_html"] = None
    return Rendition(**texts, assets=assets)  # type: ignore[arg-type]


def _asset(row: dict[str, Any]) -> Asset | None:
    """The image as composed, if its file still has the same bytes."""
    source = Path(row["source"])
    data = source.read_bytes()
    if hashlib.sha256(data).hexdigest() != row["sha256"]:
        return None
    return Asset(source=source, name=str(row["name"]), url=str(row["url"]), data=data,
                 width=int(row["width"]), height=int(row["height"]))


def _store(folder: Path, key: str, rendition: Rendition) -> None:
    """Write the entry atomically; keep the newest few; never fail the command."""
    from pbtp_mailer.files import atomic_write

    entry: dict[str, Any] = {"format": FORMAT, "key": key}
    entry.update({name: getattr(rendition, name) for name in _TEXT_FIELDS})
    entry["assets"] = [{"source": str(a.source), "name": a.name, "url": a.url,
                        "width": a.width, "height": a.height,
                        "sha256": hashlib.sha256(a.data).hexdigest()}
                       for a in rendition.assets]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / f"{key}.json", json.dumps(entry).encode("utf-8"))
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[_KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
