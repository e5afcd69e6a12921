"""The project's exceptions: one base class, each error naming where it happened.

A command-line user sees ``str(error)``: one line saying which source, where
(file:line, URL or config key), what went wrong and what to do about it.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path


class AggregatorError(Exception):
    """Base class of every error the aggregator raises on purpose."""


class ConfigError(AggregatorError):
    """The configuration file is unreadable or holds a bad setting.

    ``where`` is the file, optionally with the key (``config.toml: sources[2].kind``).
    """

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class SourceError(AggregatorError):
    """One source could not be read; the others are unaffected.

    ``location`` is a path (optionally ``path:line``) or a URL.
    """

    def __init__(self, source: str, location: str, message: str) -> None:
        shown = location
        if "@" in location:
            # A feed's user name and password are nobody's business: not in what cron
            # mails, nor in /healthz (found by review), nor in a library's message.
            from aggregator.uri import without_credentials

            shown = without_credentials(location)
            if shown != location:
                message = conceal(message, location).replace(redact(location), shown)
        # A file read under its own name (aggregator parse) is named once: "page.txt:3".
        if source == location or location.startswith(f"{source}:"):
            text = f"{shown}: {message}"
        else:
            text = f"{source} ({shown}): {message}"
        super().__init__(text)
        self.source = source
        self.location = location
        self.message = message


class UnknownLayoutError(SourceError):
    """A snapshot's text fits none of the known page layouts."""


class CaptureTimeError(SourceError):
    """A page gives ages ("2 weeks ago") but no capture time is known or inferable."""


class StoreError(AggregatorError):
    """The store cannot be opened (permissions, not a database), or is from a newer version."""


class WriteError(AggregatorError):
    """The feeds or the store could not be written (disk full, permissions, a file in the
    way). Whatever was there before is left as it was."""


class FilesNotWritten(WriteError):
    """The feeds could not be written, while the store kept what the sources gave: the
    sources were read well, the files are behind the store until written."""


# What to do about the file system faults a user can meet, by errno.
_ADVICE = {
    errno.ENOSPC: "the disk is full; free some space and run again",
    errno.EDQUOT: "the disk quota is used up; free some space and run again",
    errno.EROFS: "the file system is read-only; choose a writable place in the config",
    errno.EACCES: "permission denied; make it writable by this user or choose another place",
    errno.EPERM: "not permitted; make it writable by this user or choose another place",
    errno.ENOTDIR: "a file is in the way where a directory is needed; move it or choose "
    "another place in the config",
    errno.EEXIST: "a file is in the way where a directory is needed; move it or choose "
    "another place in the config",
    errno.EISDIR: "a directory is in the way where a file is needed; move it",
    errno.EMFILE: "too many open files for this process; raise its limit (ulimit -n, "
    "LimitNOFILE=) and run again",
    errno.ENFILE: "too many open files on this machine; close some programs and run again",
}


def os_advice(error: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """What went wrong and what to do, in words, for a failed file system call (on
    ``path``, or the error's own file name)."""
    if error.errno == errno.ENOSPC and out_of_inodes(path or error.filename):
        return NO_INODES
    advice = _ADVICE.get(error.errno or 0)
    if advice is not None:
        return advice
    return f"{error.strerror or error}; check the path and its permissions"


def file_in_the_way(path: str | os.PathLike[str]) -> Path | None:
    """The file that stands where a folder on the way to ``path`` should be ("feeds" a
    file, where feeds/index.html is written), or None: what a "file in the way" error
    names, since the path written does not exist (found by review)."""
    place = Path(path).parent
    while place != place.parent:
        try:
            if place.is_symlink() and not place.exists():
                return None  # a link to nothing (a volume not mounted): not a file
            if place.exists():
                return None if place.is_dir() else place
        except OSError:
            return None
        place = place.parent
    return None


NO_INODES = (
    "no room for another file: the file system has no inodes left, though it has space "
    "(df -i shows them); delete files there, or give the files a file system with more"
)


def out_of_inodes(path: object) -> bool:
    """Whether the file system holding ``path`` (or its nearest existing folder) has
    blocks free but no inodes: a full disk that ``df -h`` does not show."""
    if not isinstance(path, str | os.PathLike):
        return False
    from pathlib import Path

    place = Path(path)
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        found = os.statvfs(place)
    except OSError:
        return False
    return found.f_files > 0 and found.f_favail == 0 and found.f_bavail > 0


# Query parameters of a PostgreSQL URL that hold a secret.
_SECRET_PARAMETERS = ("password", "sslpassword")


def redact(url: str) -> str:
    """The URL without its password (in its user part, or a ``password`` or
    ``sslpassword`` parameter), for messages, logs and whatever other users can read.

    The user part ends at the last "@" (as libpq reads it), so a password holding "#",
    "?" or "/" is removed whole, not taken for where the host begins."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    userinfo, at, after = rest.rpartition("@")
    if at:
        rest = f"{userinfo.split(':', 1)[0]}@{after}"
    head, question, query = rest.partition("?")
    if question and any(name in query for name in _SECRET_PARAMETERS):
        from urllib.parse import parse_qsl, urlencode

        pairs = [(k, v) for k, v in parse_qsl(query) if k not in _SECRET_PARAMETERS]
        rest = f"{head}?{urlencode(pairs, safe='/:')}" if pairs else head
    return f"{scheme}{separator}{rest}"


def conceal(text: str, url: str) -> str:
    """``text``, a library's message about ``url``, without the URL's password: the URL
    as :func:`redact` shows it, and the password, as written or decoded, wherever the
    message quotes it (libpq quotes the part of a URL it cannot read, as in ``invalid
    percent-encoded token: "s3cr%zzet"``), as ``***``."""
    text = text.replace(url, redact(url))
    secrets = _secrets(url)
    if not secrets:
        return text
    # What libpq quotes is the part of the URL it cannot read: the password, quoted as
    # it is (a quote in it ends no quoting here: found by review), or a part holding it,
    # hidden whole. Only there: a password replaced wherever it occurs garbled the line,
    # and told the password by the words it took out ("c***nnecti***n", "***ed": found
    # by review).
    for secret in sorted(secrets, key=len, reverse=True):
        for quote in "\"'":
            text = text.replace(f"{quote}{secret}{quote}", f"{quote}***{quote}")

    def hidden(quoted: re.Match[str]) -> str:
        inside = quoted.group(2)
        if any(len(s) >= MIN_HIDDEN and s in inside for s in secrets):
            return f"{quoted.group(1)}***{quoted.group(1)}"
        return quoted.group(0)

    return re.sub(r"([\"'])(.*?)\1", hidden, text)


# A password this long is hidden in any quoted part that holds it; a shorter one only
# where it is the whole of one (it would be found in words that merely hold its letters).
MIN_HIDDEN = 4


def _secrets(url: str) -> set[str]:
    """The passwords a URL holds (in its user part, or a password parameter), as written
    and percent-decoded; read the way :func:`redact` reads the URL."""
    from urllib.parse import unquote

    _, separator, rest = url.partition("://")
    if not separator:
        return set()
    found: set[str] = set()
    userinfo, at, _ = rest.rpartition("@")
    if at and ":" in userinfo:
        found.add(userinfo.split(":", 1)[1])
    for pair in rest.partition("?")[2].split("&"):
        name, _, value = pair.partition("=")
        if unquote(name) in _SECRET_PARAMETERS:
            found.add(value)
    return {form for secret in found for form in (secret, unquote(secret)) if form}


def command_line() -> str:
    """This process's command as typed, its URLs without their passwords (the lock file
    and PostgreSQL's activity list show it to other users)."""
    import sys

    return " ".join(["aggregator", *map(_shown, sys.argv[1:])])


def _shown(word: str) -> str:
    """A command-line word as others may read it: a URL, or an ``--option=URL``, without
    its password."""
    if "://" not in word:
        return word
    if word.startswith("-") and "=" in word:
        option, _, value = word.partition("=")
        return f"{option}={redact(value)}"
    return redact(word)
