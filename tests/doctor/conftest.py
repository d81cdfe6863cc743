"""A test domain, pbtp.test, served by a real dnsmasq on 127.0.0.1, a project whose
config points at it, DKIM keys, and the real ``serve`` behind TLS.

``zone`` is a dict of dnsmasq options by purpose; a test changes one entry
(``zone["spf"] = None`` removes the SPF record) and calls ``dns_up(zone)``.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_SECRET
from tests.support.dns import DNSMASQ, Dnsmasq, txt_record
from tests.support.waitress import serving

DOMAIN = "pbtp.test"
RELAY_IP = "127.0.0.7"


def _rsa_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


@pytest.fixture(scope="session")
def keys() -> dict[str, bytes]:
    """The configured DKIM key and another one."""
    return {"news": _rsa_pem(), "other": _rsa_pem()}


def dkim_value(pem: bytes) -> str:
    from pbtp_mailer.doctor.dkimcheck import public_record
    from pbtp_mailer.doctor.facts import DKIMKey

    return public_record(DKIMKey("news", DOMAIN, Path("x"), "rsa"), pem)[0]


@pytest.fixture
def zone(keys) -> dict[str, str | None]:
    """Every record right for the project's config."""
    return {
        "spf": txt_record(DOMAIN, "v=spf1 a:relay.pbtp.test ip4:127.0.0.1 ~all"),
        "dkim": txt_record(f"news._domainkey.{DOMAIN}", dkim_value(keys["news"])),
        "dmarc": txt_record(f"_dmarc.{DOMAIN}",
                            "v=DMARC1; p=quarantine; rua=mailto:dmarc@pbtp.test"),
        "relay": f"--host-record=relay.{DOMAIN},{RELAY_IP}",
        "relay-ptr": f"--ptr-record=7.0.0.127.in-addr.arpa,relay.{DOMAIN}",
        "mx-host": f"--host-record=mx.{DOMAIN},127.0.0.8",
        "mx": f"--mx-host={DOMAIN},mx.{DOMAIN},10",
    }


@pytest.fixture
def dns_up(request):
    """Start dnsmasq for a zone dict (entries that are None are left out)."""
    if DNSMASQ is None:
        pytest.fail("dnsmasq is not installed: run scripts/test.sh (it installs dnsmasq-base)")
    started: list[Dnsmasq] = []

    def start(zone: dict[str, str | None], *extra: str,
              local: tuple[str, ...] = (DOMAIN, "other.test")) -> Dnsmasq:
        server = Dnsmasq([v for v in zone.values() if v] + list(extra), local).start()
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


def write_config(root: Path, *, nameserver: str, unsubscribe: str = "https://pbtp.test/u/",
                 relay_host: str = "relay.pbtp.test", relay_port: int = 587,
                 doctor_extra: str = "", sender_extra: str = "") -> Path:
    path = root / "pbtp-mailer.toml"
    path.write_text(f"""
default_sender = "relay"

[newsletter]
name = "PBTP News"
from = "PBTP News <news@{DOMAIN}>"
postal_address = "Alliance PBTP, 1 Main Street, Springfield, IL 62701, USA"
web_base_url = "https://{DOMAIN}/news/"
unsubscribe_base_url = "{unsubscribe}"
list_id = "PBTP News <news.{DOMAIN}>"
timezone = "UTC"

[senders.relay]
kind = "smtp"
host = "{relay_host}"
port = {relay_port}
tls = "none"
dkim_selector = "news"
dkim_domain = "{DOMAIN}"
dkim_key_file = "keys/news.private"
{sender_extra}

[doctor]
bounces_by_mail = true
nameserver = "{nameserver}"
timeout = 2.0
{doctor_extra}
""", encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path, monkeypatch, keys) -> Path:
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    shutil.copytree(ROOT / "layouts", tmp_path / "layouts")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "news.private").write_bytes(keys["news"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PBTP_MAILER_CONFIG", raising=False)
    monkeypatch.delenv("PBTP_MAILER_DATABASE_URL", raising=False)
    monkeypatch.setenv("PBTP_MAILER_SECRET", TEST_SECRET)
    return tmp_path


def load(root: Path):
    from pbtp_mailer.config import load_config

    return load_config(root / "pbtp-mailer.toml", environ={"PBTP_MAILER_SECRET": TEST_SECRET})


class _TLSFront:
    """A TLS-terminating reverse proxy (like nginx in front of ``serve``): bytes both ways."""

    def __init__(self, backend_port: int, cert: tuple[Path, Path]) -> None:
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        self.backend = backend_port
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            tls = self.ctx.wrap_socket(conn, server_side=True)
            back = socket.create_connection(("127.0.0.1", self.backend), timeout=10)
        except OSError:
            conn.close()
            return

        def pump(src, dst) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass

        t = threading.Thread(target=pump, args=(back, tls), daemon=True)
        t.start()
        pump(tls, back)
        t.join(10)
        tls.close()
        back.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def serve_site(tmp_path, monkeypatch) -> Iterator:
    """``serve_site(config)`` runs the real site (waitress) behind TLS; returns the base URL."""
    from pbtp_mailer.store import Store
    from pbtp_mailer.web.app import make_site, site_mounts
    from tests.support.certs import make_cert

    cert = make_cert(tmp_path / "cert")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    with ExitStack() as stack:

        def start(config) -> str:
            store = stack.enter_context(closing(Store.open(config)))
            port = stack.enter_context(serving(make_site(site_mounts(store, config))))
            front = stack.enter_context(closing(_TLSFront(port, cert)))
            return f"https://127.0.0.1:{front.port}/u/"

        yield start
