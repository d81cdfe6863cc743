"""pbtp-mailer.toml: found, validated, secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbtp_mailer.config import load_config
from pbtp_mailer.errors import ConfigError
from tests.conftest import ROOT

BASE = (ROOT / "pbtp-mailer.toml").read_text(encoding="utf-8")


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "pbtp-mailer.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_config_loads_with_placeholders_only(config):
    nl = config.newsletter
    assert nl.from_address == "newsletter@example.org"
    for value in (nl.from_addr, nl.reply_to, nl.web_base_url, nl.archive_url,
                  nl.unsubscribe_base_url, nl.unsubscribe_mailto, nl.list_id):
        assert "example.org" in value
    assert "placeholder" in nl.postal_address
    assert config.default_sender == "outbox"


def test_found_in_cwd_by_flag_and_by_environment(tmp_path, monkeypatch):
    p = write(tmp_path, BASE)
    monkeypatch.chdir(tmp_path)
    assert load_config(environ={}).path == p
    other = tmp_path / "sub"
    other.mkdir()
    q = write(other, BASE.replace("Alliance PBTP News\"", "Other News\"", 1))
    assert load_config(environ={"PBTP_MAILER_CONFIG": str(q)}).path == q
    assert load_config(str(q), environ={}).newsletter.name == "Other News"


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no pbtp-mailer.toml in"):
        load_config(environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="nope.toml: config file not found"):
        load_config(str(tmp_path / "nope.toml"), environ={})


def test_database_default_next_to_config_and_env_override(tmp_path):
    p = write(tmp_path, BASE)
    c = load_config(p, environ={})
    assert c.database_url == f"sqlite:///{tmp_path.resolve()}/.pbtp-mailer/pbtp-mailer.sqlite3"
    c = load_config(p, environ={"PBTP_MAILER_DATABASE_URL": "postgresql://db/x"})
    assert c.database_url == "postgresql://db/x"


@pytest.mark.parametrize("edit, message", [
    (("[newsletter]", "[newsletter]\nfrom_name = 1"), "[newsletter]: unknown key 'from_name'"),
    (('timezone = "America/Chicago"', 'timezone = "Mars/Olympus"'),
     "'timezone' 'Mars/Olympus' is not an IANA time zone"),
    (('list_id = "Alliance PBTP News <pbtp-news.example.org>"', 'list_id = "no brackets"'),
     "'list_id' must look like 'Name <list.example.org>'"),
    (('password_env = "PBTP_SMTP_PASSWORD"', 'password = "hunter2"'),
     "'password' must not be in the file; name an environment variable with 'password_env'"),
    (('unsubscribe_base_url = "https://news.example.org/pbtp/u/"',
      'unsubscribe_base_url = "ftp://x"'), "'unsubscribe_base_url' must be an http(s) URL"),
    (("max_attempts = 5", "max_attempts = \"five\""), "[dispatch]: 'max_attempts' must be int"),
    (('name = "Alliance PBTP News"', 'name = "News\\r\\nBcc: x@example.com"'),
     "'name' must not contain CR, LF or NUL"),
])
def test_bad_config_values(tmp_path, edit, message):
    old, new = edit
    assert old in BASE
    p = write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_config(p, environ={})
    assert message in str(exc.value)
    assert "hunter2" not in str(exc.value)


def test_toml_syntax_error_names_the_file(tmp_path):
    p = write(tmp_path, BASE + "\n[broken\n")
    with pytest.raises(ConfigError, match=r"pbtp-mailer.toml: .*line"):
        load_config(p, environ={})


def test_secret_only_from_environment(tmp_path):
    p = write(tmp_path, BASE)
    with pytest.raises(ConfigError, match="PBTP_MAILER_SECRET is not set"):
        load_config(p, environ={}).secret()
    assert load_config(p, environ={"PBTP_MAILER_SECRET": "x" * 32}).secret() == b"x" * 32


def test_feedback_id_validated(tmp_path):
    ok = write(tmp_path, BASE.replace('language = "en"',
                                      'language = "en"\nfeedback_id = "a:news:nl:pbtpnews"'))
    assert load_config(ok, environ={}).newsletter.feedback_id == "a:news:nl:pbtpnews"
    bad = write(tmp_path, BASE.replace('language = "en"', 'language = "en"\nfeedback_id = "x"'))
    with pytest.raises(ConfigError, match="'feedback_id' must look like"):
        load_config(bad, environ={})
