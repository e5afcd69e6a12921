"""Parsing untrusted feeds in worker processes bounded in time and memory.

A hostile or broken document can make a parser spin or balloon (entity tricks
that slip past the defusing, pathological markup for the fallback parser). So
feed documents are parsed in a small pool of worker processes, each with an
address-space limit; a parse that runs past its time limit is killed with its
worker, which is replaced on the next use. Either way it is an error for that
source alone.

Workers start from a fork server that has already imported the parser, so a
new worker costs a fork, not a fresh interpreter. A run starts them as it starts
asking its sources (:meth:`Sandbox.warm`), so that the fork server's own start, a
new interpreter importing the parsers, happens on another core while the first
answers arrive.
"""

from __future__ import annotations

import logging
import queue
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aggregator.errors import SourceError
from aggregator.model import MAX_ENTRIES

# multiprocessing is imported when the first worker starts: a run that parses nothing
# (every source fresh, or answering 304) never starts one.
if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import ForkServerContext
    from multiprocessing.process import BaseProcess

    from aggregator.live.feedparse import FeedDocument

log = logging.getLogger("aggregator")

# What the fork server imports once, so that each worker it forks has it already.
PRELOAD = ["aggregator.live.feedparse", "lxml.etree"]
# How long a parse waits for a worker being started ahead before starting its own.
WARM_WAIT = 5.0

DEFAULT_TIMEOUT = 10.0
DEFAULT_MEMORY = 1 << 30  # bytes of address space per worker


def _serve(conn: Connection, memory: int) -> None:
    """A worker's loop: parse what arrives, send back the document or the error."""
    import resource

    from aggregator.live.document import pack
    from aggregator.live.feedparse import parse_feed
    from aggregator.live.jsonfeed import is_json_feed, parse_json_feed

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        data, url, name, content_type, max_entries, known = task
        try:
            # JSON Feed is parsed here too, under the same memory and time limits.
            if is_json_feed(data, content_type):
                document = parse_json_feed(
                    data, url=url, name=name, content_type=content_type, max_entries=max_entries
                )
            else:
                document = parse_feed(
                    data,
                    url=url,
                    name=name,
                    content_type=content_type,
                    max_entries=max_entries,
                    known=known,
                )
            reply: tuple[str, Any] = ("ok", pack(document))  # plain tuples: cheap to pickle
        except SourceError as error:
            reply = ("error", error.message)
        except MemoryError:
            reply = ("error", f"parsing needed more than {memory >> 20} MB; document refused")
        except Exception as error:
            reply = ("error", f"parser failed: {type(error).__name__}: {error}")
        conn.send(reply)


class _Worker:
    def __init__(self, context: ForkServerContext, memory: int) -> None:
        self.conn, child = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_serve, args=(child, memory), daemon=True, name="aggregator-parser"
        )
        self.process.start()
        child.close()

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


class Sandbox:
    """A pool of parser processes; :meth:`parse` is safe to call from many threads."""

    def __init__(
        self, workers: int = 2, timeout: float = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY
    ) -> None:
        self.size = max(1, workers)
        self.timeout = timeout
        self.memory = memory
        self._context: ForkServerContext | None = None  # made with the first worker
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._started = 0
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(self.size)
        self._warming: threading.Thread | None = None
        self._closed = False

    def _take(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            start = self._started < self.size
            if start:
                self._started += 1
        if not start:
            # Every worker is started or being started ahead (warm), and the slot this
            # thread holds means one of them is not in use: it is on its way.
            try:
                return self._idle.get(timeout=WARM_WAIT)
            except queue.Empty:
                with self._lock:
                    self._started += 1
        try:
            worker = _Worker(self._forkserver(), self.memory)
        except BaseException:
            with self._lock:
                self._started -= 1
            raise
        with self._lock:
            self._all.append(worker)
        return worker

    def _forkserver(self) -> ForkServerContext:
        with self._lock:
            if self._context is None:
                import multiprocessing

                self._context = multiprocessing.get_context("forkserver")
                self._context.set_forkserver_preload(PRELOAD)
            return self._context

    def warm(self) -> None:
        """Start the parser workers now, in the background, for documents about to come.

        Starting the fork server (a new interpreter importing the parsers) takes about a
        fifth of a second; begun as the fetches begin, it happens on another core while
        the first answers arrive, not after. Safe to call more than once, and a
        :meth:`close` that comes first or meanwhile stops whatever it started.
        """
        with self._lock:
            if self._warming is not None or self._closed:
                return
            self._warming = threading.Thread(
                target=self._start_workers, name="aggregator-parser-warm", daemon=True
            )
        self._warming.start()

    def _start_workers(self) -> None:
        while True:
            with self._lock:
                if self._closed or self._started >= self.size:
                    return
                self._started += 1
            try:
                worker = _Worker(self._forkserver(), self.memory)
            except Exception:  # left to be started on demand, where its error shows
                with self._lock:
                    self._started -= 1
                log.debug("starting a parser worker ahead failed", exc_info=True)
                return
            with self._lock:
                closed = self._closed
                if not closed:
                    self._all.append(worker)
            if closed:
                worker.stop()
                return
            self._idle.put(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            self._all.remove(worker)
            self._started -= 1

    def parse(
        self,
        data: bytes,
        *,
        url: str,
        name: str,
        content_type: str | None = None,
        max_entries: int = MAX_ENTRIES,
        known: frozenset[str] = frozenset(),
    ) -> FeedDocument:
        """Parse in a worker; SourceError on a bad document, a timeout or a crash.

        At most ``max_entries`` entries come back (see :func:`parse_feed`), which also
        bounds what is pickled back from the worker (about 25 ms for 1,000 entries);
        items whose digests are in ``known`` are not cleaned and do not come back.
        """
        with self._slots:
            worker = self._take()
            try:
                worker.conn.send((data, url, name, content_type, max_entries, known))
                if not worker.conn.poll(self.timeout):
                    self._discard(worker)
                    raise SourceError(
                        name, url, f"parsing took longer than {self.timeout:g} s; stopped"
                    )
                status, value = worker.conn.recv()
            except (EOFError, OSError) as error:
                code = worker.process.exitcode
                self._discard(worker)
                raise SourceError(
                    name, url, f"parser process died (exit code {code}); document refused"
                ) from error
            self._idle.put(worker)
        if status == "error":
            raise SourceError(name, url, str(value))
        from aggregator.live.document import unpack

        return unpack(value)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
        for worker in workers:
            worker.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
