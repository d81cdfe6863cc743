"""A scratch project with a list and helpers to dispatch several issues, for feedback tests."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.dispatch.conftest import World, memory_sender  # noqa: F401  (fixture re-export)

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


class FeedbackWorld(World):
    def issue_copy(self, issue_id: str):
        """A copy of the March issue under another id (a later issue to the same list)."""
        text = self.issue.read_text(encoding="utf-8").replace('id: "2024-03"', f'id: "{issue_id}"')
        path = self.root / "issues" / f"{issue_id}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    def send_issue(self, store, issue_id: str, sender=None):
        from pbtp_mailer.dispatch.dispatcher import Dispatcher, DispatchOptions, plan_dispatch
        from pbtp_mailer.senders.memory import MemorySender

        path = self.issue if issue_id == "2024-03" else self.issue_copy(issue_id)
        opts = DispatchOptions(list_name="members")
        plan = plan_dispatch(path, self.config, store, opts)
        return Dispatcher(plan, opts, sender=sender or MemorySender()).run()


@pytest.fixture()
def fworld(tmp_path):
    w = FeedbackWorld(tmp_path)
    yield w
    w.close()


def event(email: str, kind: str = "hard", source: str = "dsn", event_id: str | None = None,
          **kw):
    from pbtp_mailer.feedback import FeedbackEvent

    return FeedbackEvent(email=email, kind=kind, source=source,
                         event_id=event_id or f"{source}-{kind}-{email}",
                         received_at=kw.pop("received_at", T0), **kw)


def feedback_section(world: World, text: str) -> None:
    """Append a [feedback] table to the world's config."""
    path = world.root / "pbtp-mailer.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n[feedback]\n" + text,
                    encoding="utf-8")


def run_cli(world: World, *args: str, input: bytes | str | None = None):
    """``pbtp-mailer ARGS`` against the world's config, through CliRunner."""
    from click.testing import CliRunner

    from pbtp_mailer.cli import main

    env = {"PBTP_MAILER_CONFIG": str(world.root / "pbtp-mailer.toml"),
           "PBTP_MAILER_DATABASE_URL": world.env.get("PBTP_MAILER_DATABASE_URL"), **{
               k: v for k, v in world.env.items() if k != "PBTP_MAILER_DATABASE_URL"}}
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def verp_address(world: World, delivery_id: int) -> str:
    from pbtp_mailer.feedback.verp import verp_for

    verp = verp_for(world.config)
    assert verp is not None
    return verp.address(delivery_id)


def dsn_bytes(recipient: str, *, to: str = "newsletter@example.org", status: str = "5.1.1",
              action: str = "failed", message_id: str = "<dsn-1@mx.example.org>",
              original_message_id: str | None = None) -> bytes:
    """A minimal Postfix-shaped DSN."""
    orig = (f"\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"Message-ID: {original_message_id}\r\nTo: {recipient}\r\n"
            if original_message_id else "")
    return (f"From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\nTo: {to}\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\nMessage-Id: {message_id}\r\n"
            "Date: Fri, 01 Mar 2024 14:00:03 +0000\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain\r\n\r\nBounced.\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; 550 {status} no such user\r\n{orig}\r\n--B--\r\n"
            ).encode()
