"""The HTTP client (aggregator/live/http.py) against real sockets on 127.0.0.1: servers
written here answer byte by byte as each test needs, and count the connections."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import pytest

from aggregator.live.fetch import Fetched, Fetcher, FetchError, Limits, Validators
from aggregator.live.http import Client, Headers, HTTPError, Proxies, _Target, _target

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
FAST = Limits(connect_timeout=2, read_timeout=2, deadline=5, max_body=1 << 20, max_decoded=2 << 20)

Request = tuple[str, dict[str, str]]  # request line, headers (names in lower case)
Handler = Callable[[socket.socket, BinaryIO, "Raw"], None]


def read_request(rfile: BinaryIO) -> Request | None:
    line = rfile.readline()
    if not line:
        return None
    headers: dict[str, str] = {}
    while (field := rfile.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = field.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return line.decode("latin-1").strip(), headers


class Raw:
    """A TCP server whose every connection runs ``handler`` in a thread of its own."""

    def __init__(
        self, handler: Handler, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.handler = handler
        self.tls = tls
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[Request] = []
        self.names: list[str | None] = []  # SNI names the TLS handshakes carried
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str, scheme: str = "http") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn, conn.makefile("rb") as rfile:
                self.handler(conn, rfile, self)
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1

    def next_request(self, rfile: BinaryIO) -> Request | None:
        got = read_request(rfile)
        if got is not None:
            with self.lock:
                self.requests.append(got)
        return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Raw]]:
    servers: list[Raw] = []

    def start(handler: Handler, **options: object) -> Raw:
        server = Raw(handler, **options)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def answer(body: bytes = b"<rss/>", *, status: str = "200 OK", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode("latin-1") + body


def keep_alive(respond: Callable[[Request], bytes]) -> Handler:
    """A handler answering every request on the connection with ``respond``."""

    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        while (request := server.next_request(rfile)) is not None:
            conn.sendall(respond(request))

    return handler


def fetch_all(
    urls: list[str],
    limits: Limits = FAST,
    validators: Validators | None = None,
    together: bool = False,
) -> list[Fetched | FetchError]:
    """Fetch the URLs with one Fetcher, one after the other (or all at once)."""

    async def one(fetcher: Fetcher, url: str) -> Fetched | FetchError:
        try:
            return await fetcher.fetch(
                url, name="test", validators=validators or Validators(), now=NOW
            )
        except FetchError as error:
            return error

    async def go() -> list[Fetched | FetchError]:
        async with Fetcher(limits) as fetcher:
            if together:
                return list(await asyncio.gather(*(one(fetcher, url) for url in urls)))
            return [await one(fetcher, url) for url in urls]

    return asyncio.run(go())


def fetched(result: Fetched | FetchError) -> Fetched:
    assert isinstance(result, Fetched), str(result)
    return result


def failed(result: Fetched | FetchError) -> str:
    assert isinstance(result, FetchError), result
    assert "\n" not in str(result)
    return result.message


def test_keep_alive_reuses_one_connection(serve: Callable[..., Raw]) -> None:
    server = serve(keep_alive(lambda request: answer(request[0].encode())))
    got = fetch_all([server.url(f"/feed-{i}.xml") for i in range(5)])
    assert [fetched(g).body for g in got] == [
        f"GET /feed-{i}.xml HTTP/1.1".encode() for i in range(5)
    ]
    assert server.accepted == 1


def test_request_line_and_headers(serve: Callable[..., Raw]) -> None:
    server = serve(keep_alive(lambda request: answer()))
    validators = Validators('"abc"', "Sun, 29 Nov 2026 10:00:00 GMT")
    fetched(fetch_all([server.url("/a b/ü.xml?q=1&x=%41")], validators=validators)[0])
    line, headers = server.requests[0]
    assert line == "GET /a%20b/%C3%BC.xml?q=1&x=%41 HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["user-agent"].startswith("aggregator/")
    assert "application/feed+json" in headers["accept"]
    assert headers["accept-encoding"] == "gzip, deflate"
    assert headers["if-none-match"] == '"abc"'
    assert headers["if-modified-since"] == "Sun, 29 Nov 2026 10:00:00 GMT"


def test_chunked_body_then_reuse(serve: Callable[..., Raw]) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        while server.next_request(rfile) is not None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (b"<rss>", b"x" * 70000, b"</rss>"):
                conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                time.sleep(0.01)
            conn.sendall(b"0\r\n\r\n")

    server = serve(handler)
    got = fetch_all([server.url("/a"), server.url("/b")])
    assert [fetched(g).body for g in got] == [b"<rss>" + b"x" * 70000 + b"</rss>"] * 2
    assert server.accepted == 1


def test_gzip_in_chunks_is_decoded(serve: Callable[..., Raw]) -> None:
    plain = b"<rss>" + b"news " * 20000 + b"</rss>"
    packed = gzip.compress(plain)

    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        while server.next_request(rfile) is not None:
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            for start in range(0, len(packed), 100):
                piece = packed[start : start + 100]
                conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.sendall(b"0\r\n\r\n")

    server = serve(handler)
    assert fetched(fetch_all([server.url("/z")])[0]).body == plain


def test_close_delimited_body_and_no_reuse(serve: Callable[..., Raw]) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n<rss>")
        time.sleep(0.05)
        conn.sendall(b"</rss>")
        conn.shutdown(socket.SHUT_WR)

    server = serve(handler)
    got = fetch_all([server.url("/a"), server.url("/b")])
    assert [fetched(g).body for g in got] == [b"<rss></rss>"] * 2
    assert server.accepted == 2


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nConnection: close\r\n", id="Connection: close"),
        pytest.param(b"HTTP/1.0 200 OK\r\n", id="HTTP/1.0"),
    ],
)
def test_no_reuse_when_the_server_says_so(serve: Callable[..., Raw], head: bytes) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        conn.sendall(head + b"Content-Length: 6\r\n\r\n<rss/>")
        # The connection is left open: the client must not send on it again.
        read_request(rfile)

    server = serve(handler)
    got = fetch_all([server.url("/a"), server.url("/b")])
    assert [fetched(g).body for g in got] == [b"<rss/>"] * 2
    assert server.accepted == 2


def test_http_10_with_keep_alive_is_reused(serve: Callable[..., Raw]) -> None:
    server = serve(keep_alive(lambda r: answer(extra="Connection: keep-alive\r\n")))
    fetch_all([server.url("/a"), server.url("/b")])
    assert server.accepted == 1


def test_idle_connection_closed_by_the_server(serve: Callable[..., Raw]) -> None:
    """The server hangs up right after its answer: the next fetch connects anew."""

    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        conn.sendall(answer())

    server = serve(handler)

    async def go() -> list[Fetched]:
        async with Fetcher(FAST) as fetcher:
            out = []
            for path in ("/a", "/b", "/c"):
                out.append(
                    await fetcher.fetch(
                        server.url(path), name="t", validators=Validators(), now=NOW
                    )
                )
                await asyncio.sleep(0.1)  # the hang-up arrives while the connection is idle
            return out

    assert [g.body for g in asyncio.run(go())] == [b"<rss/>"] * 3
    assert server.accepted == 3


def test_request_on_a_connection_closed_as_it_was_sent_is_retried(
    serve: Callable[..., Raw],
) -> None:
    """The server answers one request per connection and hangs up on the next without a
    byte (as when a keep-alive timeout strikes as the request is sent): asked again on a
    new connection."""

    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        conn.sendall(answer())
        read_request(rfile)  # the second request: no answer

    server = serve(handler)
    got = fetch_all([server.url("/a"), server.url("/b"), server.url("/c")])
    assert [fetched(g).body for g in got] == [b"<rss/>"] * 3
    assert server.accepted == 3
    assert [line for line, _ in server.requests] == [
        "GET /a HTTP/1.1",
        "GET /b HTTP/1.1",
        "GET /c HTTP/1.1",
    ]


def test_a_new_connection_closed_without_answer_is_an_error(serve: Callable[..., Raw]) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)

    server = serve(handler)
    message = failed(fetch_all([server.url("/a")])[0])
    assert message == "cannot fetch: the server closed the connection without answering"
    assert server.accepted == 1  # not retried: the connection was not a reused one


def test_body_cut_short_is_an_error(serve: Callable[..., Raw]) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<rss>")

    server = serve(handler)
    message = failed(fetch_all([server.url("/a")])[0])
    assert message == "cannot fetch: the server closed the connection before the body's end"


@pytest.mark.parametrize(
    ("head", "message"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Junk: " + b"j" * (70 << 10) + b"\r\n",
            "cannot fetch: header block over 64 KiB",
            id="one huge header",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101,
            "cannot fetch: more than 100 header fields",
            id="too many headers",
        ),
        pytest.param(b"HTTP/1.1 abc OK\r\n", "cannot fetch: malformed answer", id="bad status"),
        pytest.param(b"SSH-2.0-OpenSSH\r\n", "cannot fetch: malformed answer", id="not HTTP"),
    ],
)
def test_hostile_or_broken_heads(serve: Callable[..., Raw], head: bytes, message: str) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        try:
            conn.sendall(head + b"Content-Length: 6\r\n\r\n<rss/>")
            read_request(rfile)
        except OSError:
            pass

    server = serve(handler)
    assert failed(fetch_all([server.url("/a")])[0]).startswith(message)


def test_endless_header_stops_at_the_limit(serve: Callable[..., Raw]) -> None:
    """A server sending one header line forever: the client stops, memory bounded."""
    sent = []

    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Forever: ")
        total = 0
        try:
            while total < 50 << 20:
                conn.sendall(b"a" * (16 << 10))
                total += 16 << 10
        except OSError:
            pass
        sent.append(total)

    server = serve(handler)
    assert failed(fetch_all([server.url("/a")])[0]) == "cannot fetch: header block over 64 KiB"
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sent and sent[0] < 50 << 20


def test_read_timeout(serve: Callable[..., Raw]) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<rss>")
        time.sleep(3)

    server = serve(handler)
    limits = Limits(connect_timeout=2, read_timeout=0.3, deadline=5)
    assert failed(fetch_all([server.url("/a")], limits)[0]) == (
        "timeout: no data from 127.0.0.1 for 0.3 s"
    )


def test_no_answer_at_all_times_out(serve: Callable[..., Raw]) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        time.sleep(3)

    server = serve(handler)
    limits = Limits(connect_timeout=2, read_timeout=0.3, deadline=5)
    assert failed(fetch_all([server.url("/a")], limits)[0]) == (
        "timeout: no answer from 127.0.0.1 for 0.3 s"
    )


def test_overall_deadline_with_a_dripping_body(serve: Callable[..., Raw]) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):
            conn.sendall(b" ")
            time.sleep(0.1)

    server = serve(handler)
    limits = Limits(connect_timeout=2, read_timeout=0.5, deadline=1)
    assert failed(fetch_all([server.url("/a")], limits)[0]) == "timeout after 1 s"


def test_body_cap_mid_stream_and_the_connection_is_dropped(serve: Callable[..., Raw]) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        while (request := server.next_request(rfile)) is not None:
            if request[0].startswith("GET /big"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                piece = b"x" * (64 << 10)
                try:
                    for _ in range(64):
                        conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    conn.sendall(b"0\r\n\r\n")
                except OSError:
                    return
            else:
                conn.sendall(answer())

    server = serve(handler)
    got = fetch_all([server.url("/big"), server.url("/small")])
    assert failed(got[0]) == "body over the 1 MB limit; stopped"
    assert fetched(got[1]).body == b"<rss/>"
    assert server.accepted == 2  # the first connection, its body unread, was not reused


def test_redirects_reuse_the_connection_and_cross_origins(serve: Callable[..., Raw]) -> None:
    other = serve(keep_alive(lambda request: answer(b"<feed/>")))

    def respond(request: Request) -> bytes:
        path = request[0].split()[1]
        if path == "/old":
            return answer(b"moved", status="301 Moved Permanently", extra="Location: /mid\r\n")
        return answer(
            b"", status="308 Permanent Redirect", extra=f"Location: {other.url('/new')}\r\n"
        )

    server = serve(keep_alive(respond))
    got = fetched(fetch_all([server.url("/old")])[0])
    assert got.body == b"<feed/>"
    assert got.url == got.moved_to == other.url("/new")
    assert server.accepted == 1 and other.accepted == 1
    assert other.requests[0][1]["host"] == f"127.0.0.1:{other.port}"


def test_connections_are_bounded(serve: Callable[..., Raw]) -> None:
    def respond(request: Request) -> bytes:
        time.sleep(0.05)
        return answer()

    server = serve(keep_alive(respond))
    limits = Limits(connect_timeout=2, read_timeout=2, deadline=10, workers=1)
    got = fetch_all([server.url(f"/{i}") for i in range(8)], limits, together=True)
    assert all(fetched(g).body == b"<rss/>" for g in got)
    assert server.most_open <= 2  # workers * 2


def test_ipv6_literal(serve: Callable[..., Raw]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = serve(keep_alive(lambda request: answer()), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    assert fetched(fetch_all([server.url("/v6")])[0]).body == b"<rss/>"
    assert server.requests[0][1]["host"] == f"[::1]:{server.port}"


def test_headers_are_case_insensitive() -> None:
    headers = Headers([("ETag", '"1"'), ("Cache-Control", "max-age=60"), ("Vary", "a")])
    headers = Headers([*headers.items(), ("vary", "b")])
    assert headers.get("etag") == headers["ETAG"] == '"1"'
    assert headers.get("VARY") == "a, b"
    assert headers.get_list("Vary") == ["a", "b"]
    assert "cache-control" in headers and "expires" not in headers
    assert headers.get("expires") is None


# Proxies -----------------------------------------------------------------------------


def forwarding_proxy(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
    """A proxy: absolute-form requests forwarded (one per connection), CONNECT tunnels."""
    got = server.next_request(rfile)
    if got is None:
        return
    line, headers = got
    method, target, _ = line.split(" ")
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host.strip("[]"), int(port)))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
        back.start()
        pump(conn, upstream)
        back.join(5)
        upstream.close()
        return
    parts = urlsplit(target)
    assert parts.hostname and parts.port
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    with socket.create_connection((parts.hostname, parts.port)) as upstream:
        fields = "".join(
            f"{name}: {value}\r\n"
            for name, value in headers.items()
            if name not in ("connection", "proxy-authorization")
        )
        upstream.sendall(f"{method} {path} HTTP/1.1\r\n{fields}Connection: close\r\n\r\n".encode())
        while data := upstream.recv(65536):
            conn.sendall(data)


def proxied_fetch(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str) -> Fetched:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return fetched(fetch_all([url])[0])


def test_http_url_through_the_proxy(
    serve: Callable[..., Raw], monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = serve(keep_alive(lambda request: answer(b"<rss>via</rss>")))
    proxy = serve(forwarding_proxy)
    env = {"HTTP_PROXY": f"http://user:secret@127.0.0.1:{proxy.port}"}
    got = proxied_fetch(monkeypatch, env, origin.url("/feed.xml?x=1"))
    assert got.body == b"<rss>via</rss>"
    line, headers = proxy.requests[0]
    assert line == f"GET http://127.0.0.1:{origin.port}/feed.xml?x=1 HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{origin.port}"
    assert headers["proxy-authorization"] == "Basic dXNlcjpzZWNyZXQ="
    assert origin.requests[0][0] == "GET /feed.xml?x=1 HTTP/1.1"


def test_no_proxy_bypasses_the_proxy(
    serve: Callable[..., Raw], monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = serve(keep_alive(lambda request: answer()))
    proxy = serve(forwarding_proxy)
    env = {"all_proxy": f"127.0.0.1:{proxy.port}", "NO_PROXY": "example.org, 127.0.0.1"}
    assert proxied_fetch(monkeypatch, env, origin.url("/a")).body == b"<rss/>"
    assert proxy.accepted == 0 and origin.accepted == 1


def test_an_unreachable_proxy_is_named(
    serve: Callable[..., Raw], monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = serve(keep_alive(lambda request: answer()))
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    message = failed(fetch_all([origin.url("/a")])[0])
    assert message == "cannot fetch: connection refused by the proxy 127.0.0.1:9"


def target(url: str) -> _Target:
    return _target(url)


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("example.com", "http://example.com/", True),
        ("example.com", "http://feeds.example.com/", True),
        ("example.com", "http://notexample.com/", False),
        (".example.com", "http://feeds.example.com/", True),
        ("*.example.com", "http://example.com/", True),
        ("example.com:8080", "http://example.com:8080/", True),
        ("example.com:8080", "http://example.com/", False),
        ("10.0.0.0/8", "http://10.1.2.3/", True),
        ("10.0.0.0/8", "http://11.1.2.3/", False),
        ("::1", "http://[::1]:81/", True),
        ("[::1]:81", "http://[::1]:81/", True),
        ("*", "http://anything.net/", True),
        ("", "http://anything.net/", False),
    ],
)
def test_no_proxy_matching(no_proxy: str, url: str, bypassed: bool) -> None:
    proxies = Proxies({"HTTP_PROXY": "http://proxy:3128", "no_proxy": no_proxy})
    assert (proxies.for_url(target(url)) is None) == bypassed


def test_proxy_variables() -> None:
    proxies = Proxies({"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2"})
    found = proxies.for_url(target("http://x/"))
    assert found is not None and (found.host, found.port) == ("lower", 2)
    assert proxies.for_url(target("https://x/")) is None
    everything = Proxies({"ALL_PROXY": "proxy:3128"})
    assert str(everything.for_url(target("https://x/"))) == "proxy:3128"
    cgi = Proxies({"HTTP_PROXY": "http://client-sent:1", "REQUEST_METHOD": "GET"})
    assert cgi.for_url(target("http://x/")) is None


# TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_server(serve: Callable[..., Raw], certificate: tuple[Path, Path]) -> Raw:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server: Raw | None = None

    def note_name(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
        assert server is not None
        server.names.append(name)

    context.sni_callback = note_name
    server = serve(keep_alive(lambda request: answer(b"<rss>tls</rss>")), tls=context)
    return server


def client_get(client: Client, url: str) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        async with client:
            for _ in range(2):
                async with await client.get(url) as response:
                    body = b"".join([piece async for piece in response.chunks()])
            return response.status, body

    return asyncio.run(go())


def test_https_with_sni(serve: Callable[..., Raw], certificate: tuple[Path, Path]) -> None:
    server = tls_server(serve, certificate)
    client = Client(
        ssl_context=ssl.create_default_context(cafile=certificate[0]), proxies=Proxies({})
    )
    url = f"https://localhost:{server.port}/feed"
    assert client_get(client, url) == (200, b"<rss>tls</rss>")
    assert server.names == ["localhost"]
    assert server.accepted == 1
    assert server.requests[0][1]["host"] == f"localhost:{server.port}"


def test_https_certificate_checked(
    serve: Callable[..., Raw], certificate: tuple[Path, Path]
) -> None:
    server = tls_server(serve, certificate)
    client = Client(proxies=Proxies({}))  # the system's authorities: ours is unknown
    with pytest.raises(Exception, match="TLS certificate of localhost not valid"):
        client_get(client, f"https://localhost:{server.port}/feed")


def test_https_through_a_connect_tunnel(
    serve: Callable[..., Raw], certificate: tuple[Path, Path]
) -> None:
    server = tls_server(serve, certificate)
    proxy = serve(forwarding_proxy)
    client = Client(
        ssl_context=ssl.create_default_context(cafile=certificate[0]),
        proxies=Proxies({"HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"}),
    )
    url = f"https://localhost:{server.port}/feed"
    assert client_get(client, url) == (200, b"<rss>tls</rss>")
    assert proxy.requests[0][0] == f"CONNECT localhost:{server.port} HTTP/1.1"
    assert proxy.accepted == 1  # the tunnel was kept alive for the second request
    assert server.names == ["localhost"]
    assert [line for line, _ in server.requests] == ["GET /feed HTTP/1.1"] * 2


def test_under_uvloop(serve: Callable[..., Raw], certificate: tuple[Path, Path]) -> None:
    """serve's loop may be uvloop, whose transports are not asyncio's classes."""
    uvloop = pytest.importorskip("uvloop")
    plain = serve(keep_alive(lambda request: answer(b"<rss>plain</rss>")))
    secure = tls_server(serve, certificate)
    proxy = serve(forwarding_proxy)
    client = Client(
        ssl_context=ssl.create_default_context(cafile=certificate[0]),
        proxies=Proxies({"HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"}),
    )

    async def go() -> list[bytes]:
        bodies = []
        async with client:
            for url in [plain.url("/a"), plain.url("/b"), f"https://localhost:{secure.port}/c"]:
                async with await client.get(url) as response:
                    bodies.append(b"".join([piece async for piece in response.chunks()]))
        return bodies

    assert uvloop.run(go()) == [b"<rss>plain</rss>"] * 2 + [b"<rss>tls</rss>"]
    assert plain.accepted == 1 and proxy.accepted == 1


def test_an_answer_in_single_bytes_after_an_interim_one(serve: Callable[..., Raw]) -> None:
    """Every byte in a packet of its own, after a 100 Continue: parsed the same."""

    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while server.next_request(rfile) is not None:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            whole = b'HTTP/1.1 200 Fine\r\nETag: "x"\r\nContent-Length: 6\r\n\r\n<rss/>'
            for byte in whole:
                conn.sendall(bytes([byte]))
                time.sleep(0.001)

    server = serve(handler)
    got = fetch_all([server.url("/a"), server.url("/b")])
    assert [(fetched(g).body, fetched(g).validators.etag) for g in got] == [(b"<rss/>", '"x"')] * 2
    assert server.accepted == 1


def test_a_redirect_body_sent_late_is_drained_and_the_connection_reused(
    serve: Callable[..., Raw],
) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        while (request := server.next_request(rfile)) is not None:
            if request[0].startswith("GET /old"):
                conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /new\r\nContent-Length: 5\r\n\r\n")
                time.sleep(0.05)
                conn.sendall(b"moved")
            else:
                conn.sendall(answer())

    server = serve(handler)
    got = fetched(fetch_all([server.url("/old")])[0])
    assert got.body == b"<rss/>" and got.moved_to is None
    assert server.accepted == 1


def test_bytes_after_the_answer_spoil_the_connection_not_the_answer(
    serve: Callable[..., Raw],
) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        while server.next_request(rfile) is not None:
            conn.sendall(answer() + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra")

    server = serve(handler)
    got = fetch_all([server.url("/a"), server.url("/b")])
    assert [fetched(g).body for g in got] == [b"<rss/>"] * 2
    assert server.accepted == 2  # the first connection was not asked again


# -- found in review: hostile names, endless trailers, proxy secrets, lost wake-ups ----------


@pytest.mark.parametrize(
    "url",
    [
        "http://a..example/feed",
        "http://" + "a" * 64 + ".com/feed",
        "http://a\x00b/feed",
        "http://evil.example HTTP/1.0 x/feed",
    ],
)
def test_a_host_that_is_no_host_name_is_an_error_of_that_fetch(url: str) -> None:
    async def go() -> None:
        async with Client() as client:
            await client.get(url)

    with pytest.raises(HTTPError, match=r"invalid host name|invalid URL"):
        asyncio.run(go())


def test_international_names_are_encoded_as_browsers_do() -> None:
    assert _target("http://straße.de/feed").host == "xn--strae-oqa.de"
    assert _target("http://ελλάς.gr/").host == "xn--hxarsa0b.gr"


def test_an_endless_chunk_trailer_is_cut_at_the_head_limit(serve: Callable[..., Raw]) -> None:
    def handler(conn: socket.socket, rfile: BinaryIO, server: Raw) -> None:
        server.next_request(rfile)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.sendall(b"5\r\nhello\r\n0\r\nX-Trailer: ")
        try:
            for _ in range(4096):  # 16 MB if nobody stops it
                conn.sendall(b"a" * 4096)
        except OSError:
            return

    raw = serve(handler)

    async def go() -> bytes:
        async with Client() as client, await client.get(raw.url("/trailer")) as response:
            return b"".join([piece async for piece in response.chunks()])

    with pytest.raises(HTTPError, match="chunk framing"):
        asyncio.run(go())


def test_proxy_credentials_never_appear_in_messages() -> None:
    for value in ("https://alice:s3cret@proxy.corp:3128", "http://alice:s3cret@proxy.corp:99999"):
        proxies = Proxies({"HTTPS_PROXY": value})
        with pytest.raises(HTTPError) as caught:
            proxies.for_url(_target("https://feeds.example/f.xml"))
        assert "s3cret" not in str(caught.value) and "alice" not in str(caught.value)
        assert "proxy.corp" in str(caught.value)
