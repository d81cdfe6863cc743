"""[alignment]: DMARC passes only when the From domain aligns (relaxed: same
organisational domain; strict: the same name, as ``adkim``/``aspf`` say)
with the DKIM ``d=`` that verified or the SPF-authenticated envelope domain.
A VERP/bounce domain that breaks SPF alignment is named.
"""

from __future__ import annotations

from pbtp_mailer.doctor.dmarc import Policy, org_domain
from pbtp_mailer.doctor.facts import Facts
from pbtp_mailer.doctor.report import Check

__all__ = ["aligned", "check_alignment"]


def aligned(domain: str, from_domain: str, mode: str) -> bool:
    a, b = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return a == b if mode == "s" else org_domain(a) == org_domain(b)


def check_alignment(facts: Facts, policy: Policy | None) -> Check:
    adkim = policy.adkim if policy else "r"
    aspf = policy.aspf if policy else "r"
    p = policy.p if policy else "none"
    frm, env = facts.from_domain, facts.envelope_domain
    spf_ok = aligned(env, frm, aspf)
    dkim_domains = [k.domain for k in facts.dkim_keys]
    dkim_ok = any(aligned(d, frm, adkim) for d in dkim_domains)
    if not dkim_domains and facts.provider is not None:
        dkim_text = f"DKIM d= set by {facts.provider.name} (make it {frm} there)"
        dkim_ok = True  # the provider's console decides; the dkim line names its records
    else:
        dkim_text = f"DKIM d={', '.join(dkim_domains) or '(none)'}"
    where = f"From {frm} (adkim={adkim}, aspf={aspf}, p={p})"
    if facts.local and not dkim_domains:
        return Check("alignment", "ok", f"{where}: sender '{facts.sender_name}' ({facts.kind}) "
                     "delivers nothing: not checked")
    env_fix = (f"send with a bounce domain under {org_domain(frm) if aspf == 'r' else frm} "
               f"(e.g. bounces.{frm}: [doctor] bounce_domain and the sender's Return-Path), "
               f"with its own SPF record")
    if spf_ok and dkim_ok:
        return Check("alignment", "ok", f"{where}: aligned with {dkim_text} and SPF "
                     f"envelope {env}")
    if dkim_ok:
        return Check("alignment", "warn", f"{where}: the envelope (VERP/bounce) domain {env} "
                     f"does not align, so SPF cannot pass DMARC; it rests on {dkim_text} alone"
                     + (f" and p={p} rejects mail whose signature breaks" if p != "none" else ""),
                     env_fix)
    dkim_fix = (f"sign with d={frm}: set dkim_domain = \"{frm}\" in [senders."
                f"{facts.sender_name}] and publish its key (see [dkim])")
    if spf_ok:
        return Check("alignment", "warn", f"{where}: {dkim_text} does not align; DMARC rests "
                     f"on SPF of {env} alone, which forwarding breaks", dkim_fix)
    return Check("alignment", "fail", f"{where}: neither {dkim_text} nor the envelope domain "
                 f"{env} aligns: DMARC fails for every message", f"{dkim_fix}; or {env_fix}")
