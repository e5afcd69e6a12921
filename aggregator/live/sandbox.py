"""Parsing untrusted feeds in worker processes bounded in time and memory.

A hostile or broken document can make a parser spin or balloon (entity tricks
that slip past the defusing, pathological markup for the fallback parser). So
feed documents are parsed in a small pool of worker processes, each with an
address-space limit; a parse that runs past its time limit is killed with its
worker, which is replaced on the next use. Either way it is an error for that
source alone.

Workers start from a fork server that has already imported the parser, so a
new worker costs a fork, not a fresh interpreter.
"""

from __future__ import annotations

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

    def _take(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            worker = _Worker(self._forkserver(), self.memory)
            with self._lock:
                self._all.append(worker)
            return worker

    def _forkserver(self) -> ForkServerContext:
        with self._lock:
            if self._context is None:
                import multiprocessing

                self._context = multiprocessing.get_context("forkserver")
                self._context.set_forkserver_preload(["aggregator.live.feedparse"])
            return self._context

    def _discard(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            self._all.remove(worker)

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
