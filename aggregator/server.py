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

Searches never hold up the rest. A file is served from memory on the event loop
(a ``stat`` at most once a second tells whether a run rewrote it); a search runs in
its own small pool of threads (:class:`Searches`), with a time budget, and a search
that finds the pool and its queue full is answered ``503`` with ``Retry-After`` at
once. Every query parameter is checked (ASCII digits, bounded lengths) and a bad one
is a ``400``. Content codings and types are negotiated as RFC 9110 §12 says: ``q=0``
means "not acceptable". Slow, idle, oversized and excess connections are dealt with
below the application (:mod:`aggregator.connections`).

A browser that opens an RSS or Atom feed gets the page ``feed.xsl`` makes of it,
made here (:class:`FeedPages`) and sent as HTML with its own ETag: Chromium shows the
feed types as plain text, and warns on every page that it transforms itself with XSLT
(which it is removing). Feed readers, which do not ask for HTML first, get the feed.

A story's page that is not on disk (a story older than every feed's newest
``max_entries``, which a search or a filtered feed can still link to) is made from the
store on request, the same bytes a run would write for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import gzip
import hashlib
import json
import logging
import re
import socket
import sqlite3
import stat
import sys
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from aggregator.config import Config, ServeSettings, StoreSettings
from aggregator.connections import CutAtShutdown, Limits, QuietRefusals, limited_protocol
from aggregator.errors import AggregatorError, StoreError
from aggregator.localfile import NotAFile, read_regular
from aggregator.model import Entry
from aggregator.render import FeedSpec, render_atom, render_json, render_rss
from aggregator.schedule import SourceHealth
from aggregator.site import outputs, site_from_config
from aggregator.site.pages import feeds, render_entry, render_not_found, render_search
from aggregator.site.search import (
    MAX_QUERY,
    RESULTS,
    OutOfTime,
    Query,
    QueryError,
    candidates,
    search_page,
    search_pattern,
    searched,
    typed_term,
)
from aggregator.store import Store, StoreType, open_store
from aggregator.text import NOT_XML
from aggregator.topics import entry_text
from aggregator.uri import without_credentials

CONTENT_TYPES = outputs.CONTENT_TYPES
log = logging.getLogger("aggregator")
FEED_NAME = re.compile(r"^(?P<slug>[a-z0-9][a-z0-9-]*)\.(?P<ext>rss|atom|json)\Z")
FILTERS = ("q", "exclude", "limit")
# What sites and mail add to a link when it is shared ("?utm_source=newsletter",
# "?fbclid=…"): it asks for nothing, and is passed over (found by review: a shared
# link to a page or a feed was a 400).
_TRACKING = re.compile(
    r"utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|igshid|yclid|_ga|_gl|ref",
    re.IGNORECASE,
)


def _asked(request: Request) -> set[str]:
    """The names of the request's query parameters that ask for something."""
    return {name for name in request.query_params if not _TRACKING.fullmatch(name)}


MAX_FILTER_TEXT = 100  # characters in q or exclude
MAX_FILTER_TERMS = 5
MAX_LIMIT_DIGITS = 6  # "limit" is ASCII digits, and never a 5,000-digit number
SCAN_LIMIT = 2000  # newest entries a filtered feed looks through when the index cannot help
RECHECK = 1.0  # seconds a file is served from memory before its stat is looked at again
RETRY_AFTER = 5  # seconds, in a 503 for a search the server has no room or time for
FEED_PAGES_KEPT = 64  # feed pages made for browsers, kept for the feed versions served

T = TypeVar("T")


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
    except UnicodeError as error:  # "bad..host", a label over 63 characters: no name at all
        raise PortInUse(
            f"cannot listen on {host}:{port}: {host!r} is not a host name or address"
        ) from error
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


# The index's search form, hidden in the files (a folder of files served as they are
# has no /search): shown by the server that answers it.
SEARCH_FORM = b'role="search" hidden data-served>'
SHOWN_FORM = b'role="search">'


def _as_served(name: str, body: bytes) -> bytes:
    """A file as ``serve`` sends it: the index with its search form shown."""
    if name == outputs.INDEX:
        return body.replace(SEARCH_FORM, SHOWN_FORM, 1)
    return body


class Files:
    """The pipeline's output files, read into memory and re-read when they change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, Cached] = {}
        self._checked: dict[str, float] = {}  # name → when its stat was last compared
        self._lock = threading.Lock()
        self._reading = _OneAtATime()

    def recent(self, name: str) -> Cached | None:
        """The file from memory, if its stat was compared less than :data:`RECHECK` ago
        (no system call: what the event loop may do)."""
        with self._lock:
            if time.monotonic() - self._checked.get(name, -RECHECK) < RECHECK:
                return self._cache.get(name)
        return None

    def get(self, name: str) -> Cached | None:
        """The file, re-read when a run rewrote it (a stat and maybe a read: off the loop).

        Only a regular file the pipeline could have written is served: not a symbolic
        link (which could lead out of the directory), a folder, or anything else found
        at one of its names; nor a file under a folder that is a link."""
        path = self.directory / name
        try:
            info = path.lstat()
            if "/" in name and (self.directory / name.split("/")[0]).is_symlink():
                return None
        except OSError:  # gone, or a name the file system refuses
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            cached = self._cache.get(name)
        if cached is None or cached.stamp != stamp:
            # Requests for a file just rewritten wait for one reading of it rather than
            # each reading, hashing and compressing it (found by review: a feed of 25 MB
            # asked 60 times at once took gigabytes).
            with self._reading.turn(name):
                with self._lock:
                    cached = self._cache.get(name)
                if cached is None or cached.stamp != stamp:
                    try:  # never through a link, even one put there since the stat
                        body = read_regular(path, MAX_SERVED, follow_link=False)
                    except (OSError, NotAFile):  # replaced or removed since the stat
                        return None
                    plain, gzipped = _variants(_as_served(name, body))
                    modified = datetime.fromtimestamp(info.st_mtime // 1, UTC)
                    cached = Cached(plain, gzipped, modified, stamp)
        with self._lock:
            self._cache[name] = cached
            self._checked[name] = time.monotonic()
        return cached


class WrittenPages:
    """The story pages the last install wrote (pipeline.installed_pages), read from the
    store again when the install's token file changes. A page on disk that is not one
    of them (its story left every feed since) may show what is no longer so (its
    topics, an older template): it is made from the store instead."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._stamp: tuple[int, int] | None = None
        self._names: frozenset[str] | None = None
        self._checked = -RECHECK
        self._lock = threading.Lock()

    def recent(self) -> tuple[bool, frozenset[str] | None]:
        """(True, the names) when looked at less than :data:`RECHECK` ago (no system
        call: what the event loop may do); (False, None) otherwise."""
        with self._lock:
            if time.monotonic() - self._checked < RECHECK:
                return True, self._names
        return False, None

    def get(self) -> frozenset[str] | None:
        """The names (None when not known: every page on disk is then served); off the
        event loop (a stat, and a store read when an install happened)."""
        try:
            info = (self.config.feeds.directory / outputs.TOKEN).stat()
        except OSError:  # nothing installed yet: every page on disk, for now
            with self._lock:
                self._names, self._checked = None, time.monotonic()
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            if stamp == self._stamp:
                self._checked = time.monotonic()
                return self._names
        from aggregator.pipeline import installed_pages
        from aggregator.store import open_store_to_read

        names: frozenset[str] | None = None
        try:
            store = open_store_to_read(self.config.store)
            if store is not None:
                with store:
                    names = installed_pages(self.config, store)
        except Exception as error:  # the store is away: the pages on disk meanwhile
            log.warning("cannot read which story pages are current: %s", _first_line(error))
            names = None
        with self._lock:
            # Not known (the store is a moment behind the files it installs): asked
            # again after RECHECK, not kept for this install.
            self._stamp = stamp if names is not None else None
            self._names, self._checked = names, time.monotonic()
        return names


class FeedPages:
    """RSS and Atom feeds as the page ``feed.xsl`` makes of them, for browsers
    (:func:`aggregator.site.feedpage.feed_page`), made once per version of a feed (by
    one request while the others asking for it wait) and kept for the
    :data:`FEED_PAGES_KEPT` versions last asked for."""

    def __init__(self, zone: tzinfo = UTC) -> None:
        self.zone = zone  # the news's time zone, whose days the pages show
        self._made: dict[str, tuple[Variant, Variant]] = {}  # the feed's ETag → page
        self._lock = threading.Lock()
        self._making = _OneAtATime()

    def page(self, feed: Variant, *, keep: bool = True) -> tuple[Variant, Variant]:
        """The page of ``feed`` (the plain bytes of one of our feeds), and its gzip.
        ``keep=False``: a page made for one request (a feed filtered by a query), not
        kept, so that cheap queries cannot push the feeds' own pages out."""
        from aggregator.site.feedpage import feed_page

        if not keep:
            return _variants(feed_page(feed.body, self.zone))
        with self._lock:
            made = self._made.get(feed.etag)
        if made is not None:
            return made
        with self._making.turn(feed.etag):
            with self._lock:
                made = self._made.get(feed.etag)
            if made is None:
                made = _variants(feed_page(feed.body, self.zone))
                with self._lock:
                    if len(self._made) >= FEED_PAGES_KEPT:
                        self._made.clear()
                    self._made[feed.etag] = made
        return made


class _OneAtATime:
    """A lock per key: the work for a key done by one thread at a time (the others
    wait, then find it done), the locks of keys no one waits for let go."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def turn(self, key: str) -> Iterator[None]:
        with self._lock:
            lock, waiting = self._held.get(key, (None, 0))
            if lock is None:
                lock = threading.Lock()
            self._held[key] = (lock, waiting + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, waiting = self._held[key]
                if waiting == 1:
                    del self._held[key]
                else:
                    self._held[key] = (lock, waiting - 1)


PIECE = 256 << 10  # bytes of a body handed to the connection at a time
MAX_SERVED = 1 << 30  # bytes of one file read to be served: a bound, far past any output


class _Pieces(Response):
    """A response whose body is handed over in pieces of :data:`PIECE` bytes, each once
    the connection has room (uvicorn waits while the client is behind), not all at
    once: a slow client holds at most a piece or two in the server rather than a whole
    large feed, and the connection's send watch sees each piece go
    (aggregator.connections: a write handed over whole shows no progress until done).
    256 KB: a feed of the usual size still goes in one write (64 KB pieces served a
    193 KB feed at 0.66 times the rate)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = memoryview(self.body)
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if len(body) <= PIECE:
            await send({"type": "http.response.body", "body": self.body})
            return
        for start in range(0, len(body), PIECE):
            end = start + PIECE
            await send(
                {
                    "type": "http.response.body",
                    "body": bytes(body[start:end]),
                    "more_body": end < len(body),
                }
            )


# How long /healthz waits for the store before it answers 503: a load balancer's probe
# gives up after a few seconds, and a store that takes longer is not healthy.
HEALTH_TIMEOUT = 5.0


class _StoreCheck:
    """What /healthz asks the store (its counts), asked in a thread of its own, once at
    a time: probes that come while a check is under way wait for that one. Run in the
    server's shared threads, a store that hung (a PostgreSQL server stopped, its network
    gone) held one of them per probe, for its whole connect timeout, and the feeds'
    files, served from the same threads, waited behind them (found by review: 29 s for
    a stylesheet). The thread is a daemon: a check still hanging never holds up the
    server's exit."""

    # A check under way for longer is left to itself, and the next probe starts another
    # (a connection that hangs, half open, would otherwise hold every probe at 503 after
    # the store came back: found by review).
    STUCK = 30.0

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self._under_way: asyncio.Future[tuple[dict[str, int], dict[str, int]]] | None = None
        self._since = 0.0

    async def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """The store's counts, by topic and by source; TimeoutError after HEALTH_TIMEOUT
        seconds (the check goes on, for the next probe to find)."""
        now = time.monotonic()
        if self._under_way is None or self._under_way.done() or now - self._since > self.STUCK:
            self._under_way, self._since = self._start(), now
        return await asyncio.wait_for(asyncio.shield(self._under_way), HEALTH_TIMEOUT)

    def _start(self) -> asyncio.Future[tuple[dict[str, int], dict[str, int]]]:
        import concurrent.futures

        result: concurrent.futures.Future[tuple[dict[str, int], dict[str, int]]]
        result = concurrent.futures.Future()

        def check() -> None:
            try:
                with open_store(self.settings) as store:
                    result.set_result((store.counts(), store.counts_by_source()))
            except BaseException as error:
                result.set_exception(error)

        threading.Thread(target=check, name="aggregator-health", daemon=True).start()
        under_way = asyncio.wrap_future(result)
        # Retrieved even when every probe waiting for it gave up (no "never retrieved").
        under_way.add_done_callback(lambda done: done.cancelled() or done.exception())
        return under_way


def _unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the store cannot be reached (it could not be opened, or
    the PostgreSQL server restarted or went away), not that a search went wrong."""
    if isinstance(error, StoreError):
        return True
    psycopg = sys.modules.get("psycopg")  # loaded only when the store is PostgreSQL
    return psycopg is not None and isinstance(
        error, psycopg.OperationalError | psycopg.InterfaceError
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class Busy(Exception):
    """No room for one more search, or it ran out of its time budget."""


class _Unreachable(Busy):
    """The store could not be reached (``fresh``: on a connection opened for this
    search, rather than one kept from an earlier one)."""

    def __init__(self, text: str, *, fresh: bool) -> None:
        super().__init__(text)
        self.fresh = fresh


class Searches:
    """Where searches run: a bounded pool of threads, never the event loop.

    At most ``workers`` searches run at once and ``queue`` more wait; one more is
    :class:`Busy` at once (a 503), so a burst of searches costs a bounded amount of
    memory and CPU, and plain requests keep being answered. Each search has a time
    budget from when it was let in: one still waiting when its budget is spent is not
    started, and on SQLite a query past it is interrupted. Each thread keeps its own
    store connection.
    """

    def __init__(self, store: StoreSettings, settings: ServeSettings) -> None:
        self.store = store
        self.budget = settings.search_budget
        self.room = settings.search_workers + settings.search_queue
        self.running = 0  # let in and not finished; only touched on the event loop
        self._workers = settings.search_workers
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="search")
        self._local = threading.local()

    async def run(self, work: Callable[[StoreType, float], T]) -> T:
        """``work(store, deadline)`` in the pool; :class:`Busy` when there is no room
        or no time. ``deadline`` is a :func:`time.monotonic` time."""
        if self.running >= self.room:
            raise Busy("too many searches at once")
        self.running += 1
        deadline = time.monotonic() + self.budget
        future = asyncio.get_running_loop().run_in_executor(self._pool, self._call, work, deadline)
        future.add_done_callback(self._done)
        try:
            # A moment past the budget: the work itself stops at its deadline.
            return await asyncio.wait_for(asyncio.shield(future), self.budget + 1.0)
        except TimeoutError as error:
            raise Busy("the search took too long") from error

    def _done(self, future: asyncio.Future[Any]) -> None:
        self.running -= 1
        if not future.cancelled():
            future.exception()  # retrieved, so a late failure is not logged as unhandled

    def _call(self, work: Callable[[StoreType, float], T], deadline: float) -> T:
        if time.monotonic() >= deadline:
            raise Busy("the search waited too long for its turn")
        try:
            return self._work(work, deadline)
        except _Unreachable as error:
            if error.fresh or time.monotonic() >= deadline:
                raise
            # A connection kept from an earlier search, ended by a database that
            # restarted: this search is tried once more, on a new one.
            return self._work(work, deadline)

    def _work(self, work: Callable[[StoreType, float], T], deadline: float) -> T:
        store: StoreType | None = getattr(self._local, "store", None)
        fresh = store is None
        try:
            if store is None:
                store = self._local.store = open_store(self.store)
            if isinstance(store, Store):
                # SQLite calls this every few thousand steps: past the deadline, the query
                # stops with "interrupted".
                store.db.set_progress_handler(lambda: time.monotonic() >= deadline, 10_000)
            return work(store, deadline)
        except OutOfTime as error:
            raise Busy(str(error)) from error
        except sqlite3.OperationalError as error:
            if time.monotonic() >= deadline:
                raise Busy("the search took too long") from error
            raise
        except Exception as error:
            if not _unreachable(error):
                raise
            self._forget_store()  # dead: the next search opens a new connection
            if fresh:
                log.warning("a search could not reach the store: %s", _first_line(error))
            raise _Unreachable("the store cannot be reached now", fresh=fresh) from error

    def _forget_store(self) -> None:
        store: StoreType | None = getattr(self._local, "store", None)
        self._local.store = None
        if store is not None:
            with contextlib.suppress(Exception):  # it is gone already
                store.close()

    def close(self) -> None:
        """Close every thread's store connection (each in its own thread), then the pool.

        One closing task per thread, held at a barrier until all have started, so that
        each lands on a different thread (a connection belongs to the thread that made it).
        """
        workers = self._workers
        barrier = threading.Barrier(workers)

        def close_own() -> None:
            store: StoreType | None = getattr(self._local, "store", None)
            if store is not None:
                self._local.store = None
                store.close()
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=self.budget + 5.0)

        for _ in range(workers):
            self._pool.submit(close_own)
        self._pool.shutdown(wait=True)


class BadRequest(Exception):
    pass


# RFC 9110 §5.6: a list element, its token (or media range) and its parameters.
_QVALUE = re.compile(r"^\s*q\s*=\s*(0(\.\d{0,3})?|1(\.0{0,3})?)\s*$", re.IGNORECASE)


def _weights(header: str) -> dict[str, float]:
    """A header's list as ``{value: q}`` (RFC 9110 §12.4.2): a missing ``q`` is 1, a
    malformed one 0 (not acceptable rather than a guess)."""
    weights: dict[str, float] = {}
    for element in header.split(","):
        value, *parameters = element.split(";")
        value = value.strip().lower()
        if not value:
            continue
        weight = 1.0
        for parameter in parameters:
            if parameter.strip().lower().startswith("q"):
                match = _QVALUE.match(parameter)
                weight = float(match[1]) if match else 0.0
        weights[value] = max(weight, weights.get(value, weight))  # named twice: the best
    return weights


def accepts_gzip(request: Request) -> bool:
    """RFC 9110 §12.5.3: gzip (or ``x-gzip``) with q > 0, or ``*`` with q > 0 when gzip
    is not named; ``gzip;q=0`` and a missing header mean identity."""
    weights = _weights(",".join(request.headers.getlist("accept-encoding")))
    for name in ("gzip", "x-gzip"):
        if name in weights:
            return weights[name] > 0
    return weights.get("*", 0.0) > 0


def _limit(request: Request, most: int) -> int:
    text = request.query_params.get("limit", str(most))
    # ASCII digits only: str.isdigit() takes "²" and other digits int() refuses.
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_LIMIT_DIGITS):
        raise BadRequest(f"limit must be a whole number from 1 to {most}")
    if not 1 <= int(text) <= most:
        raise BadRequest(f"limit must be a whole number from 1 to {most}")
    return int(text)


def _terms(request: Request, name: str) -> list[str]:
    values = request.query_params.getlist(name)
    text = ",".join(values)
    if len(text) > MAX_FILTER_TEXT:
        raise BadRequest(f"{name} is longer than {MAX_FILTER_TEXT} characters")
    terms = [t for t in map(typed_term, text.split(",")) if t]
    if len(terms) > MAX_FILTER_TERMS:
        raise BadRequest(f"{name} has more than {MAX_FILTER_TERMS} comma-separated terms")
    if values and not terms:
        raise BadRequest(f"{name} is empty")
    if any(NOT_XML.search(term) for term in terms):
        raise BadRequest(f"{name} holds a control character, which no story can hold")
    return terms


# How long after the second a file's Last-Modified names it is sent (see respond).
SETTLED = timedelta(seconds=2)


def _http_date(text: str | None) -> datetime | None:
    """An HTTP date (RFC 9110 §5.6.7), or None when it is none."""
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):  # year 99999999999999
        return None
    if when.tzinfo is None:  # asctime's form, which says no zone: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return when


def _preconditions(request: Request, variant: Variant, modified: datetime | None) -> int | None:
    """What the request's conditions answer, in RFC 9110 §13.2.2's order: 412 when
    If-Match names no tag of this (strongly) or If-Unmodified-Since is before it (found
    by review: both were ignored), 304 when If-None-Match names its tag or, without it,
    If-Modified-Since is not before it; None to send it."""
    # Header lines given twice are one list (RFC 9110 §5.3).
    wanted = ",".join(request.headers.getlist("if-match")) or None
    if wanted is not None:
        tags = {t.strip() for t in wanted.split(",")}
        if "*" not in tags and variant.etag not in tags:  # a weak tag never matches here
            return 412
    elif modified is not None:
        unmodified = _http_date(request.headers.get("if-unmodified-since"))
        if unmodified is not None and modified > unmodified:
            return 412
    match = ",".join(request.headers.getlist("if-none-match")) or None
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return 304 if "*" in tags or variant.etag in tags else None
    since = _http_date(request.headers.get("if-modified-since"))
    if since is not None and modified is not None and modified <= since:
        return 304
    return None


def _for_browser(request: Request) -> bool:
    """A browser navigating asks for HTML (q > 0); feed readers do not."""
    return _weights(",".join(request.headers.getlist("accept"))).get("text/html", 0.0) > 0


# What a feed reader asks for when it wants a feed (some also take text/html, lower).
FEED_WANTS = (
    *("application/rss+xml", "application/atom+xml", "application/rdf+xml"),
    *("application/feed+json", "application/xml", "text/xml"),
)


def _wants_feed_page(request: Request) -> bool:
    """Whether a request for an RSS or Atom feed wants the page made of it: HTML
    preferred to every feed type (a browser: ``text/html,…,application/xml;q=0.9``),
    not merely accepted (SimplePie, in FreshRSS and WordPress: ``…, text/html;q=0.7``)."""
    weights = _weights(",".join(request.headers.getlist("accept")))
    html = weights.get("text/html", 0.0)
    return html > 0 and all(html > weights.get(kind, 0.0) for kind in FEED_WANTS)


def _busy(text: str) -> Response:
    return PlainTextResponse(
        f"busy: {text}; try again in {RETRY_AFTER} s\n",
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"},
    )


def create_app(
    config: Config,
    health: Callable[[], list[SourceHealth]] = list,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
    searches: Searches | None = None,
    files_problem: Callable[[], str | None] = lambda: None,
) -> Starlette:
    from aggregator.pipeline import feed_specs

    files = Files(config.feeds.directory)
    pool = searches or Searches(config.store, config.serve)
    slugs = {"all": None, **{t.slug: t for t in config.topics}}
    site = site_from_config(config)
    feed_pages = FeedPages(config.feeds.timezone)
    written_pages = WrittenPages(config)
    # What a story's page links to (each topic's page); not the feeds' entries.
    topic_feeds = {feed.slug: feed for feed in feeds(site, [s for s, _ in feed_specs(config)], {})}
    entry_ids = f"tag:{config.feeds.id_authority}:entry:"  # + the page's name (outputs.entry_file)
    max_age = config.serve.max_age
    if max_age is None:
        max_age = int(config.schedule.interval_minutes * 60)
    cache_control = f"public, max-age={max_age}"

    def respond(
        request: Request,
        kind: str,
        plain: Variant,
        gzipped: Variant,
        modified: datetime | None,
        *,
        negotiated: bool = False,
    ) -> Response:
        """``negotiated``: what is sent depends on the request's Accept (a feed, or its page)."""
        wants_gzip = accepts_gzip(request)
        variant = gzipped if wants_gzip else plain
        media_type = CONTENT_TYPES[kind]
        vary = "Accept-Encoding, Accept" if negotiated else "Accept-Encoding"
        headers = {"ETag": variant.etag, "Cache-Control": cache_control, "Vary": vary}
        if modified is not None and datetime.now(UTC) < modified + SETTLED:
            # A file written within the second Last-Modified would name may be written
            # again within it: a client asking If-Modified-Since would then get a 304 for
            # the newer bytes (found by review). Until that second (and the one second a
            # cached file may go unchecked) is over, the ETag alone tells versions apart.
            modified = None
        if modified is not None:
            headers["Last-Modified"] = format_datetime(modified, usegmt=True)
        answer = _preconditions(request, variant, modified)
        if answer == 304:
            return Response(status_code=304, headers=headers)
        if answer == 412:
            return PlainTextResponse(
                "precondition failed: the file is not the version the request names\n",
                status_code=412,
                headers={"ETag": variant.etag, "Cache-Control": "no-store"},
            )
        if wants_gzip:
            headers["Content-Encoding"] = "gzip"
        return _Pieces(variant.body, headers=headers, media_type=media_type)

    async def serve_file(request: Request, name: str) -> Response:
        kind = outputs.kind(name, slugs)
        if kind is None:
            return not_found_for(request)
        if kind in ("rss", "atom", "json", "opml") and _asked(request):
            # A feed's parameters filter it (see feed); a list of feeds cannot be
            # filtered: said. A page or a stylesheet is the same whatever a link to it
            # carries ("?v=2", a share's "?fbclid=…"): served as it is.
            return PlainTextResponse(f"{name} takes no parameters\n", status_code=400)
        if outputs.ENTRY_PAGE.match(name):
            known, current = written_pages.recent()
            if not known:
                current = await run_in_threadpool(written_pages.get)
            if current is not None and name not in current:
                return await archived_entry(request, name)
        cached = files.recent(name) or await run_in_threadpool(files.get, name)
        if cached is None:
            if outputs.ENTRY_PAGE.match(name):
                return await archived_entry(request, name)
            return PlainTextResponse("not written yet; try again shortly\n", status_code=503)
        plain, gzipped, negotiated = cached.plain, cached.gzipped, kind in ("rss", "atom")
        if negotiated and _wants_feed_page(request):
            kind = "html"
            plain, gzipped = await run_in_threadpool(feed_pages.page, cached.plain)
        return respond(request, kind, plain, gzipped, cached.last_modified, negotiated=negotiated)

    async def archived_entry(request: Request, name: str) -> Response:
        """A story's page made from the store (see the module's notes), or a 404."""
        entry_id = entry_ids + name.removeprefix("entries/").removesuffix(".html")

        def page(store: StoreType, deadline: float) -> tuple[Variant, Variant] | None:
            entry = store.entry(entry_id)
            return None if entry is None else _variants(render_entry(site, entry, topic_feeds))

        try:
            made = await pool.run(page)
        except Busy as error:
            return _busy(str(error))
        if made is None:
            return not_found_for(request)
        return respond(request, "html", *made, None)

    async def filtered(request: Request, slug: str, kind: str) -> Response:
        unknown = sorted(_asked(request) - set(FILTERS))
        if unknown:
            raise BadRequest(f"unknown parameter {unknown[0]!r} (expected: {', '.join(FILTERS)})")
        wanted, unwanted = _terms(request, "q"), _terms(request, "exclude")
        limit = _limit(request, config.feeds.max_entries)
        want = [search_pattern(t) for t in wanted]
        avoid = [search_pattern(t) for t in unwanted]

        topic = slugs[slug]
        settings = config.feeds
        title = settings.title if topic is None else f"{settings.title}: {topic.title}"
        terms = ", ".join([*wanted, *(f"not {term}" for term in unwanted)])
        spec = FeedSpec(
            slug,
            f"{title} ({terms})" if terms else title,
            settings.description if topic is None else topic.description,
            settings.base_url,
            settings.site_url,
            settings.author,
            settings.id_authority,
            # What asks for something: a link shared with "&fbclid=…" is the same feed,
            # for a reader that subscribes to it (found by review: another feed's id).
            query=urlencode(
                [
                    (k, v)
                    for k, v in request.query_params.multi_items()
                    if not _TRACKING.fullmatch(k)
                ]
            ),
        )
        render = {"rss": render_rss, "atom": render_atom, "json": render_json}[kind]

        def choose(store: StoreType, deadline: float) -> tuple[Variant, Variant]:
            chosen: list[Entry] = []
            within = None if slug == "all" else slug
            # The index hands over the entries that may match; the patterns decide.
            # Either term, as a topic's terms (found by review: both were asked for).
            found = candidates(store, wanted, unwanted, within, unindexed=SCAN_LIMIT, either=True)
            for entry in found:
                if time.monotonic() >= deadline:
                    raise Busy("the search took too long")
                text = searched(entry_text(entry))  # the text topics see, as searched
                if (not want or any(p.search(text) for p in want)) and not any(
                    p.search(text) for p in avoid
                ):
                    chosen.append(entry)
                    if len(chosen) == limit:
                        break
            # Rendered and compressed here too, not on the event loop, which meanwhile
            # answers every other request.
            made = _variants(render(spec, chosen, datetime(2000, 1, 1, tzinfo=UTC)))
            return feed_pages.page(made[0], keep=False) if browser else made

        browser = kind != "json" and _wants_feed_page(request)
        try:
            plain, gzipped = await pool.run(choose)
        except Busy as error:
            return _busy(str(error))
        shown = "html" if browser else kind
        return respond(request, shown, plain, gzipped, None, negotiated=kind != "json")

    async def home(request: Request) -> Response:
        # The pages link to each other relatively, from inside /feeds/.
        return RedirectResponse("feeds/", status_code=307)

    async def index(request: Request) -> Response:
        return await serve_file(request, outputs.INDEX)

    async def feed(request: Request) -> Response:
        name = request.path_params["name"]
        match = FEED_NAME.match(name)
        if match is None or not _asked(request):
            return await serve_file(request, name)
        if match["slug"] not in slugs:
            return not_found_for(request)
        try:
            return await filtered(request, match["slug"], match["ext"])
        except BadRequest as error:
            return PlainTextResponse(f"bad request: {error}\n", status_code=400)

    async def entry(request: Request) -> Response:
        return await serve_file(request, f"entries/{request.path_params['name']}")

    async def search(request: Request) -> Response:
        unknown = sorted(_asked(request) - {"q", "after"})
        # "q" given twice: every word of both, as the filtered feeds join them.
        text = " ".join(request.query_params.getlist("q"))
        # The story the last page ended with: the next page reads on from it.
        after = request.query_params.get("after")
        status, note, headers = 200, "", {"Cache-Control": cache_control}
        results: list[Entry] = []  # none on the pages that say why there are none
        try:
            if unknown:
                raise QueryError(
                    f"Unknown parameter {unknown[0]!r}: the search takes only q (and after)."
                )
            query = Query.parse(text)
            text = query.text
            if after is not None and NOT_XML.search(after):
                raise QueryError("This is no place in a search's results to read on from.")
        except QueryError as error:
            # Not kept by caches: the limits it names are this server's settings.
            status, note, query = 400, str(error), None
            headers = {"Cache-Control": "no-store"}
        if query is not None and query.patterns:
            chosen = query  # for the closure: mypy keeps the narrowing

            def look(store: StoreType, deadline: float) -> tuple[int, bytes]:
                shown = chosen.text[:MAX_QUERY]
                try:
                    page = search_page(store, chosen, after=after, deadline=deadline)
                except QueryError as error:  # no place to read on from
                    return 400, render_search(site, shown, [], limit=RESULTS, note=str(error))
                # The page too is made here, off the event loop.
                return 200, render_search(
                    site,
                    shown,
                    page.results,
                    limit=RESULTS,
                    after=page.after,
                    following=page.next if page.more else None,
                )

            try:
                status, body = await pool.run(look)
                if status != 200:
                    headers = {"Cache-Control": "no-store"}
                return Response(
                    body, status_code=status, media_type=CONTENT_TYPES["html"], headers=headers
                )
            except Busy:
                status, note = 503, f"The server is busy; try again in {RETRY_AFTER} seconds."
                headers = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}
        # What was typed is shown back, without what no page may hold (found by review:
        # a NUL or an escape went into the page as it came).
        shown = NOT_XML.sub("", text)[:MAX_QUERY]
        body = render_search(site, shown, results, limit=RESULTS, note=note)
        return Response(body, status_code=status, media_type=CONTENT_TYPES["html"], headers=headers)

    checking = _StoreCheck(config.store)

    async def healthz(request: Request) -> Response:
        counts: Mapping[str, int] = {}
        by_source: Mapping[str, int] = {}
        unreachable: str | None = None
        if config.store.url or config.store.path.exists():
            try:
                counts, by_source = await checking.counts()
            except TimeoutError:
                unreachable = f"the store did not answer within {HEALTH_TIMEOUT:g} s"
            except Exception as error:
                if not _unreachable(error):
                    raise
                unreachable = _first_line(error)
            if unreachable is not None:
                # The feeds are still served; this says what is wrong, in one line.
                log.error("healthz: the store cannot be reached: %s", unreachable)
        sources = []
        for item in health():
            sources.append(
                {
                    "name": item.name,
                    "location": without_credentials(item.location),  # served to anyone
                    "last_run": item.last_run.isoformat() if item.last_run else None,
                    "last_success": item.last_success.isoformat() if item.last_success else None,
                    "last_error": item.last_error,
                    "failures_in_a_row": item.failures,
                    "next_run": item.next_run.isoformat() if item.next_run else None,
                    "entries": by_source.get(item.name, 0),
                }
            )
        unwritten = files_problem()  # why the files served are not the store's latest
        healthy = unwritten is None and all(s["last_error"] is None for s in sources)
        body: dict[str, object] = {"status": "ok" if healthy else "degraded"}
        if unwritten is not None:
            body["files"] = unwritten
        body |= {"entries": counts, "sources": sources}
        if unreachable is not None:
            body = {**body, "status": "unavailable", "store": unreachable, "entries": None}
        return Response(
            json.dumps(body, indent=2) + "\n",
            status_code=200 if unreachable is None else 503,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    def not_found_for(request: Request) -> Response:
        """A 404: a page leading back to the site for a browser, one line for a program."""
        if _for_browser(request):
            # Links relative to where the request was, as every page's are.
            up = "../" * (request.url.path.count("/") - 1)
            body = render_not_found(site, root=f"{up}feeds/", search=f"{up}search")
            return Response(body, 404, {"Vary": "Accept"}, CONTENT_TYPES["html"])
        return PlainTextResponse("not found\n", status_code=404, headers={"Vary": "Accept"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return not_found_for(request)

    @contextlib.asynccontextmanager
    async def lifetime(app: Starlette) -> AsyncIterator[None]:
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            pool.close()

    methods = ["GET", "HEAD"]
    app = Starlette(
        routes=[
            Route("/", home, methods=methods),
            Route("/feeds", home, methods=methods),  # "feeds/" is "/feeds/" from here too
            Route("/feeds/", index, methods=methods),
            Route("/feeds/{name}", feed, methods=methods),
            Route("/feeds/entries/{name}", entry, methods=methods),
            Route("/search", search, methods=methods),
            Route("/healthz", healthz, methods=methods),
        ],
        exception_handlers={404: not_found},
        lifespan=lifetime,
    )
    # No redirects built from the request's Host header: a wrong path is a 404.
    app.router.redirect_slashes = False
    return app


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, telling us the moment SIGTERM or Ctrl-C arrives, and stopping
    as they stop it once ``until`` is set."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_signal: Callable[[], None],
        until: threading.Event | None = None,
    ) -> None:
        super().__init__(config)
        self.on_signal = on_signal
        self.until = until

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_signal()  # first: no new job starts while connections drain
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.until is not None and self.until.is_set():
            self.should_exit = True
        return await super().on_tick(counter)


def serve(
    app: Starlette,
    listener: socket.socket,
    settings: ServeSettings,
    on_signal: Callable[[], None],
    until: threading.Event | None = None,
) -> None:
    """Run ``app`` on ``listener`` with the connection limits of ``[serve]`` until a signal
    (or ``until`` is set: a restart, see aggregator.reload).

    On SIGTERM or Ctrl-C: ``on_signal`` is called, the listener closes, requests in
    flight get up to ``shutdown_grace`` seconds, then the app's lifespan ends.
    """
    limits = Limits(
        header_timeout=settings.header_timeout,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        max_connections=settings.max_connections,
        send_timeout=settings.send_timeout,
    )
    host, port = listener.getsockname()[:2]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=limited_protocol(limits),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=max(1, round(settings.keep_alive_timeout)),
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace)),
        backlog=2048,
    )
    quiet = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, QuietRefusals) for f in quiet.filters):
        quiet.addFilter(QuietRefusals())
        quiet.addFilter(CutAtShutdown())
    _Uvicorn(config, on_signal, until).run(sockets=[listener])
