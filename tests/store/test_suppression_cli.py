"""`suppress import` and `unsubscribe`: provider exports, manual unsubscribes."""

from __future__ import annotations

from pathlib import Path


def test_suppress_import_provider_csv(db, cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    for e in ("a", "b", "c"):
        cli("subscribers", "add", "news", f"{e}@example.org")
    (tmp_path / "bounces.csv").write_text(
        "Email Address,Reason,Date\r\nA@example.org,hard,2026-01-01\r\nnot-an-address,x,y\r\n"
        "zz@example.net,hard,2026-01-02\r\n", encoding="utf-8")
    r = cli("suppress", "import", "bounces.csv", "--reason", "bounced")
    assert r.exit_code == 1
    assert r.stderr == ("bounces.csv:3: invalid address 'not-an-address': An email address "
                        "must have an @-sign.\n")
    assert r.stdout == ("bounces.csv: 2 addresses suppressed as bounced, 0 already suppressed, "
                        "1 rejected.\n")
    r = cli("suppress", "import", "bounces.csv", "--reason", "bounced")
    assert r.stdout == ("bounces.csv: 0 addresses suppressed as bounced, 2 already suppressed, "
                        "1 rejected.\n")
    with db() as s:
        ml = s.get_list("news")
        assert [x.email for x in s.recipients("news")] == ["b@example.org", "c@example.org"]
        assert s.is_suppressed("zz@example.net", ml.id)
    assert "BOUNCED" in cli("lists").output.splitlines()[0]
    assert cli("lists").output.splitlines()[1].split()[:5] == ["news", "2", "0", "1", "0"]


def test_suppress_import_bare_address_list(cli, tmp_path: Path) -> None:
    (tmp_path / "complaints.txt").write_text("a@example.org\nb@example.org\n", encoding="utf-8")
    r = cli("suppress", "import", "complaints.txt", "--reason", "complained")
    assert (r.exit_code, r.output) == (0, "complaints.txt: 2 addresses suppressed as complained, "
                                          "0 already suppressed, 0 rejected.\n")


def test_suppress_import_without_email_column(cli, tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("who,when\nsomeone,today\n", encoding="utf-8")
    r = cli("suppress", "import", "x.csv", "--reason", "unsubscribed")
    assert r.exit_code == 2
    assert r.output == (
        "Error: x.csv:1: no e-mail column (found: who, when); name it one of: email, "
        "email address, email_address, e-mail, address, recipient\n")


def test_suppress_import_bad_reason(cli, tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("email\na@example.org\n", encoding="utf-8")
    r = cli("suppress", "import", "x.csv", "--reason", "spam")
    assert r.exit_code == 2
    assert "Invalid value for '--reason': 'spam' is not one of" in r.output


def test_unsubscribe_from_all_lists(db, cli, tmp_path: Path) -> None:
    cli("lists", "create", "news")
    cli("lists", "create", "alerts")
    cli("subscribers", "add", "news", "ann@example.org")
    cli("subscribers", "add", "alerts", "ann@example.org")
    r = cli("unsubscribe", "Ann@Example.org")
    assert (r.exit_code, r.output) == (0, "Unsubscribed Ann@Example.org from all lists.\n")
    r = cli("unsubscribe", "ann@example.org")
    assert r.output == "ann@example.org was already unsubscribed from all lists.\n"
    with db() as s:
        assert list(s.recipients("news")) == [] and list(s.recipients("alerts")) == []


def test_unsubscribe_unknown_list(cli) -> None:
    r = cli("unsubscribe", "ann@example.org", "--list", "nope")
    assert r.exit_code == 2
    assert r.output.startswith("Error: unknown list 'nope' (known: none yet)\n")


def test_suppress_import_upgrades_and_dedupes(db, cli, tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("email\na@example.org\nA@example.org\nb@example.org\n",
                                    encoding="utf-8")
    r = cli("suppress", "import", "b.csv", "--reason", "bounced")
    assert r.output == ("b.csv: 2 addresses suppressed as bounced, 0 already suppressed, "
                        "0 rejected.\n")
    (tmp_path / "c.csv").write_text("email\na@example.org\n", encoding="utf-8")
    r = cli("suppress", "import", "c.csv", "--reason", "complained")
    assert r.output == ("c.csv: 1 address suppressed as complained, 0 already suppressed, "
                        "0 rejected.\n")
    r = cli("suppress", "import", "b.csv", "--reason", "unsubscribed")
    assert r.output == ("b.csv: 0 addresses suppressed as unsubscribed, 2 already suppressed, "
                        "0 rejected.\n")
    with db() as s:
        d = s.subscriber("a@example.org")
        assert d.suppression is not None and d.suppression[0] == "complained"
        assert [(h.status, h.source, h.detail) for h in d.history] == [
            ("bounced", "suppress-import", "b.csv"), ("complained", "suppress-import", "c.csv")]
