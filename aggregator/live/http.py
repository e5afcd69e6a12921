"""A small HTTP/1.1 client for fetching feeds: asyncio protocols and llhttp (httptools).

Only what feed fetching needs: GET over http and https, keep-alive connections per
origin in a bounded pool, proxies from the environment (``HTTP_PROXY``, ``HTTPS_PROXY``,
``ALL_PROXY``, ``NO_PROXY``; http URLs through the proxy, https URLs through a
``CONNECT`` tunnel), a connect timeout, and a read timeout on every wait for the
server. The body is handed out as it arrives, after transfer decoding (chunked) and
before content decoding (gzip): the caller caps and decodes it.

A request that fails on a reused connection before any byte of the answer arrived (the
server closed the idle connection as we sent) is retried once on a new connection.
Connections are not reused after ``Connection: close``, an HTTP/1.0 answer without
keep-alive, a body read to the connection's end, or a body not read to its end.

Errors are :class:`HTTPError` (:class:`Timeout` for timeouts) with one-line messages.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import NamedTuple, cast
from urllib.parse import SplitResult, quote, unquote, urlsplit

import httptools

MAX_HEAD = 64 << 10  # bytes of status line and headers
MAX_HEADERS = 100
IDLE_EXPIRY = 5.0  # seconds an idle connection is kept
_HIGH_WATER = 512 << 10  # unread body bytes before the socket stops being read
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters left as they are in a request target (RFC 3986 reserved and unreserved;
# a ``%`` stays, so a URL already percent-encoded is sent as given): others are encoded.
_SAFE = "!$%&'()*+,/:;=?@[]~"


class HTTPError(Exception):
    """A request that failed; the message is one line."""


class Timeout(HTTPError):
    """Connecting or waiting for the server took too long."""


class ConnectError(HTTPError):
    """The connection could not be made (refused, unresolved, TLS, proxy)."""


class ProtocolError(HTTPError):
    """The server's answer was not HTTP we accept (malformed, too large a header)."""


class _Closed(HTTPError):
    """The server closed the connection; ``answered`` when part of an answer came."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


class _Beyond(Exception):
    """Raised in a parser callback to stop at the end of the answer."""


class Headers:
    """Response headers: case-insensitive lookup; repeated fields joined with ", "."""

    __slots__ = ("_fields", "_joined")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields = list(fields)
        joined: dict[str, str] = {}
        for name, value in self._fields:
            key = name.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        self._joined = joined

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._joined.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._joined[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._joined

    def __iter__(self) -> Iterator[str]:
        return iter(self._joined)

    def __len__(self) -> int:
        return len(self._joined)

    def items(self) -> list[tuple[str, str]]:
        """Every field as sent, in order, names as the server spelled them."""
        return list(self._fields)

    def get_list(self, name: str) -> list[str]:
        key = name.lower()
        return [value for field, value in self._fields if field.lower() == key]

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


class _Target(NamedTuple):
    scheme: str
    host: str  # lower case, IDNA, IPv6 without brackets
    port: int
    path: str  # origin-form request target: path and query
    authority: str  # for Host: host, [v6], and the port when not the default
    userinfo: str | None


def _target(url: str) -> _Target:
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise HTTPError(f"invalid URL {url!r}: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise HTTPError(f"unsupported URL scheme {scheme!r}")
    host = parts.hostname or ""
    if not host:
        raise HTTPError(f"no host in URL {url!r}")
    if not host.isascii():
        # IDNA 2008 with UTS 46 mapping, as browsers resolve it ("straße.de" is
        # xn--strae-oqa.de, not strasse.de, which the codec of IDNA 2003 gives).
        import idna

        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as error:
            raise HTTPError(f"invalid host name {host!r}: {error}") from None
    if not _valid_host(host):
        raise HTTPError(f"invalid host name {host!r}")
    default = _DEFAULT_PORTS[scheme]
    port = default if port is None else port
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port == default else f"{shown}:{port}"
    path = quote(parts.path or "/", safe=_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_SAFE)
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
    return _Target(scheme, host, port, path, authority, userinfo)


_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _valid_host(host: str) -> bool:
    """An IP address, or a DNS name of labels of 1 to 63 letters, digits, hyphens or
    underscores (253 characters at most): what may go to the resolver, into the Host
    header and into a proxy's request line."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def _basic(userinfo: str) -> str:
    import base64

    user, _, password = userinfo.partition(":")
    token = f"{unquote(user)}:{unquote(password)}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")


# Proxies ------------------------------------------------------------------------------


class _Proxy(NamedTuple):
    host: str
    port: int
    authorization: str | None  # Proxy-Authorization, from the proxy URL's userinfo

    def __str__(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{shown}:{self.port}"


class Proxies:
    """Which proxy a URL goes through, from ``*_proxy`` environment variables (either
    case; the lower-case one wins) and ``NO_PROXY``: a comma-separated list of host
    names (each also covering its subdomains; a leading ``.`` or ``*.`` is the same),
    IP addresses, CIDR networks, each optionally with ``:port``; ``*`` is every host."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        found: dict[str, str] = {}
        for name, value in environ.items():
            lower = name.lower()
            if value and lower.endswith("_proxy") and (lower not in found or name == lower):
                found[lower] = value
        if "REQUEST_METHOD" in environ and "http_proxy" not in environ:
            # A CGI script: HTTP_PROXY may be the client's "Proxy:" header (httpoxy).
            found.pop("http_proxy", None)
        self._urls = {
            "http": found.get("http_proxy") or found.get("all_proxy"),
            "https": found.get("https_proxy") or found.get("all_proxy"),
        }
        self._bypass = [
            entry.strip().lower() for entry in found.get("no_proxy", "").split(",") if entry.strip()
        ]

    def for_url(self, target: _Target) -> _Proxy | None:
        url = self._urls.get(target.scheme)
        if not url or self.bypassed(target.host, target.port):
            return None
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        # Named without its user name and password: messages reach logs and /healthz.
        shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        variable = f"{target.scheme.upper()}_PROXY"
        if parts.scheme.lower() != "http":
            raise ConnectError(f"proxy {shown} ({variable}): only http:// proxies are supported")
        try:
            port = parts.port or 80
        except ValueError:
            raise ConnectError(f"invalid proxy URL {shown} ({variable})") from None
        if not parts.hostname:
            raise ConnectError(f"invalid proxy URL {shown} ({variable})")
        userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
        return _Proxy(parts.hostname, port, _basic(userinfo) if userinfo else None)

    def bypassed(self, host: str, port: int) -> bool:
        for entry in self._bypass:
            if entry == "*":
                return True
            name, wanted = _split_port(entry)
            if wanted is not None and wanted != port:
                continue
            if "/" in name:
                if _in_network(host, name):
                    return True
                continue
            name = name.removeprefix("*").removeprefix(".")
            if name and (host == name or host.endswith("." + name)):
                return True
        return False


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6] or [v6]:port
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port) if port.isdigit() else None
    return entry, None  # a name, or a bare IPv6 address


def _in_network(host: str, network: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


# Connections --------------------------------------------------------------------------


class _Key(NamedTuple):
    scheme: str
    host: str
    port: int
    proxy: _Proxy | None  # the proxy, when the connection goes to it (or through it)


# Seconds a closing client waits for its connections' transports to end before
# aborting them (a TLS peer that never answers the close).
CLOSE_WAIT = 1.0


class _Connection(asyncio.Protocol):
    """One connection: the asyncio protocol, and the state of the answer being read."""

    def __init__(self, key: _Key, pool: _Pool, read_timeout: float) -> None:
        self.key = key
        self.pool = pool
        self.read_timeout = read_timeout
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.broken = False  # bytes came that belong to no answer: never reuse
        self.counted = True  # counts against the pool's limit (reserved before opening)
        pool.everyone.add(self)
        pool.alive.add(self)
        self.lost: asyncio.Future[None] = self.loop.create_future()  # connection_lost
        self.idle_since = 0.0
        self.uses = 0
        self._waiter: asyncio.Future[None] | None = None
        self._tunnel: bytearray | None = None  # the proxy's answer to CONNECT
        self._reset()

    def _reset(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.got_bytes = False
        self.head_bytes = 0
        self.head_size = 0
        self.framing = 0  # bytes since the head, or since body bytes last came, that were none
        self.headers_done = False
        self.complete = False
        self.eof = False
        self.keep_alive = False
        self.close_delimited = False
        self.status = 0
        self.reason = b""
        self.fields: list[tuple[str, str]] = []
        self.headers = Headers()
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.error: HTTPError | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses, but behave as one)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel += data
            self._wake()
            return
        parser = self.parser
        if parser is None or self.complete or self.error is not None:
            # Nothing was asked: a server that talks out of turn loses the connection.
            self.broken = True
            self.close()
            return
        self.got_bytes = True
        if not self.headers_done:
            self.head_bytes += len(data)
        else:
            self.framing += len(data)  # set back to 0 by on_body
        try:
            parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if self.complete:  # bytes after the answer (_Beyond): the answer stands
                self.close()
            else:
                self._fail(self.error or ProtocolError(f"malformed answer: {error}"))
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the server switched protocols"))
        except httptools.HttpParserError as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            self._fail(ProtocolError(f"malformed answer: {reason}"))
        else:
            if not self.headers_done and self.head_bytes > MAX_HEAD:
                self._fail(ProtocolError(f"header block over {MAX_HEAD >> 10} KiB"))
            elif self.headers_done and not self.complete and self.framing > MAX_HEAD:
                # Chunk-size lines or trailer fields without end: llhttp would keep
                # them, and no body cap counts them.
                self._fail(ProtocolError(f"over {MAX_HEAD >> 10} KiB of chunk framing"))
        self._wake()

    def eof_received(self) -> bool | None:
        self._ended()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended()
        self.pool.forget(self)
        self.pool.alive.discard(self)
        if not self.lost.done():
            self.lost.set_result(None)

    # llhttp callbacks

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request: stop reading it
            self.broken = True
            raise _Beyond

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.fields) >= MAX_HEADERS:
            self.error = ProtocolError(f"more than {MAX_HEADERS} header fields")
            raise self.error
        # Bytes fed while the head is incomplete are counted in data_received; a head
        # that arrived whole in one read is counted here.
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEAD:
            self.error = ProtocolError(f"header block over {MAX_HEAD >> 10} KiB")
            raise self.error
        self.fields.append((name.decode("latin-1"), value.decode("latin-1").strip()))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.status = self.parser.get_status_code()
        self.headers = Headers(self.fields)
        self.headers_done = True
        coding = (self.headers.get("transfer-encoding") or "").lower()
        self.close_delimited = (
            "content-length" not in self.headers
            and not coding.rstrip().endswith("chunked")
            and self.status >= 200
            and self.status not in (204, 304)
        )

    def on_body(self, body: bytes) -> None:
        self.framing = 0
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        assert self.parser is not None
        if 100 <= self.status < 200:  # an interim answer (100 Continue): the real one follows
            self.headers_done = False
            self.head_bytes = self.head_size = 0
            self.fields = []
            self.reason = b""
            self.status = 0
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # used by the pool and the response

    def _ended(self) -> None:
        self.eof = True
        if self.headers_done and not self.complete and self.close_delimited:
            self.complete = True  # the body ran to the connection's end
            self.keep_alive = False
        self._wake()

    def _fail(self, error: HTTPError) -> None:
        if self.error is None:
            self.error = error
        self.broken = True
        self.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _expire(self, waiter: asyncio.Future[None], what: str) -> None:
        if not waiter.done():
            waiter.set_exception(
                Timeout(f"no {what} from {self.key.host} for {self.read_timeout:g} s")
            )

    async def _wait(self, what: str) -> None:
        waiter = self.loop.create_future()
        self._waiter = waiter
        timer = self.loop.call_later(self.read_timeout, self._expire, waiter, what)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def usable(self, now: float) -> bool:
        return (
            not self.closed
            and not self.broken
            and self.transport is not None
            and not self.transport.is_closing()
            and now - self.idle_since < IDLE_EXPIRY
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        else:  # never connected: no connection_lost will come
            self.pool.alive.discard(self)
            if not self.lost.done():
                self.lost.set_result(None)
        self.closed = True
        self.pool.forget(self)

    def send(self, request: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise _Closed("the connection was closed", answered=False)
        self._reset()
        self.parser = httptools.HttpResponseParser(self)
        self.uses += 1
        self.transport.write(request)

    async def head(self) -> None:
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            if self.eof:
                if self.got_bytes:
                    raise _Closed("the server closed the connection mid-answer", answered=True)
                raise _Closed("the server closed the connection without answering", answered=False)
            await self._wait("answer")
        if self.error is not None and not self.complete:
            raise self.error

    async def chunk(self) -> bytes | None:
        """The next piece of the body; None at its end."""
        while True:
            if self.body:
                piece = self.body.popleft()
                self.buffered -= len(piece)
                if self.paused and self.buffered < _HIGH_WATER // 2:
                    self.paused = False
                    if self.transport is not None:
                        self.transport.resume_reading()
                return piece
            if self.complete:  # whatever came after the answer does not spoil it
                return None
            if self.error is not None:
                raise self.error
            if self.eof:
                raise ProtocolError("the server closed the connection before the body's end")
            await self._wait("data")

    # opening

    async def tunnel(self, host: str, port: int, authorization: str | None) -> None:
        """Ask the proxy this connection goes to for a tunnel to ``host:port``."""
        assert self.transport is not None
        shown = f"[{host}]" if ":" in host else host
        lines = [f"CONNECT {shown}:{port} HTTP/1.1", f"Host: {shown}:{port}"]
        if authorization:
            lines.append(f"Proxy-Authorization: {authorization}")
        self._tunnel = bytearray()
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        while b"\r\n\r\n" not in self._tunnel:
            if len(self._tunnel) > MAX_HEAD:
                raise ConnectError(f"proxy {self.key.proxy}: answer to CONNECT too long")
            if self.eof:
                raise ConnectError(f"proxy {self.key.proxy} closed the connection on CONNECT")
            await self._wait("answer to CONNECT")
        head, _, rest = bytes(self._tunnel).partition(b"\r\n\r\n")
        self._tunnel = None
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        words = line.split(" ", 2)
        if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
            raise ConnectError(f"proxy {self.key.proxy}: malformed answer to CONNECT")
        if not 200 <= int(words[1]) < 300:
            raise ConnectError(f"proxy {self.key.proxy} refused the tunnel: {_line(line)}")
        if rest:
            raise ConnectError(f"proxy {self.key.proxy} spoke first through the tunnel")


def _line(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:200]


class _Pool:
    """Connections by origin: at most ``limit`` open, at most ``idle`` of them idle."""

    def __init__(self, limit: int, idle: int) -> None:
        self.limit = max(1, limit)
        self.idle_limit = max(0, idle)
        # Every connection whose transport has not reported its end (a TLS one may still
        # be shutting down after it left the pool): waited for when the client closes.
        self.alive: set[_Connection] = set()
        self.count = 0
        self.idle: dict[_Key, list[_Connection]] = {}
        self.idle_count = 0
        self.everyone: set[_Connection] = set()
        self.waiters: deque[asyncio.Future[None]] = deque()

    def take_idle(self, key: _Key, now: float) -> _Connection | None:
        idle = self.idle.get(key)
        while idle:
            connection = idle.pop()
            self.idle_count -= 1
            if connection.usable(now):
                return connection
            connection.close()
        return None

    async def acquire(self, key: _Key) -> _Connection | None:
        """An idle connection to ``key``; else None once room for a new one is taken
        (waiting for a connection to come back or close when all are in use)."""
        loop = asyncio.get_running_loop()
        while True:
            connection = self.take_idle(key, loop.time())
            if connection is not None:
                return connection
            if self.count < self.limit:
                self.count += 1
                return None
            if self.idle_count:  # idle, but to other origins: the oldest makes room
                oldest = min(
                    (c for conns in self.idle.values() for c in conns), key=lambda c: c.idle_since
                )
                oldest.close()
                continue
            waiter: asyncio.Future[None] = loop.create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Woken and cancelled in the same turn (its deadline): pass the wake-up
                # on, or the next waiter sleeps while there is room.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                raise
            finally:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)

    def release(self, connection: _Connection, reusable: bool) -> None:
        transport = connection.transport
        if connection.closed or connection.broken or transport is None or transport.is_closing():
            reusable = False
        # Kept when idle ones are few, or when a request waits for a connection.
        if reusable and (self.idle_count < self.idle_limit or self.waiters):
            assert transport is not None
            connection.idle_since = connection.loop.time()
            connection.parser = None
            connection.body.clear()  # a body nobody wanted, read to its end
            connection.buffered = 0
            if connection.paused:
                connection.paused = False
                transport.resume_reading()
            self.idle.setdefault(connection.key, []).append(connection)
            self.idle_count += 1
            self._wake_one()
        else:
            connection.close()

    def forget(self, connection: _Connection) -> None:
        """The connection closed: it no longer counts."""
        if not connection.counted:
            return
        connection.counted = False
        self.count -= 1
        self.everyone.discard(connection)
        idle = self.idle.get(connection.key)
        if idle and connection in idle:
            idle.remove(connection)
            self.idle_count -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for connection in list(self.everyone):
            connection.close()


# The client ---------------------------------------------------------------------------


class Response:
    """An answer whose body is read with :meth:`chunks`; use as an async context
    manager (or call :meth:`close`) so the connection goes back to the pool."""

    def __init__(self, url: str, connection: _Connection) -> None:
        self.url = url
        self.status = connection.status
        self.headers = connection.headers
        reason = _line(connection.reason.decode("latin-1"))
        if not reason:
            from http import HTTPStatus

            try:
                reason = HTTPStatus(self.status).phrase
            except ValueError:
                reason = ""
        self.reason = reason
        assert connection.parser is not None
        self.http_version = connection.parser.get_http_version()
        self._connection: _Connection | None = connection

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, piece by piece as it arrives (an async iterator of bytes)."""
        connection = self._connection
        if connection is None:
            return
        while (piece := await connection.chunk()) is not None:
            yield piece

    async def drain(self, limit: int = 64 << 10) -> None:
        """Read and drop the rest of a small body (a redirect's), so that the connection
        can serve the next request; a larger or broken one just closes it."""
        seen = 0
        try:
            async for piece in self.chunks():
                seen += len(piece)
                if seen > limit:
                    return
        except HTTPError:
            return

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # A body not read but already all here (a redirect's) does not spoil reuse.
            done = connection.complete and connection.error is None
            connection.pool.release(connection, done and connection.keep_alive)

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class Client:
    """GET over HTTP/1.1 with a pool of keep-alive connections.

    ``headers`` go with every request; ``proxies`` default to the environment's;
    ``ssl_context`` defaults to :func:`ssl.create_default_context` (made on the first
    https request)."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 20.0,
        max_connections: int = 16,
        max_idle: int = 8,
        headers: Mapping[str, str] | None = None,
        proxies: Proxies | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.headers = dict(headers or {})
        self._limits = (max_connections, max_idle)
        self._pool: _Pool | None = None
        self._proxies = proxies
        self._ssl = ssl_context
        self._closed = False

    @property
    def proxies(self) -> Proxies:
        if self._proxies is None:
            self._proxies = Proxies()
        return self._proxies

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def get(self, url: str, headers: Mapping[str, str] | None = None) -> Response:
        """The answer's status and headers; its body is left to read."""
        if self._closed:
            raise HTTPError("the client is closed")
        if self._pool is None:
            self._pool = _Pool(*self._limits)
        target = _target(url)
        proxy = self.proxies.for_url(target)
        if proxy is not None and target.scheme == "http":
            key = _Key("http", proxy.host, proxy.port, proxy)
            path = f"http://{target.authority}{target.path}"
        else:
            key = _Key(target.scheme, target.host, target.port, proxy)
            path = target.path
        request = self._request(target, path, proxy if target.scheme == "http" else None, headers)
        pool = self._pool
        for attempt in range(2):
            connection = await pool.acquire(key)
            reused = connection is not None
            if connection is None:
                connection = await self._open(key, target)  # on failure, gives room back
            try:
                connection.send(request)
                await connection.head()
            except _Closed as error:
                connection.close()
                if reused and not error.answered and attempt == 0:
                    continue  # the server closed the idle connection as we asked: again
                raise
            except BaseException:
                connection.close()
                raise
            return Response(url, connection)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(
        self,
        target: _Target,
        path: str,
        proxy: _Proxy | None,
        extra: Mapping[str, str] | None,
    ) -> bytes:
        lines = [f"GET {path} HTTP/1.1", f"Host: {target.authority}"]
        fields = {**self.headers, **(extra or {})}
        if target.userinfo and not any(k.lower() == "authorization" for k in fields):
            fields["Authorization"] = _basic(target.userinfo)
        if proxy is not None and proxy.authorization:
            fields["Proxy-Authorization"] = proxy.authorization
        for name, value in fields.items():
            if any(c in value for c in "\r\n\0") or any(c in name for c in "\r\n\0: "):
                raise HTTPError(f"invalid header {name!r}")
            lines.append(f"{name}: {value}")
        try:
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError as error:
            raise HTTPError(f"a header is not Latin-1 text: {error.object[:80]!r}") from None

    async def _open(self, key: _Key, target: _Target) -> _Connection:
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        pool = self._pool
        proxy = key.proxy
        host, port = (proxy.host, proxy.port) if proxy is not None else (target.host, target.port)
        tls = key.scheme == "https"
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        direct_tls = self._context() if tls and proxy is None else None
        connection = _Connection(key, pool, self.read_timeout)
        try:
            async with asyncio.timeout(self.connect_timeout):
                if isinstance(loop, asyncio.BaseEventLoop):
                    # IPv6 and IPv4 addresses tried in turn, 0.25 s apart (RFC 8305).
                    await loop.create_connection(
                        lambda: connection,
                        host,
                        port,
                        ssl=direct_tls,
                        server_hostname=target.host if direct_tls else None,
                        happy_eyeballs_delay=0.25,
                    )
                else:  # uvloop has no happy_eyeballs_delay
                    await loop.create_connection(
                        lambda: connection,
                        host,
                        port,
                        ssl=direct_tls,
                        server_hostname=target.host if direct_tls else None,
                    )
                if proxy is not None and tls:
                    await connection.tunnel(target.host, target.port, proxy.authorization)
                    assert connection.transport is not None
                    transport = await loop.start_tls(
                        connection.transport,
                        connection,
                        self._context(),
                        server_hostname=target.host,
                    )
                    connection.transport = cast(asyncio.Transport, transport)
        except TimeoutError:
            connection.close()
            raise Timeout(f"connecting to {where} took over {self.connect_timeout:g} s") from None
        except Timeout as error:  # the proxy's answer to CONNECT
            connection.close()
            raise ConnectError(f"proxy {proxy}: {error}") from None
        except HTTPError:
            connection.close()
            raise
        except ssl.SSLCertVerificationError as error:
            connection.close()
            reason = error.verify_message or error.reason or str(error)
            raise ConnectError(f"TLS certificate of {target.host} not valid: {reason}") from None
        except ssl.SSLError as error:
            connection.close()
            raise ConnectError(f"TLS error with {target.host}: {_line(str(error))}") from None
        except OSError as error:
            connection.close()
            raise ConnectError(_connect_reason(error, where, proxy is not None)) from None
        except ValueError as error:  # the resolver refusing a name (UnicodeError too)
            connection.close()
            raise ConnectError(f"cannot connect to {where}: {_line(str(error))}") from None
        except BaseException:
            connection.close()
            raise
        return connection

    async def aclose(self) -> None:
        """Close every connection and wait, briefly, until their transports have ended
        (a TLS shutdown is a round trip): the event loop may then be closed at once."""
        self._closed = True
        if self._pool is None:
            return
        self._pool.close()
        ending = [c for c in self._pool.alive if c.transport is not None]
        if ending:
            await asyncio.wait([c.lost for c in ending], timeout=CLOSE_WAIT)
        for connection in ending:
            if not connection.lost.done() and connection.transport is not None:
                connection.transport.abort()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()


def _connect_reason(error: OSError, where: str, proxy: bool) -> str:
    what = f"the proxy {where}" if proxy else where
    if isinstance(error, socket.gaierror):
        if error.errno in (socket.EAI_NONAME, socket.EAI_AGAIN, getattr(socket, "EAI_NODATA", -5)):
            return "host name could not be resolved (offline?)"
        return f"cannot resolve {what}: {_line(error.strerror or str(error))}"
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused by {what}"
    text = error.strerror or str(error) or type(error).__name__
    return f"cannot connect to {what}: {_line(text)}"
