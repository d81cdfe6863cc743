"""One exception tree for everything pbtp_mailer raises on purpose.

Foreign errors (yaml, pydantic, tomllib, jinja2, mjml, socket/ssl, httpx,
sqlalchemy) are translated into these at one choke point each (for socket
and ssl, the table in ``senders/smtp_client.py``), with the place that went
wrong in the message: ``issues/2024-03.yaml:14:3: subject: field required`` or
``smtp.example.org:587: authentication failed for 'news'``. The CLI prints
``Error: <message>`` and exits non-zero; it never shows a traceback for them.

    MailerError
    ├── ConfigError              pbtp-mailer.toml or environment is wrong
    ├── IssueError               an issue YAML is invalid (holds every Problem)
    ├── ComposeError             a layout fails to render
    │   └── HeaderError          CR/LF/NUL or non-ASCII where a header forbids it
    ├── StoreError               database / migrations
    │   ├── UnknownListError
    │   └── ImportFileError      a CSV cannot be imported (holds every Problem)
    ├── TokenError               forged, truncated or unknown unsubscribe token
    │   └── LinkError            a sign-up link: unknown (404), used or expired (410)
    ├── SenderError              a sender cannot be built or used at all
    │   ├── UnknownSenderError   lists the known sender names
    │   ├── SendTransientError   whole batch: retry later (connection, 4xx, 429)
    │   └── SendPermanentError   whole batch: do not retry (auth, config)
    ├── DispatchError
    │   └── ContentChangedError  the issue changed after its dispatch started
    ├── DoctorError              a deliverability check failed (DNS lookup, gate)
    └── FeedbackError            a bounce source cannot be read (file, Maildir, IMAP)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MailerError",
    "ConfigError",
    "Problem",
    "IssueError",
    "ComposeError",
    "HeaderError",
    "StoreError",
    "UnknownListError",
    "ImportFileError",
    "TokenError",
    "LinkError",
    "SenderError",
    "UnknownSenderError",
    "SendTransientError",
    "SendPermanentError",
    "DispatchError",
    "ContentChangedError",
    "DoctorError",
    "FeedbackError",
]


class MailerError(Exception):
    """Root of every error pbtp_mailer raises for a user to read."""

    exit_code = 1
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(MailerError):
    exit_code = 2


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem in a user file: ``FILE:LINE:COL: path: message``."""

    file: str
    line: int
    col: int | None
    path: str
    message: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}"
        if self.col is not None:
            place += f":{self.col}"
        if self.path:
            return f"{place}: {self.path}: {self.message}"
        return f"{place}: {self.message}"


class _ProblemsError(MailerError):
    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class IssueError(_ProblemsError):
    """Every problem found in an issue file, sorted by place."""


class ComposeError(MailerError):
    exit_code = 2


class HeaderError(ComposeError):
    pass


class StoreError(MailerError):
    pass


class UnknownListError(StoreError):
    exit_code = 2


class ImportFileError(_ProblemsError):
    """A CSV file that could not be imported at all (or, with --strict, had bad rows)."""


class TokenError(MailerError):
    exit_code = 2


class LinkError(TokenError):
    """A confirmation or preference link that cannot be used; ``status`` is the HTTP answer."""

    def __init__(self, message: str, *, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


class SenderError(MailerError):
    pass


class UnknownSenderError(SenderError):
    exit_code = 2


class SendTransientError(SenderError):
    """The whole batch failed in a way worth retrying later."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.retry_after = retry_after


class SendPermanentError(SenderError):
    """The whole batch failed and retrying cannot help (credentials, configuration)."""

    def __init__(self, message: str, *, code: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class DispatchError(MailerError):
    pass


class ContentChangedError(DispatchError):
    exit_code = 2



class DoctorError(MailerError):
    """A deliverability check could not run (resolver down) or refused a dispatch (the gate)."""


class FeedbackError(MailerError):
    """A bounce source (file, mbox, Maildir, IMAP mailbox) cannot be read or reached."""
