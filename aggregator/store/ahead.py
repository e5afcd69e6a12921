"""A run's new stories written while its sources are still read (pipeline.Folding).

A cold run's writes, 10,000 new stories with their search index, topics and sightings,
took 0.6 s after its last source was read, on one core while the other waited. Here a
thread writes them as the sources are read: SQLite does that work with the
interpreter's lock released, beside the reading.

What is written ahead is what the run's plan writes at its end, in the same
transaction (begun for it, :meth:`Store.begin`; the publish's carries it on and ends
it), so that a run stopped anywhere leaves nothing of it. Only new stories are written
ahead, with their topics and their sightings: stories the planner never looks up
again (it has their title keys, item ids and ids from then on), so that what it reads
is still the store as it was before the run. Meanwhile it reads through a second
connection, which sees the store so and never waits for the writes. A story written
ahead that a later source changes is written again at the end (the plan's writer
compares each row: :meth:`SQLStore.apply_plan`); one with no time of its own waits for
the end, where its place among the run's stories is known (plan.reading_places), and
so do its sightings.

The connection is the store's own: this thread writes on it only while the run reads
(:meth:`WritingAhead.finish` and :meth:`WritingAhead.close` wait for it first), so no
statement of the run ever runs beside one of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aggregator.model import Entry
from aggregator.store.plan import Planner, Sighting, WrittenAhead, needs_place
from aggregator.store.sql import INSERT_ROWS

if TYPE_CHECKING:
    from aggregator.store.sqlite import Store


class WritingAhead:
    """Writes a run's new stories as they are folded (:meth:`add`), in a thread, a
    statement of ``rows`` stories at a time.

    ``begin`` is called once the transaction is begun, before anything is written in
    it: it judges the stored stories again when the topic rules changed (pipeline),
    and says whether it did. A store that cannot begin (or a ``begin`` that fails)
    writes nothing ahead: the run writes everything at its end, as it would have, and
    meets the same trouble there, where it is reported."""

    def __init__(
        self,
        store: Store,
        now: datetime,
        *,
        begin: Callable[[], bool],
        rows: int = INSERT_ROWS,
    ) -> None:
        self.store = store
        self._stamp = now.isoformat()
        self._begin = begin
        self._rows = max(1, rows)
        self._began = False
        self._given_up = False
        self._rejudged = False
        self._reader: Store | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[None]] = []
        self._stopped = False  # no more statements from the thread
        self._done: WrittenAhead | None = None  # what finish said
        # What is written (or handed to the thread): rows and topics by story id, and
        # the places of the sightings among the planner's.
        self._written: dict[str, tuple[Any, ...]] = {}
        self._labels: dict[str, tuple[str, ...]] = {}
        self._sightings: set[int] = set()
        self._waiting: set[str] = set()  # left to the end, for good (see the module)
        self._looked = 0  # how many of the planner's sightings were looked at
        self._rows_due: list[tuple[Any, ...]] = []
        self._labels_due: list[tuple[str, str, str]] = []
        self._sightings_due: list[Sighting] = []

    @property
    def reads(self) -> Store:
        """The store to look stories up in while the run reads: as it was before it."""
        return self._reader or self.store

    def add(
        self,
        stories: Sequence[Entry],
        judged: Mapping[str, tuple[Entry, Entry]],
        planner: Planner,
    ) -> None:
        """New stories a batch made or changed (as the planner has them now, each with
        its row made ahead: :meth:`SQLStore.prepare`, and judged: ``judged`` by id, the
        story and the story labelled), then the planner's sightings since the last
        call."""
        if self._given_up:
            return
        for entry in stories:
            if entry.id in self._written or entry.id in self._waiting:
                continue  # written once ahead: a change is written at the end
            row = self.store.prepared_row(entry)
            labelled = judged.get(entry.id)
            if (
                row is None
                or needs_place(entry.published)
                or labelled is None
                or labelled[0] is not entry
            ):
                self._waiting.add(entry.id)
                continue
            self._written[entry.id] = row
            topics = self._labels[entry.id] = tuple(labelled[1].topics)
            self._rows_due.append(row)
            self._labels_due += [(topic, entry.id, row[-2]) for topic in topics]
        sightings = planner.sightings_from(self._looked)
        for number, sighting in enumerate(sightings, start=self._looked):
            if sighting[0] in self._written:
                self._sightings.add(number)
                self._sightings_due.append(sighting)
        self._looked += len(sightings)
        if len(self._rows_due) >= self._rows:
            self._send()

    def _send(self) -> None:
        if not self._began and not self._start():
            return
        if any(f.done() and f.exception() is not None for f in self._futures):
            return  # failed: said by finish, which the rows left due then wait for
        work = (self._rows_due, self._labels_due, self._sightings_due)
        self._rows_due, self._labels_due, self._sightings_due = [], [], []
        assert self._pool is not None
        self._futures.append(self._pool.submit(self._write, *work))

    def _start(self) -> bool:
        """Begin the transaction and what comes first in it; False (and nothing written
        ahead from then on) when that fails."""
        from aggregator.store.sqlite import Store

        try:
            reader = Store.read_only(self.store.path)
        except Exception:  # (a store that cannot be read twice: written at the end)
            self._give_up()
            return False
        try:
            self.store.begin()
            self._rejudged = self._begin()
        except Exception:
            reader.close()
            self.store.abandon()
            self._give_up()
            return False
        self._reader = reader
        self._began = True
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="aggregator-ahead")
        return True

    def _give_up(self) -> None:
        self._given_up = True
        self._written.clear()
        self._labels.clear()
        self._sightings.clear()
        self._rows_due, self._labels_due, self._sightings_due = [], [], []

    def _write(
        self,
        rows: Sequence[tuple[Any, ...]],
        labels: Sequence[tuple[str, str, str]],
        sightings: Sequence[Sighting],
    ) -> None:
        # Each statement only while the run still reads (see the module).
        if not self._stopped:
            self.store.write_entries(rows)
        if not self._stopped:
            self.store.write_labels(labels)
        if not self._stopped:
            self.store.write_sightings(sightings, self._stamp)

    def _drain(self, *, cancel: bool) -> None:
        """Wait for the thread's work (``cancel``: only for the statement under way),
        however often interrupted meanwhile, then raise the interruption: no statement
        of the run may run beside one of the thread's (see the module)."""
        interrupted: BaseException | None = None
        while self._pool is not None:
            try:
                if cancel:
                    self._stopped = True
                self._pool.shutdown(wait=True, cancel_futures=cancel)
                self._pool = None
            except BaseException as error:  # Ctrl-C, SIGTERM: once the thread is done
                cancel = True
                interrupted = interrupted or error
        if interrupted is not None:
            raise interrupted

    def finish(self) -> WrittenAhead | None:
        """What was written ahead, once the thread is done and the rows left due are
        written here (call first in the publish's transaction, which carries on the one
        begun ahead; again, it says the same); None when nothing was. Raises what a
        write raised."""
        if not self._began:
            return self._done
        try:
            self._drain(cancel=False)
        finally:
            self._close_reader()
        for future in self._futures:
            if (error := future.exception()) is not None:
                raise error
        self._write(self._rows_due, self._labels_due, self._sightings_due)
        self._began = False
        self._done = WrittenAhead(
            dict(self._written), dict(self._labels), frozenset(self._sightings), self._rejudged
        )
        return self._done

    def _close_reader(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                self._reader.close()
            self._reader = None

    def close(self) -> None:
        """Stop writing; roll back what was written when no transaction took it on (the
        run stopped before its publish)."""
        try:
            self._drain(cancel=True)
        finally:
            self._close_reader()
            self.store.abandon()

    def __enter__(self) -> WritingAhead:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
