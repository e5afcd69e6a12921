"""The sandbox's parser workers driven from an event loop, without threads between.

A run reads its sources on one asyncio loop. Handed to the sandbox through a thread
(``asyncio.to_thread(sandbox.parse, ...)``), each document costs the loop three thread
switches, each a wait for the interpreter lock: about 0.5 ms of the run's own CPU per
document, on the core the whole run waits on. A :class:`Driver`, while it is attached,
holds the sandbox's idle workers and talks to them from the loop itself, beside the
fetches' sockets: it writes each task into a worker's pipe as the pipe takes it, and
reads the answer when it arrives.

Nothing else changes: the same tasks and answers (framed as
:class:`multiprocessing.connection.Connection` frames them, so that a worker reads them
with ``recv`` as ever), at most DEPTH tasks on a worker, the time limit counted from
when a worker starts on a task, a worker that dies or runs out of time stopped and the
tasks queued behind its own sent to another, and the same errors. A task asked from
another thread meanwhile (a local file, read in a thread) is run on the loop too. When
the driver lets go, its idle workers go back to the sandbox; one with tasks unanswered
(the run was interrupted) is stopped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import pickle
import struct
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aggregator.live.sandbox import DEPTH, Sandbox, _Again, _Closed, _Died, _Late, _Worker
from aggregator.model import MAX_ENTRIES

if TYPE_CHECKING:
    from aggregator.live.feedparse import FeedDocument

Reply = tuple[str, Any]

# A pipe's answer is read this much at a time (a large one over several reads).
_READ = 1 << 20
# Connection's frame: a 4-byte signed length; -1 and an 8-byte length above 2 GiB.
_SHORT = struct.Struct("!i")
_LONG = struct.Struct("!Q")


class _Detached(Exception):
    """The driver let go of the workers: the task goes the sandbox's own way."""


class _Task:
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Reply]) -> None:
        self.future = future


class _Lane:
    """A worker the loop drives: its tasks sent and not answered, oldest first (the
    first is the one it works on), what is still to be written into its pipe, and what
    was read of the next answer."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.fd = worker.conn.fileno()
        self.tasks: deque[_Task] = deque()
        self.out: deque[memoryview] = deque()
        self.writing = False  # waiting for the pipe to take more
        self.inbox = bytearray()
        self.clock: asyncio.TimerHandle | None = None


class Driver:
    """The workers of a ``sandbox``, driven from ``loop`` (see the module); made by
    :meth:`attached`. Its methods, but :meth:`ask_from_thread` and :meth:`poke`, run on
    the loop."""

    def __init__(self, sandbox: Sandbox, loop: asyncio.AbstractEventLoop) -> None:
        self.sandbox = sandbox
        self.loop = loop
        self._lanes: list[_Lane] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._detached = False
        # Workers are started (from the fork server) in a thread of the driver's own: the
        # loop's default threads may all be waiting on the driver (local files, parsed
        # through it), which would then wait for a worker forever.
        self._starter: concurrent.futures.ThreadPoolExecutor | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def attached(cls, sandbox: Sandbox) -> AsyncIterator[Driver | None]:
        """A driver of ``sandbox``'s workers on the running loop, until the block ends;
        None when another driver holds them (or the sandbox is closed): then parse
        through threads, as without one."""
        driver = cls(sandbox, asyncio.get_running_loop())
        if not sandbox._attach(driver):
            yield None
            return
        try:
            yield driver
        finally:
            driver._let_go()

    async def parse(
        self,
        data: bytes,
        *,
        url: str,
        name: str,
        content_type: str | None = None,
        max_entries: int = MAX_ENTRIES,
        known: frozenset[str] = frozenset(),
    ) -> FeedDocument:
        """:meth:`Sandbox.parse`, awaited on the loop."""
        from multiprocessing.reduction import ForkingPickler

        task = ("parse", data, url, name, content_type, max_entries, known)
        payload = bytes(ForkingPickler.dumps(task))
        try:
            # A document of a source read before brings its items' digests: most of it
            # is skipped, and one worker keeps up (see _lane).
            reply = await self.ask(payload, heavy=not known)
        except (_Closed, _Detached, _Died, _Late) as error:
            raise self.sandbox._parse_failure(error, name=name, url=url) from None
        return self.sandbox._document(reply, name=name, url=url)

    async def ask(self, payload: bytes, *, heavy: bool = True) -> Reply:
        """A pickled task's answer from a worker (see :meth:`Sandbox._ask`); ``heavy``: a
        task that may start a lazy worker (see :meth:`_lane`)."""
        while True:
            lane = await self._lane(heavy)
            lane.worker.lazy = False
            task = _Task(self.loop.create_future())
            lane.tasks.append(task)
            if len(lane.tasks) == 1:
                self._start_clock(lane)
            self._write(lane, payload)
            try:
                return await task.future
            except _Again:
                continue

    # -- From other threads --------------------------------------------------------------

    def ask_from_thread(self, payload: bytes) -> Reply | None:
        """:meth:`ask`, from another thread: None when the driver let go meanwhile (the
        caller then asks the sandbox's own way)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            raise RuntimeError("a blocking parse on the loop that drives the workers")
        try:
            future = asyncio.run_coroutine_threadsafe(self._forwarded(payload), self.loop)
        except RuntimeError:  # the loop is closed
            self._abandon()
            return None
        while True:
            try:
                return future.result(timeout=1.0)
            except (_Detached, concurrent.futures.CancelledError):
                return None  # let go meanwhile, or the loop ended its tasks
            except TimeoutError:
                if self.loop.is_closed():  # ended without letting go: never to run it
                    future.cancel()
                    self._abandon()
                    return None
                if self._detached and not self.loop.is_running():
                    future.cancel()  # the loop will never run it
                    return None

    async def _forwarded(self, payload: bytes) -> Reply | None:
        try:
            return await self.ask(payload)
        except _Detached:
            return None

    def _abandon(self) -> None:
        """The loop was closed without the driver letting go (not ``asyncio.run``'s way):
        its workers are stopped, so that the sandbox can start others."""
        if not self.loop.is_closed():
            return
        with self.sandbox._lock:  # once, however many threads find it so
            if self._detached:
                return
            self._detached = True
            lanes, self._lanes = self._lanes, []
        self.sandbox._detach(self)
        for lane in lanes:
            self.sandbox._retire(lane.worker)

    def poke(self) -> None:
        """A worker of the sandbox's may be idle, or the sandbox closed: look again."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
            self.loop.call_soon_threadsafe(self._wake)

    # -- Choosing a worker ---------------------------------------------------------------

    async def _lane(self, heavy: bool = True) -> _Lane:
        """A worker for one more task: an idle one, else a new one while fewer than the
        sandbox's size run, else the least busy with room (DEPTH), else wait.

        A worker that has not loaded its parsers yet (``lazy``: forked ahead by a run) is
        given a ``heavy`` task (a document of a source not read before) when the others
        have no room, and a light one never: in a steady poll, where every source was
        read before and most items are skipped, one worker keeps up and the other never
        loads the parsers, so the run's own process, which every step waits on, shares
        the cores with one worker, not two (docs/benchmarks.md, issue 14, eighth pass)."""
        while True:
            if self._detached:
                raise _Detached
            if self.sandbox._closed:
                raise _Closed
            idle = [lane for lane in self._lanes if not lane.tasks]
            ready = [lane for lane in idle if not lane.worker.lazy]
            if ready:
                return ready[-1]
            adopted = [self._add(worker) for worker in self.sandbox._adopt_idle()]
            if adopted:
                continue  # chosen among the others
            if idle:  # lazy ones only
                busy = [lane for lane in self._lanes if not lane.worker.lazy]
                room = [lane for lane in busy if len(lane.tasks) < DEPTH]
                if room:
                    return min(room, key=lambda lane: len(lane.tasks))
                if not busy or heavy:
                    return idle[-1]
            elif self.sandbox._reserve():
                worker = await self._spawn()
                if self._detached or self.sandbox._closed:
                    self.sandbox._return(worker)
                    continue
                return self._add(worker)
            else:
                room = [lane for lane in self._lanes if len(lane.tasks) < DEPTH]
                if room:
                    return min(room, key=lambda lane: len(lane.tasks))
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            await waiter

    async def _spawn(self) -> _Worker:
        """A new worker, started in the driver's thread. Should the caller be cancelled
        meanwhile, the worker still goes to the sandbox once started (from that thread,
        whether the loop still runs or not)."""
        if self._starter is None:
            self._starter = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="aggregator-driver-start"
            )
        starting = self._starter.submit(self.sandbox._spawn)
        try:
            return await asyncio.shield(asyncio.wrap_future(starting, loop=self.loop))
        except asyncio.CancelledError:
            starting.add_done_callback(self._hand_back)
            raise

    def _hand_back(self, starting: concurrent.futures.Future[_Worker]) -> None:
        if not starting.cancelled() and starting.exception() is None:
            self.sandbox._return(starting.result())

    def _add(self, worker: _Worker) -> _Lane:
        lane = _Lane(worker)
        os.set_blocking(lane.fd, False)
        self.loop.add_reader(lane.fd, self._readable, lane)
        self._lanes.append(lane)
        return lane

    def _wake(self) -> None:
        """Waiters look for a worker again (the sandbox closed: its workers stop)."""
        while self.sandbox._closed and self._lanes:
            self._drop(self._lanes[0], _Closed())
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- A worker's pipe -----------------------------------------------------------------

    def _write(self, lane: _Lane, payload: bytes) -> None:
        size = len(payload)
        header = _SHORT.pack(size) if size <= 0x7FFFFFFF else _SHORT.pack(-1) + _LONG.pack(size)
        lane.out.append(memoryview(header))
        lane.out.append(memoryview(payload))
        if not lane.writing:
            self._flush(lane)

    def _flush(self, lane: _Lane) -> None:
        """Write what the pipe takes now; the rest when it takes more."""
        try:
            while lane.out:
                chunk = lane.out[0]
                written = os.write(lane.fd, chunk)
                if written < len(chunk):
                    lane.out[0] = chunk[written:]
                else:
                    lane.out.popleft()
        except BlockingIOError:
            if not lane.writing:
                lane.writing = True
                self.loop.add_writer(lane.fd, self._flush, lane)
            return
        except OSError:  # the worker has ended: its answer's read says how
            self._lost(lane)
            return
        if lane.writing:
            lane.writing = False
            self.loop.remove_writer(lane.fd)

    def _readable(self, lane: _Lane) -> None:
        ended = False  # the pipe closed: the answers read before it count first
        try:
            while True:
                chunk = os.read(lane.fd, _READ)
                if not chunk:
                    ended = True
                    break
                lane.inbox += chunk
                if len(chunk) < _READ:
                    break
        except BlockingIOError:
            pass
        except OSError:
            ended = True
        self._answers(lane)
        if ended:
            self._lost(lane)

    def _answers(self, lane: _Lane) -> None:
        """Each whole answer read so far, to its task."""
        box = lane.inbox
        while len(box) >= _SHORT.size and lane in self._lanes:
            (size,) = _SHORT.unpack_from(box)
            start = _SHORT.size
            if size == -1:
                if len(box) < _SHORT.size + _LONG.size:
                    return
                (size,) = _LONG.unpack_from(box, _SHORT.size)
                start += _LONG.size
            if len(box) < start + size:
                return
            frame = box[start : start + size]
            del box[: start + size]
            try:
                reply: Reply = pickle.loads(frame)
            except Exception:  # not an answer of ours: the worker is not to be trusted
                self._drop(lane, _Died(None))
                return
            self._answered(lane, reply)

    def _answered(self, lane: _Lane, reply: Reply) -> None:
        if not lane.tasks:  # an answer to nothing asked: the worker is not to be trusted
            self._drop(lane, _Died(None))
            return
        task = lane.tasks.popleft()
        self._stop_clock(lane)
        if lane.tasks:  # the worker starts on the next: its time counts from now
            self._start_clock(lane)
        if not task.future.done():
            task.future.set_result(reply)
        self._wake()

    def _start_clock(self, lane: _Lane) -> None:
        head = lane.tasks[0]
        lane.clock = self.loop.call_later(self.sandbox.timeout, self._late, lane, head)

    def _stop_clock(self, lane: _Lane) -> None:
        if lane.clock is not None:
            lane.clock.cancel()
            lane.clock = None

    def _late(self, lane: _Lane, task: _Task) -> None:
        # (An answer begun in time counts, as a thread's poll() would have it: the
        # rest of it is on its way.)
        if lane in self._lanes and lane.tasks and lane.tasks[0] is task and not lane.inbox:
            self._drop(lane, _Late())

    def _lost(self, lane: _Lane) -> None:
        """The worker's pipe closed: it ended (killed for its memory, or a crash)."""
        if lane not in self._lanes:
            return
        lane.worker.process.join(timeout=1.0)  # it has ended: its exit code is near
        self._drop(lane, _Died(lane.worker.process.exitcode))

    def _unwatch(self, lane: _Lane) -> None:
        self._stop_clock(lane)
        self.loop.remove_reader(lane.fd)
        if lane.writing:
            self.loop.remove_writer(lane.fd)
            lane.writing = False
        self._lanes.remove(lane)

    def _drop(self, lane: _Lane, error: Exception) -> None:
        """Stop a worker: its current task fails with ``error``, those behind it go to
        another worker (or fail the same way, when the sandbox is closed or let go)."""
        if lane not in self._lanes:  # dropped already (a close drops every lane)
            return
        self._unwatch(lane)
        self.sandbox._retire(lane.worker)
        behind: Exception = error if isinstance(error, (_Closed, _Detached)) else _Again()
        for index, task in enumerate(lane.tasks):
            if not task.future.done():
                task.future.set_exception(error if index == 0 else behind)
        lane.tasks.clear()
        self._wake()

    def _let_go(self) -> None:
        """Give the idle workers back to the sandbox, their pipes blocking again; stop
        those with tasks unanswered (their tasks' callers ask the sandbox's own way)."""
        self._detached = True
        self.sandbox._detach(self)
        while self._lanes:
            lane = self._lanes[0]
            if lane.tasks or lane.out or lane.inbox:
                self._drop(lane, _Detached())
            else:
                self._unwatch(lane)
                os.set_blocking(lane.fd, True)
                self.sandbox._return(lane.worker)
        if self._starter is not None:  # a worker being started goes to the sandbox
            self._starter.shutdown(wait=False)
        self._wake()
