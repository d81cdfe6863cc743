"""A private Postfix (Debian package ``postfix``) on a free 127.0.0.1 port, for tests.

    with PostfixServer() as pf:
        ... send to 127.0.0.1:pf.port, recipients @example.test ...
        pf.wait_for(2)            # parsed messages delivered to its Maildir

Everything lives in a fresh directory under /tmp (configuration, queue,
Maildir, log): the system instance is neither used nor touched. Mail for
``example.test`` is delivered by the ``virtual`` agent into one Maildir;
every other domain is refused at RCPT ("554 5.7.1 Relay access denied"),
``refuse`` lists addresses answered with a chosen code, and every outbound
transport is ``error:`` so nothing ever leaves the machine (not even DNS).

``cert=(cert_file, key_file)`` (see ``certs.make_cert``) turns on STARTTLS.
``extra_main`` / ``extra_master`` append to main.cf / master.cf (the feedback
tests relay one domain to an aiosmtpd next hop and let Postfix bounce).
Needs root (Postfix's master runs as root and drops to ``postfix``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

__all__ = ["PostfixServer", "postfix_unavailable", "DOMAIN"]

POSTFIX = "/usr/sbin/postfix"
DOMAIN = "example.test"

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""


def postfix_unavailable() -> str | None:
    """Why the Postfix tests cannot run here, or None."""
    if not os.path.exists(POSTFIX):
        return f"{POSTFIX} is absent (apt-get install postfix)"
    if os.geteuid() != 0:
        return "Postfix's master must be started as root"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no 'postfix' user (the Debian package creates it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostfixServer:
    def __init__(self, refuse: dict[str, str] | None = None,
                 cert: tuple[Path, Path] | None = None, *, extra_main: str = "",
                 extra_master: str = "") -> None:
        self.refuse = refuse or {}
        self.extra_main = extra_main  # appended to main.cf: later settings win
        self.extra_master = extra_master
        self.cert = cert
        self.port = _free_port()
        self.base = Path(tempfile.mkdtemp(prefix="pbtp-postfix-", dir="/tmp"))
        self.conf = self.base / "etc"
        self.maildir = self.base / "mail" / "Maildir"
        self.log = self.base / "maillog"
        self._started = False

    def _main_cf(self) -> str:
        user = pwd.getpwnam("postfix")
        access = ", ".join(f"{{ {addr} = {action} }}" for addr, action in self.refuse.items())
        restrictions = "reject_unauth_destination"
        if access:
            restrictions = f"check_recipient_access inline:{{{access}}}, {restrictions}"
        b = self.base
        return f"""\
compatibility_level = 3.6
config_directory = {self.conf}
queue_directory = {b}/queue
data_directory = {b}/data
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = pbtp-test.localdomain
mydomain = localdomain
myorigin = localdomain
mydestination =
mynetworks =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_base = {b}/mail
virtual_mailbox_maps = static:Maildir/
virtual_uid_maps = static:{user.pw_uid}
virtual_gid_maps = static:{user.pw_gid}
virtual_minimum_uid = 1
smtpd_relay_restrictions = {restrictions}
smtpd_recipient_restrictions =
default_transport = error:outbound mail is disabled in tests
relay_transport = error:outbound mail is disabled in tests
smtp_dns_support_level = disabled
notify_classes =
maillog_file = {self.log}
maillog_file_prefixes = {b}
message_size_limit = 52428800
virtual_mailbox_limit = 0
biff = no
""" + self._tls_cf() + self.extra_main

    def _tls_cf(self) -> str:
        if self.cert is None:
            return ""
        cert, key = (shutil.copy(p, self.conf / p.name) for p in self.cert)
        return (f"smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n"
                "smtpd_tls_security_level = may\n")

    def start(self) -> PostfixServer:
        os.chmod(self.base, 0o755)  # postfix processes must reach the queue
        self.conf.mkdir()
        (self.base / "queue").mkdir()
        mail = self.base / "mail"
        mail.mkdir()
        user = pwd.getpwnam("postfix")
        os.chown(mail, user.pw_uid, user.pw_gid)
        (self.conf / "main.cf").write_text(self._main_cf())
        (self.conf / "master.cf").write_text(MASTER_CF.format(port=self.port) + self.extra_master)
        result = subprocess.run([POSTFIX, "-c", str(self.conf), "start"], capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            self.cleanup()
            raise RuntimeError(f"postfix start failed: {result.stderr}{log[-2000:]}")
        self._started = True
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postfix did not listen on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self._started:
            subprocess.run([POSTFIX, "-c", str(self.conf), "stop"], capture_output=True,
                           timeout=60)
            pid_file = self.base / "queue" / "pid" / "master.pid"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().split()[0]), 0)
                except (OSError, ValueError):
                    break
                time.sleep(0.1)
            self._started = False
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostfixServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def delivered(self) -> list[Any]:
        """Messages in the Maildir (``new/``), parsed, oldest first."""
        new = self.maildir / "new"
        if not new.is_dir():
            return []
        files = sorted(new.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        return [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in files]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.delivered()
            if len(got) >= count:
                return got
            time.sleep(0.1)
        log = self.log.read_text()[-3000:] if self.log.exists() else ""
        raise AssertionError(f"{len(self.delivered())} of {count} delivered; log:\n{log}")
