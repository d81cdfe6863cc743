"""A private Dovecot IMAP server (Debian ``dovecot-imapd``) on a free 127.0.0.1 port, for tests.

    with DovecotServer(tmp_cert) as dc:
        dc.append("INBOX", raw_bytes)          # real IMAP APPEND
        ... IMAPS on 127.0.0.1:dc.port, user dc.user, password dc.password ...
        dc.folder("Done")                      # raw messages now in that folder

Everything lives in a fresh directory under /tmp (configuration, runtime
sockets, Maildirs, log); the system instance is neither used nor touched.
Implicit TLS only (``ssl = required``) with a certificate from
``certs.make_cert``. Needs root (Dovecot's master drops to its own users).
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["DovecotServer", "dovecot_unavailable"]

DOVECOT = "/usr/sbin/dovecot"

CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


def dovecot_unavailable() -> str | None:
    if not Path(DOVECOT).exists():
        return "dovecot-imapd is not installed (scripts/test.sh installs it)"
    if os.geteuid() != 0:
        return "a private Dovecot needs root"
    for user in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"system user {user!r} missing (dovecot-core creates it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DovecotServer:
    def __init__(self, cert: tuple[Path, Path], user: str = "bounces@example.test",
                 password: str = "imap-test-password-123") -> None:
        self.cert_file, self.key_file = cert
        self.user, self.password = user, password
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pbtp-dovecot-"))
        os.chmod(self.dir, 0o755)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DovecotServer:
        owner = pwd.getpwnam("dovecot")
        for sub in ("run", "state", "mail", "home"):
            (self.dir / sub).mkdir()
        for sub in ("mail", "home"):
            os.chown(self.dir / sub, owner.pw_uid, owner.pw_gid)
        (self.dir / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        conf = self.dir / "dovecot.conf"
        conf.write_text(CONF.format(d=self.dir, cert=self.cert_file, key=self.key_file,
                                    uid=owner.pw_uid, gid=owner.pw_gid, port=self.port))
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")

    def log(self) -> str:
        p = self.dir / "dovecot.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.cleanup()

    def client(self) -> imaplib.IMAP4_SSL:
        ctx = ssl.create_default_context(cafile=str(self.cert_file))
        c = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=ctx, timeout=10)
        c.login(self.user, self.password)
        return c

    def append(self, folder: str, data: bytes) -> None:
        c = self.client()
        try:
            c.create(f'"{folder}"')
            typ, resp = c.append(f'"{folder}"', None, None, data)
            assert typ == "OK", resp
        finally:
            c.logout()

    def folder(self, folder: str) -> list[bytes]:
        """The raw messages now in ``folder`` (empty when it does not exist)."""
        c = self.client()
        try:
            typ, _ = c.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return []
            _, data = c.uid("SEARCH", "ALL")
            out = []
            for uid in (data[0] or b"").split():
                _, parts = c.uid("FETCH", uid, "(BODY.PEEK[])")
                out.extend(p[1] for p in parts if isinstance(p, tuple))
            return out
        finally:
            c.logout()
