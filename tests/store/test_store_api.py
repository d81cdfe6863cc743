"""The Store facade: the narrow calls the dispatcher relies on."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from pbtp_mailer.errors import StoreError, UnknownListError
from pbtp_mailer.store import MailingList, Recipient, Store


def test_get_list_and_unknown_list_names_known_ones(store: Store) -> None:
    store.create_list("news", "Monthly news")
    store.create_list("alerts")
    ml = store.get_list("news")
    assert ml == MailingList(id=ml.id, name="news", description="Monthly news")
    with pytest.raises(UnknownListError) as exc:
        store.get_list("x")
    assert str(exc.value) == "unknown list 'x' (known: alerts, news)"


def test_create_list_twice_is_an_error(store: Store) -> None:
    store.create_list("news")
    with pytest.raises(StoreError, match="list 'news' already exists"):
        store.create_list("news")


def test_recipients_only_active_and_not_suppressed(store: Store) -> None:
    news = store.create_list("news")
    other = store.create_list("other")
    for i in range(7):
        store.add_subscriber("news", f"Person{i}@Example.org", name=f"P {i}",
                             attrs={"role": "r"})
    store.add_subscriber("other", "person0@example.org")
    store.unsubscribe("person1@example.org", "news")
    store.suppress("person2@example.org", "bounced")
    store.suppress("person3@example.org", "complained")
    store.suppress("person4@example.org", "unsubscribed")  # from all lists
    store.suppress("person5@example.org", "unsubscribed", list_id=other.id)
    got = list(store.recipients("news", batch_size=2))
    assert [r.email for r in got] == [
        "Person0@example.org", "Person5@example.org", "Person6@example.org"]
    assert got[0] == Recipient(got[0].subscriber_id, news.id, "Person0@example.org", "P 0",
                               {"role": "r"})
    assert [r.email for r in store.recipients("other")] == ["Person0@example.org"]


def test_recipients_sees_suppressions_made_during_iteration(store: Store) -> None:
    ml = store.create_list("news")
    for i in range(5):
        store.add_subscriber("news", f"p{i}@example.org")
    it = store.recipients("news", batch_size=2)
    first = next(it)
    store.suppress("p3@example.org", "bounced", list_id=ml.id, source="dispatch")
    rest = [r.email for r in it]
    assert first.email == "p0@example.org"
    assert rest == ["p1@example.org", "p2@example.org", "p4@example.org"]


def test_is_suppressed_and_suppressed_among(store: Store) -> None:
    news = store.create_list("news")
    other = store.create_list("other")
    for e in ("a@example.org", "b@example.org", "c@example.org", "d@example.org"):
        store.add_subscriber("news", e)
    store.unsubscribe("a@example.org", "news")
    store.suppress("b@example.org", "bounced", source="dispatch")
    store.suppress("c@example.org", "unsubscribed", list_id=other.id)
    assert store.is_suppressed("A@Example.org", news.id)
    assert not store.is_suppressed("a@example.org", other.id)
    assert store.is_suppressed("b@example.org", other.id)
    assert not store.is_suppressed("c@example.org", news.id)
    assert store.is_suppressed("c@example.org", other.id)
    assert not store.is_suppressed("d@example.org", news.id)
    assert not store.is_suppressed("nobody@example.org", news.id)
    emails = ["A@example.org", "b@example.org", "c@example.org", "d@example.org"]
    assert store.suppressed_among(emails, news.id) == {"A@example.org", "b@example.org"}
    assert store.suppressed_among([], news.id) == set()


def test_suppress_is_idempotent_records_history_and_never_downgrades(store: Store) -> None:
    store.create_list("news")
    store.add_subscriber("news", "a@example.org")
    assert store.suppress("a@example.org", "complained", source="dispatch") is True
    assert store.suppress("a@example.org", "complained", source="dispatch") is False
    assert store.suppress("a@example.org", "bounced", source="dispatch") is False
    d = store.subscriber("a@example.org")
    assert d.suppression is not None and d.suppression[0] == "complained"
    assert [(h.status, h.source) for h in d.history] == [
        ("subscribed", "cli"), ("complained", "dispatch")]


def test_suppress_rejects_unknown_reason(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown suppression reason 'spam'"):
        store.suppress("a@example.org", "spam")


def test_list_unsubscribe_of_a_non_member_blocks_a_later_add(store: Store) -> None:
    ml = store.create_list("news")
    store.suppress("new@example.org", "unsubscribed", list_id=ml.id, source="mailto")
    assert store.is_suppressed("new@example.org", ml.id)
    with pytest.raises(StoreError, match="new@example.org unsubscribed from 'news'"):
        store.add_subscriber("news", "new@example.org")
    assert store.add_subscriber("news", "new@example.org", resubscribe=True) == "resubscribed"
    assert not store.is_suppressed("new@example.org", ml.id)


def test_bounced_address_cannot_be_added(store: Store) -> None:
    store.create_list("news")
    store.suppress("b@example.org", "bounced")
    with pytest.raises(StoreError) as exc:
        store.add_subscriber("news", "b@example.org", resubscribe=True)
    assert str(exc.value) == "b@example.org is suppressed (bounced); it cannot be subscribed again"


def test_engine_and_metadata_are_shared(store: Store) -> None:
    names = set(inspect(store.engine).get_table_names())
    assert {"lists", "subscribers", "memberships", "suppressions", "status_history",
            "schema_migrations"} <= names
    assert "lists" in store.metadata.tables


def test_counts(store: Store) -> None:
    store.create_list("news", "desc")
    store.create_list("empty")
    for e in "abcdef":
        store.add_subscriber("news", f"{e}@example.org")
    store.unsubscribe("a@example.org", "news")
    store.unsubscribe("b@example.org")
    store.suppress("c@example.org", "bounced")
    store.suppress("d@example.org", "complained")
    counts = {c.name: c for c in store.list_counts()}
    n = counts["news"]
    assert (n.active, n.unsubscribed, n.bounced, n.complained) == (2, 2, 1, 1)
    e = counts["empty"]
    assert (e.active, e.unsubscribed, e.bounced, e.complained) == (0, 0, 0, 0)


def test_reopening_does_not_migrate_again(store: Store) -> None:
    from pbtp_mailer.store.migrations import MIGRATIONS, applied_migrations, migrate

    assert applied_migrations(store.engine)[0] == "0001_subscribers"
    assert applied_migrations(store.engine) == [m.name for m in MIGRATIONS]
    assert migrate(store.engine) == []


def test_recipients_of_unknown_list_fails_at_once(store: Store) -> None:
    with pytest.raises(UnknownListError):
        store.recipients("nope")


def test_unsubscribe_validates_the_address(store: Store) -> None:
    with pytest.raises(StoreError, match="invalid address 'garbage'"):
        store.unsubscribe("garbage")
