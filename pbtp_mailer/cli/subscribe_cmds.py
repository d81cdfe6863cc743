"""CLI for self-service subscription and GDPR requests, on the ``lists`` and ``subscribers`` groups.

    lists set NAME --public/--private   show the list on forms and preference pages, or not
    lists form NAME                     the HTML form to paste into the program's website
    subscribers export EMAIL            everything held about the address, as JSON
    subscribers erase EMAIL --yes       delete it all (ledger rows keep a keyed hash)

``lists create --public`` and ``subscribers show [--json]`` (with the consent
records) live with their siblings in ``subscriber_cmds``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from pbtp_mailer.cli._context import AppContext, open_store, pass_app, when
from pbtp_mailer.cli._echo import echo, echo_json
from pbtp_mailer.cli.subscriber_cmds import lists, subscribers

__all__ = ["COMMANDS", "consent_lines", "show_json"]


@lists.command("set")
@click.argument("name")
@click.option("--public/--private", "public", required=True,
              help="Public lists appear on sign-up forms and preference pages.")
@pass_app
def lists_set(app: AppContext, name: str, public: bool) -> None:
    """Make the list NAME public or private."""
    with open_store(app) as store:
        ml = store.signups.set_public(name, public)
    echo(f"List {ml.name!r} is now {'public' if public else 'private'}.")


@lists.command("form")
@click.argument("name")
@pass_app
def lists_form(app: AppContext, name: str) -> None:
    """Print an HTML sign-up form for the public list NAME (paste it into a website)."""
    from pbtp_mailer.subscribe.snippet import form_snippet

    with open_store(app) as store:
        echo(form_snippet(store, app.config, name), nl=False)


@subscribers.command("export")
@click.argument("email")
@pass_app
def subscribers_export(app: AppContext, email: str) -> None:
    """Print everything held about EMAIL as JSON (a GDPR access request).

    Lists and statuses, name and attributes, consent records with the
    wording shown, the history of changes, pending sign-ups and which issue
    was sent when. An unknown address prints {"email": ..., "held": false}.
    """
    with open_store(app) as store:
        data = store.export_address(email)
    out: dict[str, Any] = data if data is not None else {"email": email.strip(), "held": False}
    echo_json(json.dumps(out, indent=2, ensure_ascii=False, default=str))


@subscribers.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def subscribers_erase(app: AppContext, email: str, yes: bool) -> None:
    """Delete everything held about EMAIL (a GDPR erasure request).

    Delivery records of past issues keep a keyed hash instead of the
    address, so statistics do not change; the same hash stops an old CSV
    from adding the address back (the import reports it as skipped).
    """
    if not yes:
        click.confirm(f"Erase everything held about {email.strip()}? This cannot be undone",
                      abort=True)
    with open_store(app) as store:
        held = store.erase_address(email)
    if held:
        echo(f"Erased {email.strip()}.")
    else:
        echo(f"Nothing was held about {email.strip()}; it is now blocked from imports.")


def consent_lines(store: Any, email: str) -> list[str]:
    """``subscribers show``'s consent section."""
    out = []
    for r in store.signups.consents(email):
        detail = f" ({r.detail})" if r.detail else ""
        wording = f", wording v{r.wording_version}" if r.wording_version else ""
        seen = "".join(f", {k} {v}" for k, v in (("ip", r.ip), ("agent", r.user_agent)) if v)
        out.append(f"  {when(r.confirmed_at)}  {r.list_name}  {r.how}{detail}  requested "
                   f"{when(r.requested_at)}{wording}{seen}")
    return out


def show_json(store: Any, email: str) -> str:
    """``subscribers show --json``: the address's data without the delivery log."""
    from pbtp_mailer.errors import StoreError

    data = store.export_address(email)
    if data is None:
        raise StoreError(f"no subscriber {email.strip()}")
    data.pop("deliveries", None)
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


COMMANDS: list[click.Command] = []  # everything here hangs on the `lists` and `subscribers` groups
