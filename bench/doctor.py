"""Benchmark: what the doctor gate adds before a large ``send``.

    python bench/doctor.py [--runs N]

Starts dnsmasq on 127.0.0.1 with a correct zone for pbtp.test (as the tests
do), then times ``fast_checks`` (config, SPF, DKIM sign+verify, DMARC,
alignment) asked afresh and answered from the one-hour file cache, and a full
``run_doctor`` without ``--issue`` (adds MX, PTR and the unsubscribe probe
to a closed port).

Measured 2026-12-01 on the shared 2-core container (dnsmasq 2.90, dnspython 2.9):

    gate checks, DNS asked afresh:      40.5 ms (median of 15)
    gate checks, DNS from the cache:    13.0 ms
    doctor without --issue:            225.5 ms
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    from pbtp_mailer.config import load_config
    from pbtp_mailer.doctor import DoctorOptions, fast_checks, run_doctor
    from pbtp_mailer.doctor.facts import gather
    from pbtp_mailer.doctor.runner import make_resolver
    from tests.doctor.conftest import _rsa_pem, dkim_value, write_config
    from tests.support.dns import Dnsmasq, txt_record

    secret = "bench-secret-0123456789abcdef"
    pem = _rsa_pem()
    zone = [txt_record("pbtp.test", "v=spf1 a:relay.pbtp.test ~all"),
            txt_record("news._domainkey.pbtp.test", dkim_value(pem)),
            txt_record("_dmarc.pbtp.test", "v=DMARC1; p=quarantine; rua=mailto:d@pbtp.test"),
            "--host-record=relay.pbtp.test,127.0.0.7", "--host-record=mx.pbtp.test,127.0.0.8",
            "--mx-host=pbtp.test,mx.pbtp.test,10"]
    with tempfile.TemporaryDirectory() as tmp, Dnsmasq(zone, ["pbtp.test"]) as dns:
        root = Path(tmp)
        (root / "keys").mkdir()
        (root / "keys" / "news.private").write_bytes(pem)
        write_config(root, nameserver=f"127.0.0.1:{dns.port}", unsubscribe="https://127.0.0.1:9/u/")
        config = load_config(root / "pbtp-mailer.toml", environ={"PBTP_MAILER_SECRET": secret})
        facts = gather(config)

        def timed(fn) -> float:
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            return statistics.median(times) * 1000

        fresh = timed(lambda: fast_checks(config, facts, make_resolver(config, facts)))
        fast_checks(config, facts, make_resolver(config, facts))  # fills the cache
        cached = timed(lambda: fast_checks(config, facts, make_resolver(config, facts,
                                                                        cached=True)))
        full = timed(lambda: run_doctor(config, DoctorOptions()))
    print(f"gate checks, DNS asked afresh:   {fresh:7.1f} ms (median of {args.runs})")
    print(f"gate checks, DNS from the cache: {cached:7.1f} ms")
    print(f"doctor without --issue:          {full:7.1f} ms")


if __name__ == "__main__":
    main()
