"""[message] (with ``--issue``): the issue built and signed as a real send signs
it (``senders.dkim.DKIMSigner``), each DKIM signature verified through our
resolver, List-Id and Feedback-ID checked, the HTML part's size against
Gmail's clipping point, and SpamAssassin's score when it is installed.
The List-Unsubscribe pair is reported under [unsubscribe].
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from email import message_from_bytes, policy
from pathlib import Path
from typing import TYPE_CHECKING

from pbtp_mailer.doctor.dkimcheck import dkim_tags
from pbtp_mailer.doctor.facts import Facts
from pbtp_mailer.doctor.report import Check
from pbtp_mailer.doctor.resolver import Resolver
from pbtp_mailer.errors import ConfigError, DoctorError

if TYPE_CHECKING:
    from pbtp_mailer.config import Config

__all__ = ["build_signed", "check_message", "GMAIL_CLIP_BYTES"]

#: Gmail shows "[Message clipped]" past about 102 KB of HTML, hiding the footer
GMAIL_CLIP_BYTES = 102 * 1024
_FEEDBACK_ID = re.compile(r"[^\s:]+(:[^\s:]+){1,3}")


def build_signed(config: Config, facts: Facts, issue_file: str | Path) -> bytes:
    """One copy of the issue as a subscriber gets it, DKIM-signed like a real send."""
    from pbtp_mailer.compose.cache import compose_cached
    from pbtp_mailer.compose.message import MessageTemplate, Personal
    from pbtp_mailer.issue.model import load_issue
    from pbtp_mailer.senders.dkim import DKIMSigner
    from pbtp_mailer.tokens import make_probe_token, unsubscribe_urls

    issue = load_issue(issue_file)
    rendition = compose_cached(issue, config, web=False)  # what send will use
    template = MessageTemplate(rendition, config.newsletter)
    try:
        token = make_probe_token(config.secret())
    except ConfigError:
        token = "doctor-probe-without-secret"
    https, mailto = unsubscribe_urls(config.newsletter, token)
    data = template.render(Personal(email=f"doctor@{facts.from_domain}", name="Doctor",
                                    unsubscribe_url=https, unsubscribe_mailto=mailto))
    rsa = next((k for k in facts.dkim_keys if k.algorithm == "rsa"), None)
    if rsa is None:
        return data
    ed = next((k for k in facts.dkim_keys if k.algorithm == "ed25519"), None)
    try:
        signer = DKIMSigner(rsa.selector, rsa.domain, rsa.key_file.read_bytes(),
                            ed.key_file.read_bytes() if ed else None, ed.selector if ed else None,
                            rewrites_date_and_message_id=facts.kind == "ses")
    except OSError as exc:
        raise ConfigError(f"{exc.filename}: {exc.strerror}") from None
    return signer.sign(data)


def _verify(data: bytes, resolver: Resolver | None) -> Check:
    import dkim

    d = dkim.DKIM(data)
    sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
    if not sigs:
        return Check("message", "fail", "the message is not DKIM-signed",
                     "configure DKIM on the sender (see [dkim])")
    if resolver is None:
        return Check("message", "ok", f"{len(sigs)} DKIM signature(s); not verified (--offline)")
    shown = []
    for idx, sig in enumerate(sigs):
        tags = dkim_tags(sig.decode("ascii", "replace"))
        name = f"d={tags.get('d')} s={tags.get('s')} a={tags.get('a')}"
        try:
            good = d.verify(idx=idx, dnsfunc=resolver.dkim_dnsfunc)
        except DoctorError as exc:
            return Check("message", "fail", f"DKIM {name}: {exc}", "check the resolver")
        except dkim.DKIMException as exc:
            good, name = False, f"{name} ({exc})"
        if not good:
            return Check("message", "fail", f"DKIM signature {name} does not verify",
                         "publish the key [dkim] names")
        shown.append(name)
    return Check("message", "ok", "DKIM verifies: " + ", ".join(shown))


def _headers(data: bytes) -> list[Check]:
    msg = message_from_bytes(data, policy=policy.default)
    out = []
    list_id = str(msg.get("List-Id", ""))
    out.append(Check("message", "ok", f"List-Id: {list_id}") if re.search(r"<[^<>\s]+>$", list_id)
               else Check("message", "fail", f"List-Id missing or malformed: {list_id!r}",
                          "set [newsletter] list_id = \"Name <list.DOMAIN>\""))
    fid = msg.get("Feedback-ID")
    if fid is None:
        out.append(Check("message", "ok", "no Feedback-ID (optional; Gmail's feedback loop)"))
    elif _FEEDBACK_ID.fullmatch(str(fid).strip()):
        out.append(Check("message", "ok", f"Feedback-ID: {fid}"))
    else:
        out.append(Check("message", "fail", f"Feedback-ID {str(fid)!r} is not a:b[:c[:d]]",
                         "set [newsletter] feedback_id = \"campaign:list:type:SenderId\""))
    unsub = str(msg.get("List-Unsubscribe", ""))
    post = str(msg.get("List-Unsubscribe-Post", ""))
    signed = {h.strip().lower() for s in msg.get_all("DKIM-Signature", [])
              for h in dkim_tags(str(s)).get("h", "").split(":")}
    missing = [h for h in ("list-unsubscribe", "list-unsubscribe-post") if h not in signed]
    if "<https://" not in unsub or post.strip() != "List-Unsubscribe=One-Click":
        out.append(Check("unsubscribe", "fail", f"built message: List-Unsubscribe {unsub!r}, "
                         f"List-Unsubscribe-Post {post!r}", "an https unsubscribe_base_url "
                         "gives both headers"))
    elif msg.get_all("DKIM-Signature") and missing:
        out.append(Check("unsubscribe", "fail", f"built message: DKIM does not cover "
                         f"{', '.join(missing)} (RFC 8058 requires it)", "sign those headers"))
    else:
        out.append(Check("unsubscribe", "ok", "built message: List-Unsubscribe (https) and "
                         "List-Unsubscribe-Post present" + (", DKIM-signed" if signed else "")))
    html = next((p for p in msg.walk() if p.get_content_type() == "text/html"), None)
    size = len(html.get_content().encode("utf-8")) if html is not None else 0
    out.append(Check("message", "ok", f"HTML part {size / 1024:.0f} KB (Gmail clips at 102 KB), "
                     f"message {len(data) / 1024:.0f} KB") if size < GMAIL_CLIP_BYTES
               else Check("message", "warn", f"HTML part is {size / 1024:.0f} KB: Gmail clips it "
                          "at 102 KB, hiding the footer with the unsubscribe link",
                          "shorten the issue or link to the web version for long sections"))
    return out


def _spamassassin(data: bytes) -> Check:
    exe = shutil.which("spamassassin")
    if exe is None:
        return Check("message", "ok", "SpamAssassin not installed: score not checked")
    try:
        with tempfile.TemporaryDirectory(prefix="pbtp-sa-") as home:  # no ~/.spamassassin
            run = subprocess.run([exe, "-L", "-t"], input=data, capture_output=True,
                                 timeout=120, check=False, env={**os.environ, "HOME": home})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("message", "warn", f"SpamAssassin did not run: {exc}", "check spamassassin")
    m = re.search(rb"X-Spam-Status: (\w+), score=(-?[\d.]+) required=(-?[\d.]+)", run.stdout)
    if m is None:
        return Check("message", "warn", "SpamAssassin gave no score", "run spamassassin -L -t")
    score, required = float(m.group(2)), float(m.group(3))
    rules = re.findall(rb"^\s*(-?\d+\.\d+) (\w+) ", run.stdout, re.M)
    top = ", ".join(f"{r.decode()} {s.decode()}" for s, r in rules if float(s) > 0)
    if score >= required:
        return Check("message", "warn", f"SpamAssassin score {score} (spam from {required}): "
                     f"{top}", "change what the listed rules point at")
    return Check("message", "ok", f"SpamAssassin score {score} (spam from {required})"
                 + (f": {top}" if top else ""))


def check_message(config: Config, facts: Facts, issue_file: str | Path,
                  resolver: Resolver | None, *, spamassassin: bool = True) -> list[Check]:
    """``resolver`` None: offline (signatures made, not verified)."""
    data = build_signed(config, facts, issue_file)
    if facts.provider is not None and not facts.dkim_keys:
        out = [Check("message", "ok", f"{facts.provider.name} signs on sending: the signature "
                     "can only be checked on a received copy")]
    elif facts.local and not facts.dkim_keys:
        out = [Check("message", "ok", f"sender '{facts.sender_name}' ({facts.kind}) delivers "
                     "nothing: not signed")]
    else:
        out = [_verify(data, resolver)]
    out += _headers(data)
    if spamassassin:
        out.append(_spamassassin(data))
    return out
