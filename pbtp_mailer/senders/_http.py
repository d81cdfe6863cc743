"""What the HTTP API senders share: one httpx client, parallel requests, error mapping.

Each provider module says how to turn messages into requests (``units`` and
``_send_unit``); this base owns the client (connection reuse, timeouts, an
injectable ``transport`` and ``base_url`` so tests point it at 127.0.0.1),
the thread pool for ``concurrency`` requests at once, and the translation of
transport failures and account-wide answers into our errors:

* cannot connect → the message never left: ``SendTransientError``;
* a read timeout or a broken response → the message *may* have been
  accepted: per-recipient TRANSIENT, the dispatcher decides;
* 401/403 → ``SendPermanentError("postmark: 401 — check POSTMARK_SERVER_TOKEN")``;
* 429 and 5xx → ``SendTransientError`` with Retry-After (or the rate-limit
  reset) as ``retry_after``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

from pbtp_mailer.errors import SendPermanentError, SendTransientError
from pbtp_mailer.senders._options import BatchFailure, Options, finish_batch, mask, per_recipient
from pbtp_mailer.senders.base import BaseSender, Outgoing, SenderSpec, SendResult, Status

if TYPE_CHECKING:
    import httpx

__all__ = ["HTTPSender", "retry_after_seconds"]

Outcome = list[SendResult] | BatchFailure


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait, from Retry-After (seconds or HTTP date) or X-RateLimit-Reset."""
    now = time.time() if now is None else now
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.replace(".", "", 1).isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = headers.get("x-ratelimit-reset")
    if reset and reset.replace(".", "", 1).isdigit():
        number = float(reset)
        # an epoch time (SendGrid) or a number of seconds
        return max(0.0, number - now) if number > 1e9 else number
    return None


class HTTPSender(BaseSender):
    """Base of the API senders; subclasses set the ClassVars and ``_send_unit``."""

    provider: ClassVar[str] = "http"
    default_base_url: ClassVar[str] = ""
    secret_option: ClassVar[str] = "api_key_env"
    default_secret_env: ClassVar[str] = ""
    extra_options: ClassVar[frozenset[str]] = frozenset()
    default_concurrency: ClassVar[int] = 4

    def __init__(self, spec: SenderSpec, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(spec)
        known = {"base_url", "timeout", "connect_timeout", "transport", self.secret_option,
                 *self.extra_options}
        self.opts = Options(spec, known)
        self.base_url = (self.opts.text("base_url") or self.default_base_url).rstrip("/")
        self.timeout = self.opts.number("timeout", 30.0)
        self.connect_timeout = self.opts.number("connect_timeout", 10.0)
        self.transport = transport or self.opts.get("transport")
        self.secret, self.secret_env = self.opts.secret(self.secret_option,
                                                        self.default_secret_env)
        self.concurrency = self.opts.concurrency(default=self.default_concurrency)
        self.batch_size = self.concurrency
        self.client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.base_url}>"

    # -- lifecycle ----------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def _check_secret(self) -> None:
        if not self.secret:
            env = self.secret_env or self.default_secret_env
            raise SendPermanentError(
                f"{self.provider}: ${env} is not set",
                hint=f"export {env}=... (the value is never printed)",
            )

    def open(self) -> None:
        if self.client is not None:
            return
        self._check_secret()
        import httpx

        self.client = httpx.Client(
            base_url=self.base_url,
            transport=self.transport,
            timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
            limits=httpx.Limits(max_connections=self.concurrency,
                                max_keepalive_connections=self.concurrency),
            headers={"User-Agent": "pbtp-mailer", **self._auth_headers()},
        )
        if self.concurrency > 1:
            self._pool = ThreadPoolExecutor(self.concurrency,
                                            thread_name_prefix=f"{self.provider}-send")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self.client is not None:
            self.client.close()
            self.client = None

    # -- checking -----------------------------------------------------------

    def _check_path(self) -> str:
        """A cheap authenticated GET that proves the credentials."""
        raise NotImplementedError

    def _get(self, path: str) -> httpx.Response:
        assert self.client is not None
        return self.client.get(path)

    def check(self) -> str:
        """Open, make one authenticated read-only request, close: what ``senders check`` does."""
        import httpx

        self.open()
        try:
            try:
                response = self._get(self._check_path())
            except httpx.HTTPError as exc:
                raise SendTransientError(
                    f"{self.provider}: cannot reach {self.base_url}: {self._clean(exc)}"
                ) from None
            self._account_error(response, self._short(response, 120))
            if response.status_code >= 400:
                raise SendPermanentError(
                    f"{self.provider}: {response.status_code} {self._short(response, 120)}",
                    code=response.status_code)
            return f"{self.provider}: credentials accepted by {self.base_url}"
        finally:
            self.close()

    # -- sending ------------------------------------------------------------

    def units(self, batch: Sequence[Outgoing]) -> list[list[Outgoing]]:
        """Consecutive slices of the batch, one per request (default: one message each)."""
        return [[m] for m in batch]

    def _send_unit(self, unit: list[Outgoing]) -> list[Outcome]:
        raise NotImplementedError

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        if not batch:
            return []
        if self.client is None:
            self.open()
        units = self.units(batch)
        if self._pool is not None and len(units) > 1:
            per_unit = list(self._pool.map(self._guarded, units))
        else:
            per_unit = [self._guarded(u) for u in units]
        # units are consecutive slices of the batch, so flattening keeps its order
        outcomes = [o for group in per_unit for o in group]
        return finish_batch(batch, outcomes)

    def _guarded(self, unit: list[Outgoing]) -> list[Outcome]:
        import httpx

        try:
            return self._send_unit(unit)
        except (SendTransientError, SendPermanentError) as exc:
            return [BatchFailure(exc)] * len(unit)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            err = SendTransientError(
                f"{self.provider}: cannot connect to {self.base_url}: {self._clean(exc)}")
            return [BatchFailure(err)] * len(unit)
        except httpx.TimeoutException:
            text = (f"{self.provider}: no answer within {self.timeout:g} s "
                    "(the message may have been accepted)")
            return [per_recipient(m, Status.TRANSIENT, None, text) for m in unit]
        except httpx.HTTPError as exc:
            text = f"{self.provider}: {self._clean(exc)} (the message may have been accepted)"
            return [per_recipient(m, Status.TRANSIENT, None, text) for m in unit]

    def _clean(self, exc: BaseException) -> str:
        return mask(str(exc) or type(exc).__name__, [self.secret])

    def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        assert self.client is not None
        return self.client.post(path, **kwargs)

    def _account_error(self, response: httpx.Response, detail: str = "") -> None:
        """Raise for answers that concern the account or the whole request."""
        code = response.status_code
        detail = mask(detail, [self.secret])
        if code in (401, 403):
            env = self.secret_env or self.default_secret_env
            raise SendPermanentError(
                f"{self.provider}: {code} — check {env}" + (f" ({detail})" if detail else ""),
                code=code)
        if code == 429 or code >= 500:
            raise SendTransientError(
                f"{self.provider}: {code} {detail or response.reason_phrase}".rstrip(),
                code=code, retry_after=retry_after_seconds(response.headers))

    @staticmethod
    def _short(response: httpx.Response, limit: int = 300) -> str:
        text = response.text.strip().replace("\n", " ")
        return text[:limit]
