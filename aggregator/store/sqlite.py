"""The SQLite store: one file, the zero-setup default.

SQLite in WAL mode, so a cron run and a running server can share it: readers
never wait for a writer, and writers wait (up to ``timeout``) for each other.
Each run applies what it read in one transaction, so a run that dies half way
leaves the store as it was before that run. The schema is versioned
(``PRAGMA user_version``); :data:`MIGRATIONS` brings an older file up to date.
The queries themselves are shared with PostgreSQL (:mod:`aggregator.store.sql`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from aggregator.errors import NO_INODES, StoreError, WriteError, os_advice, out_of_inodes
from aggregator.output import sync_quietly
from aggregator.store.migrations import MIGRATIONS, SQLITE, Dialect
from aggregator.store.plan import IngestReport, retention_cutoff, sort_key
from aggregator.store.sql import SQLStore, utc_text

__all__ = ["MIGRATIONS", "IngestReport", "Store", "retention_cutoff", "sort_key"]

# A search's words are common when one entry in COMMON holds them: then the newest
# entries are read in order (the patterns decide) instead of the index's whole list.
COMMON = 20
FEW = 1000  # below this many entries, sorting the index's list is quick enough
# The page size of a new store file (an existing file keeps its own). A story's row is
# about 1.5 KB, so SQLite's default 4 KB pages made a first run of 10,000 stories write
# and copy some 8,300 pages, with a system call each way: 16 KB pages cut a cold run by
# a tenth and leave a steady run as it was; 32 KB pages slowed a steady run
# (docs/benchmarks.md, issue 14, tenth pass).
PAGE_SIZE = 16384
# The write-ahead log's size kept after a checkpoint (journal_size_limit): what the
# automatic checkpoint lets it reach anyway (1,000 pages of PAGE_SIZE).
KEPT_LOG = 1000 * PAGE_SIZE
# Less free space than this where the store is, and an I/O error opening it is taken for
# a full disk: a closed store's -shm file (32 KB) and a page or two of WAL did not fit.
NEARLY_FULL = 1 << 20


def _check_damage(error: sqlite3.DatabaseError, path: Path) -> None:
    """Raise :class:`StoreError` in one line naming the store when ``error`` says its
    file is damaged (or not a database); return otherwise, for the caller to re-raise."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # an extended code's primary one
    if type(error) is sqlite3.DatabaseError and code in (
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    ):
        raise StoreError(
            f"{path}: the store is damaged ({error}); restore it from a backup, or move it "
            "aside with its -wal and -shm files, and .rendered in the feeds directory, and "
            "run again to start a new one (every source is then read again)"
        ) from error


class _Cursor(sqlite3.Cursor):
    """A cursor whose reads and writes say, in one line naming the store, that SQLite
    found the file damaged (a traceback otherwise, wherever it is found)."""

    path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.DatabaseError as error:
            _check_damage(error, self.path)
            raise

    def executemany(self, sql: str, parameters: Any, /) -> _Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.DatabaseError as error:
            _check_damage(error, self.path)
            raise

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as error:
            _check_damage(error, self.path)
            raise

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as error:
            _check_damage(error, self.path)
            raise

    def fetchmany(self, size: int | None = None) -> list[Any]:
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except sqlite3.DatabaseError as error:
            _check_damage(error, self.path)
            raise

    # Not __next__: a Python method per row made reading every entry 5% slower. Damage
    # is nearly always met by execute (the first row) or fetch*; the loops over rows
    # that remain (a few, over small results) would show SQLite's own error.


class _Connection(sqlite3.Connection):
    """A connection whose statements run through :class:`_Cursor` (``execute`` here does
    not go through ``cursor()``)."""

    path: Path

    def cursor(self, factory: Any = _Cursor) -> Any:
        cursor = super().cursor(factory)
        cursor.path = self.path
        return cursor

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        cursor: _Cursor = self.cursor()
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> _Cursor:
        cursor: _Cursor = self.cursor()
        return cursor.executemany(sql, parameters)


def _connect(path: Path, uri: str | None = None, *, timeout: float) -> _Connection:
    """A connection to the store at ``path`` (through ``uri`` when given)."""
    db = sqlite3.connect(
        path if uri is None else uri,
        timeout=timeout,
        isolation_level=None,
        uri=uri is not None,
        factory=_Connection,
        # A run's new stories are written by a thread while its sources are read
        # (aggregator.store.ahead), one statement at a time, never beside this thread's.
        check_same_thread=False,
    )
    assert isinstance(db, _Connection)
    db.path = path
    return db


class Store(SQLStore):
    dialect: ClassVar[Dialect] = SQLITE
    shared = False  # one machine: the file lock (aggregator.lock) keeps writers apart
    db: sqlite3.Connection
    # A transaction begun ahead (begin): "open" until a transaction() takes it on (None
    # again) or it is abandoned ("abandoned": none is begun ahead any more).
    _ahead: str | None = None
    _syncing: threading.Thread | None = None  # see sync_log_soon
    _alone = False  # out of WAL mode until the transaction ends (see write_alone)

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self._timeout = timeout
        # Between a thread writing ahead and the end of its transaction (begin).
        self._guard = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = _connect(path, timeout=timeout)
            self._set_up(timeout)
        except BaseException as error:
            if hasattr(self, "db"):
                self.db.close()
            if isinstance(error, sqlite3.Error):
                advice = _open_advice(error, path)
                raise StoreError(f"{path}: cannot open the store: {advice}") from error
            if isinstance(error, OSError):
                raise StoreError(f"{path}: cannot open the store: {os_advice(error)}") from error
            raise

    def _set_up(self, timeout: float) -> None:
        """The connection's settings, and the schema brought up to date.

        A new file being set up by several processes at once (workers starting
        together) can answer "database is locked" at once, without the busy timeout's
        wait (switching a new file to WAL, recovering its log): found by a test of four
        workers, about one run in thirty on a loaded machine. Each step is harmless to
        repeat, so the whole is tried again, for ``timeout`` seconds at most."""
        import time

        deadline = time.monotonic() + timeout
        pause = 0.01
        while True:
            try:
                self.db.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # before the file has any
                self.db.execute("PRAGMA journal_mode = WAL")
                # FULL: a commit is on disk when it returns, before the run renames its
                # files into place (NORMAL in WAL mode may lose the last commit to a power
                # cut, and the feeds would then show what the store no longer holds).
                self.db.execute("PRAGMA synchronous = FULL")
                # The log is deleted as the last connection closes; while another holds
                # the store open (serve: kept_open), it is cut back to this after each
                # checkpoint instead of staying as large as the largest run left it.
                self.db.execute(f"PRAGMA journal_size_limit = {KEPT_LOG}")
                self.db.execute("PRAGMA foreign_keys = ON")
                self._migrate()
                return
            except (sqlite3.OperationalError, WriteError) as error:
                cause = error.__cause__ if isinstance(error, WriteError) else error
                code = getattr(cause, "sqlite_errorcode", 0) & 0xFF
                if code not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    @classmethod
    def read_only(cls, path: Path, *, timeout: float = 30.0) -> Store:
        """An existing store file opened for reading only: no migration, nothing created.

        For commands that only report (``aggregator sources list``); raises StoreError
        when the file is missing or unreadable.
        """
        store = cls.__new__(cls)
        store.path = path
        store._timeout = timeout
        store._guard = threading.Lock()
        try:
            try:
                store.db = _connect(path, f"{path.resolve().as_uri()}?mode=ro", timeout=timeout)
                store.db.execute("SELECT 1 FROM meta LIMIT 1")
            except sqlite3.OperationalError as error:
                if getattr(error, "sqlite_errorcode", 0) != _READONLY_ROLLBACK:
                    raise
                # A run stopped while it wrote a new store's first stories out of WAL
                # mode (write_alone) left its journal, which only a connection that may
                # write rolls back: done, then read as asked.
                store.db.close()
                _roll_back_journal(path, timeout)
                store.db = _connect(path, f"{path.resolve().as_uri()}?mode=ro", timeout=timeout)
                store.db.execute("SELECT 1 FROM meta LIMIT 1")
        except (sqlite3.Error, StoreError) as error:
            if hasattr(store, "db"):
                store.db.close()
            if isinstance(error, StoreError):
                raise
            advice = _open_advice(error, path)
            raise StoreError(f"{path}: cannot read the store: {advice}") from error
        return store

    @property
    def where(self) -> str:
        return str(self.path)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    def begin(self, first: Callable[[], None]) -> bool:
        """Begin the transaction the next :meth:`transaction` carries on and ends, and
        run ``first`` in it, for another thread to write in it meanwhile
        (aggregator.store.ahead: :meth:`ahead`); :meth:`abandon` rolls it back if no
        transaction takes it on. False, with nothing begun, once abandoned; raises what
        BEGIN or ``first`` raises (and then rolls back)."""
        with self._guard:
            if self._ahead is not None:
                return False
            self.db.execute("BEGIN IMMEDIATE")
            self._ahead = "open"
            try:
                first()
            except BaseException:
                self._ahead = None
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            return True

    def ahead(self, write: Callable[[], None]) -> bool:
        """Run ``write`` (another thread's statements) in the transaction :meth:`begin`
        began, only while it is open: not yet taken on, abandoned, or rolled back by
        SQLite itself (a write error can end it; a statement then would be written on
        its own). False when it is not open."""
        with self._guard:
            if self._ahead != "open" or not self.db.in_transaction:
                return False
            write()
            return True

    def abandon(self) -> None:
        """Roll back a transaction :meth:`begin` began that no :meth:`transaction` took
        on; nothing is begun ahead from then on. (After the thread's statement under
        way, if any: never beside it.)"""
        with self._guard:
            begun, self._ahead = self._ahead, "abandoned"
            if begun == "open" and self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self._back_to_wal()

    def is_empty(self) -> bool:
        """Whether the store holds no story at all (a new one: its first run)."""
        return self.db.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None

    def write_alone(self) -> bool:
        """Write the next transaction in SQLite's rollback-journal mode rather than in its
        write-ahead log, when the store holds no story yet and no other connection has it
        open; back in WAL mode once that transaction ends. True when done.

        For a store's first run, which writes every story it holds: in WAL mode its
        pages went to the log, which was synced, then copied into the file and synced
        again at the commit (29 MB twice for 10,000 stories), and pages written early
        were read back from the log and checksummed again. A new page needs nothing in
        a rollback journal, so each is written once, into the file; a crash before the
        commit leaves a hot journal that the next opening rolls back, as SQLite does.
        The price: while that transaction lasts, another process opening the store, or
        reading it, waits for its end (up to the busy timeout), as it never does in WAL
        mode. Call holding the write lock, outside a transaction, and read nothing from
        another connection until the transaction ends (aggregator.store.ahead reads
        nothing of an empty store: :class:`~aggregator.store.ahead.NothingStored`)."""
        if self.db.in_transaction or not self.is_empty():
            return False
        try:
            # Left only by the last connection (SQLite checkpoints and removes the log).
            mode = self._at_once("PRAGMA journal_mode = DELETE")
        except sqlite3.OperationalError:  # (another process is at it: stay in WAL mode)
            return False
        self._alone = mode == "delete"
        if self._alone:
            # The commit is the journal's removal: EXTRA syncs the folder after it, so
            # that a power cut cannot bring the journal back and undo a commit the
            # files were then installed after (FULL leaves that sync out).
            self.db.execute("PRAGMA synchronous = EXTRA")
        return self._alone

    def _back_to_wal(self) -> None:
        """Back in WAL mode after :meth:`write_alone`'s transaction, without waiting: when
        another process holds the file meanwhile, tried again as the next transaction
        ends and as the store closes, and done by whoever opens it next (every opening
        asks for WAL mode)."""
        if not self._alone or self.db.in_transaction:
            return
        try:
            mode = self._at_once("PRAGMA journal_mode = WAL")
        except sqlite3.Error:
            return
        if mode == "wal":
            self._alone = False
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("PRAGMA synchronous = FULL")

    def _at_once(self, pragma: str) -> str:
        """A journal mode pragma's answer, in lower case, asked without the busy
        timeout's wait (it fails at once when another process holds the file)."""
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            return str(self.db.execute(pragma).fetchone()[0]).lower()
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")

    def sync_log_soon(self) -> None:
        """Start putting the write-ahead log on disk, in a thread, for the commit to find
        most of it there: the commit still syncs it (``synchronous = FULL``) and reports
        what fails. A cold run writes its 29 MB of log while it reads its sources; synced
        while it makes its last rows and reads what to render, its commit took 0.18 s
        instead of 0.26 s. Out of WAL mode (:meth:`write_alone`), the pages written so
        far are in the store's file itself, which the commit syncs: that file, then.
        Once per connection; :meth:`close` waits for it."""
        if self._syncing is not None:
            return
        # Where SQLite keeps the log: beside the file a symbolic link leads to.
        log = os.path.realpath(self.path) + ("" if self._alone else "-wal")
        # A daemon: a Ctrl-C while close waits for it does not hold the exit for it.
        syncing = threading.Thread(
            target=sync_quietly, args=(log,), name="aggregator-log-sync", daemon=True
        )
        try:
            syncing.start()
        except RuntimeError:  # (no thread to be had: the commit syncs it all, as before)
            return
        self._syncing = syncing

    def close(self) -> None:
        try:
            if self._syncing is not None:
                self._syncing.join()
            self._back_to_wal()
        finally:
            super().close()

    def refused(self, error: sqlite3.OperationalError) -> WriteError:
        """A write SQLite refused, in one line naming the store, with what to do."""
        return WriteError(f"{self.path}: cannot write the store: {_advice(error, self.path)}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing; writers queue behind each other (BEGIN IMMEDIATE).

        A write the file system refuses (disk full, read-only, permissions) rolls
        back and raises :class:`~aggregator.errors.WriteError` naming the store.
        """
        try:
            try:  # (a transaction begun ahead is this one's from here: rolled back below)
                with self._guard:
                    begun, self._ahead = self._ahead == "open", None
                if not begun:
                    self.db.execute("BEGIN IMMEDIATE")
                elif not self.db.in_transaction:  # (what was written ahead is not in it)
                    raise WriteError(
                        f"{self.path}: cannot write the store: its transaction was "
                        "rolled back while it was written; nothing was changed"
                    )
                yield self.db
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise self.refused(error) from error
        finally:
            self._back_to_wal()

    def _migrate(self) -> None:
        if self._check_version() == len(MIGRATIONS):
            return  # the usual case: no write, so opening never waits for a writer
        # BEGIN IMMEDIATE is SQLite's lock: a second process opening the same old file
        # waits, then finds it migrated.
        with self.transaction() as db:
            version = self._check_version()
            for number in range(version, len(MIGRATIONS)):
                MIGRATIONS[number](db.execute, SQLITE)
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def _check_version(self) -> int:
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this aggregator "
                f"understands ({len(MIGRATIONS)}); upgrade the aggregator"
            )
        return version

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _claim_rows(self, sources: Sequence[str], now: datetime, due_or_not: bool) -> list[str]:
        # BEGIN IMMEDIATE already keeps every other writer out.
        stamp = utc_text(now)
        return [
            row[0]
            for chunk in range(0, len(sources), 500)
            for row in self.db.execute(
                f"SELECT source FROM source_leases WHERE source IN "
                f"({','.join('?' * len(sources[chunk : chunk + 500]))}) "
                "AND (due <= ? OR ?) AND (until IS NULL OR until <= ?)",
                (*sources[chunk : chunk + 500], stamp, due_or_not, stamp),
            ).fetchall()
        ]

    def release(self, source: str, *, holder: str, due: datetime) -> None:
        with self.transaction():
            self._release(source, holder=holder, due=due)

    # -- the search index: FTS5 over each entry's words (migrations.v5) ---------------------

    def _common(self, query: str) -> bool:
        # "NATO" is in nearly every story: sorting 100,000 of them to give the newest
        # 200 took 0.7 s, reading the newest 200 takes milliseconds. Counting the
        # index's matches takes ~9 ms per 100,000; num only grows, so the largest one
        # bounds the number of entries from above.
        matches = self.db.execute(
            "SELECT count(*) FROM entry_search WHERE entry_search MATCH ?", (query,)
        ).fetchone()[0]
        entries = self.db.execute("SELECT max(num) FROM entry_search_rows").fetchone()[0]
        return entries is not None and entries >= FEW and matches * COMMON >= entries

    def _holding(self) -> str:
        return (
            "entries.id IN (SELECT r.entry_id FROM entry_search "
            "JOIN entry_search_rows r ON r.num = entry_search.rowid WHERE entry_search MATCH ?)"
        )

    def _all_query(self, terms: Sequence[Sequence[str]]) -> str:
        # FTS5's query language: each term a phrase (its words in a row), all of them.
        return " AND ".join(_phrase(words) for words in terms)

    def _either_query(self, terms: Sequence[Sequence[str]]) -> str:
        return " OR ".join(_phrase(words) for words in terms)

    def _any_query(self, words: Sequence[str]) -> str:
        return " OR ".join(_phrase([word]) for word in words)


def _phrase(words: Sequence[str]) -> str:
    """Words as one FTS5 string: inside double quotes ``AND``, ``NEAR``, ``*``, ``-`` or
    ``:`` are text, and a double quote is doubled."""
    return '"' + " ".join(words).replace('"', '""') + '"'


# SQLITE_READONLY_ROLLBACK: a read-only connection met a hot journal it may not roll back.
_READONLY_ROLLBACK = sqlite3.SQLITE_READONLY | (3 << 8)


def _roll_back_journal(path: Path, timeout: float) -> None:
    """Roll back the journal a stopped run left (SQLite does on a writing connection's
    first read); StoreError in one line when this user may not write the store."""
    try:
        db = _connect(path, timeout=timeout)
        try:
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
        finally:
            db.close()
    except sqlite3.Error as error:
        raise StoreError(
            f"{path}: cannot read the store: a run stopped while it wrote the store's first "
            f"stories left its journal, which this user may not roll back ({error}); the "
            "next `aggregator run` does it"
        ) from error


def _open_advice(error: sqlite3.Error, path: Path) -> str:
    """:func:`_advice`, and on a "disk I/O error" whether the disk is full: opening a
    closed store in WAL mode makes its -shm file, which a full disk refuses (SQLite says
    no more than "disk I/O error")."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # an extended code's primary one
    if code == sqlite3.SQLITE_IOERR and _nearly_full(path.parent):
        return (
            f"{error}: the disk is full; free some disk space and run again (nothing was changed)"
        )
    return _advice(error, path)


def _unwritable_companions(path: Path) -> list[Path]:
    """The store's write-ahead log and shared-memory files that exist but that this user
    may not write, when the store's own file is writable."""
    if not os.access(path, os.W_OK):
        return []
    found = (Path(f"{path}{suffix}") for suffix in ("-wal", "-shm"))
    return [p for p in found if p.exists() and not os.access(p, os.W_OK)]


def _nearly_full(directory: Path) -> bool:
    """Whether the file system holding ``directory`` has less than NEARLY_FULL free."""
    try:
        return shutil.disk_usage(directory).free < NEARLY_FULL
    except OSError:
        return False


def _advice(error: sqlite3.Error, path: Path | None = None) -> str:
    """SQLite's words for a refused write, and what to do about it (``path``: the store's
    file, whose companions a read-only store may name)."""
    text = str(error)
    if (
        path is not None
        and out_of_inodes(path)
        and ("full" in text or "unable to open" in text or "disk I/O" in text)
    ):
        # (SQLite cannot make its -wal or -shm file: found by review, said to be a
        # matter of permissions.)
        return f"{text}: {NO_INODES} (nothing was changed)"
    if "full" in text:
        return f"{text}; free some disk space and run again (nothing was changed)"
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        stuck = _unwritable_companions(path) if path is not None else []
        if stuck:
            # SQLite makes them with the store's own permissions: a run while the store
            # was read-only leaves them so, and they keep refusing once it is not (found
            # by review: "make the store writable" was done, and every run failed still).
            names = " and ".join(str(p) for p in stuck)
            return (
                f"{text}: {names} {'is' if len(stuck) == 1 else 'are'} not writable by this "
                "user (left so by a run while the store was read-only); make "
                f"{'it' if len(stuck) == 1 else 'them'} writable, or remove "
                f"{'it' if len(stuck) == 1 else 'them'} while no run or server uses the store"
            )
        return f"{text}; make the store and its directory writable by this user"
    if "locked" in text or "busy" in text:
        return f"{text}; another process held the store too long, try again"
    return f"{text}; nothing was changed"
