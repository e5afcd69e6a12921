"""Parsing untrusted feeds in worker processes bounded in time and memory.

A hostile or broken document can make a parser spin or balloon (entity tricks
that slip past the defusing, pathological markup for the fallback parser). So
feed documents are parsed in a small pool of worker processes, each with an
address-space limit; a parse that runs past its time limit is killed with its
worker, which is replaced on the next use. Either way it is an error for that
source alone. (A run may also have its workers render a large publish once its sources
are read: :meth:`Sandbox.call` runs a function of ours there, under the same limits.)

A run starts the workers as it starts asking its sources (:meth:`Sandbox.warm`).
A sandbox made with ``fork_ahead`` (``aggregator run``'s), while its process has one
thread only (as a run has then), forks them from the process itself, and the first
imports the parsers on another core while the first answers arrive (the others with
their first task: see Driver._lane for when they get one): a fork and an import,
where a fork server costs a new interpreter first (0.1 to 0.2 s, on the critical path
of a run). A forked worker closes the files and sockets it inherited (the store, its
lock, the other workers' pipes, a connection to PostgreSQL), so that it holds nothing
of the run's and ends when the run does. Otherwise (``serve``, whose workers live as
long as it does, or a worker that replaces a stopped one) workers come from a fork
server that has already imported the parsers, so each costs a fork.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aggregator.errors import SourceError
from aggregator.model import MAX_ENTRIES

# multiprocessing is imported when the first worker starts: a run that parses nothing
# (every source fresh, or answering 304) never starts one.
if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import ForkContext, ForkServerContext
    from multiprocessing.process import BaseProcess

    from aggregator.live.driver import Driver
    from aggregator.live.feedparse import FeedDocument

log = logging.getLogger("aggregator")
T = TypeVar("T")

# What the fork server imports once, so that each worker it forks has it already.
PRELOAD = ["aggregator.live.feedparse", "lxml.etree"]
DEFAULT_TIMEOUT = 10.0
DEFAULT_MEMORY = 1 << 30  # bytes of address space per worker


def _forkable() -> bool:
    """Whether a worker may be forked from this process itself: only from its main
    thread while no other runs (a fork copies no other thread, nor any lock one holds)."""
    return threading.current_thread() is threading.main_thread() and threading.active_count() == 1


@contextlib.contextmanager
def _no_interrupt() -> Iterator[None]:
    """Ctrl-C (and SIGTERM, which a run takes as it takes Ctrl-C) held back while this
    process forks, and taken once the fork is done.

    The interpreter's fork hooks take and give back module locks (logging's among them):
    a KeyboardInterrupt raised inside one is swallowed, and leaves the lock held, so the
    next thread to log or import hung for ever, with the run's write lock held (found
    by review, in 2 to 3 of 100 Ctrl-Cs early in a run). The worker inherits the held
    signal, which it ignores anyway (_serve)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # (signals are taken by the main thread only)
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _close_inherited(keep: int) -> None:
    """Close the regular files and sockets a worker forked from the run inherited (the
    store, its lock, a log, the run's end of every worker's pipe: the worker sees the end
    of its own when the run ends), all but its own end, ``keep``. Standard streams stay,
    and multiprocessing's own pipes (it tells a worker's end by them)."""
    import os
    import stat
    from pathlib import Path

    try:
        names = [entry.name for entry in Path("/proc/self/fd").iterdir()]
    except OSError:
        return
    for name in names:
        fd = int(name)
        if fd <= 2 or fd == keep:
            continue
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode) or stat.S_ISSOCK(mode):
                os.close(fd)
        except OSError:  # the listing's own descriptor, closed already
            continue


def _address_space() -> int:
    """Bytes of address space this process has mapped (0 when it cannot be told)."""
    import resource
    from pathlib import Path

    try:
        return int(Path("/proc/self/statm").read_bytes().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _serve(conn: Connection, memory: int, forked: bool = False, lazy: bool = False) -> None:
    """A worker's loop: parse what arrives (or run a call, :meth:`Sandbox.call`), send
    back the document or the error. ``lazy``: the parsers are loaded, and the memory
    limit set, when the first task comes rather than at once."""
    # Ctrl-C in a terminal reaches the whole process group: the main process stops the
    # workers itself (close), so they neither stop halfway nor print a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Forked from a run, it has the run's own SIGTERM handler (aggregator.cli), which
    # raises in the main thread: a worker is stopped by SIGTERM, and ends there.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if forked:  # from the run itself (Sandbox.warm): a copy of what it had
        _close_inherited(conn.fileno())
    loaded = False if lazy else _load_parsers(memory)
    while True:
        try:
            kind, *task = conn.recv()
        except (EOFError, OSError):  # the run ended, or was killed: nothing to answer
            return
        loaded = loaded or _load_parsers(memory)
        if kind == "call":
            answer = _call(*task)
            try:
                conn.send(answer)
            except OSError:  # the run is gone (killed): no traceback on its terminal
                return
            except Exception as error:  # pickled before anything is written
                if not _send(conn, ("error", f"its result could not be sent back: {error}")):
                    return
            continue
        data, url, name, content_type, max_entries, known = task
        from aggregator.live.document import pack
        from aggregator.live.feedparse import parse_feed
        from aggregator.live.jsonfeed import is_json_feed, parse_json_feed

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
        if not _send(conn, reply):
            return


def _send(conn: Connection, reply: tuple[str, Any]) -> bool:
    """Send ``reply``; False when the run is gone (it was killed: the pipe is closed),
    so that the worker ends quietly instead of printing a traceback where cron mails it."""
    try:
        conn.send(reply)
    except OSError:
        return False
    return True


def _load_parsers(memory: int) -> bool:
    """Import the parsers, then limit the worker's address space (True, when done).

    A parse may map ``memory`` bytes more than the worker has mapped before its first
    document (the parsers; for a forked worker, also the run it was copied from). (Never
    above a limit the process was given: raising that would fail.) The hard limit too,
    so that the worker cannot raise its own."""
    import resource

    import aggregator.live.document
    import aggregator.live.feedparse
    import aggregator.live.jsonfeed  # noqa: F401

    limit = memory + _address_space()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return True


def _call(function: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
    """A call's reply: its result, or what went wrong, in one line."""
    try:
        return ("ok", function(*args))
    except MemoryError:
        return ("error", "ran out of the worker's memory")
    except Exception as error:
        return ("error", f"{type(error).__name__}: {error}")


class _Worker:
    def __init__(
        self, context: ForkServerContext | ForkContext, memory: int, lazy: bool = False
    ) -> None:
        self.conn, child = context.Pipe()
        forked = context.get_start_method() == "fork"
        # Forked from the run and given no task yet: it loads the parsers with its first
        # (a driver gives it one only when the others fall behind: Driver._lane).
        self.lazy = lazy and forked
        self.process: BaseProcess = context.Process(
            target=_serve,
            args=(child, memory, forked, self.lazy),
            daemon=True,
            name="aggregator-parser",
        )
        self.process.start()
        child.close()
        # Tasks handed to this worker and not yet answered (at most DEPTH; the sandbox's
        # lock guards it). Each is sent with a ticket, and the answers come back in
        # that order: the task whose ticket is next reads the next answer.
        self.load = 0
        self.send_lock = threading.Lock()
        self.turn = threading.Condition()
        self.sent = 0
        self.answered = 0
        self.dead = False  # stopped: the tasks still queued on it are sent again
        self.broken = False  # found failing by a task queued on it: given no more tasks
        self._stopping = threading.Lock()
        self._stopped = False

    def stop(self) -> None:
        """Close the pipe and end the process; once, however many threads ask."""
        with self._stopping:
            if self._stopped:
                return
            self._stopped = True
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


class _Closed(Exception):
    """The sandbox was closed: no document is parsed any more."""


class _Died(Exception):
    """The worker ended before it answered (its exit code)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


class _Late(Exception):
    """The worker did not answer within the time limit; it was stopped."""


class _Again(Exception):
    """The task was queued behind another on a worker that has stopped since: it was
    never started, and is sent to another worker."""


# Tasks a worker holds at once: the one it works on, and the next ones, sent while it
# works, so that it starts the next as soon as it has answered, not after the round trip
# of an answer through this process (with two workers, that round trip was what paced a
# run). Four, not two: this process folds a document's items between answers (0.5 to 8
# ms), and a worker with only one task in hand then finished it and waited (half of a
# cold run's reads); cold runs 5% quicker, steady ones 4.5% (eight pairs each), and six
# were slower than four (docs/benchmarks.md, issue 14, thirteenth pass).
DEPTH = 4


class WorkerError(Exception):
    """A call could not be run in a worker: the message says why."""


class Sandbox:
    """A pool of parser processes; :meth:`parse` is safe to call from many threads.

    At most ``size`` workers run. A parse takes an idle worker, else starts one while
    fewer than ``size`` are started (or being started ahead, :meth:`warm`), else queues
    behind the task of the least busy worker (at most DEPTH tasks a worker), else waits;
    one condition wakes every waiter when a worker answers, one fails to start, or the
    sandbox closes. A task's time limit counts from when its worker starts on it: when
    the task before it is answered. A task queued behind one that stops its worker (a
    crash, its time up) never started there, and goes to another worker.
    """

    def __init__(
        self,
        workers: int = 2,
        timeout: float = DEFAULT_TIMEOUT,
        memory: int = DEFAULT_MEMORY,
        *,
        fork_ahead: bool = False,
    ) -> None:
        self.size = max(1, workers)
        self.fork_ahead = fork_ahead  # warm() may fork the workers from this process
        self.timeout = timeout
        self.memory = memory
        self._context: ForkServerContext | None = None  # made with the first worker
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._started = 0  # workers running or being started
        self._all: list[_Worker] = []
        self._warmed = False
        self._warming: threading.Thread | None = None  # the thread starting them, if any
        self._closed = False
        # The event loop's driver that holds workers now, if any (aggregator.live.driver):
        # a task asked from a thread meanwhile is run there.
        self._driver: Driver | None = None

    @property
    def started(self) -> bool:
        """Whether any worker is running (or being started)."""
        with self._lock:
            return self._started > 0

    def _take(self) -> _Worker:
        """A worker for one more task, its load counted (see the class)."""
        with self._changed:
            while True:
                if self._closed:
                    raise _Closed
                running = [w for w in self._all if not (w.dead or w.broken)]
                idle = [w for w in running if w.load == 0]
                if idle:
                    idle[-1].load += 1
                    return idle[-1]
                if self._started < self.size:
                    self._started += 1
                    break
                room = [w for w in running if w.load < DEPTH]
                if room:
                    worker = min(room, key=lambda w: w.load)
                    worker.load += 1
                    return worker
                self._changed.wait()
        return self._start_one()

    def _start_one(self, fork: bool = False, pooled: bool = True, lazy: bool = False) -> _Worker:
        """A new worker, counted in ``_started`` already (the count is given back when
        it cannot start, or the sandbox closed meanwhile); ``fork``: forked from this
        process (see :func:`_forkable`), else from the fork server. ``pooled``: put in
        the pool, taken by whoever started it; else kept out of it, idle (a driver's)."""
        try:
            if fork:
                import multiprocessing

                with _no_interrupt():
                    worker = _Worker(multiprocessing.get_context("fork"), self.memory, lazy)
            else:
                worker = _Worker(self._forkserver(), self.memory)
        except BaseException:
            with self._changed:
                self._started -= 1
                self._changed.notify_all()
            self._poke()
            raise
        with self._changed:
            closed = self._closed
            if not closed and pooled:
                worker.load = 1  # for whoever started it: given back when done
                self._all.append(worker)
                self._changed.notify_all()  # its second place is free for a waiter
        if closed:
            worker.stop()
            raise _Closed
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._changed:
            worker.load -= 1
            closed = self._closed
            self._changed.notify_all()
        self._poke()
        if closed:
            worker.stop()

    def _poke(self) -> None:
        """Tell the attached driver, if any, that a worker may be free or the sandbox
        closed."""
        driver = self._driver
        if driver is not None:
            driver.poke()

    # -- For a driver (aggregator.live.driver), which takes workers out of the pool while
    # -- it is attached: they stay counted in _started, but are not in _all.

    def _attach(self, driver: Driver) -> bool:
        with self._lock:
            if self._driver is not None or self._closed:
                return False
            self._driver = driver
            return True

    def _detach(self, driver: Driver) -> None:
        with self._changed:
            if self._driver is driver:
                self._driver = None
            self._changed.notify_all()

    def _adopt_idle(self) -> list[_Worker]:
        """The idle workers of the pool, taken out of it."""
        with self._lock:
            idle = [w for w in self._all if w.load == 0 and not (w.dead or w.broken)]
            for worker in idle:
                self._all.remove(worker)
            return idle

    def _reserve(self) -> bool:
        """Count one more worker about to start, if there is room for it."""
        with self._lock:
            if self._closed or self._started >= self.size:
                return False
            self._started += 1
            return True

    def _spawn(self) -> _Worker:
        """A new worker from the fork server, counted by :meth:`_reserve` already, and
        never in the pool (its pipe is the caller's to drive)."""
        return self._start_one(pooled=False)

    def _return(self, worker: _Worker) -> None:
        """A driven worker, idle and its pipe blocking again, back into the pool."""
        with self._changed:
            closed = self._closed
            if not closed:
                worker.load = 0
                self._all.append(worker)
            self._changed.notify_all()
        if closed:
            self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        """A driven worker stopped (it failed, or still had tasks when its driver let go)."""
        worker.dead = True
        worker.stop()
        with self._changed:
            self._started -= 1
            self._changed.notify_all()

    def _forkserver(self) -> ForkServerContext:
        with self._lock:
            if self._context is None:
                import multiprocessing

                self._context = multiprocessing.get_context("forkserver")
                self._context.set_forkserver_preload(PRELOAD)
            return self._context

    def warm(self) -> None:
        """Start the parser workers now, for documents about to come.

        With ``fork_ahead``, called from a process that runs one thread only, the workers
        are forked from it here (a few milliseconds); each imports the parsers on another
        core while the first answers arrive. Otherwise a thread starts them from the fork
        server, whose own start (a new interpreter importing the parsers) takes a fifth of
        a second.
        Safe to call more than once, and a :meth:`close` that comes first or meanwhile
        stops whatever it started.
        """
        with self._lock:
            if self._warmed or self._closed:
                return
            self._warmed = True
            fork = self.fork_ahead and _forkable()
            if not fork:
                self._warming = threading.Thread(
                    target=self._start_workers, name="aggregator-parser-warm", daemon=True
                )
        if self._warming is None:
            self._start_workers(fork=True)
        else:
            self._warming.start()

    def _start_workers(self, fork: bool = False) -> None:
        while True:
            with self._changed:
                if self._closed or self._started >= self.size:
                    return
                self._started += 1
                first = self._started == 1
            try:
                # Forked ahead, the first loads the parsers at once, the others with
                # their first task: a run that one worker keeps up with (a steady poll)
                # loads them once.
                worker = self._start_one(fork, lazy=fork and not first)
            except _Closed:
                return
            except Exception:  # left to be started on demand, where its error shows
                log.debug("starting a parser worker ahead failed", exc_info=True)
                return
            self._give_back(worker)

    def _discard(self, worker: _Worker) -> None:
        with worker.turn:  # the tasks queued behind go to other workers
            worker.dead = True
            worker.turn.notify_all()
        worker.stop()
        with self._changed:
            if worker in self._all:  # not when close() took it (and stopped it) first
                self._all.remove(worker)
                self._started -= 1
                self._changed.notify_all()
        self._poke()

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
        task = ("parse", data, url, name, content_type, max_entries, known)
        try:
            reply = self._ask(task)
        except (_Closed, _Died, _Late) as error:
            raise self._parse_failure(error, name=name, url=url) from None
        return self._document(reply, name=name, url=url)

    def _parse_failure(self, error: Exception, *, name: str, url: str) -> SourceError:
        """What a parse that got no answer says (the worker stopped, or ran out of time)."""
        if isinstance(error, _Died):
            message = f"parser process died (exit code {error.code}); document refused"
        elif isinstance(error, _Late):
            message = f"parsing took longer than {self.timeout:g} s; stopped"
        else:
            message = "not parsed: the parser workers were stopped"
        return SourceError(name, url, message)

    @staticmethod
    def _document(reply: tuple[str, Any], *, name: str, url: str) -> FeedDocument:
        """The document a worker's answer to a parse holds, or its error raised."""
        status, value = reply
        if status == "error":
            raise SourceError(name, url, str(value))
        from aggregator.live.document import unpack

        return unpack(value)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` run in a worker, under the same limits of time and memory
        as a parse; for work that need not hold up this process (rendering). Any failure
        raises :class:`WorkerError`: the caller may then do the work itself. ``function``
        and ``args`` go to the worker and the result comes back by pickling."""
        try:
            status, value = self._ask(("call", function, args))
        except _Closed:
            raise WorkerError("the workers were stopped") from None
        except _Died as error:
            raise WorkerError(f"the worker died (exit code {error.code})") from error
        except _Late:
            raise WorkerError(f"took longer than {self.timeout:g} s; stopped") from None
        if status == "error":
            raise WorkerError(str(value))
        return cast(T, value)

    def _ask(self, task: tuple[Any, ...]) -> tuple[str, Any]:
        """Send ``task`` to a worker, and its answer back (see the class). A worker that
        died, did not answer in time, or was interrupted is stopped and not used again.
        (A task that cannot be pickled raises here, and costs no worker.)"""
        from multiprocessing.reduction import ForkingPickler

        payload = bytes(ForkingPickler.dumps(task))
        driver = self._driver
        if driver is not None:  # it holds the workers: the task is run on its loop
            answer = driver.ask_from_thread(payload)
            if answer is not None:
                return answer
        while True:
            worker = self._take()
            try:
                return self._ask_one(worker, payload)
            except _Again:
                continue
            finally:
                self._give_back(worker)

    def _ask_one(self, worker: _Worker, payload: bytes) -> tuple[str, Any]:
        ticket: int | None = None
        try:
            with worker.send_lock:
                if worker.dead:
                    raise _Again  # stopped since it was taken
                ticket = worker.sent
                worker.sent += 1
                worker.lazy = False
                worker.conn.send_bytes(payload)
            with worker.turn:
                while worker.answered != ticket and not worker.dead:
                    worker.turn.wait()
                if worker.dead:
                    raise _Again  # never started: the worker ended on a task before it
            # The worker is on this task now: its time counts from here.
            if not worker.conn.poll(self.timeout):
                raise _Late
            reply: tuple[str, Any] = worker.conn.recv()
            with worker.turn:
                worker.answered += 1
                worker.turn.notify_all()
            return reply
        except _Again:
            raise
        except _Late:
            self._discard(worker)
            raise
        except Exception as error:
            if self._closed:
                self._discard(worker)
                raise _Closed from error
            if ticket is None or worker.answered != ticket or worker.dead:
                # Not this task's failure: the worker was stopped under a blocked send
                # (its pipe closed: a TypeError or an OSError), or it ended on a task
                # ahead of this one, whose thread finds that out and says so. This task
                # goes elsewhere, and no other goes to this worker meanwhile.
                with self._lock:
                    worker.broken = True
                raise _Again from error
            code = worker.process.exitcode
            self._discard(worker)
            if isinstance(error, (EOFError, OSError)):
                raise _Died(code) from error
            raise
        except BaseException:
            self._discard(worker)  # a worker in an unknown state is not reused
            raise

    def close(self) -> None:
        with self._changed:
            self._closed = True
            workers, self._all = self._all, []
            self._changed.notify_all()  # waiting parses give up
        self._poke()  # an attached driver stops the workers it holds
        for worker in workers:
            with worker.turn:  # and so do those queued on a worker
                worker.dead = True
                worker.turn.notify_all()
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
