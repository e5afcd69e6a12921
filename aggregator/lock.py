"""One writer at a time: a lock file beside the store, shared by cron runs and the server.

A second run waits for the lock a bounded time, then gives up with a clear message
instead of interleaving its feed writes with the first one's. The lock is an
advisory ``flock``: the kernel releases it when its holder exits, even by a crash,
so a stale lock file never blocks anything. On PostgreSQL, where the writers are on
many machines, it is a session advisory lock (``pg_advisory_lock``) instead, which
the server releases when the holder's connection ends, crash or not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator.errors import (
    AggregatorError,
    WriteError,
    command_line,
    file_in_the_way,
    os_advice,
)

if TYPE_CHECKING:
    import psycopg

    from aggregator.config import StoreSettings


class LockTimeout(AggregatorError):
    """Another run or server held the lock for longer than we were willing to wait."""


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it: `` (process 123, aggregator run, since
    …)``; empty when the file says nothing readable."""
    try:
        pid, since, command = [*os.pread(fd, 600, 0).decode().split("\n"), "", ""][:3]
    except (OSError, UnicodeDecodeError):
        return ""
    if not pid.isdigit():
        return ""
    if not since:  # written by an older version: the pid alone
        return f" (process {pid})"
    return f" (process {pid}, {command or 'aggregator'}, since {since})"


def _me() -> bytes:
    """What a holder writes in the lock file: pid, since when, which command."""
    since = datetime.now(UTC).isoformat(timespec="seconds")
    command = command_line()[:400]
    return f"{os.getpid()}\n{since}\n{command}\n".encode()


@contextmanager
def exclusive(path: Path, wait: float, poll: float = 0.1) -> Iterator[None]:
    """Hold the lock at ``path``, waiting at most ``wait`` seconds for it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        blocker = file_in_the_way(path) if error.errno in (errno.ENOTDIR, errno.EEXIST) else None
        where = blocker or path  # the file in the way of its folder, when that is it
        raise WriteError(f"{where}: cannot create the write lock: {os_advice(error)}") from error
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{path}: another aggregator run or server is writing{_holder(fd)} "
                        f"and did not finish within {wait:g} s; nothing was done, try again later"
                    ) from None
                time.sleep(poll)
        # Who holds it, for a waiter's message: a note, not the lock (the flock is). On a
        # full disk it is left out, and the run meets the full disk where it writes.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, _me(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def write_lock(settings: StoreSettings) -> AbstractContextManager[None]:
    """The lock every writer of this store holds: a file beside SQLite, or PostgreSQL's."""
    if settings.url:
        return advisory(settings.url, settings.lock_timeout)
    return exclusive(settings.lock_path, settings.lock_timeout)


def _advisory_holder(db: psycopg.Connection[Any], key: int) -> str:
    """Who holds the advisory lock ``key`` in this database, as PostgreSQL knows it: the
    holder's name (an aggregator's says its command, process id and host:
    :func:`aggregator.store.postgres.application_name`) and since when it has held it
    (its last statement, the one that took the lock, ended then). Empty when unknown."""
    import psycopg

    try:
        row = db.execute(
            "SELECT a.application_name, a.pid, coalesce(a.state_change, a.backend_start), "
            "coalesce(a.client_hostname, host(a.client_addr)) "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid = %s AND l.objid = %s "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "LIMIT 1",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchone()
    except psycopg.Error:
        return ""
    if row is None:
        return ""  # released meanwhile, or its session is not ours to see
    name, pid, since, client = row
    who = name or f"database process {pid}"
    if client:
        who += f", from {client}"
    if since is not None:
        who += f", since {since.astimezone(UTC).isoformat(timespec='seconds')}"
    return f" ({who})"


@contextmanager
def advisory(url: str, wait: float) -> Iterator[None]:
    """Hold the store's write lock on PostgreSQL, waiting at most ``wait`` seconds.

    On its own connection: the lock belongs to the session, so it outlives the
    store's transactions and ends with the connection (a worker that dies frees it).
    A blocking ``pg_advisory_lock`` under ``lock_timeout`` rather than polling
    ``pg_try_advisory_lock``: PostgreSQL queues the waiters and hands the lock on the
    moment it is released, which matters when many workers publish in turn.
    """
    import psycopg

    from aggregator.errors import conceal
    from aggregator.store.postgres import WRITE_LOCK, connect, problem, redact

    db = connect(url, min(wait, 30.0) or 1.0)
    try:
        try:
            # lock_timeout 0 would mean "wait for ever": the shortest wait is 1 ms.
            db.execute(f"SET lock_timeout = {max(1, round(wait * 1000))}")
            db.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK,))
        except psycopg.errors.LockNotAvailable:
            raise LockTimeout(
                f"{redact(url)}: another aggregator run or server is writing"
                f"{_advisory_holder(db, WRITE_LOCK)} and did not finish within {wait:g} s; "
                "nothing was done, try again later"
            ) from None
        except psycopg.Error as error:
            raise WriteError(
                f"{redact(url)}: cannot take the write lock: {conceal(problem(error), url)}; "
                "check the database and run again"
            ) from error
        try:
            yield
        finally:
            # A connection that is gone has taken the lock with it.
            with contextlib.suppress(psycopg.Error):
                db.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK,))
    finally:
        db.close()
