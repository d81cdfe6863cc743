"""The webhook endpoints as one WSGI app, mounted at ``/feedback/`` by ``serve``.

    POST /feedback/ses        SNS (SES notifications, subscription confirmation)
    POST /feedback/postmark   HTTP Basic auth
    POST /feedback/sendgrid   ECDSA signature + timestamp headers
    POST /feedback/mailgun    HMAC of timestamp + token, replay-refused

A provider answers only when it is configured (else 404). Every request is
checked completely (size, signature, age, replay, shape) before anything is
written; a bad one gets a 4xx with a short reason and changes nothing. The
body, the addresses and the secrets are never logged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import UnsupportedAlgorithm
from sqlalchemy.exc import SQLAlchemyError

from pbtp_mailer.errors import ConfigError
from pbtp_mailer.feedback.policy import Policy
from pbtp_mailer.feedback.webhooks import mailgun, postmark, sendgrid
from pbtp_mailer.feedback.webhooks.base import Rejected, Request, parse_json, read_request
from pbtp_mailer.feedback.webhooks.sns import SnsVerifier, ses_events

if TYPE_CHECKING:
    from pbtp_mailer.feedback.events import FeedbackEvent
    from pbtp_mailer.feedback.settings import FeedbackSettings
    from pbtp_mailer.store import Store

__all__ = ["make_app"]

StartResponse = Callable[..., Any]
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            413: "Content Too Large", 424: "Failed Dependency", 503: "Service Unavailable"}
_HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff")]


def _answer(start: StartResponse, status: int, text: str) -> list[bytes]:
    body = (text + "\n").encode("utf-8")
    start(f"{status} {_REASONS.get(status, 'Error')}",
          [*_HEADERS, ("Content-Length", str(len(body)))])
    return [body]


class _Hooks:
    def __init__(self, store: Store, settings: FeedbackSettings, environ: Mapping[str, str],
                 sns: SnsVerifier | None, clock: Callable[[], dt.datetime]) -> None:
        self.store, self.settings, self.clock = store, settings, clock
        self.policy = Policy.from_settings(settings)
        self.window = dt.timedelta(seconds=settings.webhook_max_age_seconds)
        self.sns = sns if sns is not None else (
            SnsVerifier(settings.ses_topic_arns, max_age=dt.timedelta(hours=1), clock=clock)
            if settings.ses_topic_arns else None)
        self.postmark_password = environ.get(settings.postmark_password_env, "")
        self.sendgrid_key = None
        if settings.sendgrid_public_key:
            try:
                self.sendgrid_key = sendgrid.load_public_key(settings.sendgrid_public_key)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise ConfigError(f"[feedback] sendgrid_public_key: not a base64 DER "
                                  f"elliptic-curve public key ({exc})") from None
        self.mailgun_key = environ.get(settings.mailgun_signing_key_env, "").encode()

    def handlers(self) -> dict[str, Callable[[Request], str]]:
        out: dict[str, Callable[[Request], str]] = {}
        if self.sns is not None:
            out["ses"] = self.ses
        if self.settings.postmark_user and self.postmark_password:
            out["postmark"] = self.postmark
        if self.sendgrid_key is not None:
            out["sendgrid"] = self.sendgrid
        if self.settings.mailgun_enabled and self.mailgun_key:
            out["mailgun"] = self.mailgun
        return out

    def _record(self, events: list[FeedbackEvent],
                nonce: tuple[str, str, dt.timedelta] | None = None) -> str:
        """Record (and remember the replay token) in one transaction; 409 on a replay."""
        results = self.store.feedback.record(events, self.policy, nonce=nonce)
        if results is None:
            raise Rejected(409, "replayed request")
        return f"ok: {sum(r.new for r in results)} new of {len(results)}"

    def ses(self, req: Request) -> str:
        assert self.sns is not None
        msg = self.sns.verify(req.body)
        events = ses_events(msg) if msg["Type"] == "Notification" else []
        nonce = ("ses", str(msg.get("MessageId", "")), self.sns.max_age * 2)
        if msg["Type"] == "Notification":
            return self._record(events, nonce)
        self._record([], nonce)  # a confirmation is acted on once
        if msg["Type"] == "SubscriptionConfirmation":
            self.sns.confirm(msg)
            return "ok: subscription confirmed"
        return "ok: unsubscribed"

    def postmark(self, req: Request) -> str:
        postmark.check_basic_auth(req, self.settings.postmark_user or "", self.postmark_password)
        return self._record(postmark.postmark_events(req.body))

    def sendgrid(self, req: Request) -> str:
        sig = sendgrid.verify_sendgrid(req, self.sendgrid_key, now=self.clock(),
                                       max_age=self.window)
        events = sendgrid.sendgrid_events(req.body)
        return self._record(events, ("sendgrid", sig, self.window * 2))

    def mailgun(self, req: Request) -> str:
        payload = parse_json(req.body)
        token = mailgun.verify_mailgun(payload, self.mailgun_key, now=self.clock(),
                                       max_age=self.window)
        events = mailgun.mailgun_events(payload)
        return self._record(events, ("mailgun", token, self.window * 2))


def make_app(store: Store, settings: FeedbackSettings, environ: Mapping[str, str], *,
             sns: SnsVerifier | None = None,
             clock: Callable[[], dt.datetime] | None = None) -> Callable[..., Iterable[bytes]]:
    """The ``/feedback/<provider>`` WSGI app (``sns`` and ``clock`` are for tests)."""
    hooks = _Hooks(store, settings, environ, sns, clock or (lambda: dt.datetime.now(dt.UTC)))
    handlers = hooks.handlers()
    max_bytes = settings.webhook_max_bytes

    def app(env: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        name = str(env.get("PATH_INFO", "")).rstrip("/").rsplit("/", 1)[-1]
        handler = handlers.get(name)
        if handler is None:
            return _answer(start, 404, "Not found")
        try:
            return _answer(start, 200, handler(read_request(env, max_bytes)))
        except Rejected as exc:
            return _answer(start, exc.status, exc.reason)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # a malformed value deep in a payload (wrong type, missing key, bad time)
            return _answer(start, 400, f"malformed payload: {type(exc).__name__}")
        except SQLAlchemyError:
            return _answer(start, 503, "database unavailable; retry later")

    return app
