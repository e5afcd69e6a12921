"""A small feed host for the benchmarks: files from a directory, HTTP/1.1 keep-alive,
ETag and Last-Modified answered with 304, like the web servers real feeds live on.

python -m benchmarks.feedhost DIRECTORY PORT [MAX_AGE]

With MAX_AGE, every answer says ``Cache-Control: max-age=MAX_AGE``.

The host is one asyncio loop answering from answers built as it starts (headers and body
in one buffer per file, and one for its 304), so that it takes as little of the
machine's CPU as it can: a real feed's server is another machine, and every cycle the
host spends here is one the measured run cannot use. (Python's ``http.server`` took 60
to 70 ms of CPU per steady run of 200 requests, a thread and a header parse each.)
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import zlib
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path

Answered = Callable[[str, str, int], None]
"""Told of each answer: the request's User-Agent, its path, the status."""

_STATUS = {
    200: b"HTTP/1.1 200 OK\r\n",
    304: b"HTTP/1.1 304 Not Modified\r\n",
    400: b"HTTP/1.1 400 Bad Request\r\n",
    404: b"HTTP/1.1 404 Not Found\r\n",
}
_EMPTY = b"Content-Length: 0\r\n\r\n"
_CLOSING = b"Connection: close\r\nContent-Length: 0\r\n\r\n"
_LIMIT = 64 * 1024  # a request's head; anything longer is not one of ours


def answers(directory: Path, max_age: int | None = None) -> dict[str, tuple[bytes, bytes, bytes]]:
    """For each file, by its request path: its ETag, and the 200 and 304 answers after
    their status and Date lines (the headers, and the 200's body)."""
    modified = formatdate(1_700_000_000, usegmt=True)
    built = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        body = path.read_bytes()
        tag = f'"{zlib.crc32(body):08x}"'
        head = [
            f"ETag: {tag}",
            f"Last-Modified: {modified}",
            "Content-Type: application/rss+xml",
        ]
        if max_age is not None:
            head.append(f"Cache-Control: max-age={max_age}")
        common = "".join(line + "\r\n" for line in head)
        whole = f"{common}Content-Length: {len(body)}\r\n\r\n"
        fresh = f"{common}Content-Length: 0\r\n\r\n"
        built["/" + path.name] = (tag.encode(), whole.encode() + body, fresh.encode())
    return built


class _Connection(asyncio.Protocol):
    def __init__(self, table: dict[str, tuple[bytes, bytes, bytes]], told: Answered | None):
        self.table = table
        self.told = told
        self.pending = b""
        self.transport: asyncio.Transport | None = None
        self.second = 0
        self.date = b""

    def send(self, status: int, rest: bytes) -> None:
        """Write one answer: its status line, a Date as every server gives, ``rest``."""
        assert self.transport is not None
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.date = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        self.transport.writelines((_STATUS[status], self.date, rest))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.pending += data
        while True:
            end = self.pending.find(b"\r\n\r\n")
            if end < 0:
                if len(self.pending) > _LIMIT:
                    self.send(400, _CLOSING)
                    self.transport.close()
                return
            head, self.pending = self.pending[:end], self.pending[end + 4 :]
            if not self.answer(head):
                self.transport.close()
                return

    def answer(self, head: bytes) -> bool:
        """Answer one request; False when the connection is to close after it."""
        assert self.transport is not None
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD"):
            self.send(400, _CLOSING)
            return False
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        path = parts[1].decode("latin-1")
        known = self.table.get(path)
        if known is None:
            status, reply = 404, _EMPTY
        else:
            tag, whole, fresh = known
            if headers.get(b"if-none-match") == tag:
                status, reply = 304, fresh
            else:
                status, reply = 200, whole
                if parts[0] == b"HEAD":
                    reply = whole[: whole.index(b"\r\n\r\n") + 4]
        self.send(status, reply)
        if self.told is not None:
            self.told(headers.get(b"user-agent", b"").decode("latin-1"), path, status)
        closing = headers.get(b"connection", b"").lower() == b"close"
        return not (closing or parts[2] == b"HTTP/1.0")


def serve(
    directory: Path, port: int, max_age: int | None = None, told: Answered | None = None
) -> None:
    """Serve ``directory`` on 127.0.0.1:``port`` until SIGTERM or SIGINT."""
    table = answers(directory, max_age)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set_result, None)
        # A listen backlog like a production server's: a client opening 16 connections
        # at once must not wait out the kernel's one-second retry.
        server = await loop.create_server(
            lambda: _Connection(table, told), "127.0.0.1", port, backlog=128
        )
        async with server:
            await stop

    asyncio.run(main())


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if sys.argv[3:] else None)
