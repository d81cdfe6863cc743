"""``bounces fetch`` against a real private Dovecot: each message once, moved, second run idle."""

from __future__ import annotations

import pytest

from tests.feedback.conftest import dsn_bytes, feedback_section, run_cli
from tests.feedback.test_corpus import CORPUS
from tests.support.certs import make_cert
from tests.support.dovecot import DovecotServer, dovecot_unavailable

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(dovecot_unavailable() is not None,
                                 reason=dovecot_unavailable() or "")]


@pytest.fixture()
def dovecot(tmp_path):
    with DovecotServer(make_cert(tmp_path / "tls", "localhost")) as dc:
        yield dc


def test_fetch_processes_each_message_once_and_moves_it(fworld, dovecot):
    from pbtp_mailer.senders.memory import MemorySender

    emails = fworld.make_list(3)
    feedback_section(fworld, (
        'bounce_domain = "bounce.example.org"\n'
        f'imap_host = "127.0.0.1"\nimap_port = {dovecot.port}\n'
        f'imap_user = "{dovecot.user}"\nimap_ca_file = "{dovecot.cert_file}"\n'
        'imap_done_folder = "Processed"\n'))
    fworld.env["PBTP_MAILER_IMAP_PASSWORD"] = dovecot.password
    store = fworld.store()
    MemorySender.reset()
    fworld.send_issue(store, "2024-03")
    verp0 = next(m.mail_from for m in MemorySender.mailbox if m.rcpt_to == (emails[0],))
    arf = (CORPUS / "09-yahoo-arf-abuse.eml").read_bytes().replace(
        b"ivan@yahoo.example.com", emails[1].encode())
    human = (CORPUS / "18-human-reply.eml").read_bytes()
    for data in (dsn_bytes("forwarded@elsewhere.example.net", to=verp0), arf,
                 (CORPUS / "16-out-of-office.eml").read_bytes(),
                 (CORPUS / "11-arf-not-spam.eml").read_bytes(), human):
        dovecot.append("INBOX", data)

    r = run_cli(fworld, "bounces", "fetch")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1] == (
        "5 message(s): 2 event(s) recorded, 0 already known, 0 unmatched, "
        "2 address(es) suppressed, 2 ignored, 1 not recognised")
    assert store.subscriber(emails[0]).suppression[0] == "bounced"
    assert store.subscriber(emails[1]).suppression[0] == "complained"
    assert dovecot.folder("INBOX") == [human]  # not recognised: left where it was
    assert len(dovecot.folder("Processed")) == 4

    again = run_cli(fworld, "bounces", "fetch")
    assert again.exit_code == 0, again.output
    assert again.output.strip() == ("0 message(s): 0 event(s) recorded, 0 already known, "
                                    "0 unmatched, 0 address(es) suppressed, 0 ignored, "
                                    "0 not recognised")
    assert len(dovecot.folder("Processed")) == 4


def test_fetch_wrong_password_is_one_error_line(fworld, dovecot):
    feedback_section(fworld, (
        f'imap_host = "127.0.0.1"\nimap_port = {dovecot.port}\n'
        f'imap_user = "{dovecot.user}"\nimap_ca_file = "{dovecot.cert_file}"\n'))
    fworld.env["PBTP_MAILER_IMAP_PASSWORD"] = "wrong-password"
    r = run_cli(fworld, "bounces", "fetch")
    assert r.exit_code == 1
    assert r.output.strip() == (f"Error: 127.0.0.1:{dovecot.port}: login failed for "
                                f"'{dovecot.user}'")
