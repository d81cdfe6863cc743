"""Benchmark the feedback loop: ``bounces ingest`` of a Maildir, and the webhooks.

    python bench/feedback.py [--messages N] [--requests N]

1. Writes a Maildir of N (default 100,000) Postfix-shaped DSNs, each for a
   different address, then runs the ingest (the library call behind
   ``bounces ingest``) in a child process on a fresh SQLite store, for N/10
   and for N messages: messages per second and the child's peak RSS (flat
   when both peaks are close).
2. Serves the ``/feedback/`` app on waitress with 4 threads (in its own
   process, like ``serve``) and posts signed Mailgun (HMAC-SHA256) and
   SendGrid (ECDSA P-256) requests from 8 client threads with keep-alive
   connections: requests per second, each request verified and its event
   recorded. Signing happens before the clock starts.

Goals of issue 12: ingest >= 2,000 messages/s with flat RSS; webhooks >= 500 req/s.

Measured 2026-12-01 on the 2-core container shared with other jobs (load
average 3-7), Python 3.11.7, SQLite:

    ingest  10,000 DSNs   2,341 msgs/s   peak RSS 60 MiB
    ingest 100,000 DSNs   1,994 msgs/s   peak RSS 60 MiB (flat)
    webhook mailgun         579 req/s    (HMAC, replay table, event recorded)
    webhook sendgrid        442 req/s    (ECDSA P-256 verify, event recorded)
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import mailbox
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DSN = ("From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
       "To: newsletter@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
       "Message-Id: <dsn-{i}@mx.example.org>\r\nDate: Fri, 01 Mar 2024 14:00:03 +0000\r\n"
       "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
       'boundary="B{i}"\r\n\r\n--B{i}\r\nContent-Type: text/plain\r\n\r\n'
       "<member{i}@example.com>: host mx.example.com said: 550 5.1.1 unknown user\r\n\r\n"
       "--B{i}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
       "Final-Recipient: rfc822; member{i}@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
       "Diagnostic-Code: smtp; 550 5.1.1 <member{i}@example.com>: unknown user\r\n\r\n"
       "--B{i}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
       "Message-ID: <2024-03.{i}@example.org>\r\nFrom: news@example.org\r\n"
       "To: member{i}@example.com\r\nSubject: PBTP E-Newsletter\r\n\r\n--B{i}--\r\n")


def write_maildir(path: Path, n: int) -> None:
    box = mailbox.Maildir(str(path), create=True)
    new = path / "new"
    for i in range(n):  # plain files: mailbox.add is slow and adds nothing here
        (new / f"{1700000000 + i}.{i}.bench").write_bytes(DSN.format(i=i).encode())
    del box


def child_ingest(maildir: str, url: str, jobs: int) -> None:
    from pbtp_mailer.feedback import Policy
    from pbtp_mailer.feedback.ingest import ingest, read_messages
    from pbtp_mailer.store import Store

    with Store.from_url(url) as store:
        t0 = time.perf_counter()
        report = ingest(store, read_messages(maildir), verp=None, policy=Policy(), jobs=jobs)
        elapsed = time.perf_counter() - t0
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(json.dumps({"messages": report.messages, "recorded": report.recorded,
                      "seconds": elapsed, "rss_mb": rss}))


def bench_ingest(n: int, jobs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pbtp-bench-fb-") as tmp:
        for count in (max(1, n // 10), n):
            md = Path(tmp) / f"Maildir-{count}"
            t0 = time.perf_counter()
            write_maildir(md, count)
            made = time.perf_counter() - t0
            url = f"sqlite:///{Path(tmp) / f'ingest-{count}.sqlite3'}"
            out = subprocess.run([sys.executable, __file__, "--child-ingest", str(md), url,
                                  str(jobs)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"ingest {r['messages']:>7,} DSNs: {r['seconds']:6.1f} s, "
                  f"{r['messages'] / r['seconds']:7,.0f} msgs/s, jobs {jobs}, "
                  f"peak RSS {r['rss_mb']:.0f} MiB (largest process) "
                  f"({r['recorded']:,} events; Maildir written in {made:.1f} s)")


def _mailgun(key: bytes, i: int) -> bytes:
    ts = str(int(time.time()))
    token = secrets.token_hex(25)
    sig = hmac.new(key, (ts + token).encode(), hashlib.sha256).hexdigest()
    event = {"event": "failed", "severity": "permanent", "recipient": f"mg{i}@example.com",
             "id": f"mg-{i}-{secrets.token_hex(4)}", "timestamp": time.time(),
             "delivery-status": {"code": 550, "message": "5.1.1 unknown"}}
    return json.dumps({"signature": {"timestamp": ts, "token": token, "signature": sig},
                       "event-data": event}).encode()


def _sendgrid(priv, i: int) -> tuple[bytes, dict[str, str]]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    ts = str(int(time.time()))
    body = json.dumps([{"email": f"sg{i}@example.com", "timestamp": int(time.time()),
                        "event": "bounce", "type": "bounce", "status": "5.1.1",
                        "sg_event_id": f"sg-{i}-{secrets.token_hex(4)}"}]).encode()
    sig = priv.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
                  "X-Twilio-Email-Event-Webhook-Timestamp": ts}


def child_serve(url: str, pub: str, key: str) -> None:
    """The webhook app on waitress (4 threads) in its own process; prints its port."""
    from waitress.server import create_server

    from pbtp_mailer.feedback import FeedbackSettings
    from pbtp_mailer.feedback.webhooks import make_app
    from pbtp_mailer.store import Store

    settings = FeedbackSettings(mailgun_enabled=True, sendgrid_public_key=pub)
    store = Store.from_url(url)
    app = make_app(store, settings, {"PBTP_MAILER_MAILGUN_SIGNING_KEY": key})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    print(server.effective_port, flush=True)
    server.run()


def _post_all(port: int, reqs: list[tuple[str, bytes, dict[str, str]]]) -> tuple[float, int]:
    """Post from 8 keep-alive client threads; (seconds, answers 200)."""
    statuses: list[int] = []
    lock = threading.Lock()

    def client(chunk: list[tuple[str, bytes, dict[str, str]]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        got = []
        for path, body, headers in chunk:
            conn.request("POST", path, body=body,
                         headers={**headers, "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            got.append(resp.status)
        conn.close()
        with lock:
            statuses.extend(got)

    threads = [threading.Thread(target=client, args=(reqs[k::8],)) for k in range(8)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, statuses.count(200)


def bench_webhooks(n: int) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from pbtp_mailer.store import Store

    key = b"key-" + b"k" * 32
    priv = ec.generate_private_key(ec.SECP256R1())
    pub = base64.b64encode(priv.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    with tempfile.TemporaryDirectory(prefix="pbtp-bench-wh-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'wh.sqlite3'}"
        Store.from_url(url).close()  # migrate before the server starts
        server = subprocess.Popen([sys.executable, __file__, "--child-serve", url, pub,
                                   key.decode()], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            for name, make in (("mailgun", lambda i: ("/feedback/mailgun", _mailgun(key, i), {})),
                               ("sendgrid",
                                lambda i: ("/feedback/sendgrid", *_sendgrid(priv, i)))):
                reqs = [make(i) for i in range(n)]  # signed before the clock starts
                elapsed, ok = _post_all(port, reqs)
                print(f"webhook {name:<8} {n:,} signed requests, 4 server threads: "
                      f"{n / elapsed:6,.0f} req/s ({ok:,} answered 200)")
        finally:
            server.terminate()
            server.wait(10)
        with Store.from_url(url) as store:
            print(f"events recorded: {len(store.feedback.events()):,}")


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child-ingest":
        child_ingest(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "--child-serve":
        child_serve(sys.argv[2], sys.argv[3], sys.argv[4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=2_000)
    ap.add_argument("--jobs", type=int, default=1, help="parse processes for the ingest")
    args = ap.parse_args()
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, Python {sys.version.split()[0]}")
    bench_ingest(args.messages, args.jobs)
    bench_webhooks(args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
