"""Fetching feeds over HTTP, politely and defensively.

One :class:`Fetcher` (one pool of keep-alive connections, :mod:`aggregator.live.http`,
made on the first fetch) serves a whole run. Every fetch
has connect and read timeouts and an overall deadline; the body is capped before
and after decompression (gzip and deflate are decoded here, in bounded steps,
so a compression bomb stops at the cap); at most five redirects are followed,
to http and https URLs only. Conditional GET is used when validators (ETag,
Last-Modified) are known, and a 304 answer carries no body.

Errors are :class:`FetchError`, one line each, naming the source and the URL:
``timeout after 30 s``, ``HTTP 404 Not Found``, ``redirect loop``.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import Mapping
from dataclasses import field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from aggregator.errors import SourceError
from aggregator.records import record

if TYPE_CHECKING:
    from aggregator.config import FetchSettings
    from aggregator.live.http import Client, Headers, Response

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
    "application/json;q=0.8, */*;q=0.1"
)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT = frozenset({301, 308})


@record
class Limits:
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    deadline: float = 30.0  # seconds for the whole fetch, redirects and body included
    max_body: int = 10 << 20  # bytes on the wire
    max_decoded: int = 40 << 20  # bytes after decompression
    max_redirects: int = 5
    workers: int = 8  # fetches at once

    @classmethod
    def of(cls, settings: FetchSettings) -> Limits:
        """The limits ``[fetch]`` in config.toml sets."""
        return cls(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            deadline=settings.deadline,
            max_body=settings.max_body_mb << 20,
            max_decoded=settings.max_decoded_mb << 20,
            workers=settings.workers,
        )


@record
class Validators:
    etag: str | None = None
    last_modified: str | None = None


@record
class Fetched:
    """A feed's answer: a body (status 200), or "not modified" (304, no body)."""

    url: str  # where the body came from, after redirects
    status: int
    body: bytes = b""
    content_type: str | None = None
    validators: Validators = field(default_factory=Validators)
    moved_to: str | None = None  # set when every redirect on the way was permanent
    # Seconds the answer stays fresh (Cache-Control max-age, else Expires; RFC 9111
    # §4.2.1); None when the server said nothing (or no-cache / no-store).
    max_age: int | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class FetchError(SourceError):
    """A fetch that failed; ``gone`` for 410, ``retry_after`` when the server asked."""

    def __init__(
        self,
        source: str,
        url: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: datetime | None = None,
        gone: bool = False,
        timed_out: bool = False,
    ) -> None:
        super().__init__(source, url, message)
        self.status = status
        self.retry_after = retry_after
        self.gone = gone
        self.timed_out = timed_out  # the server did not answer in time


def retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After as an instant: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=min(int(value), 7 * 86400))
    return _http_date(value)


# The longest a server's freshness is believed: a wrong Expires far in the future must
# not silence a feed for months.
MAX_FRESH = 7 * 86400


def max_age(cache_control: str | None) -> int | None:
    match = re.search(r"(?:^|[,\s])max-age=\"?(\d+)", cache_control or "", re.IGNORECASE)
    return min(int(match[1]), MAX_FRESH) if match else None


def freshness(headers: Headers | Mapping[str, str], now: datetime) -> int | None:
    """Seconds an answer stays fresh (RFC 9111 §4.2.1): Cache-Control max-age, else
    Expires minus Date (else minus ``now``); None for no-cache, no-store or nothing said.
    An invalid Expires means already stale (§5.3): None."""
    cache_control = headers.get("cache-control") or ""
    if re.search(r"(?:^|[,\s])no-(?:cache|store)\b", cache_control, re.IGNORECASE):
        return None
    seconds = max_age(cache_control)
    if seconds is not None:
        return seconds
    expires = _http_date(headers.get("expires"))
    if expires is None:
        return None
    date = _http_date(headers.get("date")) or now
    lifetime = int((expires - date).total_seconds())
    return min(lifetime, MAX_FRESH) if lifetime > 0 else None


# The one form an HTTP server sends (RFC 9110 §5.6.7, IMF-fixdate), read by a pattern;
# the obsolete ones (RFC 850, asctime) are left to the email parser, loaded for them.
_IMF_FIXDATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([1-9]\d{3}) (\d\d):(\d\d):(\d\d) GMT"
)
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _http_date(value: str | None) -> datetime | None:
    """An HTTP-date as an instant; None when it is not one, or names no zone."""
    if not value:
        return None
    value = value.strip()
    if found := _IMF_FIXDATE.fullmatch(value):
        day, month, year, hour, minute, second = found.groups()
        try:
            return datetime(
                int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute),
                int(second), tzinfo=UTC,
            )  # fmt: skip
        except ValueError:  # 31 Feb, 25 o'clock
            return None
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else None


class _Decoder:
    """Content-Encoding decoding in bounded steps."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._zlib: zlib._Decompress | None = None
        self._wbits = zlib.MAX_WBITS

    def feed(self, chunk: bytes, room: int) -> bytes:
        """Decoded bytes of ``chunk``; at most ``room + 1`` of them, so overflow shows."""
        if self.encoding in ("", "identity"):
            return chunk
        if self._zlib is None:
            if self.encoding in ("gzip", "x-gzip"):
                wbits = 16 + zlib.MAX_WBITS
            elif self.encoding == "deflate":
                # RFC 9110 says zlib-wrapped; some servers send raw deflate.
                zlib_header = (
                    len(chunk) >= 2 and chunk[0] & 0x0F == 8 and int.from_bytes(chunk[:2]) % 31 == 0
                )
                wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
            else:
                raise ValueError(f"unsupported Content-Encoding {self.encoding!r}")
            self._wbits = wbits
            self._zlib = zlib.decompressobj(wbits)
        out = self._zlib.decompress(chunk, room + 1)
        # A gzip body may hold several members (RFC 1952 §2.2): decode them all.
        while self._zlib.eof and self._zlib.unused_data and len(out) <= room:
            rest = self._zlib.unused_data
            self._zlib = zlib.decompressobj(self._wbits)
            out += self._zlib.decompress(rest, room + 1 - len(out))
        return out


class Fetcher:
    """HTTP for a whole run: one connection pool, shared limits, a User-Agent.

    Nothing is opened (or imported) until the first fetch."""

    def __init__(self, limits: Limits | None = None, user_agent: str | None = None) -> None:
        from aggregator import __version__

        self.limits = limits or Limits()
        self.user_agent = user_agent or f"aggregator/{__version__} (feed republisher)"
        self._client: Client | None = None

    def _http(self) -> Client:
        if self._client is None:
            from aggregator.live.http import Client

            self._client = Client(
                connect_timeout=self.limits.connect_timeout,
                read_timeout=self.limits.read_timeout,
                max_connections=self.limits.workers * 2,
                max_idle=self.limits.workers,
                headers={
                    "User-Agent": self.user_agent,
                    "Accept": ACCEPT,
                    "Accept-Encoding": "gzip, deflate",
                },
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def fetch(self, url: str, *, name: str, validators: Validators, now: datetime) -> Fetched:
        """GET ``url``; raises FetchError with a one-line reason."""
        from aggregator.live.http import HTTPError, Timeout

        try:
            async with asyncio.timeout(self.limits.deadline):
                return await self._follow(url, name=name, validators=validators, now=now)
        except TimeoutError as error:
            message = f"timeout after {self.limits.deadline:g} s"
            raise FetchError(name, url, message, timed_out=True) from error
        except Timeout as error:
            raise FetchError(name, url, f"timeout: {_reason(error)}", timed_out=True) from error
        except HTTPError as error:
            raise FetchError(name, url, f"cannot fetch: {_reason(error)}") from error

    async def _follow(
        self, url: str, *, name: str, validators: Validators, now: datetime
    ) -> Fetched:
        client = self._http()
        seen = {url}
        current = url
        moved_to: str | None = None
        permanent = True
        for _ in range(self.limits.max_redirects + 1):
            headers = {}
            if validators.etag:
                headers["If-None-Match"] = validators.etag
            if validators.last_modified:
                headers["If-Modified-Since"] = validators.last_modified
            async with await client.get(current, headers) as response:
                if response.status not in REDIRECTS:
                    return await self._answer(
                        response, name=name, first=url, moved_to=moved_to, now=now
                    )
                location = response.headers.get("location")
                await response.drain()
            if not location:
                raise FetchError(name, url, f"HTTP {response.status} redirect without a Location")
            target = urljoin(current, location.strip())
            scheme = urlsplit(target).scheme
            if scheme not in ("http", "https"):
                raise FetchError(name, url, f"redirect to a {scheme}: URL refused ({target})")
            if target in seen:
                raise FetchError(name, url, f"redirect loop (back to {target})")
            seen.add(target)
            permanent = permanent and response.status in PERMANENT
            moved_to = target if permanent else None
            current = target
        raise FetchError(name, url, f"more than {self.limits.max_redirects} redirects")

    async def _answer(
        self,
        response: Response,
        *,
        name: str,
        first: str,
        moved_to: str | None,
        now: datetime,
    ) -> Fetched:
        status = response.status
        final = response.url
        if status == 304:
            return Fetched(
                url=final,
                status=304,
                validators=Validators(
                    response.headers.get("etag"), response.headers.get("last-modified")
                ),
                moved_to=moved_to,
                max_age=freshness(response.headers, now),
            )
        if status == 410:
            raise FetchError(
                name, first, "HTTP 410 Gone: the feed was removed", status=410, gone=True
            )
        if status in (429, 503):
            after = retry_after(response.headers.get("retry-after"), now)
            when = f"; retry after {after.isoformat()}" if after else ""
            raise FetchError(
                name,
                first,
                f"HTTP {status} {response.reason}{when}",
                status=status,
                retry_after=after,
            )
        if status != 200:
            raise FetchError(name, first, f"HTTP {status} {response.reason}".strip(), status=status)
        body = await self._body(response, name=name, url=first)
        return Fetched(
            url=final,
            status=200,
            body=body,
            content_type=response.headers.get("content-type"),
            validators=Validators(
                response.headers.get("etag"), response.headers.get("last-modified")
            ),
            moved_to=moved_to,
            max_age=freshness(response.headers, now),
        )

    async def _body(self, response: Response, *, name: str, url: str) -> bytes:
        limits = self.limits
        declared = response.headers.get("content-length") or ""
        if declared.isdigit() and int(declared) > limits.max_body:
            raise FetchError(
                name,
                url,
                f"body of {int(declared) >> 20} MB is over the {limits.max_body >> 20} MB limit",
            )
        decoder = _Decoder((response.headers.get("content-encoding") or "").strip().lower())
        parts: list[bytes] = []
        wire = decoded = 0
        try:
            async for chunk in response.chunks():
                wire += len(chunk)
                if wire > limits.max_body:
                    raise FetchError(
                        name, url, f"body over the {limits.max_body >> 20} MB limit; stopped"
                    )
                out = decoder.feed(chunk, limits.max_decoded - decoded)
                decoded += len(out)
                if decoded > limits.max_decoded:
                    raise FetchError(
                        name,
                        url,
                        f"body decompresses to over {limits.max_decoded >> 20} MB; stopped",
                    )
                parts.append(out)
        except (ValueError, zlib.error) as error:
            raise FetchError(name, url, f"cannot decode the body: {error}") from error
        return b"".join(parts)


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "host name could not be resolved (offline?)"
    return " ".join(text.split())[:200]
