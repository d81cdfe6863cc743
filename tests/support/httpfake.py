"""Local fakes of the e-mail APIs (Postmark, SendGrid, Mailgun, SES v2) on 127.0.0.1.

Each fake checks the documented request (auth header, path, body shape,
limits) and answers with the documented responses:

    with FakeAPI("postmark", secret="tok") as api:
        sender = PostmarkSender(SenderSpec(..., options={"base_url": api.base_url}, ...))
        api.reject["gone@example.org"] = "inactive"     # provider rejects a recipient
        api.refuse_message["a@example.org"] = "too big"  # ... the message to it, as such
        api.script.append((429, {"Retry-After": "7"}, b"{}"))  # next answer, FIFO
        api.delay = 2.0                                  # slow answers (client timeouts)
        api.deliveries                                   # accepted: Delivery records
        api.problems                                     # every request that broke a rule

A request that breaks a documented rule is answered 400 and recorded in
``problems``, so tests assert ``api.problems == []``. SES requests are
SigV4-verified: the fake recomputes the signature with the secret it knows.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeAPI", "Delivery", "SES_ACCESS_KEY"]

SES_ACCESS_KEY = "AKIDEXAMPLE"
Answer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Delivery:
    """What the provider accepted: recipients, subject and the text, decoded."""

    rcpts: tuple[str, ...]
    subject: str
    text: str
    headers: dict[str, str]
    raw: bytes | None = None


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, \
        json.dumps(body).encode()


def _from_mime(rcpts: tuple[str, ...], raw: bytes) -> Delivery:
    msg: Any = BytesParser(policy=policy.default).parsebytes(raw)
    part = msg.get_body(("plain", "html"))
    text = part.get_content() if part is not None else ""
    return Delivery(rcpts, str(msg.get("subject", "")), text,
                    {k.lower(): str(v) for k, v in msg.items()}, raw)


def _form_fields(ctype: str, body: bytes) -> dict[str, list[bytes]] | None:
    """multipart/form-data → {name: [values]} (values as sent, byte for byte)."""
    marker = "boundary="
    if marker not in ctype:
        return None
    boundary = ctype.split(marker, 1)[1].split(";")[0].strip().strip('"').encode()
    fields: dict[str, list[bytes]] = {}
    chunks = body.split(b"--" + boundary)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        return None
    for chunk in chunks[1:-1]:
        head, sep, value = chunk[2:].partition(b"\r\n\r\n")
        if not sep or not value.endswith(b"\r\n"):
            return None
        name = None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:") and 'name="' in line:
                name = line.split('name="', 1)[1].split('"', 1)[0]
        if name is None:
            return None
        fields.setdefault(name, []).append(value[:-2])
    return fields


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out leave broken pipes behind: expected here


class FakeAPI:
    def __init__(self, provider: str, *, secret: str = "test-secret",
                 domain: str = "mg.example.org", region: str = "eu-west-1") -> None:
        if provider not in ("postmark", "sendgrid", "mailgun", "ses"):
            raise ValueError(provider)
        self.provider = provider
        self.secret = secret
        self.domain = domain
        self.region = region
        self.reject: dict[str, str] = {}
        #: recipients whose message is refused as a whole, in each API's words for an
        #: invalid message (Postmark ErrorCode 300, SendGrid/Mailgun 400, SES MessageRejected)
        self.refuse_message: dict[str, str] = {}
        self.script: list[Answer] = []
        self.delay = 0.0
        self.deliveries: list[Delivery] = []
        self.requests = 0
        self.problems: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> FakeAPI:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, headers, payload = api._check(
                    self.path, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, headers, payload = api._answer(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                if api.delay:
                    time.sleep(api.delay)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answers ----------------------------------------------------------------

    def _problem(self, text: str) -> Answer:
        self.problems.append(text)
        return _json(400, {"message": text, "ErrorCode": 300, "errors": [{"message": text}]})

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        with self._lock:
            self.requests += 1
            if self.script:
                return self.script.pop(0)
        return getattr(self, f"_{self.provider}")(path, headers, body)

    def _check(self, path: str, headers: dict[str, str]) -> Answer:
        """The read-only endpoints ``senders check`` uses to prove credentials."""
        with self._lock:
            self.requests += 1
        token = base64.b64encode(f"api:{self.secret}".encode()).decode()
        if self.provider == "postmark" and path == "/server":
            if headers.get("x-postmark-server-token") != self.secret:
                return _json(401, {"ErrorCode": 10, "Message": "Bad or missing API token"})
            return _json(200, {"ID": 1, "Name": "pbtp"})
        if self.provider == "sendgrid" and path == "/v3/scopes":
            if headers.get("authorization") != f"Bearer {self.secret}":
                return _json(401, {"errors": [{"message": "authorization required"}]})
            return _json(200, {"scopes": ["mail.send"]})
        if self.provider == "mailgun" and path.startswith("/v3/domains/"):
            if headers.get("authorization") != f"Basic {token}":
                return 401, {"Content-Type": "text/plain"}, b"Forbidden"
            if path != f"/v3/domains/{self.domain}":
                return _json(404, {"message": "Domain not found"})
            return _json(200, {"domain": {"name": self.domain, "state": "active"}})
        if self.provider == "ses" and path == "/v2/email/account":
            problem = self._check_sigv4(path, headers, b"", "GET")
            if problem:
                return _json(403, {"message": problem},
                             {"x-amzn-ErrorType": "InvalidSignatureException"})
            return _json(200, {"SendingEnabled": True, "ProductionAccessEnabled": True})
        return self._problem(f"unexpected GET {path}")

    def _postmark(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if path != "/email/batch":
            return self._problem(f"unexpected path {path}")
        if headers.get("x-postmark-server-token") != self.secret:
            return _json(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
        if "application/json" not in headers.get("content-type", ""):
            return _json(415, {"ErrorCode": 409, "Message": "JSON required"})
        items = json.loads(body)
        if not isinstance(items, list):
            return self._problem("batch body must be a JSON array")
        if len(items) > 500:
            return _json(422, {"ErrorCode": 410, "Message": "Too many batch messages."})
        out = []
        for item in items:
            for key in ("From", "To", "MessageStream"):
                if not item.get(key):
                    return self._problem(f"message without {key}")
            if not (item.get("HtmlBody") or item.get("TextBody")):
                return self._problem("message without HtmlBody or TextBody")
            if not isinstance(item.get("Headers", []), list):
                return self._problem("Headers must be a list of {Name, Value}")
            rcpts = tuple(a.strip() for a in item["To"].split(","))
            if len(rcpts) > 50:
                out.append({"ErrorCode": 300, "Message": "Too many recipients."})
                continue
            invalid = [self.refuse_message[r.lower()] for r in rcpts
                       if r.lower() in self.refuse_message]
            if invalid:
                out.append({"ErrorCode": 300, "Message": f"Invalid email request: {invalid[0]}"})
                continue
            refused = [r for r in rcpts if r.lower() in self.reject]
            if refused:
                out.append({"ErrorCode": 406, "Message": "You tried to send to recipient(s) "
                            f"that have been marked as inactive: {refused[0]}"})
                continue
            mid = str(uuid.uuid4())
            self.deliveries.append(Delivery(
                rcpts, item.get("Subject", ""), item.get("TextBody") or item.get("HtmlBody"),
                {h["Name"].lower(): h["Value"] for h in item.get("Headers", [])}))
            out.append({"ErrorCode": 0, "Message": "OK", "MessageID": mid,
                        "SubmittedAt": "2026-03-01T12:00:00.0000000-05:00", "To": item["To"]})
        return _json(200, out)

    def _sendgrid(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if path != "/v3/mail/send":
            return self._problem(f"unexpected path {path}")
        if headers.get("authorization") != f"Bearer {self.secret}":
            return _json(401, {"errors": [{"message": "The provided authorization grant is "
                                           "invalid, expired, or revoked", "field": None,
                                           "help": None}]})
        if len(body) > 30 * 1024 * 1024:
            return _json(413, {"errors": [{"message": "payload too large"}]})
        req = json.loads(body)
        pers = req.get("personalizations") or []
        if not 1 <= len(pers) <= 1000:
            return self._problem("personalizations must hold 1 to 1000 entries")
        rcpts = tuple(t["email"] for p in pers for t in p.get("to", []))
        if not rcpts or len(rcpts) > 1000:
            return self._problem("1 to 1000 recipients")
        if not req.get("from", {}).get("email") or "subject" not in req:
            return self._problem("from.email and subject are required")
        content = req.get("content") or []
        if not content or any(c["type"] == "text/plain" for c in content[1:]):
            return self._problem("content required, text/plain first")
        for name in req.get("headers", {}):
            if name.lower() in ("to", "from", "subject", "content-type", "dkim-signature"):
                return self._problem(f"reserved header {name}")
        for r in rcpts:
            if r.lower() in self.refuse_message:
                return _json(400, {"errors": [{"message": self.refuse_message[r.lower()],
                                               "field": "content", "help": None}]})
        for i, r in enumerate(rcpts):
            if r.lower() in self.reject:
                return _json(400, {"errors": [{"message": "Does not contain a valid address.",
                                               "field": f"personalizations.{i}.to.0.email",
                                               "help": None}]})
        self.deliveries.append(Delivery(rcpts, req["subject"], content[0]["value"],
                                        {k.lower(): v for k, v in req.get("headers", {}).items()}))
        return 202, {"X-Message-Id": f"sg{next(self._ids):06d}"}, b""

    def _mailgun(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if not path.startswith("/v3/") or not path.endswith("/messages.mime"):
            return self._problem(f"unexpected path {path}")
        token = base64.b64encode(f"api:{self.secret}".encode()).decode()
        if headers.get("authorization") != f"Basic {token}":
            return 401, {"Content-Type": "text/plain"}, b"Forbidden"
        domain = path[len("/v3/"):-len("/messages.mime")]
        if domain != self.domain:
            return _json(404, {"message": f"Domain not found: {domain}"})
        if len(body) > 25 * 1024 * 1024:
            return _json(413, {"message": "request too large"})
        ctype = headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return self._problem("messages.mime needs multipart/form-data")
        fields = _form_fields(ctype, body)
        if fields is None:
            return self._problem("malformed multipart/form-data")
        if "message" not in fields or "to" not in fields:
            return _json(400, {"message": "'to' and 'message' parameters are required"})
        rcpts = tuple(v.decode() for v in fields["to"])
        invalid = [self.refuse_message[r.lower()] for r in rcpts
                   if r.lower() in self.refuse_message]
        if invalid:
            return _json(400, {"message": f"message refused: {invalid[0]}"})
        if any(r.lower() in self.reject for r in rcpts):
            return _json(400, {"message": "'to' parameter is not a valid address. "
                               "please check documentation"})
        self.deliveries.append(_from_mime(rcpts, fields["message"][0]))
        return _json(200, {"id": f"<2026.{next(self._ids)}@{self.domain}>",
                           "message": "Queued. Thank you."})

    def _ses(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if path != "/v2/email/outbound-emails":
            return self._problem(f"unexpected path {path}")
        problem = self._check_sigv4(path, headers, body)
        if problem:
            return _json(403, {"message": problem},
                         {"x-amzn-ErrorType": "InvalidSignatureException"})
        req = json.loads(body)
        raw = base64.b64decode(req.get("Content", {}).get("Raw", {}).get("Data", ""))
        if not raw or not req.get("FromEmailAddress"):
            return _json(400, {"message": "Raw content and FromEmailAddress required"},
                         {"x-amzn-ErrorType": "BadRequestException"})
        rcpts = tuple(req.get("Destination", {}).get("ToAddresses", []))
        if len(rcpts) > 50:
            return _json(400, {"message": "Recipient count exceeds 50."},
                         {"x-amzn-ErrorType": "BadRequestException"})
        invalid = [self.refuse_message[r.lower()] for r in rcpts
                   if r.lower() in self.refuse_message]
        if invalid:
            return _json(400, {"message": f"Message rejected: {invalid[0]}"},
                         {"x-amzn-ErrorType": "MessageRejected"})
        refused = [r for r in rcpts if r.lower() in self.reject]
        if refused:
            return _json(400, {"message": f"Email address is not verified: {refused[0]}"},
                         {"x-amzn-ErrorType": "MessageRejected"})
        self.deliveries.append(_from_mime(rcpts, raw))
        return _json(200, {"MessageId": f"0100{next(self._ids):012d}-ses"})

    def _check_sigv4(self, path: str, headers: dict[str, str], body: bytes,
                     method: str = "POST") -> str | None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        auth = headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "Missing Authentication Token"
        parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        akid, date, region, service, term = parts["Credential"].split("/")
        if akid != SES_ACCESS_KEY:
            return "The security token included in the request is invalid."
        if (region, service, term) != (self.region, "ses", "aws4_request"):
            return f"Credential should be scoped to {self.region}/ses"
        signed = parts["SignedHeaders"].split(";")
        for must in ("host", "x-amz-date"):
            if must not in signed:
                return f"{must} must be signed"
        request = AWSRequest(method=method, url=f"http://{headers['host']}{path}", data=body,
                             headers={h: headers[h] for h in signed if h in headers})
        request.context["timestamp"] = headers["x-amz-date"]
        signer = SigV4Auth(Credentials(akid, self.secret), "ses", self.region)
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request)
        if expected != parts["Signature"]:
            return ("The request signature we calculated does not match the signature "
                    "you provided.")
        return None
