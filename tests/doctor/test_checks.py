"""The checks that need no DNS: the unsubscribe probe against the real serve over
plain HTTP, config placeholders and secret, the ledger's bounce rate, the offline
message check."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT, TEST_SECRET
from tests.doctor.conftest import load, write_config
from tests.doctor.test_gate import cli, make_list
from tests.support.smtpd import FakeSMTPServer
from tests.support.waitress import serving

ISSUE = "issues/2024-03.yaml"


@pytest.fixture
def plain_serve(project):
    """The real site (waitress) on plain HTTP; yields (base URL, store)."""
    from pbtp_mailer.store import Store
    from pbtp_mailer.web.app import make_site, site_mounts

    write_config(project, nameserver="127.0.0.1:9")
    config = load(project)
    store = Store.open(config)
    with serving(make_site(site_mounts(store, config))) as port:
        yield f"http://127.0.0.1:{port}/u/", store
    store.close()


def test_probe_answers_200_changes_nothing_but_http_is_a_fail(project, plain_serve):
    from pbtp_mailer.doctor.probes import check_unsubscribe_url, probe_unsubscribe

    base, store = plain_serve
    make_list(project, 3)
    write_config(project, nameserver="127.0.0.1:9", unsubscribe=base)
    config = load(project)
    before = [(c.name, c.active, c.unsubscribed) for c in store.list_counts()]
    https = check_unsubscribe_url(config)
    assert https.status == "fail" and https.message.startswith(f"{base}: one-click unsubscribe "
                                                               "must be https")
    probe = probe_unsubscribe(config)
    assert probe.status == "ok", probe
    assert probe.message.endswith(": 200, no cookie (probe token: nothing changed)")
    assert [(c.name, c.active, c.unsubscribed) for c in store.list_counts()] == before


def test_probe_against_a_serve_with_another_secret(project, plain_serve):
    from pbtp_mailer.config import load_config
    from pbtp_mailer.doctor.probes import probe_unsubscribe

    base, _ = plain_serve
    write_config(project, nameserver="127.0.0.1:9", unsubscribe=base)
    other = load_config(project / "pbtp-mailer.toml",
                        environ={"PBTP_MAILER_SECRET": "another-secret-0123456789abcdef"})
    probe = probe_unsubscribe(other)
    assert probe.status == "fail"
    assert "answered 404 Not Found" in probe.message
    assert probe.fix.startswith("the probe token is unknown there")


def test_probe_token_with_a_wrong_body_is_400(project, plain_serve):
    import httpx

    from pbtp_mailer.tokens import make_probe_token, read_token

    base, _ = plain_serve
    token = make_probe_token(TEST_SECRET.encode())
    assert read_token(TEST_SECRET.encode(), token) == (0, 0)
    assert httpx.post(base + token, data={"List-Unsubscribe": "Other"}).status_code == 400
    assert httpx.get(base + token).status_code == 404  # a GET shows no page for it


def test_nothing_listening_is_a_fail_naming_the_url(project):
    from pbtp_mailer.doctor.probes import probe_unsubscribe

    write_config(project, nameserver="127.0.0.1:9", unsubscribe="https://127.0.0.1:9/u/")
    probe = probe_unsubscribe(load(project))
    assert probe.status == "fail"
    assert probe.message.startswith("POST https://127.0.0.1:9/u/") and "ConnectError" in \
        probe.message


def test_config_placeholders_and_missing_secret():
    from pbtp_mailer.config import load_config
    from pbtp_mailer.doctor.configcheck import check_config

    config = load_config(ROOT / "pbtp-mailer.toml", environ={})
    found = check_config(config)
    assert [c.status for c in found] == ["fail", "fail", "fail"]
    assert "placeholder values left in newsletter.from, newsletter.reply_to" in found[0].message
    assert "postal_address" in found[1].message
    assert found[2].message.startswith("PBTP_MAILER_SECRET is not set")
    assert found[2].fix.startswith("export PBTP_MAILER_SECRET=")


def test_reputation_from_the_ledger(project):
    from pbtp_mailer.doctor.reputation import check_reputation
    from pbtp_mailer.store import Store

    with FakeSMTPServer() as smtp:
        smtp.rcpt_codes = {"member00001@example.com": "550 5.1.1 no such user"}
        write_config(project, nameserver="127.0.0.1:9", relay_host="127.0.0.1",
                     relay_port=smtp.port)
        make_list(project, 10)
        r = cli("send", ISSUE, "--list", "members", "--yes")
        assert r.exit_code == 3, r.output
    config = load(project)
    with Store.open(config) as store:
        bounce, complaints = check_reputation(store, config)
    assert bounce.status == "fail"
    assert bounce.message.startswith("bounce rate 10.00% (1 bounced of 10 tried over the last "
                                     "1 dispatch(es); limits 2% / 5%)")
    assert complaints.status == "ok" and complaints.message.startswith("complaint rate unknown")


def _dsn(n: int) -> bytes:
    from tests.feedback.conftest import dsn_bytes

    return dsn_bytes(f"member{n:05d}@example.com", message_id=f"<dsn-{n}@mx.example.org>")


def _arf(n: int) -> bytes:
    text = (ROOT / "tests/feedback/corpus/09-yahoo-arf-abuse.eml").read_text(encoding="utf-8")
    return text.replace("ivan@yahoo.example.com", f"member{n:05d}@example.com").replace(
        "<fbl-1709370720.42@yahoo.example.com>", f"<fbl-{n}@yahoo.example.com>").encode()


def _ingest(project, name: str, messages: list[bytes]) -> None:
    import mailbox

    box = mailbox.Maildir(str(project / name), create=True)
    for m in messages:
        box.add(m)
    r = cli("bounces", "ingest", str(project / name))
    assert r.exit_code == 0 and f"{len(messages)} event(s) recorded" in r.output, r.output


def test_reputation_grades_the_recorded_feedback(project):
    """ok, warn, fail for both rates, from DSNs and ARF reports ingested by the CLI."""
    from pbtp_mailer.doctor.reputation import check_reputation
    from pbtp_mailer.feedback.gate import complaint_gate
    from pbtp_mailer.store import Store

    with FakeSMTPServer() as smtp:
        smtp.rcpt_codes = {"member00000@example.com": "550 5.1.1 no such user"}
        write_config(project, nameserver="127.0.0.1:9", relay_host="127.0.0.1",
                     relay_port=smtp.port)
        make_list(project, 400)
        assert cli("send", ISSUE, "--list", "members", "--yes").exit_code == 3
    config = load(project)

    def grades() -> list[tuple[str, str]]:
        with Store.open(config) as store:
            checks = check_reputation(store, config)
            gate = complaint_gate(store, config)
        if not checks[1].message.startswith("complaint rate unknown"):
            # doctor's complaint line is the gate's: fail exactly when dispatch-due refuses
            assert (checks[1].status == "fail") == (gate.level == "refuse")
            assert checks[1].message == gate.text()
        return [(c.status, c.message.split(" (")[0]) for c in checks]

    assert grades() == [("ok", "bounce rate 0.25%"), ("ok", "complaint rate unknown: no bounce "
                                                            "or complaint report recorded here yet")]
    _ingest(project, "dsn1", [_dsn(n) for n in range(1, 10)])  # 10 of 400 tried
    _ingest(project, "arf1", [_arf(10)])  # 1 of 399 sent
    assert grades() == [("warn", "bounce rate 2.50%"), ("warn", "complaint rate 0.25%")]
    _ingest(project, "dsn2", [_dsn(n) for n in range(11, 21)])
    _ingest(project, "arf2", [_arf(21), _arf(22)])
    assert grades() == [("fail", "bounce rate 5.00%"), ("fail", "complaint rate 0.75%")]
    r = cli("doctor", "--offline")
    assert "fail  [reputation]  complaint rate 0.75% (3 of 399 sent)" in r.output, r.output


def test_message_offline_signed_and_checked(project):
    r = cli_offline_message(project)
    assert "ok    [message]  1 DKIM signature(s); not verified (--offline)" in r.output
    assert "ok    [unsubscribe]  built message: List-Unsubscribe (https) and " \
           "List-Unsubscribe-Post present, DKIM-signed" in r.output
    assert "ok    [message]  List-Id: PBTP News <news.pbtp.test>" in r.output
    assert "[message]  SpamAssassin" in r.output


def cli_offline_message(project):
    write_config(project, nameserver="127.0.0.1:9")
    r = cli("doctor", "--offline", "--issue", ISSUE)
    assert r.exit_code == 0, r.output
    return r


def test_bad_issue_is_exit_2(project):
    write_config(project, nameserver="127.0.0.1:9")
    (project / "bad.yaml").write_text("id: [\n")
    r = cli("doctor", "--offline", "--issue", "bad.yaml")
    assert r.exit_code == 2 and r.output.startswith("Error: ") and "bad.yaml" in r.output
