"""Real DSNs: Postfix accepts, its next hop (aiosmtpd) refuses, Postfix bounces to the VERP
address, ``bounces ingest`` reads its Maildir (and stdin, as a pipe transport would)."""

from __future__ import annotations

import pytest

from tests.feedback.conftest import feedback_section, run_cli
from tests.support.postfix import PostfixServer, postfix_unavailable
from tests.support.smtpd import FakeSMTPServer

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(postfix_unavailable() is not None,
                                 reason=postfix_unavailable() or "")]

HOP = "hospital.example.net"
BOUNCE_DOMAIN = "bounce.example.test"


def test_postfix_dsns_to_verp_address_suppress(fworld):
    from pbtp_mailer.dispatch.dispatcher import Dispatcher, DispatchOptions, plan_dispatch

    emails = fworld.make_list(4, domain=HOP)
    gone, later = emails[1], emails[2]
    with FakeSMTPServer() as hop:
        hop.rcpt_codes = {gone: f"550 5.1.1 <{gone}>: user unknown",
                          later: "451 4.2.0 mailbox busy, try later"}
        extra = (f"virtual_mailbox_domains = example.test, {BOUNCE_DOMAIN}\n"
                 f"relay_domains = {HOP}\n"
                 f"transport_maps = inline:{{ {{ {HOP} = smtp:[127.0.0.1]:{hop.port} }} }}\n"
                 "maximal_queue_lifetime = 0\nbounce_queue_lifetime = 0\n"
                 "smtp_tls_security_level = none\n")
        master = "smtp      unix  -       -       n       -       -       smtp\n"
        with PostfixServer(extra_main=extra, extra_master=master) as pf:
            path = fworld.root / "pbtp-mailer.toml"
            path.write_text(path.read_text(encoding="utf-8") + (
                f'\n[senders.postfix]\nkind = "smtp"\nhost = "127.0.0.1"\nport = {pf.port}\n'
                'tls = "none"\nconnections = 1\n'), encoding="utf-8")
            feedback_section(fworld, f'bounce_domain = "{BOUNCE_DOMAIN}"\n')
            store = fworld.store()
            opts = DispatchOptions(list_name="members", sender="postfix")
            report = Dispatcher(plan_dispatch(fworld.issue, fworld.config, store, opts),
                                opts).run()
            assert report.sent == 4, report  # Postfix accepted every copy
            dsns = pf.wait_for(2, timeout=60)
            assert all(str(m["To"]).startswith("bounces+") for m in dsns)
            assert all(str(m["To"]).endswith("@" + BOUNCE_DOMAIN) for m in dsns)
            assert len(hop.messages) == 2  # the two good copies reached the next hop

            r = run_cli(fworld, "bounces", "ingest", str(pf.maildir))
            assert r.exit_code == 0, r.output
            assert f"recorded: hard {gone} (dsn 5.1.1)" in r.output
            assert f"recorded: soft {later} (dsn 4.2.0)" in r.output
            assert store.subscriber(gone).suppression[0] == "bounced"
            assert store.subscriber(later).suppression is None  # one soft bounce of 3
            assert store.subscriber(emails[0]).suppression is None

            # the same DSN again through stdin (a Postfix pipe transport): already known
            one = sorted((pf.maildir / "new").iterdir())[0].read_bytes()
            again = run_cli(fworld, "bounces", "ingest", "-", input=one)
            assert "already known" in again.output and "0 event(s) recorded" in again.output
            events = store.feedback.events()
            assert {(e.email, e.kind, e.source) for e in events} == {
                (gone, "hard", "dsn"), (later, "soft", "dsn")}
            assert all(e.delivery_id is not None for e in events)
