"""Reading a local source file: a regular file, of bounded size, or one clear error.

A path in the config may point anywhere: at a FIFO (whose ``open`` blocks until a
writer comes, forever in a cron job), a device such as ``/dev/zero`` (endless), a
directory, or a file far larger than any news page. The file is opened without
blocking, checked to be a regular file, and read up to ``limit`` bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from aggregator.errors import SourceError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def read_local(path: Path, *, name: str, setting: str, limit: int, limit_setting: str) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    ``setting`` names where the path came from (``sources[2].path``) and
    ``limit_setting`` the setting that raises the limit, for the error message.
    """
    where = str(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError as error:
        raise SourceError(name, where, f"no such file; check {setting}") from error
    except OSError as error:
        raise SourceError(name, where, f"cannot read: {error.strerror}") from error
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = next((label for test, label in _KINDS if test(mode)), "not a regular file")
        raise SourceError(
            name, where, f"is {what}, not a file; point {setting} at a saved page or feed"
        )
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(limit + 1)  # buffered: reads until EOF or limit + 1 bytes
        except OSError as error:
            raise SourceError(name, where, f"cannot read: {error.strerror}") from error
    if len(data) > limit:
        raise SourceError(
            name,
            where,
            f"larger than {limit >> 20} MB; raise {limit_setting} if it really is one page or feed",
        )
    return data
