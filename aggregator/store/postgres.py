"""The PostgreSQL store: one database shared by many ``serve`` and ``run`` processes.

Selected by ``[store] url = "postgresql://user@host/db"`` or ``AGGREGATOR_STORE_URL``;
uses psycopg 3. The queries, the schema's versions and the merge policy are SQLite's
(:mod:`aggregator.store.sql`, :mod:`~aggregator.store.migrations`,
:mod:`~aggregator.store.plan`); what differs is here: placeholders, transactions, a
``schema_version`` table, migrations under an advisory lock (two instances starting
together migrate once), and source claims that skip rows another worker has locked
(``SELECT … FOR UPDATE SKIP LOCKED``).

The connection runs in autocommit mode: a read outside :meth:`transaction` sees the
latest committed state, as a read of the SQLite file does.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from aggregator.errors import StoreError, WriteError, command_line, conceal
from aggregator.errors import redact as redact  # where it was, for the callers here
from aggregator.store.migrations import MIGRATIONS, POSTGRESQL, Dialect
from aggregator.store.sql import SQLStore, utc_text

# pg_advisory_lock keys (any 64-bit numbers, the same in every instance).
MIGRATION_LOCK = 0x616767_0001  # "agg" 1: migrating the schema
WRITE_LOCK = 0x616767_0002  # "agg" 2: one writer of the store and the feeds at a time


def problem(error: psycopg.Error) -> str:
    """PostgreSQL's first line about what went wrong."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


@functools.lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (no query here has a literal ``?``)."""
    return sql.replace("%", "%%").replace("?", "%s")


def application_name() -> str:
    """Who we are, for ``pg_stat_activity`` (where a waiter for the write lock reads who
    holds it): the command (URLs without their passwords), process id and host, in the
    63 ASCII bytes PostgreSQL keeps."""
    tail = f" pid {os.getpid()} on {socket.gethostname()}"
    head = command_line().encode("ascii", "replace").decode()
    room = 63 - len(tail.encode("ascii", "replace"))
    if len(head) > room:
        head = head[: max(0, room - 3)] + "..."
    return (head + tail).encode("ascii", "replace").decode()[:63]


# libpq's TCP settings for every connection (see connect): probes after 30 s idle, every
# 10 s, 3 unanswered ones end it; sent data unacknowledged for 60 s ends it.
KEEPALIVE = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}


def connect(url: str, timeout: float) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection, or a one-line StoreError naming the URL.

    It is named (``application_name``) by :func:`application_name` unless the URL or
    ``PGAPPNAME`` names it already."""
    if url.partition("?")[0].count("@") > 1:
        # libpq ends the user part at its first "@", the rest of a password holding one
        # then taken for the host, and shown in its error (found by review).
        raise StoreError(
            f"{redact(url)}: cannot connect to the store: the URL's user part holds more "
            "than one '@'; write an '@' in the user name or password as %40"
        )
    try:
        given = conninfo_to_dict(url)
        named = given.get("application_name") or os.environ.get("PGAPPNAME")
        # A server that stops answering over TCP (the network cut, the machine gone) is
        # found within about a minute rather than never (found by review: a run waited on
        # a query for good, holding its leases and the write lock): TCP keepalives while
        # idle, and a limit on data left unacknowledged. The URL's own settings win.
        # (A server that hangs while its machine answers, or one on a Unix socket, is
        # not found this way.)
        alive = {name: value for name, value in KEEPALIVE.items() if name not in given}
        return psycopg.connect(
            make_conninfo(url, **alive),
            autocommit=True,
            connect_timeout=max(1, round(timeout)),
            application_name=str(named or application_name()),
        )
    except psycopg.Error as error:
        raise StoreError(
            f"{redact(url)}: cannot connect to the store: {conceal(problem(error), url)}; "
            "check that PostgreSQL is running and the URL's host, port, database, user and "
            "password"
        ) from error


class PostgresStore(SQLStore):
    dialect: ClassVar[Dialect] = POSTGRESQL
    shared = True  # many machines: workers claim sources (leases), writers take WRITE_LOCK
    db: psycopg.Connection[tuple[Any, ...]]

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.db = connect(url, timeout)
        try:
            self._migrate()
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def read_only(cls, url: str, *, timeout: float = 30.0) -> PostgresStore | None:
        """The store at ``url`` for commands that only report (``sources list``,
        ``explain``): None when the database holds no store's tables; its tables neither
        made nor upgraded (found by review: a read made the whole schema in an empty
        database, and would have upgraded an older one)."""
        store = cls.__new__(cls)
        store.url = url
        store.db = connect(url, timeout)
        try:
            version = store._read_version()
            if version == 0:
                store.db.close()
                return None
            if version < len(MIGRATIONS):
                raise StoreError(
                    f"{store.where}: the store's tables are of an older version ({version}); "
                    "run aggregator run (or serve) once to bring them up to date, then ask "
                    "again (nothing was changed)"
                )
        except BaseException:
            store.db.close()
            raise
        return store

    @property
    def where(self) -> str:
        return redact(self.url)

    def server_time(self) -> datetime | None:
        row = self.db.execute("SELECT now()").fetchone()
        moment = row[0] if row is not None else None
        return moment if isinstance(moment, datetime) and moment.tzinfo is not None else None

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.db.execute(_placeholders(sql), params)

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.db.cursor() as cursor:
                cursor.executemany(_placeholders(sql), rows)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """All or nothing. A write PostgreSQL refuses (connection lost, disk full,
        a constraint) rolls back and raises WriteError naming the store."""
        try:
            with self.db.transaction():
                yield self.db
        except psycopg.Error as error:
            raise WriteError(
                f"{self.where}: cannot write the store: {problem(error)}; nothing was changed, "
                "check the database and try again"
            ) from error

    def _migrate(self) -> None:
        if self._read_version() == len(MIGRATIONS):
            return  # the usual case: no lock taken
        try:
            with self.db.transaction():
                # Held to the end of this transaction: a second instance starting now
                # waits here, then finds the schema up to date.
                self.db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
                version = self._read_version()
                for number in range(version, len(MIGRATIONS)):
                    MIGRATIONS[number](self._execute, POSTGRESQL)
                self.db.execute("DELETE FROM schema_version")
                self.db.execute("INSERT INTO schema_version VALUES (%s)", (len(MIGRATIONS),))
        except psycopg.errors.InsufficientPrivilege as error:
            # Tables go in schema public: since PostgreSQL 15 only its owner (the
            # database's owner) may create there unless granted.
            user = self.db.info.user
            raise StoreError(
                f"{self.where}: cannot create or upgrade the store's tables: {problem(error)}; "
                f"the user {user} needs CREATE on schema public (GRANT CREATE ON SCHEMA "
                f"public TO {user}) or to own the database (nothing was changed)"
            ) from error
        except psycopg.Error as error:
            raise StoreError(
                f"{self.where}: cannot create or upgrade the store's tables: {problem(error)}; "
                "check the database and try again (nothing was changed)"
            ) from error

    def _read_version(self) -> int:
        try:
            row = self.db.execute("SELECT max(version) FROM schema_version").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        version = int(row[0]) if row is not None and row[0] is not None else 0
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.where}: schema version {version} is newer than this aggregator "
                f"understands ({len(MIGRATIONS)}); upgrade the aggregator"
            )
        return version

    @property
    def schema_version(self) -> int:
        return self._read_version()

    def _claim_rows(self, sources: Sequence[str], now: datetime, due_or_not: bool) -> list[str]:
        # Rows another worker is claiming right now are skipped, not waited for: it
        # will hold them (SKIP LOCKED), and each source goes to one worker only.
        stamp = utc_text(now)
        rows = self.db.execute(
            "SELECT source FROM source_leases WHERE source = ANY(%s) "
            "AND (due <= %s OR %s) AND (until IS NULL OR until <= %s) "
            "ORDER BY source FOR UPDATE SKIP LOCKED",
            (list(sources), stamp, due_or_not, stamp),
        )
        return [str(row[0]) for row in rows]

    def release(self, source: str, *, holder: str, due: datetime) -> None:
        with self.transaction():
            self._release(source, holder=holder, due=due)

    def dump(self, table: str, batch: int = 1000) -> Iterator[tuple[Any, ...]]:
        """Every row of ``table``, ``batch`` rows at a time from a server-side cursor.

        psycopg's ordinary cursor receives the whole result before the first row: a copy
        of 18,000 entries held 480 MB. A named cursor lives in a transaction (a savepoint
        of the caller's, if any), which ends when the rows do or the reader stops.
        """
        with self.db.transaction(), self.db.cursor(name=f"aggregator_dump_{table}") as cursor:
            cursor.itersize = batch
            cursor.execute(self._dump_query(table))
            while rows := cursor.fetchmany(batch):
                yield from (tuple(row) for row in rows)

    # -- the search index: a GIN index over each entry's words (migrations.v5) ---------------

    def _holding(self) -> str:
        return "entries.word_vector @@ ?::tsquery"

    def _all_query(self, terms: Sequence[Sequence[str]]) -> str:
        # Every word of every term (a phrase's words anywhere: the pattern checks them).
        return " & ".join(_lexeme(word) for words in terms for word in words)

    def _either_query(self, terms: Sequence[Sequence[str]]) -> str:
        # One term's words all (anywhere: the pattern checks them in a row), or another's.
        return " | ".join("(" + " & ".join(map(_lexeme, words)) + ")" for words in terms)

    def _any_query(self, words: Sequence[str]) -> str:
        return " | ".join(_lexeme(word) for word in words)


def _lexeme(word: str) -> str:
    """A word as a quoted ``tsquery`` lexeme, taken as it is (no parser, no dictionary):
    ``&``, ``:``, ``*`` or ``!`` inside quotes are text; a quote or backslash is escaped."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def is_url(text: str) -> bool:
    """Whether ``text`` names a PostgreSQL store (rather than an SQLite file)."""
    return re.match(r"^postgres(ql)?://", text) is not None
