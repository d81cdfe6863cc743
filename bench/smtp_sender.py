"""SMTP sender throughput against Postfix's smtp-sink, next to smtp-source.

    python bench/smtp_sender.py [-n 8000] [--connections 8] [--runs 3]

Starts ``smtp-sink`` (Debian package ``postfix``) on a free 127.0.0.1 port,
measures ``smtp-source -d -s 16 -l 40000 -m N`` as the limit, then our
SMTPSender with N messages of 40 KB handed over ``batch_size`` at a time the
way the dispatcher does, and prints msg/s, the ratio to the limit and the
client CPU per message (process time: the sender runs in the calling thread).
Runs are interleaved and the medians printed; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbtp_mailer.senders.base import Outgoing, SenderSpec  # noqa: E402
from pbtp_mailer.senders.smtp import SMTPSender  # noqa: E402

SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def message(i: int, size: int = 40_000) -> bytes:
    head = (f"From: PBTP News <news@example.org>\r\nTo: r{i}@example.net\r\n"
            f"Subject: March issue\r\nMessage-ID: <{i}@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n").encode()
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eius=\r\n"
    body = line * ((size - len(head)) // len(line))
    return head + body + b"." + b"x" * (size - len(head) - len(body) - 3) + b"\r\n"


def wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"smtp-sink did not listen on 127.0.0.1:{port}")


@contextlib.contextmanager
def smtp_sink() -> Iterator[int]:
    """Postfix's smtp-sink on a free 127.0.0.1 port (yields the port); stopped on exit."""
    for tool in (SINK, SOURCE):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install postfix")
    port = free_port()
    user = "nobody" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    sink = subprocess.Popen([SINK, "-c", "-u", user, f"127.0.0.1:{port}", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, time.monotonic() + 10)
        yield port
    finally:
        sink.terminate()
        try:
            sink.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait(timeout=5)


def run_source(port: int, n: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([SOURCE, "-d", "-s", "16", "-l", "40000", "-m", str(n),
                    "-f", "news@example.org", "-t", "reader@example.net",
                    f"127.0.0.1:{port}"], check=True, timeout=300)
    return n / (time.perf_counter() - t0)


def run_sender(port: int, n: int, connections: int) -> tuple[float, float]:
    messages = [Outgoing("news@example.org", (f"r{i}@example.net",), message(i))
                for i in range(n)]
    spec = SenderSpec("bench", "smtp", {"host": "127.0.0.1", "port": port, "tls": "none",
                                        "connections": connections,
                                        "max_messages_per_connection": 0})
    sender = SMTPSender(spec)
    with sender:
        size = sender.batch_size
        cpu0, t0 = time.process_time(), time.perf_counter()
        accepted = 0
        for i in range(0, n, size):
            accepted += sum(r.ok for r in sender.send(messages[i:i + size]))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if accepted != n:
        raise SystemExit(f"only {accepted} of {n} accepted")
    return n / wall, cpu / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=8000, help="messages per run (default 8000)")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    n = max(1, min(args.n, 200_000))
    for tool in (SINK, SOURCE):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install postfix")
    with smtp_sink() as port:
        limits, ours, cpus = [], [], []
        for _ in range(max(1, min(args.runs, 20))):
            limits.append(run_source(port, n))
            rate, cpu = run_sender(port, n, args.connections)
            ours.append(rate)
            cpus.append(cpu)
        limit, rate, cpu = (statistics.median(x) for x in (limits, ours, cpus))
        print(f"smtp-source -d -s 16 -l 40000 -m {n}: {limit:8.0f} msg/s (limit)")
        print(f"SMTPSender, {args.connections} connections:     {rate:8.0f} msg/s "
              f"= {rate / limit:.2f} x limit; client CPU {cpu:.0f} us/message")

if __name__ == "__main__":
    main()
