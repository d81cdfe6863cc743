"""Before a dispatch: the plan (issue composed once, list, sender, limits, counts),
the per-recipient personalisation, and the dry run that exercises both.

``plan_dispatch`` fails early on anything a user must fix (invalid issue,
unknown list or sender, no signing secret) before a single row is touched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pbtp_mailer.dispatch.ratelimit import Limits

if TYPE_CHECKING:
    from pbtp_mailer.compose import Rendition
    from pbtp_mailer.compose.message import MessageTemplate
    from pbtp_mailer.config import Config
    from pbtp_mailer.feedback.verp import Verp
    from pbtp_mailer.issue.model import Issue
    from pbtp_mailer.store import MailingList, Store
    from pbtp_mailer.store.ledger import Claimed

__all__ = ["DispatchOptions", "Plan", "plan_dispatch", "Personaliser", "DryRun", "dry_run",
           "domains_align"]


@dataclass(frozen=True)
class DispatchOptions:
    list_name: str
    sender: str | None = None
    limit: int | None = None
    rate: float | None = None
    concurrency: int | None = None
    resend_unknown: bool = False
    accept_changes: bool = False
    #: how long one run waits in-process for deferred rows coming due
    in_run_retry_seconds: float | None = None
    #: add list members not yet in the ledger (False: only continue rows already there;
    #: dispatch-due's retries of old issues must not reach people who joined since)
    enqueue_new: bool = True


@dataclass
class Plan:
    """Everything decided before the first message leaves (shown for confirmation)."""

    issue: Issue
    issue_file: str
    config: Config
    store: Store
    mailing_list: MailingList
    rendition: Rendition
    template: MessageTemplate
    sender_name: str
    limits: Limits
    recipients: int
    suppressed: int
    warnings: list[str] = field(default_factory=list)
    #: VERP return paths (feedback/verp.py), when a bounce domain is configured
    verp: Verp | None = None

    def envelope_sender(self, delivery_id: int, default: str) -> str:
        """The envelope sender of one copy: its VERP address, or ``default`` (From)."""
        return self.verp.address(delivery_id) if self.verp is not None else default


def plan_dispatch(issue_file: str | Path, config: Config, store: Store,
                  options: DispatchOptions) -> Plan:
    from pbtp_mailer.compose.cache import compose_cached
    from pbtp_mailer.compose.message import MessageTemplate
    from pbtp_mailer.feedback.gate import complaint_warnings
    from pbtp_mailer.issue.model import load_issue
    from pbtp_mailer.senders.registry import sender_spec

    issue = load_issue(issue_file)
    ml = store.get_list(options.list_name)
    spec = sender_spec(options.sender, config)
    limits = Limits.from_options(spec.options, f"sender '{spec.name}'")
    if options.rate:
        limits = replace(limits, per_second=options.rate)
    rendition = compose_cached(issue, config, web=False)  # free after build or a dry run
    counts = {c.name: c for c in store.list_counts()}.get(ml.name)
    members = (counts.active + counts.unsubscribed + counts.bounced + counts.complained
               if counts else 0)
    recipients = counts.active if counts else 0  # subscribed and not suppressed
    config.secret()  # fail before any work if unsubscribe links cannot be signed
    warnings = []
    dkim_domain = spec.options.get("dkim_domain")
    from_domain = config.newsletter.from_address.rpartition("@")[2].lower()
    if dkim_domain and not domains_align(str(dkim_domain), from_domain):
        warnings.append(f"sender '{spec.name}': DKIM d={dkim_domain} does not align with the "
                        f"From domain {from_domain}; Gmail and Yahoo want DMARC alignment")
    warnings.extend(complaint_warnings(store, config))  # feedback/gate.py
    return Plan(issue=issue, issue_file=str(issue_file), config=config, store=store,
                mailing_list=ml, rendition=rendition,
                template=MessageTemplate(rendition, config.newsletter),
                sender_name=spec.name, limits=limits, recipients=recipients,
                suppressed=max(0, members - recipients), warnings=warnings,
                verp=dispatch_verp(config, spec.kind))


def dispatch_verp(config: Config, sender_kind: str) -> Verp | None:
    """VERP for this sender, or None: off, no bounce domain, or an API provider (those
    report bounces by webhook and set their own return path)."""
    from pbtp_mailer.feedback.settings import load_settings
    from pbtp_mailer.feedback.verp import verp_for

    if sender_kind in ("ses", "postmark", "sendgrid", "mailgun"):
        return None
    return verp_for(config) if load_settings(config).verp else None


def domains_align(a: str, b: str) -> bool:
    """DMARC relaxed alignment, approximated: one domain is the other or its parent, or
    both share their last two labels (no public-suffix list here: 'co.uk' style
    registries would look aligned)."""
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    if a == b or a.endswith("." + b) or b.endswith("." + a):
        return True
    return a.split(".")[-2:] == b.split(".")[-2:] and len(a.split(".")) >= 2


class Personaliser:
    """Per-recipient values: To, name, attributes, signed unsubscribe links, Message-ID."""

    def __init__(self, template: MessageTemplate, config: Config) -> None:
        from pbtp_mailer.compose.message import Personal
        from pbtp_mailer.tokens import make_token, unsubscribe_urls

        self.template = template
        self.secret = config.secret()
        self._personal = Personal
        self._token = make_token
        # the URLs differ only by the token: split them once around a marker
        https, mailto = unsubscribe_urls(config.newsletter, "\0")
        self._https = https.split("\0")
        self._mailto = mailto.split("%00") if mailto else None
        from pbtp_mailer.compose.build import preferences_base

        self._prefs = preferences_base(config)

    def message(self, c: Claimed, now: dt.datetime) -> bytes:
        token = self._token(self.secret, c.subscriber_id, c.list_id)
        mailto = token.join(self._mailto) if self._mailto else None
        return self.template.render(self._personal(
            email=c.email, name=c.name, unsubscribe_url=token.join(self._https),
            unsubscribe_mailto=mailto, attrs=c.attrs, message_id=c.message_id, date=now,
            preferences_url=self._prefs + token))


@dataclass
class DryRun:
    recipients: int
    suppressed: int
    first_headers: str
    bytes_total: int
    #: (address, reason) of recipients a real send would fail before sending
    refused: list[tuple[str, str]] = field(default_factory=list)


def dry_run(plan: Plan) -> DryRun:
    """Personalise every recipient's message without touching the ledger or the network.

    A recipient whose message cannot be built (a header refused) is reported
    in ``refused``, as a real send would fail that row, and the run goes on.
    """
    from pbtp_mailer.errors import HeaderError
    from pbtp_mailer.store.ledger import Claimed

    personaliser = Personaliser(plan.template, plan.config)
    now = dt.datetime.now(dt.UTC)
    count = 0
    total = 0
    first = b""
    refused: list[tuple[str, str]] = []
    domain = plan.config.newsletter.message_id_domain
    for r in plan.store.recipients(plan.mailing_list.name):
        c = Claimed(0, r.subscriber_id, r.list_id, r.email, r.name, r.attrs,
                    f"<{plan.issue.id}.dry-run.{count}@{domain}>", 1, now)
        try:
            data = personaliser.message(c, now)
        except HeaderError as exc:
            refused.append((r.email, f"refused before sending: {exc}"))
            continue
        if not first:
            first = data.split(b"\r\n\r\n", 1)[0]
        count += 1
        total += len(data)
    return DryRun(count, plan.suppressed, first.decode("ascii").replace("\r\n", "\n"), total,
                  refused)
