"""The HTTP face of ``aggregator serve``: feeds served the way feed readers need.

Starlette (run by uvicorn) serves the files the pipeline wrote, from memory:
the right ``Content-Type`` with ``charset=utf-8``, a strong ``ETag`` and
``Last-Modified`` answered with 304, ``HEAD``, gzip (compressed once per file
version, with its own ETag), and ``Cache-Control: max-age`` tied to the
schedule. ``?q=…&exclude=…&limit=…`` makes an ad-hoc filtered feed from the
store, with bounded work. ``/healthz`` reports every source. Anything else is a
404; file names are checked against what the pipeline writes, so no path can
reach outside the feeds directory.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from aggregator.config import Config
from aggregator.render import FeedSpec, render_atom, render_json, render_rss
from aggregator.schedule import SourceHealth
from aggregator.store import Store
from aggregator.topics import term_pattern

CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
FEED_NAME = re.compile(r"^(?P<slug>[a-z0-9][a-z0-9-]*)\.(?P<ext>rss|atom|json)$")
FILTERS = ("q", "exclude", "limit")
MAX_FILTER_TEXT = 100  # characters in q or exclude
MAX_FILTER_TERMS = 5
SCAN_LIMIT = 2000  # newest entries a filtered feed looks through


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


def create_app(
    config: Config,
    health: Callable[[], list[SourceHealth]] = list,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
) -> Starlette:
    files = Files(config.feeds.directory)
    slugs = {"all": None, **{t.slug: t for t in config.topics}}
    max_age = config.serve.max_age
    if max_age is None:
        max_age = int(config.schedule.interval_minutes * 60)
    cache_control = f"public, max-age={max_age}"

    def respond(
        request: Request, kind: str, plain: Variant, gzipped: Variant, modified: datetime | None
    ) -> Response:
        wants_gzip = "gzip" in request.headers.get("accept-encoding", "").lower()
        variant = gzipped if wants_gzip else plain
        headers = {"ETag": variant.etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
        if modified is not None:
            headers["Last-Modified"] = format_datetime(modified, usegmt=True)
        if _not_modified(request, variant, modified):
            return Response(status_code=304, headers=headers)
        if wants_gzip:
            headers["Content-Encoding"] = "gzip"
        return Response(variant.body, headers=headers, media_type=CONTENT_TYPES[kind])

    def serve_file(request: Request, name: str, kind: str) -> Response:
        if request.query_params:
            return PlainTextResponse(f"{name} takes no parameters\n", status_code=400)
        cached = files.get(name)
        if cached is None:
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
        with Store(config.store.path) as store:
            entries = store.newest(SCAN_LIMIT, None if slug == "all" else slug)
        want = [term_pattern(t) for t in wanted]
        avoid = [term_pattern(t) for t in unwanted]
        chosen = []
        for entry in entries:
            text = f"{entry.title}\n{entry.summary}"
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

    async def index(request: Request) -> Response:
        return serve_file(request, "index.html", "html")

    def feed(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "topics.opml":
            return serve_file(request, name, "opml")
        match = FEED_NAME.match(name)
        if match is None or match["slug"] not in slugs:
            return PlainTextResponse("not found\n", status_code=404)
        if not request.query_params:
            return serve_file(request, name, match["ext"])
        try:
            return filtered(request, match["slug"], match["ext"])
        except BadRequest as error:
            return PlainTextResponse(f"bad request: {error}\n", status_code=400)

    def healthz(request: Request) -> Response:
        counts: Mapping[str, int] = {}
        by_source: Mapping[str, int] = {}
        if config.store.path.exists():
            with Store(config.store.path) as store:
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

    return Starlette(
        routes=[
            Route("/", index, methods=["GET", "HEAD"]),
            Route("/feeds/{name}", feed, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
        ],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
