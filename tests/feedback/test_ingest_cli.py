"""``bounces ingest`` from a file, an mbox, a Maildir and stdin; ``bounces list``; ``subscribers show``."""

from __future__ import annotations

import json
import mailbox
import shutil

from tests.feedback.conftest import (
    dsn_bytes,
    feedback_section,
    run_cli,
    verp_address,
)
from tests.feedback.test_corpus import CORPUS


def test_ingest_one_file_suppresses_and_prints(fworld):
    emails = fworld.make_list(3)
    fworld.send_issue(fworld.store(), "2024-03")
    path = fworld.root / "dsn.eml"
    path.write_bytes(dsn_bytes(emails[1]))
    r = run_cli(fworld, "bounces", "ingest", str(path))
    assert r.exit_code == 0, r.output
    assert f"{path}: recorded: hard {emails[1]} (dsn 5.1.1): no such user; suppressed as bounced" \
        in r.output.replace("550 5.1.1 ", "")
    assert r.output.splitlines()[-1] == ("1 message(s): 1 event(s) recorded, 0 already known, "
                                         "0 unmatched, 1 address(es) suppressed, 0 ignored, "
                                         "0 not recognised")
    again = run_cli(fworld, "bounces", "ingest", str(path))
    assert "already known" in again.output and "0 event(s) recorded" in again.output
    shown = run_cli(fworld, "subscribers", "show", emails[1])
    assert "suppressed on all lists: bounced" in shown.output
    assert "Bounces and complaints:" in shown.output
    assert "  hard  dsn  5.1.1  550 5.1.1 no such user" in shown.output


def test_ingest_stdin_with_verp_maps_a_forwarded_address(fworld):
    emails = fworld.make_list(2)
    feedback_section(fworld, 'bounce_domain = "bounce.example.org"\n')
    store = fworld.store()
    fworld.send_issue(store, "2024-03")
    sent = [m for m in __import__("pbtp_mailer.senders.memory", fromlist=["x"])
            .MemorySender.mailbox if emails[0] in m.rcpt_to][-1]
    assert sent.mail_from.startswith("bounces+") and sent.mail_from.endswith("@bounce.example.org")
    did = sent.ref.id
    assert sent.mail_from == verp_address(fworld, did)
    # the DSN names the forwarding target, not our subscriber; the token names the copy
    data = dsn_bytes("someone@forwarded.example.net", to=sent.mail_from)
    r = run_cli(fworld, "bounces", "ingest", "-", input=data)
    assert r.exit_code == 0, r.output
    assert f"recorded: hard {emails[0]} (dsn 5.1.1)" in r.output
    assert store.subscriber(emails[0]).suppression[0] == "bounced"


def test_ingest_maildir_and_mbox_with_corpus(fworld):
    fworld.make_list(1)
    md = fworld.root / "Maildir"
    box = mailbox.Maildir(str(md), create=True)
    for p in sorted(CORPUS.glob("*.eml")):
        box.add(p.read_bytes())
    r = run_cli(fworld, "bounces", "ingest", str(md))
    assert r.exit_code == 0, r.output
    last = r.output.splitlines()[-1]
    assert last.startswith("19 message(s): ")
    # no bounce domain here: the two VERP-only samples cannot be mapped
    assert "14 event(s) recorded, 0 already known, 1 unmatched" in last
    assert "3 ignored, 2 not recognised" in last
    # the same in two parsing processes: the same result, every report already known
    r2 = run_cli(fworld, "bounces", "ingest", "--jobs", "2", "-q", str(md))
    assert r2.output.strip() == (
        "19 message(s): 0 event(s) recorded, 14 already known, 1 unmatched, "
        "0 address(es) suppressed, 3 ignored, 2 not recognised")
    mbox_path = fworld.root / "bounces.mbox"
    mb = mailbox.mbox(str(mbox_path))
    for p in sorted(CORPUS.glob("0*.eml")):
        mb.add(p.read_bytes())
    mb.close()
    r3 = run_cli(fworld, "bounces", "ingest", str(mbox_path))
    assert r3.exit_code == 0 and "9 message(s)" in r3.output.splitlines()[-1]
    assert "already known" in r3.output


def test_ingest_missing_source_is_one_error_line(fworld):
    r = run_cli(fworld, "bounces", "ingest", str(fworld.root / "nope.eml"))
    assert r.exit_code == 1
    assert r.output.strip() == f"Error: {fworld.root / 'nope.eml'}: no such file or Maildir"
    (fworld.root / "plain").mkdir()
    r = run_cli(fworld, "bounces", "ingest", str(fworld.root / "plain"))
    assert "not a Maildir" in r.output and r.exit_code == 1


def test_bounces_list_filters_and_json(fworld):
    emails = fworld.make_list(2)
    fworld.send_issue(fworld.store(), "2024-03")
    shutil.copy(CORPUS / "09-yahoo-arf-abuse.eml", fworld.root / "arf.eml")
    (fworld.root / "arf.eml").write_bytes((CORPUS / "09-yahoo-arf-abuse.eml").read_bytes()
                                          .replace(b"ivan@yahoo.example.com", emails[0].encode()))
    (fworld.root / "dsn.eml").write_bytes(dsn_bytes(emails[1]))
    run_cli(fworld, "bounces", "ingest", str(fworld.root / "arf.eml"))
    run_cli(fworld, "bounces", "ingest", str(fworld.root / "dsn.eml"))
    r = run_cli(fworld, "bounces", "list", "--kind", "complaint", "--json")
    rows = json.loads(r.output)
    assert [(x["email"], x["kind"], x["source"], x["suppressed_as"]) for x in rows] == [
        (emails[0], "complaint", "arf", "complained")]
    r = run_cli(fworld, "bounces", "list")
    assert len(r.output.splitlines()) == 2
    r = run_cli(fworld, "bounces", "list", "--since", "yesterday")
    assert r.exit_code == 2 and "--since" in r.output


def test_control_characters_from_bounces_print_escaped(fworld):
    """A receiver's diagnostic (and a stored name) with ESC/C1/bidi never reaches the terminal raw."""
    from sqlalchemy import update

    from pbtp_mailer.store.schema import subscribers

    emails = fworld.make_list(2)
    store = fworld.store()
    fworld.send_issue(store, "2024-03")
    with store.engine.begin() as conn:  # as an older version may have stored it
        conn.execute(update(subscribers).where(subscribers.c.email_key == emails[0])
                     .values(name="Eve\x1b]0;pwned\x07"))
    data = dsn_bytes(emails[0]).replace(b"no such user", b"no \x1b[2J such \x07 user")
    r = run_cli(fworld, "bounces", "ingest", "-", input=data)
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "no \\x1b[2J such \\x07 user" in r.output
    listed = run_cli(fworld, "bounces", "list")
    assert "\x1b" not in listed.output and "\x07" not in listed.output
    assert listed.output.rstrip("\n").endswith(
        f"{emails[0]}  -> bounced  550 5.1.1 no \\x1b[2J such \\x07 user")
    shown = run_cli(fworld, "subscribers", "show", emails[0])
    assert "\x1b" not in shown.output and "\x07" not in shown.output
    assert "  name: Eve\\x1b]0;pwned\\x07\n" in shown.output
    assert "  hard  dsn  5.1.1  550 5.1.1 no \\x1b[2J such \\x07 user" in shown.output
    # JSON stays valid JSON and decodes to the very text recorded
    for args in (("bounces", "list", "--json"), ("subscribers", "show", emails[0], "--json"),
                 ("subscribers", "export", emails[0])):
        out = run_cli(fworld, *args).output
        assert "\x1b" not in out and "\x07" not in out
        assert any("no \x1b[2J such \x07 user" in t for t in _strings(json.loads(out))), args


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for v in value.values() if isinstance(value, dict) else value:
            yield from _strings(v)
