"""Layout folders: Jinja2-templated MJML, rendered with autoescape and StrictUndefined.

A layout is a folder under ``layouts/`` holding ``email.mjml.j2`` and its
partials, and ``email.txt.j2`` for the text part (rendered without
autoescape: it is plain text). Only layout files are templates; issue
content reaches them as data (escaped strings, or Markup we rendered from
Markdown ourselves).

Jinja2 is imported by the functions that render: ``message`` imports the slot
markers from here, and a ``send`` whose rendition is cached renders nothing.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbtp_mailer.errors import ComposeError

if TYPE_CHECKING:
    import jinja2

__all__ = ["SLOT_PREFIX", "SLOT_SUFFIX", "Slots", "layout_dirs", "known_layouts", "render_mjml",
           "render_text"]

ENTRY = "email.mjml.j2"
TEXT_ENTRY = "email.txt.j2"
SLOT_PREFIX = "@@PBTP:"
SLOT_SUFFIX = "@@"
_PACKAGE_LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"


class Slots:
    """Per-recipient values, rendered as markers that the message builder fills in."""

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return f"{SLOT_PREFIX}{name}{SLOT_SUFFIX}"

    def attr(self, key: str) -> str:
        """A subscriber attribute (a CSV column), e.g. ``slot.attr('institution')``."""
        return f"{SLOT_PREFIX}attr.{key}{SLOT_SUFFIX}"


def layout_dirs(base_dir: Path | None) -> list[Path]:
    dirs = []
    if base_dir is not None and (base_dir / "layouts").is_dir():
        dirs.append(base_dir / "layouts")
    if _PACKAGE_LAYOUTS.is_dir() and _PACKAGE_LAYOUTS not in dirs:
        dirs.append(_PACKAGE_LAYOUTS)
    return dirs


def known_layouts(base_dir: Path | None) -> list[str]:
    names: set[str] = set()
    for d in layout_dirs(base_dir):
        names.update(p.parent.name for p in d.glob(f"*/{ENTRY}"))
    return sorted(names)


@lru_cache(maxsize=16)
def _environment(folder: Path) -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )


@lru_cache(maxsize=16)
def _text_environment(folder: Path | None) -> jinja2.Environment:
    import jinja2

    from pbtp_mailer.compose.text import WIDTH, underline, wrap

    folders = [str(f) for f in (folder, _PACKAGE_LAYOUTS / "default") if f is not None]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=False,  # text/plain: nothing here is HTML, and values stay data
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,
    )
    env.filters.update(wrap=wrap, underline=underline, rule=lambda char: char * WIDTH)
    return env


def render_text(folder: Path | None, context: dict[str, Any]) -> str:
    """Render a layout's ``email.txt.j2`` (else the default one); errors name file and line."""
    import jinja2

    env = _text_environment(folder)
    try:
        text = env.get_template(TEXT_ENTRY).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = Path(exc.filename or TEXT_ENTRY)
        raise ComposeError(f"{where}:{exc.lineno}: layout syntax error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise ComposeError(f"{folder}: {_template_place(exc)}layout uses an undefined value: "
                           f"{exc.message}") from None
    return text if text.endswith("\n") else text + "\n"


def find_layout(name: str, base_dir: Path | None) -> Path | None:
    for d in layout_dirs(base_dir):
        if (d / name / ENTRY).is_file():
            return d / name
    return None


def render_mjml(folder: Path, context: dict[str, Any]) -> str:
    """Render a layout's MJML; template errors name the layout file and line."""
    import jinja2

    env = _environment(folder)
    try:
        return env.get_template(ENTRY).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = Path(exc.filename or (folder / (exc.name or ENTRY)))
        raise ComposeError(f"{where}:{exc.lineno}: layout syntax error: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise ComposeError(f"{folder}: layout file not found: {exc.name}") from None
    except jinja2.UndefinedError as exc:
        raise ComposeError(f"{folder}: {_template_place(exc)}layout uses an undefined value: "
                           f"{exc.message}") from None


def _template_place(exc: BaseException) -> str:
    tb = exc.__traceback__
    place = ""
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.endswith(".j2"):
            place = f"{Path(name).name}:{tb.tb_lineno}: "
        tb = tb.tb_next
    return place
