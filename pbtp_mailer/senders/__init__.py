"""Senders: final message bytes in, one result per recipient out.

``create_sender(name_or_url, config)`` finds a sender by configured name,
URL or kind (see ``registry``); the protocol is in ``base``. Importing this
package loads no network library: each kind is imported when first built.
"""

from __future__ import annotations

from pbtp_mailer.senders.base import BaseSender, Outgoing, Sender, SenderSpec, SendResult, Status
from pbtp_mailer.senders.registry import available_kinds, create_sender, parse_sender_url, register_kind

__all__ = [
    "Outgoing",
    "Status",
    "SendResult",
    "Sender",
    "BaseSender",
    "SenderSpec",
    "available_kinds",
    "create_sender",
    "parse_sender_url",
    "register_kind",
]
