"""`unsubscribe --from-mbox`: requests mailed to the List-Unsubscribe mailto address."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from pathlib import Path

from pbtp_mailer.tokens import make_token
from tests.store.conftest import SECRET


def message(sender: str, subject: str) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "unsubscribe@example.org"
    m["Subject"] = subject
    m.set_content("Sent from my phone\n")
    return m


def setup_members(db, cli, tmp_path: Path) -> dict[str, str]:
    cli("lists", "create", "news")
    cli("subscribers", "add", "news", "ann@example.org")
    cli("subscribers", "add", "news", "bob@example.org")
    with db() as s:
        recs = {r.email: r for r in s.recipients("news")}
    return {e: make_token(SECRET.encode(), r.subscriber_id, r.list_id) for e, r in recs.items()}


def fill(box: mailbox.Mailbox, tokens: dict[str, str]) -> None:
    ann, bob = tokens["ann@example.org"], tokens["bob@example.org"]
    forged = ann[:-1] + ("A" if ann[-1] != "A" else "B")
    unknown = make_token(SECRET.encode(), 999, 1)
    for m in (
        message("Ann <ann@example.org>", f"unsubscribe {ann}"),
        message("bob@example.org",
                f"=?utf-8?q?Re=3A_Unsubscribe_{bob.replace('-', '=2D').replace('_', '=5F')}?="),
        message("ann.alias@example.net", f"unsubscribe {ann}"),
        message("mallory@example.com", f"unsubscribe {forged}"),
        message("carol@example.org", "please remove me"),
        message("dave@example.org", f"unsubscribe {unknown}"),
    ):
        box.add(m)


EXPECTED_OUT = (
    "Unsubscribed ann@example.org from 'news'.\n"
    "Unsubscribed bob@example.org from 'news'.\n"
    "ann@example.org was already unsubscribed from 'news'.\n"
)


def expected_err(name: str) -> str:
    return (
        f"{name}: message 4 from mallory@example.com: invalid unsubscribe token\n"
        f"{name}: message 5 from carol@example.org: no unsubscribe token in the subject "
        "'please remove me'\n"
        f"{name}: message 6 from dave@example.org: unknown subscriber or list (deleted?)\n"
    )


def test_mbox(db, cli, tmp_path: Path) -> None:
    tokens = setup_members(db, cli, tmp_path)
    box = mailbox.mbox(tmp_path / "unsub.mbox")
    try:
        fill(box, tokens)
        box.flush()
    finally:
        box.close()
    r = cli("unsubscribe", "--from-mbox", "unsub.mbox")
    assert r.exit_code == 1
    assert r.stdout == EXPECTED_OUT + (
        "unsub.mbox: 6 messages: 2 applied, 1 already done, 3 not applied.\n")
    assert r.stderr == expected_err("unsub.mbox")
    with db() as s:
        assert list(s.recipients("news")) == []
        assert [(h.status, h.source) for h in s.subscriber("bob@example.org").history] == [
            ("subscribed", "cli"), ("unsubscribed", "mailto")]


def test_maildir(db, cli, tmp_path: Path) -> None:
    tokens = setup_members(db, cli, tmp_path)
    box = mailbox.Maildir(tmp_path / "Unsub", create=True)
    fill(box, tokens)
    r = cli("unsubscribe", "--from-mbox", "Unsub")
    assert r.exit_code == 1
    assert sorted(r.stdout.splitlines()[:3]) == sorted(EXPECTED_OUT.splitlines())
    assert r.stdout.splitlines()[3] == (
        "Unsub: 6 messages: 2 applied, 1 already done, 3 not applied.")
    assert len(r.stderr.splitlines()) == 3


def test_missing_mailbox(cli) -> None:
    r = cli("unsubscribe", "--from-mbox", "nothere.mbox")
    assert (r.exit_code, r.output) == (
        1, "Error: nothere.mbox: no such mbox file or Maildir folder\n")


def test_mbox_and_email_are_exclusive(cli) -> None:
    r = cli("unsubscribe", "ann@example.org", "--from-mbox", "x.mbox")
    assert r.exit_code == 2
    assert "Error: give either EMAIL or --from-mbox FILE" in r.output
