"""pbtp-mailer doctor against a real dnsmasq serving pbtp.test: all right, then one
thing wrong at a time."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.doctor.conftest import DOMAIN, dkim_value, write_config
from tests.support.dns import ServfailServer, SilentServer, txt_record

ISSUE = "issues/2024-03.yaml"


def doctor(*args: str):
    from pbtp_mailer.cli import main

    result = CliRunner().invoke(main, ["--config", "pbtp-mailer.toml", "doctor", *args])
    assert "Traceback" not in result.output, result.output
    return result


def checks(result) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in json.loads(result.output)["checks"]:
        out.setdefault(c["id"], []).append(c)
    return out


def failing(result) -> set[str]:
    return {k for k, v in checks(result).items() if any(c["status"] == "fail" for c in v)}


def statuses(result) -> dict[str, set[str]]:
    return {k: {c["status"] for c in v} for k, v in checks(result).items()}


@pytest.fixture
def run(project, zone, dns_up):
    """``run(zone, *args, **config)``: start dnsmasq for the zone, write the config, run.
    Nothing serves the unsubscribe URL (a closed port), so [unsubscribe] fails too."""

    def go(z=None, *args: str, extra_dns: tuple[str, ...] = (), **cfg):
        server = dns_up(zone if z is None else z, *extra_dns)
        cfg.setdefault("unsubscribe", "https://127.0.0.1:9/u/")
        write_config(project, nameserver=f"127.0.0.1:{server.port}", **cfg)
        return doctor("--json", *args)

    return go


def test_all_records_right_every_check_ok(project, zone, dns_up, serve_site):
    from tests.doctor.conftest import load

    server = dns_up(zone)
    write_config(project, nameserver=f"127.0.0.1:{server.port}")
    base = serve_site(load(project))
    write_config(project, nameserver=f"127.0.0.1:{server.port}", unsubscribe=base)
    r = doctor("--json", "--issue", ISSUE)
    found = checks(r)
    assert r.exit_code == 0, r.output
    assert {c["status"] for v in found.values() for c in v} == {"ok"}, r.output
    assert set(found) == {"config", "spf", "dkim", "dmarc", "alignment", "mx", "ptr",
                          "unsubscribe", "message", "reputation"}
    assert "authorises relay.pbtp.test" in found["spf"][0]["message"]
    assert any("POST https://127.0.0.1:" in c["message"] and ": 200, no cookie" in c["message"]
               for c in found["unsubscribe"])
    assert any(c["message"].startswith("DKIM verifies: d=pbtp.test s=news a=rsa-sha256")
               for c in found["message"])
    # the text form: one line per check
    text = doctor("--issue", ISSUE)
    assert text.exit_code == 0
    assert "ok    [spf]  pbtp.test: one SPF record, 1 DNS lookups" in text.output
    assert "fix:" not in text.output


def test_no_spf(run, zone):
    zone["spf"] = None
    r = run(zone)
    assert r.exit_code == 1 and failing(r) == {"spf", "unsubscribe"}
    spf = checks(r)["spf"][0]
    assert spf["status"] == "fail" and spf["message"] == "pbtp.test: no SPF record"
    assert spf["fix"] == 'publish TXT pbtp.test "v=spf1 a:relay.pbtp.test ~all"'
    assert statuses(r)["dkim"] == {"ok"}


def test_two_spf_records(run, zone):
    r = run(zone, extra_dns=(txt_record(DOMAIN, "v=spf1 include:sendgrid.net ~all"),))
    spf = checks(r)["spf"][0]
    assert r.exit_code == 1 and failing(r) == {"spf", "unsubscribe"}
    assert spf["status"] == "fail" and "pbtp.test: 2 SPF records" in spf["message"]
    assert spf["fix"].startswith("keep one TXT record at pbtp.test: \"v=spf1 ")
    assert "include:sendgrid.net" in spf["fix"] and "a:relay.pbtp.test" in spf["fix"]


def _lookups(zone, n: int) -> tuple[str, ...]:
    """SPF with ``n`` DNS-querying terms: 2 at the top, 1 include, the rest inside it."""
    zone["spf"] = txt_record(DOMAIN, "v=spf1 a:relay.pbtp.test mx include:inc.pbtp.test ~all")
    inner = " ".join(f"a:h{i}.pbtp.test" for i in range(n - 3))
    return (txt_record(f"inc.{DOMAIN}", f"v=spf1 {inner} ~all"),)


def test_eleven_lookups_fail_ten_pass(run, zone):
    r = run(zone, extra_dns=_lookups(zone, 11))
    spf = checks(r)["spf"][0]
    assert spf["status"] == "fail"
    assert spf["message"].startswith("pbtp.test: SPF needs 11 DNS lookups (limit 10")
    r = run(zone, extra_dns=_lookups(zone, 10))
    assert checks(r)["spf"][0]["status"] == "ok", r.output
    assert "10 DNS lookups" in checks(r)["spf"][0]["message"]


def test_spf_not_authorising_the_relay(run, zone):
    zone["spf"] = txt_record(DOMAIN, "v=spf1 ip4:192.0.2.1 -all")
    zone["relay"] = f"--host-record=relay.{DOMAIN},192.0.2.7"  # DNS data only: never dialled
    spf = checks(run(zone))["spf"][0]
    assert spf["status"] == "fail"
    assert spf["message"] == "pbtp.test: SPF does not authorise relay.pbtp.test (192.0.2.7)"
    assert spf["fix"] == 'publish TXT pbtp.test "v=spf1 ip4:192.0.2.1 ip4:192.0.2.7 -all"'


def test_dkim_record_with_another_key(run, zone, keys):
    zone["dkim"] = txt_record(f"news._domainkey.{DOMAIN}", dkim_value(keys["other"]))
    r = run(zone)
    dkim = checks(r)["dkim"][0]
    assert r.exit_code == 1 and failing(r) == {"dkim", "unsubscribe"}
    assert dkim["status"] == "fail"
    assert "the published key is not the public half of" in dkim["message"]
    assert dkim["fix"] == (f'publish TXT news._domainkey.{DOMAIN} "{dkim_value(keys["news"])}"')


def test_no_dmarc(run, zone):
    zone["dmarc"] = None
    r = run(zone)
    dmarc = checks(r)["dmarc"][0]
    assert r.exit_code == 1 and failing(r) == {"dmarc", "unsubscribe"}
    assert dmarc["status"] == "fail" and dmarc["message"].startswith(
        "_dmarc.pbtp.test: no DMARC record")
    assert dmarc["fix"].startswith('publish TXT _dmarc.pbtp.test "v=DMARC1; p=none; '
                                   'rua=mailto:dmarc-reports@pbtp.test"')


def test_dmarc_without_rua_warns(run, zone):
    zone["dmarc"] = txt_record(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject")
    r = run(zone)
    dmarc = checks(r)["dmarc"][0]
    assert failing(r) == {"unsubscribe"}
    assert dmarc["status"] == "warn"
    assert dmarc["fix"] == ('publish TXT _dmarc.pbtp.test "v=DMARC1; p=reject; '
                            'rua=mailto:dmarc-reports@pbtp.test"')


def test_reject_with_misaligned_bounce_domain(run, zone):
    zone["dmarc"] = txt_record(f"_dmarc.{DOMAIN}",
                               "v=DMARC1; p=reject; rua=mailto:dmarc@pbtp.test")
    extra = (txt_record("bounces.other.test", "v=spf1 a:relay.pbtp.test -all"),
             "--mx-host=bounces.other.test,mx.pbtp.test,10")
    r = run(zone, extra_dns=extra, doctor_extra='bounce_domain = "bounces.other.test"')
    found = checks(r)
    assert failing(r) == {"unsubscribe"}  # SPF itself passes, for the wrong domain
    align = found["alignment"][0]
    assert align["status"] == "warn"
    assert "the envelope (VERP/bounce) domain bounces.other.test does not align" in \
        align["message"]
    assert "p=reject rejects mail whose signature breaks" in align["message"]
    assert "bounces.pbtp.test" in align["fix"]


def test_dkim_through_a_cname_chain(run, zone, keys):
    zone["dkim"] = f"--cname=news._domainkey.{DOMAIN},step.{DOMAIN}"
    r = run(zone, extra_dns=(f"--cname=step.{DOMAIN},key.other.test",
                             txt_record("key.other.test", dkim_value(keys["news"]))))
    assert statuses(r)["dkim"] == {"ok"}, r.output


def test_txt_split_into_255_byte_strings(run, zone, project):
    """The DKIM record is over 255 bytes, so it is several strings; an SPF record is
    cut in the middle of a term too. Both are read joined."""
    import dns.resolver

    ips = " ".join(f"ip4:192.0.2.{i}" for i in range(1, 30))
    value = f"v=spf1 {ips} a:relay.pbtp.test ~all"
    assert len(value) > 255 and value[254:256] != " "
    zone["spf"] = txt_record(DOMAIN, value)
    r = run(zone)
    assert statuses(r)["spf"] == {"ok"} and statuses(r)["dkim"] == {"ok"}, r.output
    from tests.doctor.conftest import load

    ns = load(project).raw["doctor"]["nameserver"]
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port = ["127.0.0.1"], int(ns.rsplit(":", 1)[1])
    assert [len(s) for r_ in res.resolve(DOMAIN, "TXT") for s in r_.strings][0] == 255
    assert len(list(res.resolve(f"news._domainkey.{DOMAIN}", "TXT"))[0].strings) == 2


def test_servfail_names_the_resolver(run, zone):
    with ServfailServer() as broken:
        r = run({}, extra_dns=(f"--server=/{DOMAIN}/127.0.0.1#{broken.port}",),
                )
    spf = checks(r)["spf"][0]
    assert r.exit_code == 1
    assert spf["status"] == "fail"
    assert spf["fix"] == "check the resolver, or pass --nameserver"
    assert spf["message"].startswith("resolver 127.0.0.1:") and \
        spf["message"].endswith(": SERVFAIL for TXT pbtp.test")


def test_timeout_names_the_resolver(project):
    with SilentServer() as silent:
        write_config(project, nameserver=f"127.0.0.1:{silent.port}",
                     unsubscribe="https://127.0.0.1:9/u/")
        r = doctor("--json")
        asked = silent.queries
    spf = checks(r)["spf"][0]
    assert r.exit_code == 1
    assert spf["message"] == (f"resolver 127.0.0.1:{silent.port}: no answer within 2s for "
                              "TXT pbtp.test")
    assert {c["status"] for c in checks(r)["dmarc"]} == {"fail"}
    assert asked <= 4  # later questions fail at once: one wait, not one per check


def test_offline_asks_nothing_and_says_so(project):
    with SilentServer() as silent:
        write_config(project, nameserver=f"127.0.0.1:{silent.port}")
        r = doctor("--offline")
        assert silent.queries == 0
    assert r.exit_code == 0, r.output
    assert "warn  [offline]  --offline: skipped spf, dkim, dmarc, alignment, mx, ptr and the " \
           "unsubscribe probe" in r.output


def test_bad_nameserver_is_exit_2(project):
    write_config(project, nameserver="127.0.0.1:53")
    r = doctor("--nameserver", "127.0.0.1:fifty")
    assert r.exit_code == 2
    assert r.output.strip() == "Error: --nameserver '127.0.0.1:fifty': the port must be a number"


def test_unknown_sender_is_exit_2(project):
    write_config(project, nameserver="127.0.0.1:53")
    r = doctor("--sender", "nope", "--offline")
    assert r.exit_code == 2 and r.output.startswith("Error: unknown sender 'nope'")


def test_ed25519_second_key(run, zone, project):
    import base64
    import os

    from nacl.signing import SigningKey

    seed = os.urandom(32)
    (project / "keys" / "news.ed25519").write_bytes(base64.b64encode(seed))
    public = base64.b64encode(bytes(SigningKey(seed).verify_key)).decode()
    extra = ('dkim_ed25519_key_file = "keys/news.ed25519"\n'
             'dkim_ed25519_selector = "newse"')
    r = run(zone, "--issue", ISSUE, sender_extra=extra)
    dkim = checks(r)["dkim"]
    assert [c["status"] for c in dkim] == ["ok", "fail"]
    assert dkim[1]["message"] == "newse._domainkey.pbtp.test: no DKIM record"
    assert dkim[1]["fix"] == f'publish TXT newse._domainkey.pbtp.test "v=DKIM1; k=ed25519; p={public}"'
    r = run(zone, "--issue", ISSUE, sender_extra=extra,
            extra_dns=(txt_record(f"newse._domainkey.{DOMAIN}", f"v=DKIM1; k=ed25519; p={public}"),))
    assert [c["status"] for c in checks(r)["dkim"]] == ["ok", "ok"], r.output
    verified = [c["message"] for c in checks(r)["message"] if "verifies" in c["message"]]
    assert verified == ["DKIM verifies: d=pbtp.test s=news a=rsa-sha256, "
                        "d=pbtp.test s=newse a=ed25519-sha256"]


def test_local_relay_not_listed_is_a_warning_not_wrong_advice(run, zone):
    """A relay on 127.0.0.1 (a local Postfix) sends from another address: SPF and PTR
    cannot be judged from here, so no fix that would publish 127.0.0.7."""
    zone["spf"] = txt_record(DOMAIN, "v=spf1 ip4:192.0.2.1 -all")
    found = checks(run(zone))
    assert found["spf"][0]["status"] == "warn" and "127.0.0.7" not in found["spf"][0]["fix"]
    assert found["spf"][0]["message"].startswith("pbtp.test: the relay relay.pbtp.test is on "
                                                 "this machine (127.0.0.7)")


def test_provider_sender_needs_its_include_and_signs_itself(run, zone):
    pm = '\n[senders.pm]\nkind = "postmark"\ntoken_env = "PM_TOKEN"\n'
    r = run(zone, "--sender", "pm", doctor_extra=pm)
    found = checks(r)
    assert found["spf"][0]["status"] == "fail"
    assert found["spf"][0]["message"] == ("pbtp.test: SPF does not include spf.mtasv.net "
                                          "(Postmark sends for sender 'pm')")
    assert found["spf"][0]["fix"] == ('publish TXT pbtp.test "v=spf1 a:relay.pbtp.test '
                                      'ip4:127.0.0.1 include:spf.mtasv.net ~all"')
    assert found["dkim"][0]["status"] == "ok"
    assert found["dkim"][0]["message"].startswith("sender 'pm': Postmark signs (its "
                                                  "responsibility); it asks for a TXT record "
                                                  "DATEpm._domainkey.DOMAIN")
    assert found["ptr"][0]["status"] == "ok" and "Postmark's relays" in found["ptr"][0]["message"]
    zone["spf"] = txt_record(DOMAIN, "v=spf1 include:spf.mtasv.net ~all")
    r = run(zone, "--sender", "pm", doctor_extra=pm,
            extra_dns=(txt_record("spf.mtasv.net", "v=spf1 ip4:50.31.156.0/24 ~all"),))
    assert checks(r)["spf"][0]["status"] == "ok", r.output
    assert "authorises Postmark" in checks(r)["spf"][0]["message"]
