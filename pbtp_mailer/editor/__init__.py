"""Editor tools: what a person writing an issue uses before it is sent.

- ``check``: ``pbtp-mailer check`` (reviewer warnings with ``FILE:LINE``);
- ``htmlcheck``: the HTML rules ``check`` applies (contrast, headings, images);
- ``archive``: ``pbtp-mailer archive`` (web pages, index and Atom feed of sent issues);
- ``preview``: ``pbtp-mailer preview`` (a local page that rebuilds on save).
"""

from pbtp_mailer.editor.archive import ArchiveResult, build_archive
from pbtp_mailer.editor.check import CheckReport, Finding, check_issue
from pbtp_mailer.editor.preview import PreviewServer

__all__ = ["ArchiveResult", "CheckReport", "Finding", "PreviewServer", "build_archive", "check_issue"]
