"""`pbtp-mailer lists` and `subscribers`: the exact text a user reads."""

from __future__ import annotations

import re


def masked(text: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", text)


def test_lists_empty_then_created(cli) -> None:
    r = cli("lists")
    assert r.exit_code == 0
    assert r.output == "No lists yet. Create one with: pbtp-mailer lists create NAME\n"
    r = cli("lists", "create", "news", "--description", "Monthly news")
    assert (r.exit_code, r.output) == (0, "Created list 'news'.\n")
    r = cli("lists", "create", "news")
    assert (r.exit_code, r.output) == (1, "Error: list 'news' already exists\n")


def test_lists_counts(cli) -> None:
    cli("lists", "create", "news", "--description", "Monthly news")
    cli("lists", "create", "alerts")
    for e in ("a", "b", "c", "d", "e"):
        assert cli("subscribers", "add", "news", f"{e}@example.org").exit_code == 0
    cli("unsubscribe", "a@example.org", "--list", "news")
    cli("unsubscribe", "b@example.org")
    r = cli("lists")
    assert r.exit_code == 0
    assert r.output == (
        "LIST     ACTIVE  UNSUBSCRIBED  BOUNCED  COMPLAINED  DESCRIPTION\n"
        "alerts        0             0        0           0\n"
        "news          3             2        0           0  Monthly news\n"
    )


def test_subscribers_add_show_remove(cli) -> None:
    cli("lists", "create", "news")
    r = cli("subscribers", "add", "news", "Ann.Lee@EXAMPLE.org", "--name", "Ann Lee",
            "--attr", "institution=Example University", "--attr", "Role=nurse")
    assert (r.exit_code, r.output) == (0, "Subscribed Ann.Lee@example.org to 'news'.\n")
    r = cli("subscribers", "add", "news", "ann.lee@example.org")
    assert r.output == "Ann.Lee@example.org is already subscribed to 'news'.\n"
    r = cli("subscribers", "show", "ANN.LEE@example.org")
    assert r.exit_code == 0
    assert masked(r.output) == (
        "Ann.Lee@example.org\n"
        "  name: Ann Lee\n"
        "  attributes: institution=Example University, role=nurse\n"
        "Lists:\n"
        "  news  subscribed    since TIME\n"
        "History:\n"
        "  TIME  news  subscribed  cli\n"
        "Consent:\n"
        "  TIME  news  admin  requested TIME\n"
    )
    r = cli("subscribers", "remove", "news", "ann.lee@example.org")
    assert (r.exit_code, r.output) == (0, "Removed ann.lee@example.org from 'news'.\n")
    r = cli("subscribers", "remove", "news", "ann.lee@example.org")
    assert (r.exit_code, r.output) == (1, "Error: ann.lee@example.org is not on list 'news'\n")
    r = cli("subscribers", "show", "ann.lee@example.org")
    assert masked(r.output).endswith(
        "Lists:\n  (none)\nHistory:\n"
        "  TIME  news  subscribed  cli\n"
        "  TIME  news  removed  cli\n"
        "Consent:\n"
        "  TIME  news  admin  requested TIME\n")


def test_subscribers_show_unknown(cli) -> None:
    r = cli("subscribers", "show", "nobody@example.org")
    assert (r.exit_code, r.output) == (1, "Error: no subscriber nobody@example.org\n")


def test_add_invalid_address_and_crlf(cli) -> None:
    cli("lists", "create", "news")
    r = cli("subscribers", "add", "news", "foo@")
    assert (r.exit_code, r.output) == (
        1, "Error: invalid address 'foo@': There must be something after the @-sign.\n")
    r = cli("subscribers", "add", "news", "ann@example.org\r\nBcc: all@example.org")
    assert r.exit_code == 1
    assert r.output == (
        "Error: address 'ann@example.org\\r\\nBcc: all@example.org' contains a line break "
        "(CR/LF)\n")
    r = cli("subscribers", "add", "news", "ann@example.org", "--name", "Ann\nBcc: x")
    assert r.output == "Error: name 'Ann\\nBcc: x' contains a line break or NUL\n"
    r = cli("subscribers", "add", "news", "ann@example.org", "--attr", "novalue")
    assert r.exit_code == 2
    assert "Invalid value for --attr: expected key=value, got 'novalue'" in r.output


def test_unknown_list(cli) -> None:
    cli("lists", "create", "news")
    cli("lists", "create", "alerts")
    r = cli("subscribers", "add", "nope", "ann@example.org")
    assert r.exit_code == 2
    assert r.output == ("Error: unknown list 'nope' (known: alerts, news)\n"
                        "Hint: create it with: pbtp-mailer lists create nope\n")


def test_add_after_unsubscribe_needs_resubscribe(cli) -> None:
    cli("lists", "create", "news")
    cli("subscribers", "add", "news", "ann@example.org")
    r = cli("unsubscribe", "ann@example.org", "--list", "news")
    assert r.output == "Unsubscribed ann@example.org from 'news'.\n"
    r = cli("unsubscribe", "ann@example.org", "--list", "news")
    assert r.output == "ann@example.org was already unsubscribed from 'news'.\n"
    r = cli("subscribers", "add", "news", "ann@example.org")
    assert (r.exit_code, r.output) == (
        1, "Error: ann@example.org unsubscribed from 'news'\n"
           "Hint: pass --resubscribe only if they asked to subscribe again\n")
    r = cli("subscribers", "add", "news", "ann@example.org", "--resubscribe")
    assert r.output == "Resubscribed ann@example.org to 'news'.\n"


def test_delete_asks_for_confirmation(cli) -> None:
    cli("lists", "create", "news")
    cli("subscribers", "add", "news", "ann@example.org")
    r = cli("lists", "delete", "news", input="n\n")
    assert r.exit_code == 1
    assert r.output == "Delete list 'news' and its 1 membership? [y/N]: n\nAborted!\n"
    assert "news" in cli("lists").output
    r = cli("lists", "delete", "news", input="y\n")
    assert r.exit_code == 0
    assert r.output.endswith("Deleted list 'news' (1 membership).\n")
    assert cli("lists").output.startswith("No lists yet.")
    r = cli("lists", "delete", "news", "--yes")
    assert r.output == ("Error: unknown list 'news' (known: none yet)\n"
                        "Hint: create it with: pbtp-mailer lists create news\n")
    # the person and their history survive the list
    assert "(all lists)" not in cli("subscribers", "show", "ann@example.org").output


def test_unsubscribe_usage(cli) -> None:
    r = cli("unsubscribe")
    assert r.exit_code == 2
    assert "Error: give either EMAIL or --from-mbox FILE" in r.output


def test_every_command_has_help(cli) -> None:
    for args in (["lists"], ["lists", "create"], ["lists", "delete"], ["lists", "import"],
                 ["lists", "export"], ["subscribers", "add"], ["subscribers", "remove"],
                 ["subscribers", "show"], ["suppress", "import"], ["unsubscribe"], ["serve"]):
        r = cli(*args, "--help")
        assert r.exit_code == 0, args
        assert "Usage: " in r.output


def test_every_command_is_documented() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "subscribers.md").read_text(encoding="utf-8")
    for phrase in ("pbtp-mailer lists", "lists create", "lists delete", "lists import",
                   "lists export", "subscribers add", "subscribers remove", "subscribers show",
                   "suppress import", "unsubscribe EMAIL", "unsubscribe --from-mbox",
                   "pbtp-mailer serve", "--dry-run", "--strict", "--resubscribe", "--attr"):
        assert phrase in docs, phrase
