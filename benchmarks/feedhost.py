"""A small feed host for the benchmarks: files from a directory, HTTP/1.1 keep-alive,
ETag and Last-Modified answered with 304, like the web servers real feeds live on.

python -m benchmarks.feedhost DIRECTORY PORT [MAX_AGE]

With MAX_AGE, every answer says ``Cache-Control: max-age=MAX_AGE``.
"""

from __future__ import annotations

import sys
import zlib
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def serve(directory: Path, port: int, max_age: int | None = None) -> None:
    files = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
    tags = {name: f'"{zlib.crc32(body):08x}"' for name, body in files.items()}
    modified = formatdate(1_700_000_000, usegmt=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # As production servers do: one write per answer (headers and body together,
        # flushed after each request) and no Nagle delay, so that a keep-alive client
        # does not wait out a delayed ACK on every answer.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            body = files.get(name)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            fresh = self.headers.get("If-None-Match") == tags[name]
            self.send_response(304 if fresh else 200)
            self.send_header("ETag", tags[name])
            self.send_header("Last-Modified", modified)
            self.send_header("Content-Type", "application/rss+xml")
            if max_age is not None:
                self.send_header("Cache-Control", f"max-age={max_age}")
            self.send_header("Content-Length", "0" if fresh else str(len(body)))
            self.end_headers()
            if not fresh:
                self.wfile.write(body)

    # A listen backlog like a production server's: the standard library's 5 drops
    # connections when a client opens 16 at once, and each dropped one waits a second
    # for the kernel's retry. (ThreadingHTTPServer is looked up when called: the
    # PostgreSQL benchmark swaps in a counting subclass.)
    host = type("FeedHost", (ThreadingHTTPServer,), {"request_queue_size": 128})
    server = host(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if sys.argv[3:] else None)
