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


def _error(tmp_path: Path, old: str, new: str) -> str:
    assert old in BASE
    p = write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_config(p, environ={})
    return str(exc.value)


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(needle))


@pytest.mark.parametrize("value, message", [
    ("inf", "must be a finite number (not inf or nan)"),
    ("nan", "must be a finite number (not inf or nan)"),
    ("-1", "must be greater than 0"),
    ("0", "must be greater than 0"),
    ("1e9", "must be at most 86400"),
    ("true", "must be float"),
])
def test_finding7_inf_backoff_refused_with_line(tmp_path, value, message):
    new = f"max_attempts = 5\nbackoff_base_seconds = {value}"
    text = BASE.replace("max_attempts = 5", new, 1)
    line = _line_of(text, "backoff_base_seconds")
    got = _error(tmp_path, "max_attempts = 5", new)
    assert got == (f"{tmp_path}/pbtp-mailer.toml:{line}:1: [dispatch]: "
                   f"'backoff_base_seconds' {message}")


@pytest.mark.parametrize("old, new, message", [
    ("max_attempts = 5", "max_attempts = 0", "'max_attempts' must be at least 1"),
    ("max_attempts = 5", "max_attempts = 5.0", "'max_attempts' must be int"),
    ("max_age_hours = 72.0", "max_age_hours = -inf", "'max_age_hours' must be a finite number"),
    ("pause_after_consecutive_failures = 25", "pause_after_consecutive_failures = 0",
     "'pause_after_consecutive_failures' must be at least 1"),
    ("stale_after_hours = 24.0", "stale_after_hours = 0", "'stale_after_hours' must be greater"),
    ("max_attempts = 5", "max_attempts = 5\nin_run_retry_seconds = -1",
     "'in_run_retry_seconds' must be at least 0"),
    ("port = 587", "port = 0", "[senders.relay]: 'port' must be at least 1"),
    ("port = 587", "port = 70000", "[senders.relay]: 'port' must be at most 65535"),
    ("port = 587", "port = true", "[senders.relay]: 'port' must be a number, not true/false"),
    ("connections = 8", "connections = 0", "[senders.relay]: 'connections' must be at least 1"),
    ("connections = 8", "connections = 8\ntimeout = inf",
     "[senders.relay]: 'timeout' must be a finite number"),
    ("connections = 8", "connections = 8\nconnect_timeout = -5",
     "[senders.relay]: 'connect_timeout' must be greater than 0"),
])
def test_finding7_every_number_has_a_range(tmp_path, old, new, message):
    text = BASE.replace(old, new, 1)
    key = message.split("'")[1]
    got = _error(tmp_path, old, new)
    assert got.startswith(f"{tmp_path}/pbtp-mailer.toml:{_line_of(text, key)}:1: ")
    assert message in got


def test_finding7_sender_url_numbers_refuse_inf_and_nan():
    from pbtp_mailer.senders.registry import build_sender, parse_sender_url

    for query in ("timeout=inf", "timeout=nan", "connect_timeout=-1", "timeout=1e9"):
        with pytest.raises(ConfigError, match="must be a number greater than 0"):
            build_sender(parse_sender_url(f"smtp://127.0.0.1:2525?tls=none&{query}"))
    with pytest.raises(ConfigError, match="'port' must be between 1 and 65535"):
        build_sender(parse_sender_url("smtp://127.0.0.1?tls=none&port=99999"))


@pytest.mark.parametrize("old, new, message", [
    ('from = "Alliance PBTP News <newsletter@example.org>"',
     'from = "a@example.org, b@example.org"', "'from' must be one e-mail address"),
    ('from = "Alliance PBTP News <newsletter@example.org>"',
     'from = "A <a@example.org>, B <b@example.org>"', "'from' must be one e-mail address"),
    ('reply_to = "pbtp-office@example.org"', 'reply_to = "a@example.org b@example.org"',
     "'reply_to' must be"),
    ('message_id_domain = "example.org"', 'message_id_domain = "example.org>"',
     "'message_id_domain' must be a domain name"),
    ('message_id_domain = "example.org"', 'message_id_domain = "exa mple.org"',
     "'message_id_domain' must be a domain name"),
    ('unsubscribe_base_url = "https://news.example.org/pbtp/u/"',
     'unsubscribe_base_url = "https://x.example.org/u/\\"><b>"',
     "'unsubscribe_base_url' must be a URL without spaces, quotes or brackets"),
    ('unsubscribe_base_url = "https://news.example.org/pbtp/u/"',
     'unsubscribe_base_url = "https://x.example.org/u /"',
     "'unsubscribe_base_url' must be a URL without spaces, quotes or brackets"),
    ('unsubscribe_mailto = "unsubscribe@example.org"',
     'unsubscribe_mailto = "U <unsubscribe@example.org>"', "'unsubscribe_mailto' must be a bare"),
    ('list_id = "Alliance PBTP News <pbtp-news.example.org>"',
     'list_id = "News <a b.example.org>"', "'list_id' must look like"),
    ('postal_address = "Alliance', 'postal_address = "Line\\u2028Two Alliance',
     "'postal_address' must not contain CR, LF or NUL"),
    ('username = "news"', 'username = "news\\r\\nQUIT"',
     "[senders.relay]: 'username' must not contain CR, LF or NUL"),
    ('path = ".pbtp-mailer/pbtp-mailer.sqlite3"', 'path = "a\\nb"',
     "[database]: 'path' must not contain CR, LF or NUL"),
])
def test_finding9_header_shaped_values_refused_with_line(tmp_path, old, new, message):
    text = BASE.replace(old, new, 1)
    key = message.split("'")[1]
    got = _error(tmp_path, old, new)
    assert got.startswith(f"{tmp_path}/pbtp-mailer.toml:{_line_of(text, key)}:1: ")
    assert message in got


def test_finding10_missing_tables_name_the_file(tmp_path):
    got = _error(tmp_path, "[newsletter]\n", "[newsletter_x]\n")
    assert got.splitlines()[0] == f"{tmp_path}/pbtp-mailer.toml: [newsletter] table is required"
    text = BASE.replace("[dispatch]\n", "[x]\n").replace("[newsletter]\n",
                                                         "dispatch = 5\n[newsletter]\n")
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), environ={})
    line = _line_of(text, "dispatch = 5")
    assert f"{tmp_path}/pbtp-mailer.toml:{line}:1: [dispatch] must be a table" in str(exc.value)
    got = _error(tmp_path, "[newsletter]\n", "web = 3\n[newsletter]\n")
    assert got == f"{tmp_path}/pbtp-mailer.toml:{_line_of(BASE, '[newsletter]')}:1: [web] must be a table"
    got = _error(tmp_path, "[database]\n", "web = 3\n[database]\n")
    assert "[newsletter]: unknown key 'web' (a top-level key: put it above the first [table])" in got


def test_finding10_default_sender_without_its_table_names_the_file(tmp_path):
    from pbtp_mailer.errors import UnknownSenderError
    from pbtp_mailer.senders.registry import sender_spec

    text = BASE.replace('default_sender = "outbox"', 'default_sender = "relai"', 1)
    config = load_config(write(tmp_path, text), environ={})
    with pytest.raises(UnknownSenderError) as exc:
        sender_spec(None, config)
    line = _line_of(text, "default_sender")
    assert str(exc.value).startswith(
        f"{tmp_path}/pbtp-mailer.toml:{line}:1: default_sender: unknown sender 'relai'")


def test_unknown_keys_are_located_with_did_you_mean(tmp_path):
    got = _error(tmp_path, 'name = "Alliance PBTP News"', 'nmae = "Alliance PBTP News"')
    line = _line_of(BASE, 'name =')
    assert f"pbtp-mailer.toml:{line}:1: [newsletter]: unknown key 'nmae' (did you mean 'name'?)" \
        in got
    got = _error(tmp_path, "[database]\n", "[database]\ndefault_sender = \"outbox\"\n")
    assert "[database]: unknown key 'default_sender' (a top-level key: put it above" in got


def test_not_utf8_config_gives_line_and_column(tmp_path):
    p = tmp_path / "pbtp-mailer.toml"
    p.write_bytes(BASE.encode().replace(b"Alliance PBTP News\"", b"Alliance \xff News\"", 1))
    with pytest.raises(ConfigError, match=rf"pbtp-mailer.toml:{_line_of(BASE, 'name =')}:18: "
                                          "not UTF-8 \\(byte 0xff\\)"):
        load_config(p, environ={})


def test_section_errors_are_located(tmp_path):
    from pydantic import BaseModel, ConfigDict

    class Web(BaseModel):
        model_config = ConfigDict(extra="forbid")
        port: int = 8080

    p = write(tmp_path, BASE + '\n[web]\nport = "x"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(p, environ={}).section("web", Web)
    line = len(BASE.splitlines()) + 3
    assert str(exc.value).startswith(f"{p}:{line}:1: [web]: 'port': ")
    p = write(tmp_path, BASE + '\n[web]\nprot = 1\n')
    with pytest.raises(ConfigError) as exc:
        load_config(p, environ={}).section("web", Web)
    assert str(exc.value) == f"{p}:{line}:1: [web]: unknown key 'prot' (did you mean 'port'?)"


@pytest.mark.parametrize("old, new, message", [
    ('timezone = "America/Chicago"', f'timezone = "{"a" * 5000}"', "is not an IANA time zone"),
    ("connections = 8", "connections = 8\nx = " + "[" * 5000 + "]" * 5000,
     "arrays or tables nested too deeply"),
    ("connections = 8", "connections = 8\nx = " + "[" * 300 + '"a\\nb"' + "]" * 300,
     "'x' must not contain CR, LF or NUL"),
    ('message_id_domain = "example.org"', f'message_id_domain = "{"x" * 5000}"',
     "must be a domain name"),
])
def test_hostile_values_give_one_short_line_not_a_traceback(tmp_path, old, new, message):
    got = _error(tmp_path, old, new)
    assert message in got
    assert len(got) < 300 and "\n" not in got


def test_fuzz_found_a_5000_digit_number_is_one_located_line(tmp_path):
    """Found by ``pytest -m fuzz``: tomllib's int() past 4,300 digits raised a bare ValueError."""
    text = BASE.replace('port = 587', 'port = ' + "9" * 5000)
    p = write(tmp_path, text)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith("port = 999"))
    with pytest.raises(ConfigError) as err:
        load_config(p, environ={})
    assert str(err.value) == f"{p}:{line}: a number with more than 4,300 digits"
