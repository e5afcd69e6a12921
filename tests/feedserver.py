"""A real HTTP server on 127.0.0.1 for the tests: serves feed fixtures and misbehaves on cue.

Routes (see ``Handler.do_GET``):

* ``/feeds/<file>``: a file from tests/data/feeds, with ETag and Last-Modified, answering
  conditional requests with 304; ``/lastmod/<file>``: the same with Last-Modified only;
  ``/bare-304/<file>``: the same, its 304s repeating no validators;
* ``/gzip/<file>``, ``/deflate/<file>``, ``/raw-deflate/<file>``: the same, compressed;
* ``/redirect/<n>/<file>``: <n> permanent redirects, then the file; ``/temporary/<file>``
  a 302 to it; ``/loop/a`` and ``/loop/b`` redirect to each other; ``/to-file`` to file:;
* ``/status/<code>``: that status (429 and 503 with ``Retry-After: 120``);
* ``/slow``: a body dripping one byte every 0.2 s; ``/stall``: headers, then nothing;
* ``/big``: a 3 MiB body; ``/big-undeclared``: the same without Content-Length;
* ``/bomb``: gzip that decompresses to 20 MiB;
* ``/html``: a web page served as text/html;
* ``/discover/<file>``: a web page from tests/data/discover (``{{HOST}}`` in it becomes
  this server's host:port, for protocol-relative links); ``/moved-page`` a 301 to
  ``/discover/several.html``; ``/feed``: the feed file named by ``server.root_feed``
  (``rss20.xml``; None: 404), where feed discovery looks when a page links none;
* a path in ``server.silent``: no answer at all for 10 s.

Every request is recorded in ``server.log`` (method, path, If-None-Match).
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FEEDS = Path(__file__).parent / "data" / "feeds"
PAGES = Path(__file__).parent / "data" / "discover"
LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)


def _bomb() -> bytes:
    out = gzip.compress(b"\0" * (20 << 20), compresslevel=9)
    return out


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The standard library's backlog of 5 drops connections when a run opens many at
    # once; each dropped one waits a second for the kernel's retry.
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.log: list[tuple[str, str, str | None]] = []
        self.bomb = b""
        self.overrides: dict[str, bytes] = {}  # path under /feeds/ → body, to change a feed
        self.root_feed: str | None = "rss20.xml"  # what /feed serves
        # Paths that get no answer: the request is read, and nothing is sent for 10 s.
        self.silent: set[str] = set()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early are part of the tests

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def hits(self, path: str) -> int:
        return sum(1 for _, p, _ in self.log if p == path)


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    # No Nagle delay: headers and body go out as separate writes, and on a kept-alive
    # connection the body would otherwise wait out the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _file(self, name: str, encoding: str | None = None, etag_too: bool = True) -> None:
        body = self.server.overrides.get(name)
        if body is None:
            path = FEEDS / name
            if not path.is_file():
                self._send(404, b"not found")
                return
            body = path.read_bytes()
        etag = f'"{zlib.crc32(body):08x}"'
        validators = (
            {"ETag": etag, "Last-Modified": LAST_MODIFIED}
            if etag_too
            else {"Last-Modified": LAST_MODIFIED}
        )
        if (etag_too and self.headers.get("If-None-Match") == etag) or (
            not etag_too and self.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            # /bare-304/: a 304 that repeats no validators, as RFC 9110 allows.
            self._send(304, headers={} if self.path.startswith("/bare-304/") else validators)
            return
        headers = {
            **validators,
            "Content-Type": "text/html"
            if name.endswith(".html")
            else "application/feed+json"
            if name.endswith(".json")
            else "application/rss+xml",
        }
        if encoding == "gzip":
            body = gzip.compress(body)
        elif encoding == "deflate":
            body = zlib.compress(body)
        elif encoding == "raw-deflate":
            squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            body = squeeze.compress(body) + squeeze.flush()
        if encoding:
            headers["Content-Encoding"] = "deflate" if encoding == "raw-deflate" else encoding
        self._send(200, body, headers)

    def do_GET(self) -> None:
        path = self.path
        self.server.log.append(
            (
                "GET",
                path,
                self.headers.get("If-None-Match") or self.headers.get("If-Modified-Since"),
            )
        )
        parts = path.strip("/").split("/")
        head = parts[0]
        if head in ("feeds", "bare-304"):
            self._file("/".join(parts[1:]))
        elif head == "lastmod":
            self._file("/".join(parts[1:]), etag_too=False)
        elif head in ("gzip", "deflate", "raw-deflate"):
            self._file("/".join(parts[1:]), encoding=head)
        elif head == "redirect":
            left = int(parts[1])
            rest = "/".join(parts[2:])
            target = f"/redirect/{left - 1}/{rest}" if left > 1 else f"/feeds/{rest}"
            self._send(301, headers={"Location": target})
        elif head == "temporary":
            self._send(302, headers={"Location": "/feeds/" + "/".join(parts[1:])})
        elif head == "loop":
            self._send(302, headers={"Location": "/loop/b" if parts[1] == "a" else "/loop/a"})
        elif head == "to-file":
            self._send(302, headers={"Location": "file:///etc/passwd"})
        elif head == "status":
            code = int(parts[1])
            headers = {"Retry-After": "120"} if code in (429, 503) else {}
            self._send(code, b"no", headers)
        elif head == "slow":
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(500):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                return
        elif head == "stall":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            time.sleep(5)
        elif head == "big-undeclared":
            # No Content-Length: the body runs until the connection closes.
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(48):
                    self.wfile.write(b" " * (64 << 10))
            except OSError:
                return
        elif head == "big":
            self._send(200, b"<rss>" + b" " * (3 << 20), {"Content-Type": "application/rss+xml"})
        elif head == "bomb":
            if not self.server.bomb:
                self.server.bomb = _bomb()
            self._send(200, self.server.bomb, {"Content-Encoding": "gzip"})
        elif head == "html":
            self._file("not_a_feed.html")
        elif head == "discover":
            page = PAGES / "/".join(parts[1:])
            if not page.is_file():
                self._send(404, b"not found")
                return
            host, port = self.server.server_address[:2]
            body = page.read_bytes().replace(b"{{HOST}}", f"{host!s}:{port}".encode())
            self._send(200, body, {"Content-Type": "text/html; charset=utf-8"})
        elif path in self.server.silent:
            time.sleep(10)
            self.close_connection = True
        elif head == "moved-page":
            self._send(301, headers={"Location": "/discover/several.html"})
        elif head == "feed" and len(parts) == 1:
            if self.server.root_feed is None:
                self._send(404, b"not found")
            else:
                self._file(self.server.root_feed)
        else:
            self._send(404, b"not found")


@contextmanager
def serving() -> Iterator[Server]:
    server = Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
