"""Connection hygiene for ``aggregator serve``: uvicorn's httptools protocol, with limits.

uvicorn closes a connection that stays idle *between* requests (``timeout_keep_alive``),
but not one that never finishes its first request: a client that connects and sends
nothing, or drips a header a byte at a time (slowloris), holds its socket for ever,
and httptools accepts a request head of any size. This protocol adds what a server
facing the open internet needs (the limits are ``[serve]`` settings):

* a header timeout: a request's line and headers must arrive within ``header_timeout``
  seconds of its first byte (or of the connection, for the first request), else the
  connection is closed;
* limits on the head: at most ``max_header_bytes`` for the request line and headers
  together (``431``; a request line alone over it is ``414``) and ``max_headers``
  header lines (``431``);
* a cap on connections: past ``max_connections`` open at once, a new connection is
  answered ``503`` with ``Retry-After`` and closed before anything is read.

Each refusal is written and the connection closed; nothing reaches the application.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

REASONS = {
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float = 10.0
    max_header_bytes: int = 16_384
    max_headers: int = 100
    max_connections: int = 1000


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request we refuse."""


def limited_protocol(limits: Limits) -> type[asyncio.Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``, holding these limits."""

    class Protocol(LimitedProtocol):
        pass

    Protocol.limits = limits
    return Protocol


class LimitedProtocol(HttpToolsProtocol):
    limits = Limits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # from a request's first byte (or the connection) to its headers
        self._began = False  # a request began in the chunk being parsed
        self._head_bytes = 0  # of the request line and the headers parsed so far
        self._raw_bytes = 0  # of whole chunks received inside the head
        self._head_count = 0
        self._refusal: tuple[int, str] | None = None

    # The connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            # Refused before it counts: the application never sees it.
            self.transport = transport
            self._refusal = (503, "too many connections; try again shortly\n")
            self._write_refusal(retry_after=1)
            return
        super().connection_made(transport)
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        self._began = False
        super().data_received(data)
        if self._refusal is not None or not self._in_head or self._began:
            return
        # httptools buffers a header until its end, so an endless one is counted here,
        # by the chunk. A chunk in which the head began is not counted (one read of
        # slack), so that small pipelined requests never add up to a refusal.
        self._raw_bytes += len(data)
        if self._raw_bytes > self.limits.max_header_bytes:
            self._refuse(431, "request headers too large")

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = self._began = True
        self._head_bytes = self._raw_bytes = self._head_count = 0
        if self._header_timer is None:
            self._start_header_timer()

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (414, "request line too long\n")
            raise _Refused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        self._head_count += 1
        if self._head_count > self.limits.max_headers:
            self._refusal = (431, f"more than {self.limits.max_headers} request headers\n")
            raise _Refused
        if self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (431, "request headers too large\n")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_header_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # A parser callback that raised _Refused arrives here as a parser error.
        if self._refusal is not None:
            self._write_refusal()
        else:
            super().send_400_response(msg)

    # Helpers

    def _refuse(self, status: int, text: str) -> None:
        self._refusal = (status, text + "\n")
        self._write_refusal()

    def _write_refusal(self, retry_after: int | None = None) -> None:
        assert self._refusal is not None
        status, text = self._refusal
        body = text.encode("ascii")
        head = [
            b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status]),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
        ]
        if retry_after is not None:
            head.append(b"retry-after: %d\r\n" % retry_after)
        self._stop_header_timer()
        if not self.transport.is_closing():
            self.transport.write(b"".join(head) + b"\r\n" + body)
            self.transport.close()

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        """The head did not arrive in time: close, with no answer (as nginx does)."""
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
