"""Amazon SES v2: ``POST /v2/email/outbound-emails`` with Raw content, SigV4-signed.

Our MIME bytes go as ``Content.Raw.Data`` so List-* headers and our DKIM
signature survive; SES rewrites Date and Message-ID, so a DKIM wrapper
around this sender does not sign them (``rewrites_date_and_message_id``).
Requests are signed with botocore's SigV4 and sent over the shared httpx
client; botocore is the optional extra ``pbtp-mailer[ses]``.

Credentials come from ``spec.environ`` (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``; rename them with
``access_key_env`` / ``secret_key_env`` / ``session_token_env``) or from a
named ``profile`` in ~/.aws. Nothing else is probed (no instance metadata).
"""

from __future__ import annotations

import base64
import json
from typing import Any, ClassVar

from pbtp_mailer.errors import ConfigError, SendPermanentError, SendTransientError
from pbtp_mailer.senders._http import HTTPSender, Outcome, retry_after_seconds
from pbtp_mailer.senders._options import per_recipient
from pbtp_mailer.senders.base import Outgoing, Status

__all__ = ["SESSender", "MAX_RECIPIENTS"]

MAX_RECIPIENTS = 50
PATH = "/v2/email/outbound-emails"
CREDENTIAL_ERRORS = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException",
    "SignatureDoesNotMatch", "InvalidClientTokenId", "ExpiredTokenException",
    "IncompleteSignature", "MissingAuthenticationToken",
})
THROTTLING = frozenset({"TooManyRequestsException", "ThrottlingException",
                        "LimitExceededException", "Throttling"})
ACCOUNT_ERRORS = frozenset({"SendingPausedException", "AccountSuspendedException",
                            "MailFromDomainNotVerifiedException", "NotFoundException"})


def _refusal(kind: str, text: str, msg: Outgoing) -> Status:
    """``MessageRejected`` refuses the message (content, size, an unverified From), not a
    recipient, unless its text names one of them (a sandbox's unverified recipient)."""
    if kind != "MessageRejected":
        return Status.PERMANENT
    lowered = text.lower()
    return (Status.PERMANENT if any(r.lower() in lowered for r in msg.rcpt_to)
            else Status.REJECTED)


class SESSender(HTTPSender):
    kind: ClassVar[str] = "ses"
    provider: ClassVar[str] = "ses"
    secret_option: ClassVar[str] = "secret_key_env"
    default_secret_env: ClassVar[str] = "AWS_SECRET_ACCESS_KEY"
    extra_options: ClassVar[frozenset[str]] = frozenset({
        "region", "configuration_set", "access_key_env", "session_token_env", "profile"})
    rewrites_date_and_message_id = True

    def __init__(self, spec: Any, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        region = self.opts.text("region") or spec.environ.get("AWS_REGION") \
            or spec.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise ConfigError(f"{self.opts.where}: 'region' is required (ses://eu-west-1)")
        self.region = region
        if not self.opts.get("base_url"):
            self.base_url = f"https://email.{region}.amazonaws.com"
        self.access_key, self.access_env = self.opts.secret("access_key_env",
                                                            "AWS_ACCESS_KEY_ID")
        self.session_token, _ = self.opts.secret("session_token_env", "AWS_SESSION_TOKEN")
        self.profile = self.opts.text("profile")
        self.configuration_set = self.opts.text("configuration_set")
        self._credentials: Any = None

    def _check_path(self) -> str:
        return "/v2/email/account"

    def _auth_headers(self) -> dict[str, str]:
        return {}

    def _check_secret(self) -> None:
        try:
            from botocore.credentials import Credentials
        except ImportError:
            raise ConfigError(
                "ses: botocore is not installed",
                hint="pip install 'pbtp-mailer[ses]'",
            ) from None
        if self.access_key and self.secret:
            self._credentials = Credentials(self.access_key, self.secret, self.session_token)
            return
        if self.profile:
            from botocore.exceptions import BotoCoreError
            from botocore.session import Session

            try:
                creds = Session(profile=self.profile).get_credentials()
            except BotoCoreError as exc:
                raise SendPermanentError(f"ses: profile {self.profile!r}: {exc}") from None
            if creds is not None:
                self._credentials = creds
                return
        raise SendPermanentError(
            f"ses: no AWS credentials: ${self.access_env} and ${self.secret_env} are not set",
            hint="export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... "
                 "(or set profile in the sender table)",
        )

    def _get(self, path: str) -> Any:
        assert self.client is not None
        return self.client.get(path, headers=self._signed_headers(b"", "GET", path))

    def _signed_headers(self, body: bytes, method: str = "POST",
                        path: str = PATH) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        headers = {"Content-Type": "application/json"} if method == "POST" else {}
        request = AWSRequest(method=method, url=self.base_url + path, data=body,
                             headers=headers)
        SigV4Auth(self._credentials, "ses", self.region).add_auth(request)
        return dict(request.headers.items())

    def _send_unit(self, unit: list[Outgoing]) -> list[Outcome]:
        (msg,) = unit
        if len(msg.rcpt_to) > MAX_RECIPIENTS:
            return [per_recipient(msg, Status.PERMANENT, None,
                                  f"ses: {len(msg.rcpt_to)} recipients, at most "
                                  f"{MAX_RECIPIENTS}")]
        payload: dict[str, Any] = {
            "FromEmailAddress": msg.mail_from,
            "Destination": {"ToAddresses": list(msg.rcpt_to)},
            "Content": {"Raw": {"Data": base64.b64encode(msg.data).decode("ascii")}},
        }
        if self.configuration_set:
            payload["ConfigurationSetName"] = self.configuration_set
        body = json.dumps(payload).encode()
        response = self._post(PATH, content=body, headers=self._signed_headers(body))
        if response.status_code == 200:
            try:
                message_id = str(response.json().get("MessageId", "")) or None
            except ValueError:
                message_id = None
            return [per_recipient(msg, Status.ACCEPTED, 200, "accepted", message_id)]
        kind, text = self._error(response)
        code = response.status_code
        detail = f"{kind}: {text}" if text else kind
        if code in (401, 403) or kind in CREDENTIAL_ERRORS:
            raise SendPermanentError(
                f"ses: {code} — check {self.access_env}/{self.secret_env} ({detail})", code=code)
        if code == 429 or code >= 500 or kind in THROTTLING:
            raise SendTransientError(f"ses: {code} {detail}", code=code,
                                     retry_after=retry_after_seconds(response.headers))
        if kind in ACCOUNT_ERRORS:
            raise SendPermanentError(f"ses: {code} {detail}", code=code)
        return [per_recipient(msg, _refusal(kind, text, msg), code, f"ses: {code} {detail}")]

    def _error(self, response: Any) -> tuple[str, str]:
        kind = response.headers.get("x-amzn-errortype", "")
        text = ""
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if isinstance(answer, dict):
            kind = kind or str(answer.get("__type") or answer.get("code") or "")
            text = str(answer.get("message") or answer.get("Message") or "")
        kind = kind.split(":", 1)[0].rsplit("#", 1)[-1]
        return kind or "Error", text or self._short(response)
