"""Connection hygiene for ``aggregator serve``: uvicorn's httptools protocol, with limits.

uvicorn closes a connection that stays idle *between* requests (``timeout_keep_alive``),
but not one that never finishes its first request: a client that connects and sends
nothing, or drips a header a byte at a time (slowloris), holds its socket for ever,
and httptools accepts a request head of any size. This protocol adds what a server
facing the open internet needs (the limits are ``[serve]`` settings):

* a header timeout: a request's line and headers must arrive within ``header_timeout``
  seconds of its first byte (or of the connection, for the first request; blank lines
  between requests count as the next one's first bytes), else the connection is closed;
* limits on the head: at most ``max_header_bytes`` for the request line and headers
  together (``431``; a request line alone over it is ``414``) and ``max_headers``
  header lines (``431``);
* a cap on connections: past ``max_connections`` open at once, a new connection is
  answered ``503`` with ``Retry-After`` and closed before anything is read;
* a cap on pipelined requests: uvicorn queues every request of a chunk it reads while
  one is being answered, and reads on after each answer, so a client that sends
  requests and never reads the answers grows the queue without end. Past
  ``max_pipelined`` waiting, the rest of what the client sent is not read, and the
  connection is closed once those waiting are answered (a pipelining client asks for
  the others again, on a new connection, as HTTP/1.1 lets it);
* a send timeout: answers the client does not read hold their bytes in the server.
  When the client has taken nothing more of them for ``send_timeout`` seconds while
  some still wait, the connection is dropped (aborted: closing would wait for the
  client to read it). Taken means acknowledged by the client's side of the
  connection (Linux's ``TCP_INFO``): the kernel's own send buffer, up to megabytes,
  drains as the client reads without what waits in the server shrinking, so a slow
  but steady download would otherwise look stalled. Where the kernel does not say,
  what waits in the server must shrink or drain instead;
* no request body is wanted (every route is GET or HEAD): a request that announces one
  is answered, and the connection then closed, so a client cannot hold it open by
  dripping a body byte by byte.

Each refusal is written and the connection closed; nothing reaches the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn._types import ASGI3Application
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

# A request line's start: a method's token (RFC 9110 §5.6.2), a space, a target.
_METHOD_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ \r\n]+ HTTP/")

REASONS = {
    400: b"Bad Request",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
    503: b"Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float = 10.0
    max_header_bytes: int = 16_384
    max_headers: int = 100
    max_connections: int = 1000
    send_timeout: float = 30.0
    max_pipelined: int = 32


# struct tcp_info (linux/tcp.h): eight one-byte fields, twenty-four 32-bit ones, then
# the 64-bit pacing_rate and max_pacing_rate, then bytes_acked (Linux 4.1 and later).
_TCP_INFO_SIZE = 256
_BYTES_ACKED_AT = 8 + 24 * 4 + 2 * 8


def acknowledged(transport: asyncio.BaseTransport) -> int | None:
    """How many bytes of this connection the client has acknowledged, or ``None``
    where the kernel does not say (not Linux, not TCP)."""
    sock = transport.get_extra_info("socket")
    option = getattr(socket, "TCP_INFO", None)
    if sock is None or option is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO_SIZE)
    except OSError:
        return None
    if not isinstance(info, bytes) or len(info) < _BYTES_ACKED_AT + 8:
        return None
    acked: int = struct.unpack_from("=Q", info, _BYTES_ACKED_AT)[0]
    return acked


class QuietRefusals(logging.Filter):
    """uvicorn logs "Invalid HTTP request received." for each request it cannot read,
    and for each one refused here, and "Unsupported upgrade request." for each request
    asking to switch protocols (``Upgrade: h2c``, which ``curl --http2`` sends with every
    request; websocket): a client could write the log without end (found by review:
    3,236 lines in one session; then 2,002 lines for 2,000 upgrade requests). At most
    :attr:`PER_MINUTE` lines of each a minute; the others are counted, and the next line
    written says how many were left out. The advice that follows an upgrade request
    (install a WebSocket library) is not for this server, which has no WebSockets: it
    is left out."""

    MESSAGE = "Invalid HTTP request received."
    UPGRADE = "Unsupported upgrade request."
    ADVICE = "No supported WebSocket library detected."
    PER_MINUTE = 10

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._started = clock()
        self._written = {self.MESSAGE: 0, self.UPGRADE: 0}
        self._left_out = {self.MESSAGE: 0, self.UPGRADE: 0}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        if not isinstance(message, str):
            return True
        if message.startswith(self.ADVICE):
            return False
        if message not in self._written:
            return True
        now = self._clock()
        if now - self._started >= 60:
            self._started = now
            self._written = dict.fromkeys(self._written, 0)
        if self._written[message] >= self.PER_MINUTE:
            self._left_out[message] += 1
            return False
        self._written[message] += 1
        if left_out := self._left_out[message]:
            record.msg = f"{message} ({left_out} more left out of the log before it)"
            record.args = ()
            self._left_out[message] = 0
        return True


class CutAtShutdown(logging.Filter):
    """An answer still being sent when the server stops is cancelled at the end of the
    grace period, and uvicorn logs that as "Exception in ASGI application" with a
    traceback, one per connection (found by review). It is what stopping means: one
    line each, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError):
            record.msg = "an answer still being sent was cut off: the server stopped"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


async def _no_host(scope: Any, receive: Any, send: Any) -> None:
    """The answer to an HTTP/1.1 request that names no Host, or a request that names
    several."""
    several = sum(name == b"host" for name, _ in scope.get("headers", ())) > 1
    body = (
        b"a request must name one Host, not several\n"
        if several
        else b"an HTTP/1.1 request must name its Host\n"
    )
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request we refuse."""


# Seconds a server that stops waits for the request of a connection that has sent nothing
# yet (see LimitedProtocol.shutdown).
DRAIN = 1.0


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
        self._unread = False  # past max_pipelined: nothing more is read from the client
        self._send_timer: asyncio.TimerHandle | None = None
        self._unsent = 0  # bytes waiting to be sent when the send timer was armed
        self._drained = False  # what waited fell below the low-water mark since then
        self._acked: int | None = None  # bytes the client had acknowledged then
        self._answering: RequestResponseCycle | None = None  # the request being answered
        self._stopping = False  # the server stops: answer what comes, then close
        self._chunk = b""  # the bytes being parsed

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
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        # uvicorn tells only the newest request it read (``cycle``); with requests
        # pipelined, the one being answered is an older one, which would then write to
        # the closed transport (uvloop raises: a traceback in the log per connection).
        self._gone()
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._answering = cycle
        super()._start_asgi_task(cycle, app)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None or self._unread:
            return
        self._chunk = data
        self._began = False
        super().data_received(data)
        if self._refusal is not None or self._unread:
            return
        if not self._in_head and not self._began and self._idle() and self._header_timer is None:
            # Bytes between requests that begin none: the parser passes over blank lines
            # without a new request, and uvicorn's keep-alive timer starts again on any
            # byte, so a client sending "\r\n" every few seconds held its connection for
            # ever (found by review). They are the next request's first bytes: its head
            # must arrive within the header timeout (or the keep-alive timeout, if longer:
            # one stray blank line never shortens a kept connection's wait).
            self._start_header_timer(max(self.limits.header_timeout, self.timeout_keep_alive))
        if not self._in_head or self._began:
            return
        # httptools buffers a header until its end, so an endless one is counted here,
        # by the chunk. A chunk in which the head began is not counted (one read of
        # slack), so that small pipelined requests never add up to a refusal.
        self._raw_bytes += len(data)
        if self._raw_bytes > self.limits.max_header_bytes:
            self._refuse(431, "request headers too large")

    # Parser callbacks

    def on_message_begin(self) -> None:
        if self._unread:
            return
        if len(self.pipeline) >= self.limits.max_pipelined:
            # This request, the rest of the chunk and all that follows are left unread
            # (each callback below passes them over): the newest request waiting (the
            # pipeline's left end) is the connection's last, and reading stops.
            self._unread = True
            self.pipeline[0][0].keep_alive = False
            self.flow.pause_reading()
            return
        super().on_message_begin()
        self._in_head = self._began = True
        self._head_bytes = self._raw_bytes = self._head_count = 0
        if self._header_timer is None:
            self._start_header_timer()

    def on_url(self, url: bytes) -> None:
        if self._unread:
            return
        self._head_bytes += len(url)
        if self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (414, "request line too long\n")
            raise _Refused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._unread:
            return
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
        if self._unread:
            return
        hosts = sum(name == b"host" for name, _ in self.headers)
        if hosts > 1 or (hosts == 0 and self.parser.get_http_version() == "1.1"):
            # RFC 9112 §3.2: a 400 for an HTTP/1.1 request without a Host, and for any
            # with several (found by review: answered 200), answered in its turn (after
            # the answers to requests pipelined before it, which a refusal at once would
            # have cut off: found by review), by an application of its own for this
            # request alone.
            app, self.app = self.app, _no_host
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False  # come as the server stops: answered, then closed
        if self.cycle is not None and any(
            name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0")
            for name, value in self.headers
        ):
            self.cycle.keep_alive = False  # a body: answered, then the connection closes

    def on_body(self, body: bytes) -> None:
        if not self._unread:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._unread:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._unread:
            self.flow.pause_reading()  # uvicorn resumes reading after every answer
        self._watch_sending()

    def send_400_response(self, msg: str) -> None:
        # A parser callback that raised _Refused arrives here as a parser error; so does a
        # method the parser does not know ("FOO /"), which RFC 9110 §15.6.2 answers 501,
        # not 400 (found by review). (Called from uvicorn's handler of the error.)
        if self._refusal is not None:
            self._write_refusal()
        elif isinstance(sys.exc_info()[1], httptools.HttpParserInvalidMethodError) and (
            _METHOD_TOKEN.match(self._chunk)
        ):
            # (A method's token, then its request: not bytes that start no request, a TLS
            # hello or a leading space, which stay a 400: found by review.)
            self._refuse(501, "not a method this server knows; it answers GET and HEAD")
        else:
            super().send_400_response(msg)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_sending()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._drained = True  # the client read: progress, however full the buffer is again

    def timeout_keep_alive_handler(self) -> None:
        self._close()

    def shutdown(self) -> None:
        """The server stops (SIGTERM, or a restart to apply an edited config: see
        aggregator.reload). A connection that has sent nothing since it was made, or
        since its last answer, may have a request on its way: it is answered if it
        comes within :data:`DRAIN` seconds, and the connection closed after it; else
        the connection is closed then. (Closed at once, as uvicorn does, the request's
        bytes met a closed socket, and the client a reset or an empty answer: found by
        a test of restarts, and by review for kept connections.) One whose request's
        head is still coming has the same second for the rest of it. A request being
        answered is answered, and its connection closed after it."""
        self._stopping = True
        if self._between_requests():
            # (One whose head is still coming gets the same second, not its header
            # timeout: found by review, a half-sent request held every restart.)
            self.loop.call_later(DRAIN, self._close_if_unanswered)
            return
        super().shutdown()

    def _between_requests(self) -> bool:
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _close_if_unanswered(self) -> None:
        """No request came whole (its head read) within the drain: closed."""
        if self._between_requests():
            self._close()

    # Helpers

    def _idle(self) -> bool:
        """No request being read or answered: between requests on a kept connection."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

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

    def _start_header_timer(self, seconds: float | None = None) -> None:
        self._stop_header_timer()
        wait = self.limits.header_timeout if seconds is None else seconds
        self._header_timer = self.loop.call_later(wait, self._header_timeout)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        """The head did not arrive in time: close, with no answer (as nginx does)."""
        self._header_timer = None
        self._close()

    def _close(self) -> None:
        """Close the connection once the client has read what it was sent. uvicorn's
        keep-alive timer starts when an answer is handed to the socket, not when the
        client has it: a slow download is still being sent. A close waits for it; the
        send watch drops the connection only if the client stops reading."""
        if not self.transport.is_closing():
            self.transport.close()
        self._watch_sending()

    def _drop(self) -> None:
        """Abort the connection. The answer under way and those waiting are told first
        that the client is gone, so that none writes to the closed transport (uvloop
        raises there, and the application's error would be logged with a traceback).
        The kernel is told to reset it (linger 0): closed the usual way, a connection
        whose client reads nothing stays in the kernel with its send buffer, megabytes
        each, for as long as the client's side answers (found by review: 600 dropped
        clients held 1.9 GB of the kernel's memory)."""
        self._gone()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def _gone(self) -> None:
        """Every request of this connection not yet answered: the client is gone."""
        waiting = (cycle for cycle, _ in self.pipeline)
        for cycle in (self._answering, self.cycle, *waiting):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()

    def _watch_sending(self) -> None:
        """While answers wait to be sent, check every ``send_timeout`` seconds that the
        client takes them: if it has acknowledged nothing more meanwhile, drop the
        connection. Where the kernel does not count what the client acknowledged, what
        waits must have shrunk or drained (an answer goes out in pieces, refilling the
        buffer as it drains)."""
        if self._send_timer is None and self.transport.get_write_buffer_size():
            self._unsent = self.transport.get_write_buffer_size()
            self._drained = False
            self._acked = acknowledged(self.transport)
            self._send_timer = self.loop.call_later(self.limits.send_timeout, self._check_sending)

    def _check_sending(self) -> None:
        self._send_timer = None
        unsent = self.transport.get_write_buffer_size()
        if not unsent:
            return  # re-armed when an answer waits again
        acked = acknowledged(self.transport)
        if acked is not None and self._acked is not None:
            taking = acked > self._acked
        else:
            taking = unsent < self._unsent or self._drained
        if taking:
            self._watch_sending()
        else:
            self._drop()
