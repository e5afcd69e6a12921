"""A run's new stories written while its sources are still read (pipeline.Folding).

A cold run's writes, 10,000 new stories with their search index, topics and sightings,
took 0.6 s after its last source was read, on one core while the other waited. Here a
thread writes them as the sources are read: SQLite does that work with the
interpreter's lock released, beside the reading.

What is written ahead is what the run's plan writes at its end, in the same
transaction (begun by the thread, :meth:`Store.begin`, after the stored stories are
judged again if the topic rules changed; the publish's carries it on and ends it), so
that a run stopped anywhere leaves nothing of it. Only new stories are written ahead,
with their topics and their sightings: stories the planner never looks up again (it
has their title keys, item ids and ids from then on), so that what it reads is still
the store as it was before the run. Meanwhile it reads through a second connection,
which sees the store so and never waits for the writes. A story written ahead that a
later source changes is written again at the end (the plan's writer compares each
row: :meth:`SQLStore.apply_plan`); one with no time of its own waits for the end,
where its place among the run's stories is known (plan.reading_places), and so do its
sightings; so does whatever was not handed to the thread when the reading ended.

The connection is the store's own. The thread writes on it only while the transaction
begun ahead is open (:meth:`Store.ahead`), and the run waits for the thread before it
goes on (:meth:`WritingAhead.finish`) or rolls back (:meth:`WritingAhead.close`), so no
statement of the run runs beside one of the thread's, and none of the thread's runs
outside the transaction (on its own, and so kept).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aggregator.model import Entry
from aggregator.store.plan import ItemTold, Planner, Sighting, WrittenAhead, needs_place
from aggregator.store.sql import INSERT_ROWS

if TYPE_CHECKING:
    from aggregator.store.sqlite import Store


class NothingStored:
    """The lookups of a run into a store that held no story when it began: nothing is
    stored but what the run itself makes, which its planner holds. So the store is not
    read at all while the thread writes it (then out of WAL mode, where a second
    connection's reads would wait for the writes: Store.write_alone)."""

    def candidates(self, keys: Iterable[str]) -> dict[str, list[Entry]]:
        return {}

    def told(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, Entry]]:
        return {}

    def item_ids(self, entry_ids: Iterable[str]) -> dict[str, dict[str, ItemTold]]:
        return {}


# What one statement's worth writes: the new stories' rows, their topics (topic, id,
# sort key) and sightings, each sighting with its place among the planner's.
Work = tuple[list[tuple[Any, ...]], list[tuple[str, str, str]], list[tuple[int, Sighting]]]


class WritingAhead:
    """Writes a run's new stories as they are folded (:meth:`add`), in a thread, a
    statement of ``rows`` stories at a time.

    ``begin`` runs first in the transaction, in the thread: it judges the stored
    stories again when the topic rules changed (pipeline.rejudge), and says whether it
    did. When the transaction cannot begin (or ``begin`` fails), nothing is written
    ahead: the run writes everything at its end, as it would have, and meets the same
    trouble there, where it is reported."""

    def __init__(
        self,
        store: Store,
        now: datetime,
        *,
        begin: Callable[[], bool],
        rows: int = INSERT_ROWS,
        empty: bool = False,
    ) -> None:
        self.store = store
        # The store held no story when the run began (Store.is_empty): nothing to read.
        self._empty = empty
        self._stamp = now.isoformat()
        self._begin = begin
        self._rows = max(1, rows)
        self._began = False  # the thread was started (and asked to begin)
        self._given_up = False
        self._opened = False  # the thread began the transaction
        self._rejudged = False
        self._reader: Store | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._sent: list[tuple[Future[bool], Work]] = []
        self._stopped = False  # no more statements from the thread
        self._done: WrittenAhead | None = None  # what finish said
        self._queued: set[str] = set()  # stories handed to the thread, or about to be
        self._waiting: set[str] = set()  # left to the end, for good (see the module)
        self._looked = 0  # how many of the planner's sightings were looked at
        self._due: Work = ([], [], [])

    @property
    def reads(self) -> Store | NothingStored:
        """The store to look stories up in while the run reads: as it was before it."""
        if self._empty:
            return NothingStored()
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
        rows, labels, sightings = self._due
        for entry in stories:
            if entry.id in self._queued or entry.id in self._waiting:
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
            self._queued.add(entry.id)
            rows.append(row)
            labels += [(topic, entry.id, row[-2]) for topic in labelled[1].topics]
        told = planner.sightings_from(self._looked)
        for number, sighting in enumerate(told, start=self._looked):
            if sighting[0] in self._queued:
                sightings.append((number, sighting))
        self._looked += len(told)
        if len(rows) >= self._rows:
            self._send()

    def _send(self) -> None:
        if not self._began and not self._start():
            return
        work, self._due = self._due, ([], [], [])
        assert self._pool is not None
        self._sent.append((self._pool.submit(self._write, work), work))

    def _start(self) -> bool:
        """Start the thread, which begins the transaction first; False (and nothing
        written ahead from then on) when the second connection cannot be opened."""
        from aggregator.store.sqlite import Store

        try:
            if not self._empty:
                self._reader = Store.read_only(self.store.path)
        except Exception:  # (a store that cannot be read twice: written at the end)
            self._given_up = True
            self._due = ([], [], [])
            return False
        self._began = True
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="aggregator-ahead")
        self._pool.submit(self._open)
        return True

    def _open(self) -> None:
        """Begin the transaction, and judge the stored stories again if need be (in the
        thread: that can take seconds, which the reading does not wait for)."""

        def first() -> None:
            self._rejudged = self._begin()

        try:
            self._opened = self.store.begin(first)
        except Exception:  # (rolled back: written at the end, and reported there)
            self._opened = False

    def _write(self, work: Work) -> bool:
        """Write one statement's worth in the transaction begun ahead; False when it is
        not open (then nothing is written). A failure stops the writing."""
        rows, labels, sightings = work

        def write() -> None:
            self.store.write_entries(rows)
            self.store.write_labels(labels)
            self.store.write_sightings([sighting for _, sighting in sightings], self._stamp)

        if self._stopped:
            return False
        try:
            return self.store.ahead(write)
        except BaseException:
            self._stopped = True
            raise

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
        """What was written ahead, once the thread is done (call before the publish's
        transaction, which then carries on the one begun ahead; again, it says the
        same); None when nothing was. Raises what a write raised, having rolled back
        (a refused write as the store's one line, WriteError)."""
        if not self._began or self._done is not None:
            return self._done
        try:
            self._drain(cancel=False)
        finally:
            self._close_reader()
        self.store.sync_log_soon()  # (what the thread wrote, while the run goes on)
        self._began = False
        for future, _ in self._sent:
            if (error := future.exception()) is not None:
                self.store.abandon()
                if isinstance(error, sqlite3.OperationalError):
                    raise self.store.refused(error) from error
                raise error
        if not self._opened or not all(future.result() for future, _ in self._sent):
            self.store.abandon()  # (a part not written: none of it is, and all is at the end)
            return None
        written: dict[str, tuple[Any, ...]] = {}
        labels: dict[str, list[str]] = {}
        sightings: set[int] = set()
        for _, (rows, labelled, told) in self._sent:
            written.update((row[-1], row) for row in rows)
            for topic, entry_id, _ in labelled:
                labels.setdefault(entry_id, []).append(topic)
            sightings.update(number for number, _ in told)
        self._done = WrittenAhead(
            written,
            {entry_id: tuple(labels.get(entry_id, ())) for entry_id in written},
            frozenset(sightings),
            self._rejudged,
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
            try:
                self.store.abandon()
            finally:
                self._close_reader()

    def __enter__(self) -> WritingAhead:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
