"""Real DNS servers for tests on 127.0.0.1: Debian's dnsmasq serving a zone from
command-line records, a responder that answers SERVFAIL to everything, and a
socket that never answers (a timeout).

    with Dnsmasq(["--txt-record=example.test,v=spf1 -all"]) as dns:
        resolver_at = f"127.0.0.1:{dns.port}"
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Sequence

__all__ = ["Dnsmasq", "ServfailServer", "SilentServer", "DNSMASQ", "free_port"]

DNSMASQ = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if shutil.which("/usr/sbin/dnsmasq")
                                      else None)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no free port")


def txt_strings(value: str, size: int = 255) -> list[str]:
    """``value`` cut into strings of at most ``size`` bytes, as a zone file would hold it."""
    return [value[i:i + size] for i in range(0, len(value), size)] or [""]


def txt_record(name: str, value: str) -> str:
    """A ``--txt-record`` option; values over 255 bytes become several strings."""
    parts = txt_strings(value)
    for p in parts:
        assert "," not in p and '"' not in p, "dnsmasq options cannot hold commas here"
    return f"--txt-record={name}," + ",".join(parts)


class Dnsmasq:
    """dnsmasq answering only from its options (no upstream, no hosts file)."""

    def __init__(self, records: Sequence[str], local_zones: Sequence[str] = ()) -> None:
        if DNSMASQ is None:
            raise RuntimeError("dnsmasq is not installed (scripts/test.sh installs it)")
        self.port = free_port()
        self.args = [DNSMASQ, "--no-daemon", f"--port={self.port}",
                     "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                     "--no-hosts", "--conf-file=/dev/null", "--cache-size=0",
                     *(f"--local=/{z}/" for z in local_zones), *records]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Dnsmasq:
        import dns.message
        import dns.query

        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        query = dns.message.make_query("ready.invalid", "A")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dnsmasq exited: {err}")
            try:
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
                return self
            except (OSError, dns.exception.Timeout):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dnsmasq did not answer within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()

    def __enter__(self) -> Dnsmasq:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _UDPServer:
    """A UDP socket on a free port served by a thread until ``stop``."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def answer(self, data: bytes) -> bytes | None:
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.queries += 1
            reply = self.answer(data)
            if reply is not None:
                self.sock.sendto(reply, peer)

    def __enter__(self) -> _UDPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class SilentServer(_UDPServer):
    """Reads every question and never answers."""


class ServfailServer(_UDPServer):
    """Answers every question with SERVFAIL."""

    def answer(self, data: bytes) -> bytes | None:
        import dns.message
        import dns.rcode

        reply = dns.message.make_response(dns.message.from_wire(data))
        reply.set_rcode(dns.rcode.SERVFAIL)
        return reply.to_wire()  # type: ignore[no-any-return]
