"""DNS questions through dnspython, with errors that name the resolver, and a file cache.

``Resolver`` answers ``txt``, ``addresses``, ``mx`` and ``ptr``: a name
that does not exist or has no such record gives ``[]``; SERVFAIL, REFUSED
or a timeout raise ``DoctorError`` naming the resolver ("resolver
127.0.0.1:5353: SERVFAIL for TXT example.org"), never a dnspython
traceback. A CNAME chain is followed by dnspython; TXT strings of one
record (255 bytes each) are joined. ``DNSCache`` keeps answers in a JSON
file under the data dir (the send gate's one-hour cache).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pbtp_mailer.errors import ConfigError, DoctorError

__all__ = ["Resolver", "DNSCache", "parse_nameserver"]

_RCODE = re.compile(r"answered (SERVFAIL|REFUSED|FORMERR|NOTIMP|[A-Z]{4,})")


def parse_nameserver(value: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6]:PORT`` for IPv6) → ``(ip, port)``; ``ConfigError`` if bad."""
    text = value.strip()
    host, port = text, 53
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?", text)
    if m:
        host, port = m.group(1), int(m.group(2) or 53)
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        if not p.isdigit():
            raise ConfigError(f"--nameserver {value!r}: the port must be a number")
        port = int(p)
    if not host or not 0 < port < 65536:
        raise ConfigError(f"--nameserver {value!r}: expected HOST[:PORT]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host = str(socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0])
        except (socket.gaierror, UnicodeError):
            raise ConfigError(f"--nameserver {value!r}: cannot resolve {host!r}") from None
    return host, port


class DNSCache:
    """Answers by ``"TYPE name"`` in a JSON file, each kept ``ttl`` seconds."""

    def __init__(self, path: Path, ttl: float, clock: Callable[[], float] = time.time, *,
                 read: bool = True) -> None:
        #: ``read=False``: only refresh the file (``pbtp-mailer doctor`` asks afresh)
        self.path, self.ttl, self.clock, self.read = path, ttl, clock, read
        try:
            self.data: dict[str, Any] = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            self.data = {}

    def get(self, key: str) -> list[str] | None:
        hit = self.data.get(key) if self.read else None
        if isinstance(hit, dict) and self.clock() - float(hit.get("at", 0)) < self.ttl:
            return list(hit.get("answer", []))
        return None

    def put(self, key: str, answer: list[str]) -> None:
        self.data[key] = {"at": self.clock(), "answer": answer}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data), "utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time


class Resolver:
    """The DNS as the checks see it: ``nameserver`` ``(ip, port)`` or the system's."""

    def __init__(self, nameserver: tuple[str, int] | None = None, *, timeout: float = 5.0,
                 cache: DNSCache | None = None) -> None:
        import dns.resolver

        try:
            self._r = dns.resolver.Resolver(configure=nameserver is None)
        except dns.resolver.NoResolverConfiguration:
            raise DoctorError("no DNS resolver configured (/etc/resolv.conf)",
                              hint="pass --nameserver HOST[:PORT]") from None
        if nameserver is not None:
            self._r.nameservers = [nameserver[0]]
            self._r.port = nameserver[1]
            self.label = f"{nameserver[0]}:{nameserver[1]}"
        else:
            self.label = f"{self._r.nameservers[0]}:{self._r.port}" if self._r.nameservers \
                else "system resolver"
        self._r.timeout = timeout
        self._r.lifetime = timeout
        self.timeout = timeout
        self.cache = cache
        #: the first timeout: later questions fail at once instead of waiting again
        self.down: DoctorError | None = None

    def _query(self, name: str, rdtype: str) -> list[Any]:
        import dns.exception
        import dns.name
        import dns.resolver

        if self.down is not None:
            raise DoctorError(f"{self.down} (so {rdtype} {name} was not asked)")
        try:
            answer = self._r.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            self.down = DoctorError(f"resolver {self.label}: no answer within "
                                    f"{self.timeout:g}s for {rdtype} {name}")
            raise self.down from None
        except dns.resolver.NoNameservers as exc:
            m = _RCODE.search(str(exc))
            raise DoctorError(f"resolver {self.label}: {m.group(1) if m else 'failed'} for "
                              f"{rdtype} {name}") from None
        except (dns.name.NameTooLong, dns.name.EmptyLabel, dns.name.LabelTooLong,
                UnicodeError, ValueError):
            raise DoctorError(f"{name!r} is not a valid domain name") from None
        except dns.exception.DNSException as exc:
            raise DoctorError(f"resolver {self.label}: {rdtype} {name}: {exc}") from None
        return list(answer.rrset) if answer.rrset is not None else []

    def _cached(self, name: str, rdtype: str, convert: Callable[[Any], str]) -> list[str]:
        key = f"{rdtype} {name.lower().rstrip('.')}"
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        answer = [convert(r) for r in self._query(name, rdtype)]
        if self.cache is not None:
            self.cache.put(key, answer)
        return answer

    def txt(self, name: str) -> list[str]:
        """Each TXT record of ``name``, its strings joined (RFC 7208 3.3)."""
        return self._cached(name, "TXT",
                            lambda r: b"".join(r.strings).decode("utf-8", "replace"))

    def addresses(self, name: str) -> list[str]:
        return (self._cached(name, "A", lambda r: r.address)
                + self._cached(name, "AAAA", lambda r: r.address))

    def mx(self, name: str) -> list[str]:
        """``"PREF host"`` strings, host without the final dot."""
        return self._cached(name, "MX",
                            lambda r: f"{r.preference} {r.exchange.to_text().rstrip('.')}")

    def ptr(self, ip: str) -> list[str]:
        import dns.reversename

        rev = dns.reversename.from_address(ip).to_text()
        return self._cached(rev, "PTR", lambda r: r.target.to_text().rstrip("."))

    def dkim_dnsfunc(self, name: bytes | str, timeout: int = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``: the TXT record at ``name``, from this resolver."""
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        records = self.txt(text.rstrip("."))
        dkim_like = [r for r in records if "p=" in r]
        chosen = dkim_like or records
        return chosen[0].encode() if chosen else None
