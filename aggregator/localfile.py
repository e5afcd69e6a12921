"""Reading a local file: a regular file, of bounded size, or one clear error.

A path in the config may point anywhere: at a FIFO (whose ``open`` blocks until a
writer comes, forever in a cron job), a device such as ``/dev/zero`` (endless), a
directory, or a file far larger than any news page. The file is opened without
blocking, checked to be a regular file, and read up to ``limit`` bytes. The same
holds for every file a user names: a source, an OPML file to import, a labels file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from aggregator.errors import SourceError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotAFile(Exception):
    """The path is a directory, FIFO, socket or device; ``what`` says which ("a directory")."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def read_regular(path: Path, limit: int, *, follow_link: bool = True) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit + 1`` of them: one more
    than allowed, so that the caller can tell a file over its cap without reading it all.
    ``follow_link=False``: a symbolic link at ``path`` is refused too (an OSError).

    Raises OSError when it cannot be opened or read, NotAFile when it is not a regular
    file (never blocking on a FIFO, never reading a device).
    """
    # O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    if not follow_link:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):  # checked before fdopen, which refuses a directory itself
        os.close(fd)
        raise NotAFile(next((label for test, label in _KINDS if test(mode)), "not a regular file"))
    with os.fdopen(fd, "rb") as file:
        return file.read(limit + 1)  # buffered: reads until EOF or limit + 1 bytes


def read_named(
    path: Path, limit: int, *, what: str, fail: Callable[[str, str], Exception]
) -> bytes:
    """The bytes of a file a user named on the command line (``what``: "an OPML file"),
    at most ``limit``; otherwise ``fail(file, message)`` is raised, one line saying why."""
    file = str(path)
    try:
        data = read_regular(path, limit)
    except OSError as error:
        raise fail(file, f"cannot read: {error.strerror or error}") from error
    except NotAFile as error:
        raise fail(file, f"is {error.what}, not a file; name {what}") from error
    if len(data) > limit:
        raise fail(file, f"over the {limit >> 20} MB limit for {what}")
    return data


def read_local(path: Path, *, name: str, setting: str, limit: int, limit_setting: str) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    ``setting`` names where the path came from (``sources[2].path``) and
    ``limit_setting`` the setting that raises the limit, for the error message.
    """
    where = str(path)
    try:
        data = read_regular(path, limit)
    except FileNotFoundError as error:
        raise SourceError(name, where, f"no such file; check {setting}") from error
    except OSError as error:
        raise SourceError(name, where, f"cannot read: {error.strerror}") from error
    except NotAFile as error:
        raise SourceError(
            name, where, f"is {error.what}, not a file; point {setting} at a saved page or feed"
        ) from error
    if len(data) > limit:
        raise SourceError(
            name,
            where,
            f"larger than {limit >> 20} MB; raise {limit_setting} if it really is one page or feed",
        )
    return data
