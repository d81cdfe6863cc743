"""[subscribe] / [web] settings, and the confirmation and form tokens."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta

import pytest

from pbtp_mailer.config import config_from_dict
from pbtp_mailer.errors import ConfigError, TokenError
from pbtp_mailer.subscribe.settings import SubscribeSettings, site_base
from pbtp_mailer.subscribe.tokens import (
    check_form_token,
    make_confirm_token,
    make_form_token,
    read_confirm_token,
)
from pbtp_mailer.tokens import make_token
from tests.store.conftest import CONFIG

SECRET = b"s" * 32
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _config(extra: str = "", unsub: str = "https://news.example.org/pbtp/u/"):
    text = CONFIG.replace("https://news.example.org/pbtp/u/", unsub) + extra
    return config_from_dict(tomllib.loads(text), None, {})


def test_base_url_from_web_or_derived() -> None:
    assert site_base(_config()) == "https://news.example.org/pbtp/"
    assert site_base(_config('[web]\nbase_url = "https://x.example/s"\n')) == "https://x.example/s/"
    with pytest.raises(ConfigError, match=r"\[web\] base_url is required"):
        site_base(_config(unsub="https://news.example.org/unsub/"))
    with pytest.raises(ConfigError, match=r"config: \[web\]: 'base_url': Value error, must be an "
                                          r"http\(s\) URL"):
        site_base(_config('[web]\nbase_url = "ftp://x"\n'))


def test_subscribe_settings() -> None:
    s = _config().section("subscribe", SubscribeSettings)
    assert (s.sender, s.record_ip, s.confirm_days, s.per_address_per_day) == (None, False, 7.0, 3)
    with pytest.raises(ConfigError, match=r"\[subscribe\]: unknown key 'recordip'"):
        _config("[subscribe]\nrecordip = true\n").section("subscribe", SubscribeSettings)
    with pytest.raises(ConfigError, match=r"'sender': Value error, must not contain CR"):
        _config('[subscribe]\nsender = "a\\nb"\n').section("subscribe", SubscribeSettings)


def test_confirm_token_round_trip_and_tampering() -> None:
    token = make_confirm_token(SECRET, 7, 3, NOW + timedelta(days=7))
    t = read_confirm_token(SECRET, token)
    assert (t.request_id, t.list_id, t.expires) == (7, 3, NOW + timedelta(days=7))
    with pytest.raises(TokenError):
        read_confirm_token(b"o" * 32, token)
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    with pytest.raises(TokenError):
        read_confirm_token(SECRET, flipped)
    with pytest.raises(TokenError):  # an unsubscribe token is not a confirmation token
        read_confirm_token(SECRET, make_token(SECRET, 7, 3))


def test_form_token_scope_and_age() -> None:
    token = make_form_token(SECRET, "subscribe:news", NOW)
    assert check_form_token(SECRET, "subscribe:news", token, NOW + timedelta(hours=1))
    assert not check_form_token(SECRET, "subscribe:events", token, NOW)
    assert not check_form_token(SECRET, "subscribe:news", token, NOW + timedelta(days=2))
    assert not check_form_token(b"o" * 32, "subscribe:news", token, NOW)
    assert not check_form_token(SECRET, "subscribe:news", "", NOW)
    assert not check_form_token(SECRET, "subscribe:news", "!!!", NOW)
