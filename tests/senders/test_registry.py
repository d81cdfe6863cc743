"""Finding senders: URLs, configured names, bare kinds, entry points, masking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbtp_mailer.errors import ConfigError, UnknownSenderError
from pbtp_mailer.senders import (
    BaseSender,
    SenderSpec,
    available_kinds,
    create_sender,
    parse_sender_url,
    register_kind,
)
from pbtp_mailer.senders.console import ConsoleSender
from pbtp_mailer.senders.memory import MemorySender
from pbtp_mailer.senders.outbox import OutboxSender
from pbtp_mailer.senders.smtp import SMTPSender
from tests.senders.conftest import make_config


def test_every_shipped_kind_is_available() -> None:
    kinds = available_kinds()
    assert {"smtp", "smtps", "ses", "postmark", "sendgrid", "mailgun", "outbox", "console",
            "memory"} <= set(kinds)
    for ref in kinds.values():
        assert issubclass(ref.load(), BaseSender)


@pytest.mark.parametrize(("url", "kind", "options"), [
    ("smtp://news@smtp.example.org:587", "smtp",
     {"host": "smtp.example.org", "port": 587, "username": "news",
      "password_env": "PBTP_SMTP_PASSWORD"}),
    ("smtps://smtp.example.org:465", "smtps", {"host": "smtp.example.org", "port": 465}),
    ("smtp://127.0.0.1:2525?tls=none", "smtp", {"host": "127.0.0.1", "port": 2525,
                                                "tls": "none"}),
    ("smtp://u%40x@h.example.org?password_env=MY_PW&connections=8", "smtp",
     {"host": "h.example.org", "username": "u@x", "password_env": "MY_PW", "connections": 8}),
    ("ses://eu-west-1", "ses", {"region": "eu-west-1"}),
    ("postmark://", "postmark", {}),
    ("postmark://?message_stream=news", "postmark", {"message_stream": "news"}),
    ("sendgrid://", "sendgrid", {}),
    ("mailgun://mg.example.org?region=eu", "mailgun", {"domain": "mg.example.org",
                                                       "region": "eu"}),
    ("outbox:///var/tmp/box", "outbox", {"path": "/var/tmp/box"}),
    ("outbox://box", "outbox", {"path": "box"}),
    ("console://?full=true", "console", {"full": True}),
    ("memory://", "memory", {}),
])
def test_parse_sender_url(url: str, kind: str, options: dict) -> None:
    spec = parse_sender_url(url)
    assert (spec.kind, spec.options) == (kind, options)


def test_password_in_url_is_refused_and_masked() -> None:
    with pytest.raises(ConfigError) as info:
        parse_sender_url("smtp://news:hunter2@smtp.example.org:587")
    assert "hunter2" not in str(info.value) and "****" in str(info.value)
    assert info.value.hint and "password_env" in info.value.hint


def test_unknown_scheme() -> None:
    with pytest.raises(UnknownSenderError, match="unknown sender URL scheme 'gopher'"):
        parse_sender_url("gopher://x")


def test_create_by_name_kind_url_and_default(tmp_path: Path) -> None:
    config = make_config(tmp_path, {
        "relay": {"kind": "smtp", "host": "smtp.example.org", "username": "news",
                  "password_env": "PBTP_SMTP_PASSWORD", "connections": 4},
        "box": {"kind": "outbox", "path": "out"},
    }, default_sender="box")
    relay = create_sender("relay", config)
    assert isinstance(relay, SMTPSender) and relay.name == "relay" and relay.batch_size == 4
    assert create_sender("relay", config, concurrency=9).batch_size == 9
    box = create_sender(None, config)
    assert isinstance(box, OutboxSender) and box.path == tmp_path / "out"
    assert isinstance(create_sender("console", config), ConsoleSender)
    mem = create_sender("memory://?batch_size=3", config)
    assert isinstance(mem, MemorySender) and mem.batch_size == 3
    outbox = create_sender("outbox", config)
    assert isinstance(outbox, OutboxSender)
    assert outbox.path == tmp_path / ".pbtp-mailer" / "outbox"


def test_unknown_name_lists_known_ones(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"relay": {"kind": "smtp", "host": "h.example.org"}})
    with pytest.raises(UnknownSenderError) as info:
        create_sender("rleay", config)
    message = str(info.value)
    assert "'rleay'" in message and "relay" in message and "postmark" in message


def test_unknown_option_is_a_config_error(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"relay": {"kind": "smtp", "host": "h.example.org",
                                              "pasword_env": "X"}})
    with pytest.raises(ConfigError, match="unknown option 'pasword_env'"):
        create_sender("relay", config)


def test_third_party_kind(tmp_path: Path) -> None:
    class Pigeon(MemorySender):
        kind = "pigeon"

    register_kind("pigeon", Pigeon)
    config = make_config(tmp_path)
    assert isinstance(create_sender("pigeon", config), Pigeon)
    assert isinstance(create_sender("pigeon://", config), Pigeon)
    assert "pigeon" in available_kinds()


def test_importing_senders_loads_no_network_library() -> None:
    code = ("import sys, pbtp_mailer.senders as s; s.available_kinds(); "
            "bad = [m for m in ('httpx', 'aiosmtpd', 'boto3', 'botocore', 'dkim', 'ssl', "
            "'asyncio') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_ses_without_botocore_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("botocore"):
            raise ImportError("No module named 'botocore'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    from pbtp_mailer.senders.ses import SESSender

    sender = SESSender(SenderSpec("ses", "ses", {"region": "eu-west-1"}))
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError) as info:
        sender.open()
    assert "botocore is not installed" in str(info.value)
    assert "pbtp-mailer[ses]" in (info.value.hint or "")


# -- CLI ------------------------------------------------------------------------

TOML = """
default_sender = "relay"

[newsletter]
name = "PBTP News"
from = "PBTP News <news@example.org>"
postal_address = "1 Example St"
web_base_url = "https://news.example.org/"
unsubscribe_base_url = "https://news.example.org/u/"
list_id = "PBTP News <pbtp-news.example.org>"

[senders.relay]
kind = "smtp"
host = "127.0.0.1"
port = {port}
tls = "none"
username = "news"
password_env = "PBTP_SMTP_PASSWORD"

[senders.box]
kind = "outbox"
path = "out"
"""


def _cli(tmp_path: Path, args: list[str], env: dict[str, str], port: int = 2525):
    from pbtp_mailer.cli import main

    cfg = tmp_path / "pbtp-mailer.toml"
    cfg.write_text(TOML.replace("{port}", str(port)))
    return CliRunner().invoke(main, ["--config", str(cfg), *args], env=env)


def test_cli_lists_senders_without_secrets(tmp_path: Path) -> None:
    result = _cli(tmp_path, ["senders"], {"PBTP_SMTP_PASSWORD": "hunter2-secret"})
    assert result.exit_code == 0, result.output
    assert "* relay" in result.output
    assert "password_env=PBTP_SMTP_PASSWORD (set)" in result.output
    assert "hunter2-secret" not in result.output
    assert "postmark" in result.output


def test_cli_check_ok_and_auth_failure(tmp_path: Path) -> None:
    from tests.support.smtpd import FakeSMTPServer

    with FakeSMTPServer(users={"news": "right-password"}) as srv:
        ok = _cli(tmp_path, ["senders", "check", "relay"],
                  {"PBTP_SMTP_PASSWORD": "right-password"}, srv.port)
        assert ok.exit_code == 0, ok.output
        assert ok.output.startswith(
            f"relay: OK: 127.0.0.1:{srv.port}: connected (plain text) as 'news'")
        bad = _cli(tmp_path, ["senders", "check"],
                   {"PBTP_SMTP_PASSWORD": "wrong-password"}, srv.port)
    assert bad.exit_code == 1
    assert bad.output.startswith(
        f"Error: 127.0.0.1:{srv.port}: authentication failed for 'news' (535 5.7.8")
    assert "wrong-password" not in bad.output and "Traceback" not in bad.output


def test_cli_check_unknown(tmp_path: Path) -> None:
    result = _cli(tmp_path, ["senders", "check", "nope"], {})
    assert result.exit_code == 2
    assert "Error: unknown sender 'nope'" in result.output


def test_cli_check_url_without_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pbtp_mailer.cli import main
    from tests.support.smtpd import FakeSMTPServer

    monkeypatch.chdir(tmp_path)
    with FakeSMTPServer() as srv:
        result = CliRunner().invoke(
            main, ["senders", "check", f"smtp://127.0.0.1:{srv.port}?tls=none"], env={})
    assert result.exit_code == 0, result.output
    assert "connected (plain text)" in result.output
