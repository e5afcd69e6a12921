"""One writer at a time: a lock file beside the store, shared by cron runs and the server.

A second run waits for the lock a bounded time, then gives up with a clear message
instead of interleaving its feed writes with the first one's. The lock is an
advisory ``flock``: the kernel releases it when its holder exits, even by a crash,
so a stale lock file never blocks anything.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aggregator.errors import AggregatorError, WriteError, os_advice


class LockTimeout(AggregatorError):
    """Another run or server held the lock for longer than we were willing to wait."""


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {text})" if text.isdigit() else ""


@contextmanager
def exclusive(path: Path, wait: float, poll: float = 0.1) -> Iterator[None]:
    """Hold the lock at ``path``, waiting at most ``wait`` seconds for it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise WriteError(f"{path}: cannot create the write lock: {os_advice(error)}") from error
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
