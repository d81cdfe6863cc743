"""The send gate: large dispatches wait while a deliverability check fails."""

from __future__ import annotations

import csv
import datetime as dt
import re

from click.testing import CliRunner

from tests.conftest import MARCH
from tests.doctor.conftest import load, write_config
from tests.support.smtpd import FakeSMTPServer

ISSUE = "issues/2024-03.yaml"


def make_list(root, n: int, name: str = "members") -> None:
    from pbtp_mailer.store import Store

    path = root / f"{name}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "name"])
        for i in range(n):
            w.writerow([f"member{i:05d}@example.com", f"Member {i}"])
    with Store.open(load(root)) as store:
        store.create_list(name)
        store.import_csv(name, path)


def cli(*args: str):
    from pbtp_mailer.cli import main

    result = CliRunner().invoke(main, ["--config", "pbtp-mailer.toml", *args])
    assert "Traceback" not in result.output, result.output
    return result


def test_send_refuses_2000_recipients_while_spf_fails(project, zone, dns_up):
    zone["spf"] = None
    server = dns_up(zone)
    with FakeSMTPServer() as smtp:
        write_config(project, nameserver=f"127.0.0.1:{server.port}", relay_host="127.0.0.1",
                     relay_port=smtp.port)
        make_list(project, 2000)
        r = cli("send", ISSUE, "--list", "members", "--yes")
        assert r.exit_code == 1, r.output
        assert ("Error: doctor: refusing to send to 2000 recipients (more than [dispatch] "
                "doctor_gate_recipients = 1000): [spf] pbtp.test: no SPF record\n") in r.output
        assert "Hint: pbtp-mailer doctor shows each fix" in r.output
        assert smtp.messages == []

        r = cli("send", ISSUE, "--list", "members", "--yes", "--skip-doctor", "--limit", "3")
        assert r.exit_code == 5, r.output  # started; the rest wait for the next run
        assert "Warning: doctor checks skipped (--skip-doctor) for 2000 recipients" in r.output
        assert len(smtp.messages) == 3
        assert (project / ".pbtp-mailer" / "doctor-dns-cache.json").exists()


def test_small_send_and_fixed_records_pass_the_gate(project, zone, dns_up):
    zone["spf"] = None
    server = dns_up(zone)
    with FakeSMTPServer() as smtp:
        write_config(project, nameserver=f"127.0.0.1:{server.port}", relay_host="127.0.0.1",
                     relay_port=smtp.port)
        make_list(project, 5)
        r = cli("send", ISSUE, "--list", "members", "--yes")  # under the gate: not checked
        assert r.exit_code == 0, r.output
        assert len(smtp.messages) == 5


def test_cached_failure_refreshed_by_doctor(project, zone, dns_up):
    """The gate reads the one-hour cache; running doctor asks afresh and refreshes it."""
    from pbtp_mailer.doctor import gate_dispatch

    zone["spf"] = None
    bad = dns_up(zone)
    write_config(project, nameserver=f"127.0.0.1:{bad.port}", relay_host="127.0.0.1")
    try:
        gate_dispatch(load(project), None, 5000)
        raise AssertionError("the gate let it through")
    except Exception as exc:  # noqa: BLE001
        assert "[spf] pbtp.test: no SPF record" in str(exc)
    bad.stop()
    zone["spf"] = "--txt-record=pbtp.test,v=spf1 ip4:127.0.0.1 ~all"
    good = dns_up(zone)
    write_config(project, nameserver=f"127.0.0.1:{good.port}", relay_host="127.0.0.1")
    try:  # still the cached answer
        gate_dispatch(load(project), None, 5000)
        raise AssertionError("the cache was not used")
    except Exception as exc:  # noqa: BLE001
        assert "no SPF record" in str(exc)
    assert cli("doctor", "--json").exit_code == 1  # the probe fails; DNS is refreshed
    assert gate_dispatch(load(project), None, 5000) == []


def test_dispatch_due_refuses_and_logs_why(project, zone, dns_up):
    from pbtp_mailer.schedule.run import run_due
    from pbtp_mailer.schedule.runlog import RunLog
    from pbtp_mailer.senders.memory import MemorySender

    zone["dmarc"] = None
    server = dns_up(zone)
    write_config(project, nameserver=f"127.0.0.1:{server.port}", relay_host="127.0.0.1")
    cfg = (project / "pbtp-mailer.toml").read_text() + "\n[dispatch]\ndoctor_gate_recipients = 3\n"
    (project / "pbtp-mailer.toml").write_text(cfg)
    make_list(project, 4)
    text = MARCH.read_text(encoding="utf-8")
    text = re.sub(r'^id: "2024-03"$', 'id: "2026-01"', text, count=1, flags=re.M)
    (project / "issues" / "2026-01.yaml").write_text(
        text.rstrip("\n") + "\nschedule:\n  send_at: 2026-01-05T09:00:00Z\n  lists: [members]\n")
    memory = MemorySender()
    now = dt.datetime(2026, 1, 5, 9, 1, tzinfo=dt.UTC)
    log_path = project / "due.log"

    def due(**kw):
        return run_due(load(project), clock=lambda: now, sender_factory=lambda _n: memory,
                       log=RunLog(str(log_path), lambda: now), sleep=lambda s: None, **kw)

    report = due()
    assert report.exit_code == 1
    assert report.problems == [
        "2026-01 -> members: doctor: refusing to send to 4 recipients (more than [dispatch] "
        "doctor_gate_recipients = 3): [dmarc] _dmarc.pbtp.test: no DMARC record (Gmail and "
        "Yahoo require one for bulk senders) (pbtp-mailer doctor shows each fix (and refreshes "
        "the DNS answers cached for an hour); --skip-doctor sends anyway)"]
    assert "no DMARC record" in log_path.read_text()
    assert memory.outbox == []
    report = due(skip_doctor=True)
    assert report.exit_code == 0, report.problems
    assert len(memory.outbox) == 4
    assert "doctor checks skipped (--skip-doctor) for 4 recipients" in log_path.read_text()


def test_test_send_only_warns(project, zone, dns_up):
    zone["spf"] = None
    server = dns_up(zone)
    with FakeSMTPServer() as smtp:
        write_config(project, nameserver=f"127.0.0.1:{server.port}", relay_host="127.0.0.1",
                     relay_port=smtp.port)
        r = cli("test-send", ISSUE, "--to", "reviewer@example.com")
        assert r.exit_code == 0, r.output
        assert "Warning: doctor: fail [spf] pbtp.test: no SPF record" in r.output
        assert len(smtp.messages) == 1
