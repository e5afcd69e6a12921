"""The HTTP face of ``aggregator serve``: the site and its feeds, the way readers need them.

Starlette (run by uvicorn) serves the files the pipeline wrote, from memory:
the right ``Content-Type`` with ``charset=utf-8``, a strong ``ETag`` and
``Last-Modified`` answered with 304, ``HEAD``, gzip (compressed once per file
version, with its own ETag), and ``Cache-Control: max-age`` tied to the
schedule. ``?q=…&exclude=…&limit=…`` makes an ad-hoc filtered feed from the
store, with bounded work; ``/search?q=`` searches the archive (see
:mod:`aggregator.site.search`). ``/healthz`` reports every source. Anything else
is a 404: names are checked against :mod:`aggregator.site.outputs`, so no path can
reach outside the feeds directory.

A browser that opens an RSS or Atom feed gets it as ``application/xml`` (the same
bytes, its own ETag): Chromium shows ``application/rss+xml`` and
``application/atom+xml`` as plain text and would never run ``feed.xsl``. Feed
readers, which do not ask for HTML first, get the feed types.
"""

from __future__ import annotations

import dataclasses
import errno
import gzip
import hashlib
import json
import re
import socket
import threading
import tomllib
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from aggregator.config import Config
from aggregator.errors import AggregatorError
from aggregator.render import FeedSpec, render_atom, render_json, render_rss
from aggregator.schedule import SourceHealth
from aggregator.site import outputs, render_search, site_from_config
from aggregator.site.search import MAX_QUERY, RESULTS, SCAN, Query, QueryError
from aggregator.site.search import search as search_entries
from aggregator.store import open_store
from aggregator.topics import entry_text, term_pattern

CONTENT_TYPES = outputs.CONTENT_TYPES
# What a browser gets for a feed, so that it runs feed.xsl (see the module's notes).
BROWSER_FEED_TYPE = "application/xml; charset=utf-8"
FEED_NAME = re.compile(r"^(?P<slug>[a-z0-9][a-z0-9-]*)\.(?P<ext>rss|atom|json)$")
FILTERS = ("q", "exclude", "limit")
MAX_FILTER_TEXT = 100  # characters in q or exclude
MAX_FILTER_TERMS = 5
SCAN_LIMIT = 2000  # newest entries a filtered feed looks through


class PortInUse(AggregatorError):
    """Another process listens on the address ``aggregator serve`` was told to use."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket for uvicorn, bound before any work is done.

    Binding here rather than in uvicorn lets a busy port be its own error (uvicorn
    exits with 3, our code for "write lock held"), and lets port 0 pick a free port
    that the feeds' URLs can name.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise PortInUse(f"cannot listen on {host}:{port}: {error.strerror}") from error
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} on {host} is already in use; stop what listens there or pass --port"
            ) from error
        raise PortInUse(f"cannot listen on {host}:{port}: {error.strerror}") from error
    listener.set_inheritable(True)
    return listener


def base_url_is_set(config: Config) -> bool:
    """Whether config.toml sets ``[feeds] base_url`` itself (rather than by default)."""
    try:
        data = tomllib.loads(config.path.read_text(encoding="utf-8-sig"))
    except (OSError, tomllib.TOMLDecodeError):
        return True  # load_config read it a moment ago; when in doubt, change nothing
    feeds = data.get("feeds", {})
    return isinstance(feeds, dict) and "base_url" in feeds


def listening_config(config: Config, listener: socket.socket) -> Config:
    """The config with ``base_url`` following where ``serve`` listens.

    An explicit ``[feeds] base_url`` wins (a server behind a proxy knows its public
    address); without one, the OPML, the index and the feeds' self links name the
    address and port ``serve`` really listens on.
    """
    if base_url_is_set(config):
        return config
    host, port = listener.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    if ":" in host:
        host = f"[{host}]"
    feeds = dataclasses.replace(config.feeds, base_url=f"http://{host}:{port}/feeds/")
    return dataclasses.replace(config, feeds=feeds)


@dataclass(frozen=True, slots=True)
class Variant:
    body: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class Cached:
    plain: Variant
    gzipped: Variant
    last_modified: datetime
    stamp: tuple[int, int]  # (mtime_ns, size) of the file it was read from


def _variants(body: bytes) -> tuple[Variant, Variant]:
    digest = hashlib.sha256(body).hexdigest()[:24]
    return Variant(body, f'"{digest}"'), Variant(gzip.compress(body, 6, mtime=0), f'"{digest}-gz"')


class Files:
    """The pipeline's output files, read into memory and re-read when they change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, Cached] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Cached | None:
        path = self.directory / name
        try:
            info = path.stat()
        except FileNotFoundError:
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and cached.stamp == stamp:
            return cached
        body = path.read_bytes()
        plain, gzipped = _variants(body)
        modified = datetime.fromtimestamp(info.st_mtime // 1, UTC)
        cached = Cached(plain, gzipped, modified, stamp)
        with self._lock:
            self._cache[name] = cached
        return cached


class BadRequest(Exception):
    pass


def _terms(request: Request, name: str) -> list[str]:
    values = request.query_params.getlist(name)
    text = ",".join(values)
    if len(text) > MAX_FILTER_TEXT:
        raise BadRequest(f"{name} is longer than {MAX_FILTER_TEXT} characters")
    terms = [t.strip() for t in text.split(",") if t.strip()]
    if len(terms) > MAX_FILTER_TERMS:
        raise BadRequest(f"{name} has more than {MAX_FILTER_TERMS} comma-separated terms")
    if values and not terms:
        raise BadRequest(f"{name} is empty")
    return terms


def _not_modified(request: Request, variant: Variant, modified: datetime | None) -> bool:
    """RFC 9110 §13.1: If-None-Match wins over If-Modified-Since."""
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or variant.etag in tags
    since = request.headers.get("if-modified-since")
    if since and modified is not None:
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
        return when.tzinfo is not None and modified <= when
    return False


def _for_browser(request: Request) -> bool:
    """A browser navigating asks for HTML first; feed readers do not."""
    return "text/html" in request.headers.get("accept", "")


def create_app(
    config: Config,
    health: Callable[[], list[SourceHealth]] = list,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
) -> Starlette:
    files = Files(config.feeds.directory)
    slugs = {"all": None, **{t.slug: t for t in config.topics}}
    site = site_from_config(config)
    max_age = config.serve.max_age
    if max_age is None:
        max_age = int(config.schedule.interval_minutes * 60)
    cache_control = f"public, max-age={max_age}"

    def respond(
        request: Request, kind: str, plain: Variant, gzipped: Variant, modified: datetime | None
    ) -> Response:
        wants_gzip = "gzip" in request.headers.get("accept-encoding", "").lower()
        variant = gzipped if wants_gzip else plain
        media_type = CONTENT_TYPES[kind]
        vary = "Accept-Encoding"
        if kind in ("rss", "atom"):
            vary = "Accept-Encoding, Accept"
            if _for_browser(request):
                media_type = BROWSER_FEED_TYPE
                variant = Variant(variant.body, variant.etag[:-1] + '-xml"')
        headers = {"ETag": variant.etag, "Cache-Control": cache_control, "Vary": vary}
        if modified is not None:
            headers["Last-Modified"] = format_datetime(modified, usegmt=True)
        if _not_modified(request, variant, modified):
            return Response(status_code=304, headers=headers)
        if wants_gzip:
            headers["Content-Encoding"] = "gzip"
        return Response(variant.body, headers=headers, media_type=media_type)

    def serve_file(request: Request, name: str) -> Response:
        kind = outputs.kind(name, slugs)
        if kind is None:
            return PlainTextResponse("not found\n", status_code=404)
        if request.query_params:
            return PlainTextResponse(f"{name} takes no parameters\n", status_code=400)
        cached = files.get(name)
        if cached is None:
            if outputs.ENTRY_PAGE.match(name):
                return PlainTextResponse("not found\n", status_code=404)
            return PlainTextResponse("not written yet; try again shortly\n", status_code=503)
        return respond(request, kind, cached.plain, cached.gzipped, cached.last_modified)

    def filtered(request: Request, slug: str, kind: str) -> Response:
        unknown = sorted(set(request.query_params) - set(FILTERS))
        if unknown:
            raise BadRequest(f"unknown parameter {unknown[0]!r} (expected: {', '.join(FILTERS)})")
        wanted, unwanted = _terms(request, "q"), _terms(request, "exclude")
        limit_text = request.query_params.get("limit", str(config.feeds.max_entries))
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= config.feeds.max_entries:
            raise BadRequest(f"limit must be a whole number from 1 to {config.feeds.max_entries}")
        limit = int(limit_text)
        with open_store(config.store) as store:
            entries = store.newest(SCAN_LIMIT, None if slug == "all" else slug)
        want = [term_pattern(t) for t in wanted]
        avoid = [term_pattern(t) for t in unwanted]
        chosen = []
        for entry in entries:
            text = entry_text(entry)  # the text topics see, built in one place
            if all(p.search(text) for p in want) and not any(p.search(text) for p in avoid):
                chosen.append(entry)
                if len(chosen) == limit:
                    break
        topic = slugs[slug]
        settings = config.feeds
        spec = FeedSpec(
            slug,
            settings.title if topic is None else f"{settings.title}: {topic.title}",
            settings.description if topic is None else topic.description,
            settings.base_url,
            settings.site_url,
            settings.author,
            settings.id_authority,
            query=str(request.query_params),
        )
        render = {"rss": render_rss, "atom": render_atom, "json": render_json}[kind]
        fallback = datetime(2000, 1, 1, tzinfo=UTC)
        plain, gzipped = _variants(render(spec, chosen, fallback))
        return respond(request, kind, plain, gzipped, None)

    def home(request: Request) -> Response:
        # The pages link to each other relatively, from inside /feeds/.
        return RedirectResponse("feeds/", status_code=307)

    def index(request: Request) -> Response:
        return serve_file(request, outputs.INDEX)

    def feed(request: Request) -> Response:
        name = request.path_params["name"]
        match = FEED_NAME.match(name)
        if match is None or not request.query_params:
            return serve_file(request, name)
        if match["slug"] not in slugs:
            return PlainTextResponse("not found\n", status_code=404)
        try:
            return filtered(request, match["slug"], match["ext"])
        except BadRequest as error:
            return PlainTextResponse(f"bad request: {error}\n", status_code=400)

    def entry(request: Request) -> Response:
        return serve_file(request, f"entries/{request.path_params['name']}")

    def search(request: Request) -> Response:
        unknown = sorted(set(request.query_params) - {"q"})
        text = request.query_params.get("q", "")
        status, note, results = 200, "", []
        try:
            if unknown:
                raise QueryError(f"Unknown parameter {unknown[0]!r}: the search takes only q.")
            query = Query.parse(text)
            text = query.text
        except QueryError as error:
            status, note, query = 400, str(error), None
        if query is not None and query.patterns:
            with open_store(config.store) as store:
                results = search_entries(store.newest(SCAN), query, RESULTS)
        body = render_search(site, text[:MAX_QUERY], results, limit=RESULTS, note=note)
        return Response(
            body,
            status_code=status,
            media_type=CONTENT_TYPES["html"],
            headers={"Cache-Control": cache_control},
        )

    def healthz(request: Request) -> Response:
        counts: Mapping[str, int] = {}
        by_source: Mapping[str, int] = {}
        if config.store.url or config.store.path.exists():
            with open_store(config.store) as store:
                counts = store.counts()
                by_source = store.counts_by_source()
        sources = []
        for item in health():
            sources.append(
                {
                    "name": item.name,
                    "location": item.location,
                    "last_run": item.last_run.isoformat() if item.last_run else None,
                    "last_success": item.last_success.isoformat() if item.last_success else None,
                    "last_error": item.last_error,
                    "failures_in_a_row": item.failures,
                    "next_run": item.next_run.isoformat() if item.next_run else None,
                    "entries": by_source.get(item.name, 0),
                }
            )
        status = "ok" if all(s["last_error"] is None for s in sources) else "degraded"
        body = {"status": status, "entries": counts, "sources": sources}
        return Response(
            json.dumps(body, indent=2) + "\n",
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("not found\n", status_code=404)

    methods = ["GET", "HEAD"]
    app = Starlette(
        routes=[
            Route("/", home, methods=methods),
            Route("/feeds/", index, methods=methods),
            Route("/feeds/{name}", feed, methods=methods),
            Route("/feeds/entries/{name}", entry, methods=methods),
            Route("/search", search, methods=methods),
            Route("/healthz", healthz, methods=methods),
        ],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    # No redirects built from the request's Host header: a wrong path is a 404.
    app.router.redirect_slashes = False
    return app
