"""Writing files so that a reader never sees half of one, nor half of a set.

Every file is written to a temporary file beside it and renamed into place. A set of
files (one run's feeds and pages) is written in two steps: first every changed file
to its temporary file, then, only when all of them were written, every rename. A
full disk or an unwritable directory therefore stops the run before anything was
replaced: the previous files stay as they were, and no temporary file is left.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from aggregator.errors import WriteError, file_in_the_way, os_advice

if TYPE_CHECKING:  # the threads start when something is written
    from concurrent.futures import Future, ThreadPoolExecutor

TEMPORARY_SUFFIX = ".tmp"
# Our temporary files' names: our prefix, eight random characters, our suffix.
_OURS = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _temporary_name(path: Path) -> str:
    return f".{path.name}."


# A new file only: never one that exists, nor what a symbolic link points to.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def _open_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty temporary file beside ``path``, readable by this user only until it
    is written: its descriptor and its path. (As tempfile.mkstemp makes them, without
    its work for each name: a run writes hundreds.)"""
    for _ in range(100):
        tail = os.urandom(4).hex()  # eight characters, as _OURS expects
        temporary = path.with_name(f"{_temporary_name(path)}{tail}{TEMPORARY_SUFFIX}")
        try:
            return os.open(temporary, _NEW_FILE, 0o600), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(path))


def _write_all(handle: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view) :]


def _write_temporary(path: Path, data: bytes, made: set[Path]) -> Path:
    """``data`` in a new temporary file beside ``path``, durable and readable by all.

    Returns the temporary file's path, also kept in ``made`` from the moment it exists;
    when any step fails, the temporary file is removed (and dropped from ``made``)
    before the error is raised.
    """
    handle, temporary = _open_temporary(path)
    made.add(temporary)
    try:
        try:
            _write_all(handle, data)
            os.fchmod(handle, 0o644)
            os.fsync(handle)
        finally:
            os.close(handle)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        made.discard(temporary)
        raise
    return temporary


class _Once:
    """Calls ``action`` the first time it is called, and never again."""

    def __init__(self, action: Callable[[], object]) -> None:
        self._action: Callable[[], object] | None = action
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            action, self._action = self._action, None
        if action is not None:
            action()


def _unchanged(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except (FileNotFoundError, NotADirectoryError):
        return False


def _fault(path: Path, error: OSError) -> WriteError:
    """The path at fault: the folder, when it is the folder that refuses a new file
    (found by review: a read-only feeds folder was told as its file, writable itself)."""
    if error.errno in (errno.EACCES, errno.EPERM) and not _writable_folder(path.parent):
        path = path.parent
    elif error.errno in (errno.ENOTDIR, errno.EEXIST) and (blocker := file_in_the_way(path)):
        path = blocker  # the file in the way, not the one that could not be made
    return WriteError(f"{path}: cannot write: {os_advice(error, path)}")


def _writable_folder(folder: Path) -> bool:
    """Whether this user may make files in ``folder`` (True when it cannot be told)."""
    try:
        return not folder.is_dir() or os.access(folder, os.W_OK | os.X_OK)
    except OSError:
        return True


@dataclass
class Staged:
    """A set of files written to temporary files, waiting to be renamed into place."""

    pending: list[tuple[Path, Path]] = field(default_factory=list)  # (temporary, final)
    unchanged: list[Path] = field(default_factory=list)

    def install(self) -> list[Path]:
        """Rename every file into place; returns the paths written."""
        written = []
        try:
            for temporary, path in self.pending:
                try:
                    temporary.replace(path)
                except OSError as error:
                    raise _fault(path, error) from error
                written.append(path)
        finally:
            self.discard()
        for folder in {path.parent for path in written}:
            _sync_directory(folder)
        return written

    def discard(self) -> None:
        """Remove the temporary files not (yet) renamed."""
        for temporary, _ in self.pending:
            temporary.unlink(missing_ok=True)
        self.pending = []


# Files written and made durable at once: an fsync waits on the disk (and the file
# system's journal), not on the processor, so a few run side by side while the next
# files are rendered. Creating the temporary file is left to the threads too: on ext4
# an open(O_CREAT) waits on the journal while other files are being synced.
SYNC_THREADS = 4
MAX_WAITING = 32  # files handed to the threads and not yet on disk, each holding its bytes


class Stager:
    """Stages files one by one as they are made, each written in the background.

    :meth:`add` makes the file's folder and hands the file to a small pool of threads,
    which note that it already holds its bytes, or write it to a temporary file and
    make it durable, so that rendering the next file overlaps the disk's work on the
    last ones; :meth:`finish` waits for every file and hands back the :class:`Staged`
    set, its files in the order they were added. Any failure, in a folder, a write or
    an fsync (a full disk often shows only there), raises :class:`WriteError` naming
    the path at fault; leaving the ``with`` block by an exception removes every
    temporary file made, as :func:`stage_files` does.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.staged = Staged()
        # The files handed to the pool, in the order added: each task's result is its
        # temporary file (None: the file holds those bytes already), collected by _wait
        # (in this order) into staged.pending or staged.unchanged.
        self._writes: deque[tuple[Path, Future[Path | None]]] = deque()
        # Every temporary file the threads made and did not remove themselves: what
        # discard removes, whatever became of the task that made it (a Ctrl-C, say).
        self._made: set[Path] = set()
        self._finished = False
        self._pool: ThreadPoolExecutor | None = None
        self._folders: set[Path] = set()
        self._waiting = threading.BoundedSemaphore(MAX_WAITING)

    def add(self, name: str, data: bytes) -> None:
        if self._finished:
            raise RuntimeError("a file added after the set was finished would be in no set")
        path = self.directory / name
        try:
            if path.parent not in self._folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._folders.add(path.parent)
        except OSError as error:
            raise _fault(path, error) from error
        # A file handed to the pool holds its bytes until written: so many wait at most,
        # however much quicker rendering is than the disk.
        self._waiting.acquire()
        release = _Once(self._waiting.release)  # by the task, or here if it never runs
        try:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="aggregator-sync")
            self._writes.append((path, self._pool.submit(self._write, path, data, release)))
        except BaseException:
            release()
            raise

    def _write(self, path: Path, data: bytes, release: Callable[[], None]) -> Path | None:
        # Whether the file holds these bytes already is asked here too: a stat in the
        # rendering thread gives the other threads the GIL, and waits to get it back.
        try:
            if _unchanged(path, data):
                return None
            return _write_temporary(path, data, self._made)
        finally:
            release()

    def _wait(self) -> None:
        """Wait for every file handed to the pool, and put each one written in
        staged.pending, in the order added; then the first failure, as WriteError."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # (interrupted, the next call waits again)
            self._pool = None
        failed: tuple[Path, BaseException] | None = None
        while self._writes:
            path, write = self._writes[0]  # taken off once its file is in the set
            error = write.exception()
            if error is None:
                temporary = write.result()
                if temporary is None:
                    self.staged.unchanged.append(path)
                else:
                    self.staged.pending.append((temporary, path))  # discard removes it
            elif failed is None:
                failed = path, error
            self._writes.popleft()
        if failed is not None:
            path, error = failed
            if isinstance(error, OSError):
                raise _fault(path, error) from error
            raise error

    def finish(self) -> Staged:
        """Every file added, on disk in its temporary file, ready to be installed (in
        the order added)."""
        self._finished = True
        self._wait()
        return self.staged

    def discard(self) -> None:
        """Remove every temporary file made (after every write ended)."""
        try:
            with contextlib.suppress(Exception):  # thrown away: their faults with them
                self._wait()
        finally:
            self.staged.discard()
            for temporary in list(self._made):  # any the set missed (renamed ones are gone)
                temporary.unlink(missing_ok=True)
            self._made.clear()

    def __enter__(self) -> Stager:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is not None:
            self.discard()


def stage_files(directory: Path, files: Mapping[str, bytes]) -> Staged:
    """Write every ``name → bytes`` under ``directory`` that changed to a temporary file.

    Files that already hold their bytes are left alone (and keep their modification
    time). Raises :class:`WriteError` naming the path at fault when any file cannot
    be written; its temporary files are removed then, and nothing was replaced.
    """
    with Stager(directory) as stager:
        for name, data in files.items():
            stager.add(name, data)
        return stager.finish()


def write_files(directory: Path, files: Mapping[str, bytes]) -> tuple[list[Path], list[Path]]:
    """Stage and install: the paths written, and the paths left as they were."""
    staged = stage_files(directory, files)
    return staged.install(), staged.unchanged


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write one file through a temporary file and a rename, unless it holds ``data``."""
    written, _ = write_files(path.parent, {path.name: data})
    return bool(written)


def _sync_directory(folder: Path) -> None:
    """Make the renames themselves durable (a power cut must not undo them). Some file
    systems cannot sync a directory; the renames are still atomic."""
    sync_quietly(folder, os.O_DIRECTORY)


def sync_quietly(path: str | Path, flags: int = 0) -> None:
    """fsync what is at ``path`` when it can be opened and synced; say nothing when not
    (for a sync that only helps: another is made, or nothing more can be)."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete temporary files a killed run left in ``directory`` or its folders.

    Call holding the write lock, when no other run is writing. Only names of our own
    making (``.<file name>.<8 random characters>.tmp``, see :func:`_open_temporary`) are removed.
    """
    removed: list[Path] = []
    try:
        folders = [directory, *(p for p in directory.iterdir() if p.is_dir())]
    except OSError:
        return removed
    for folder in folders:
        try:
            candidates = [p for p in folder.glob(f".*{TEMPORARY_SUFFIX}") if _OURS.match(p.name)]
        except OSError:
            continue
        for candidate in candidates:
            try:
                candidate.unlink()
            except OSError:
                continue
            removed.append(candidate)
    return removed
