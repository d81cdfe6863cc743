"""Real keys and servers for the webhook tests.

* ``SnsCA``: a test CA, an RSA signing certificate it issued, and a local
  HTTPS server (TLS certificate from the same CA) that serves the signing
  certificate and answers ``SubscribeURL`` visits. ``fetch`` maps the
  ``sns.<region>.amazonaws.com`` URL onto that server, trusting only the test
  CA: the verifier is pointed at it in tests only.
* signing helpers for SNS (v1 SHA-1, v2 SHA-256), SendGrid (ECDSA P-256)
  and Mailgun (HMAC-SHA256).
* ``serve(app)``: a WSGI app on waitress on a free 127.0.0.1 port.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.waitress import serving

TOPIC = "arn:aws:sns:us-east-1:123456789012:pbtp-ses-feedback"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject: str, key: Any, ca_key: Any, issuer: str, *, ca: bool,
           sans: list[x509.GeneralName] | None = None, days: int = 1) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256())


class SnsCA:
    def __init__(self, folder: Path) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _issue("pbtp test CA", self.ca_key, self.ca_key, "pbtp test CA", ca=True)
        self.sign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sign_cert = _issue("sns.amazonaws.com", self.sign_key, self.ca_key, "pbtp test CA",
                                ca=False)
        tls_key = ec.generate_private_key(ec.SECP256R1())
        tls = _issue("127.0.0.1", tls_key, self.ca_key, "pbtp test CA", ca=False,
                     sans=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))
        chain = folder / "tls.pem"
        chain.write_bytes(tls.public_bytes(serialization.Encoding.PEM))
        keyf = folder / "tls.key"
        keyf.write_bytes(tls_key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        self.pem = self.sign_cert.public_bytes(serialization.Encoding.PEM)
        self.visits: list[str] = []
        ca = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                ca.visits.append(self.path)
                body = ca.pem if self.path.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, keyf)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.server_address[1]

    def fetch(self, url: str) -> bytes:
        """The verifier's HTTPS GET, with the SNS host mapped to the local server."""
        import httpx

        parts = urlsplit(url)
        local = f"https://127.0.0.1:{self.port}{parts.path}" + (f"?{parts.query}" if parts.query
                                                              else "")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca_file)),
                          timeout=10) as client:
            resp = client.get(local)
        resp.raise_for_status()
        return resp.content

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def sign(self, msg: dict[str, Any], version: str = "1", key: Any = None) -> dict[str, Any]:
        from pbtp_mailer.feedback.webhooks.sns import signing_string

        msg = {**msg, "SignatureVersion": version, "SigningCertURL": msg.get(
            "SigningCertURL", CERT_URL)}
        algo = hashes.SHA1() if version == "1" else hashes.SHA256()
        sig = (key or self.sign_key).sign(signing_string(msg), padding.PKCS1v15(), algo)
        msg["Signature"] = base64.b64encode(sig).decode()
        return msg


def sns_time(when: dt.datetime | None = None) -> str:
    when = when or dt.datetime.now(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def ses_bounce(email: str, *, permanent: bool = True, feedback_id: str | None = None,
               message_id: str | None = None) -> dict[str, Any]:
    inner = {"notificationType": "Bounce", "bounce": {
        "bounceType": "Permanent" if permanent else "Transient", "bounceSubType": "General",
        "bouncedRecipients": [{"emailAddress": email, "action": "failed", "status": "5.1.1",
                               "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
        "timestamp": sns_time(), "feedbackId": feedback_id or secrets.token_hex(8)},
        "mail": {"messageId": "ses-msg-1", "timestamp": sns_time(),
                 "source": "newsletter@example.org", "destination": [email]}}
    return {"Type": "Notification", "MessageId": message_id or secrets.token_hex(8),
            "TopicArn": TOPIC, "Message": json.dumps(inner), "Timestamp": sns_time()}


def ses_complaint(email: str, ftype: str = "abuse") -> dict[str, Any]:
    inner = {"notificationType": "Complaint", "complaint": {
        "complainedRecipients": [{"emailAddress": email}], "timestamp": sns_time(),
        "feedbackId": secrets.token_hex(8), "complaintFeedbackType": ftype},
        "mail": {"messageId": "ses-msg-2"}}
    return {"Type": "Notification", "MessageId": secrets.token_hex(8), "TopicArn": TOPIC,
            "Subject": "Amazon SES Email Event Notification",
            "Message": json.dumps(inner), "Timestamp": sns_time()}


def sendgrid_keys() -> tuple[Any, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, base64.b64encode(pub).decode()


def sendgrid_headers(key: Any, body: bytes, ts: int | None = None) -> dict[str, str]:
    ts = ts if ts is not None else int(dt.datetime.now(dt.UTC).timestamp())
    sig = key.sign(str(ts).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(ts), "Content-Type": "application/json"}


def mailgun_body(key: bytes, event: dict[str, Any], *, ts: int | None = None,
                 token: str | None = None) -> bytes:
    ts = ts if ts is not None else int(dt.datetime.now(dt.UTC).timestamp())
    token = token or secrets.token_hex(25)
    sig = hmac.new(key, f"{ts}{token}".encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": str(ts), "token": token, "signature": sig},
                       "event-data": event}).encode()


@contextmanager
def serve(app: Any) -> Iterator[Any]:
    """``app`` on waitress; yields ``post(path, body, headers) -> (status, text)``."""
    with serving(app) as port:

        def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("POST", path, body=body, headers=headers or {})
                resp = conn.getresponse()
                return resp.status, resp.read().decode()
            finally:
                conn.close()

        post.port = port  # type: ignore[attr-defined]
        yield post
