"""Editing the ``[[sources]]`` of config.toml, keeping every other byte as it was.

The file is the user's: their comments, blank lines, key order and quoting stay
exactly as they wrote them. Each edit is a small text change at a known place (a
new ``[[sources]]`` table after the last one, a removed table, an ``enabled`` line),
with values written by tomlkit so that any name or URL is quoted correctly.
Rejected: editing tomlkit's document model and dumping it. tomlkit ties the comments
and blank lines that follow a table to that table, so a table appended to the array
lands after the comment that introduces the next section, and a key added to a table
lands after that comment too.

Every edit is checked before anything is written: the new text, parsed by tomlkit,
must hold exactly the old data with the one change, and the whole file must pass
:func:`~aggregator.config.load_config`. Only then is it written, to a temporary file
beside it that is renamed over it (atomic on POSIX), keeping its permissions. A
check that fails is an error and the file is left as it was. So is a file that
changed since it was read (another ``sources`` command, or an editor, saved it
meanwhile): the edit would undo theirs, so it is refused, to be run again.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from glob import escape as glob_escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import tomlkit
from tomlkit.exceptions import TOMLKitError

from aggregator.config import KEY_LIKE, Config, default_name, load_config
from aggregator.errors import ConfigError, os_advice
from aggregator.uri import as_uri, without_credentials

if TYPE_CHECKING:
    from aggregator.snapshots.page import Captured

BOM = "\ufeff"
# A table header on a line of its own: "[feeds]", "[[sources]]", "  [[topics.rules]]  # …".
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]\s][^\]]*?)\s*(\]\]?)\s*(?:#.*)?$")
_KEY_LINE = re.compile(r"^\s*(?:#.*)?$")  # blank or comment: not a key/value line
_ENABLED = re.compile(r"^\s*enabled\s*=")
# An "enabled" line as written: its indent and spacing, value, and trailing comment.
_ENABLED_VALUE = re.compile(r"^(\s*enabled\s*=\s*)(true|false)(\s*(?:#.*)?)$")


def normalise_url(url: str) -> str:
    """A URL as compared for duplicates: as a URI (a space or a non-ASCII host written
    as a link is written: aggregator.uri), scheme and host in lower case, no default
    port, no fragment, ``http`` and ``https`` alike, escapes of unreserved characters
    decoded (``%72`` is ``r``), ``.`` and ``..`` segments resolved, no trailing slash on
    the path."""
    url = url.strip()
    try:
        url = as_uri(url, urlsplit(url).netloc) or url
        parts = urlsplit(url)
    except ValueError:  # not a URL ("http://["): compared as it is
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return url
    host = (parts.hostname or "").lower()
    if parts.port is not None and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = _without_dot_segments(_ESCAPE.sub(_unescape, parts.path))
    query = _ESCAPE.sub(_unescape, parts.query)
    return urlunsplit(("http", host, path.rstrip("/") or "/", query, ""))


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _unescape(escape: re.Match[str]) -> str:
    """An escape as RFC 3986 normalises it: an unreserved character as itself (``%72``
    is ``r``), any other in upper case (``%2f`` is ``%2F``)."""
    character = chr(int(escape[1], 16))
    return character if character in _UNRESERVED else escape[0].upper()


def _without_dot_segments(path: str) -> str:
    """A path with its ``.`` and ``..`` segments resolved (RFC 3986, 5.2.4), as a
    client resolves them before it asks: ``/a/./b/../feed`` is ``/a/feed``."""
    if "." not in path:
        return path
    kept: list[str] = []
    segments = path.split("/")
    for number, segment in enumerate(segments):
        last = number == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and len(kept) > 1:
                kept.pop()
            if last:
                kept.append("")  # "/a/b/.." is "/a/": a folder
        else:
            kept.append(segment)
    return "/".join(kept)


@dataclass(frozen=True, slots=True)
class NewSource:
    """A source to add: a live feed (``url``) or a local file (``path``, as it is to be
    written: relative to the config file, or absolute)."""

    name: str
    url: str | None = None
    path: str | None = None
    kind: str | None = None
    topics: tuple[str, ...] = ()
    captured: Captured | None = None  # a saved page's capture time

    def table(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.url is not None:
            data["url"] = self.url
        if self.path is not None:
            data["path"] = self.path
        if self.kind is not None:
            data["kind"] = self.kind
        if self.topics:
            data["topics"] = list(self.topics)
        if self.captured is not None:
            data["captured"] = self.captured  # a TOML date, or a date-time with its offset
        return data


# Bidirectional embeddings, overrides and isolates: none in the name a feed gives itself
# when it is added (aggregator.config refuses the overrides in any name).
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")
# The longest name a source is given from its feed's or outline's title.
MAX_TITLE_NAME = 120
# Letters and symbols that show nothing (Hangul fillers, the blank Braille pattern).
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def usable_name(label: str | None, fallback: str) -> str:
    """A source's name from what it calls itself (a feed's title, an outline's text),
    without the bidirectional controls a config refuses in a name; ``fallback`` (its
    address, its file) when nothing visible is left, or when it reads as a source's key."""
    name = " ".join(_BIDI_CONTROL.sub("", label or "").split())
    if len(name) > MAX_TITLE_NAME:  # a name is a short label (a store indexes names)
        name = name[: MAX_TITLE_NAME - 1].rstrip() + "…"
    # Nothing to see (zero-width spaces alone, say: found by review): as good as none.
    visible = any(
        not unicodedata.category(c).startswith(("C", "Z", "M")) and c not in _BLANK for c in name
    )
    if not visible or KEY_LIKE.fullmatch(name):
        return default_name(fallback)  # (an address may be longer than a name may be)
    return name


def _name(table: Mapping[str, Any]) -> str:
    """A table's name as :func:`~aggregator.config.load_config` reads it: trimmed (its
    address or path when it has none, shortened as the config shortens a long one)."""
    if table.get("name"):
        return str(table["name"]).strip()
    return default_name(str(table.get("url") or table.get("path"))).strip()


def pasted(target: str) -> str:
    """``target`` as meant when pasted: without surrounding white space, and ``feed:``
    URLs (``feed://host/path``, ``feed:https://host/path``) as the http(s) URLs they
    stand for."""
    target = target.strip()
    scheme, colon, rest = target.partition(":")
    if colon and scheme.lower() == "feed":
        if rest.lower().startswith(("http://", "https://")):
            return rest
        if rest.startswith("//"):
            return f"http:{rest}"
    return target


# How many sources' names an error naming the choices lists.
NAMED = 10


class _Known:
    """The sources' names, normalised URLs and resolved files, each with the source's
    key and name: a duplicate is found by a look-up, not a pass over every table."""

    def __init__(self, base: Path) -> None:
        self.base = base  # the config's directory, which relative paths are relative to
        self.names: dict[str, str] = {}
        self.urls: dict[str, tuple[str, str, str]] = {}
        self.paths: dict[Path, tuple[str, str, str]] = {}

    def __copy__(self) -> _Known:
        other = _Known(self.base)
        other.names, other.urls, other.paths = dict(self.names), dict(self.urls), dict(self.paths)
        return other

    def note(self, key: str, table: Mapping[str, Any]) -> None:
        name = _name(table)
        self.names.setdefault(name, key)
        url, path = table.get("url"), table.get("path")
        if isinstance(url, str):
            self.urls.setdefault(normalise_url(url), (key, name, url))
        if isinstance(path, str):
            self.paths.setdefault((self.base / path).resolve(), (key, name, path))

    def reading(self, url: str) -> str | None:
        """Which source reads ``url`` already (its key, name and address), or None."""
        found = self.urls.get(normalise_url(url))
        if found is None:
            return None
        key, name, where = found
        return f"{key} ({name!r}) already reads {without_credentials(where)}"

    def duplicate_of(self, source: NewSource) -> str | None:
        # The same feed first: it says which address was found (a page's feed, say).
        found = None
        if source.url:
            found = self.urls.get(normalise_url(source.url))
        if found is None and source.path:
            found = self.paths.get((self.base / source.path).resolve())
        if found is not None:
            key, name, where = found
            return f"{key} ({name!r}) already reads {without_credentials(where)}"
        named = self.names.get(source.name.strip())
        if named is not None:
            given = without_credentials(source.url) if source.url else source.path
            return (
                f"a source named {source.name.strip()!r} is already there ({named}); "
                f"give this one ({given}) another with --name"
            )
        return None


@dataclass(frozen=True, slots=True)
class _Span:
    """Where one ``[[sources]]`` table sits: its header line, and the line after its
    last key (comments and blank lines after that belong to what follows)."""

    start: int
    end: int


class SourcesFile:
    """config.toml, read for editing its sources; :meth:`save` writes the edits."""

    def __init__(self, path: Path, command: str = "the edit") -> None:
        self.path = path
        self.command = command  # what the user ran, for the message of a lost race
        self.config = load_config(path)  # a broken file is reported, never edited
        # The bytes edited: save() writes only over these (the whole edited file is
        # loaded again before it is put in place).
        self.read = path.read_bytes()
        raw = self.read.decode("utf-8")
        self.bom = BOM if raw.startswith(BOM) else ""
        self.text = raw[len(self.bom) :]
        self.newline = "\r\n" if "\r\n" in self.text else "\n"
        self.original = self.text
        self.data = self._parse(self.text)
        self._known: _Known | None = None  # the sources' names, URLs and files, once asked

    # -- reading ------------------------------------------------------------------------

    def _parse(self, text: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = tomlkit.parse(text).unwrap()
        except TOMLKitError as error:
            raise ConfigError(str(self.path), f"not valid TOML: {error}") from error
        return data

    def tables(self) -> list[dict[str, Any]]:
        sources = self.data.get("sources", [])
        return list(sources) if isinstance(sources, list) else []

    def names(self) -> list[str]:
        """The sources' names as runs and ``sources list`` show them: trimmed."""
        return [_name(table) for table in self.tables()]

    def index_of(self, name: str) -> int:
        """The position of the source called ``name`` (surrounding spaces, in the file or
        in ``name``, ignored, as runs ignore them), or given by its key (``sources[3]``,
        as ``sources list --json`` gives it), its URL (a ``feed:`` one too) or its file
        (a ``file:`` URL too); ConfigError naming the choices (the first :data:`NAMED`)."""
        names = self.names()
        wanted = name.strip()
        if wanted in names:
            return names.index(wanted)
        keys = self.keys()
        if wanted in keys:
            return keys.index(wanted)
        known = self._index()
        address = pasted(wanted)
        if address.lower().startswith("file:"):  # as `sources add` takes one
            address = unquote(urlsplit(address).path)
        found = None
        if address and "://" not in address:
            # A path as the config writes it (from the config's folder), or as the user
            # gave it to `sources add` (from here): found by review, a source added
            # with --config elsewhere could not be removed by the path it was added by.
            # The very text the config writes first.
            found = next((v for v in known.paths.values() if v[2] == address), None)
            written = known.paths.get((known.base / address).resolve())
            given = known.paths.get(Path(address).resolve())
            if found is None and written is not None and given is not None and written != given:
                raise ConfigError(
                    str(self.path),
                    f"{name!r} names two sources: {written[0]} ({written[2]}) from the "
                    f"config's folder, and {given[0]} ({given[2]}) from here; give the "
                    f"key ({written[0]} or {given[0]}) or an absolute path",
                )
            found = found or written or given
        elif "://" in address:
            found = known.urls.get(normalise_url(address))
        if found is not None:
            return keys.index(found[0])
        choices = ", ".join(repr(n) for n in names[:NAMED]) or "none"
        if len(names) > NAMED:
            choices += f", and {len(names) - NAMED} more: aggregator sources list"
        raise ConfigError(
            str(self.path),
            f"no source named {name!r}, nor of that key, URL or file (the sources are: {choices})",
        )

    def _index(self) -> _Known:
        """The names, URLs and files of the sources, made once for every question."""
        if self._known is None:
            self._known = _Known(self.path.resolve().parent)
            for key, table in zip(self.keys(), self.tables(), strict=True):
                self._known.note(key, table)
        return self._known

    def duplicate_of(self, source: NewSource) -> str | None:
        """Why ``source`` may not be added (same name, or same URL or file), or None."""
        return self._index().duplicate_of(source)

    def reading(self, url: str) -> str | None:
        """Which source reads ``url`` already (said as a reason), or None."""
        return self._index().reading(url)

    def keys(self) -> list[str]:
        return [f"sources[{i}]" for i in range(1, len(self.tables()) + 1)]

    def _lines(self) -> list[str]:
        return self.text.splitlines(keepends=True)

    def _spans(self) -> list[_Span]:
        """Each ``[[sources]]`` table's lines, in order. Lines inside multi-line strings
        are not taken for headers."""
        lines = self._lines()
        spans: list[_Span] = []
        current: int | None = None
        last_key = 0
        in_string: str | None = None
        for number, line in enumerate(lines):
            if in_string is None:
                header = _HEADER.match(line)
                if header is not None:
                    double, name = header[1] == "[[", header[2].strip()
                    if current is not None and not name.startswith("sources."):
                        spans.append(_Span(current, last_key + 1))
                        current = None
                    if double and name == "sources":
                        if current is not None:
                            spans.append(_Span(current, last_key + 1))
                        current, last_key = number, number
                    continue
                if current is not None and not _KEY_LINE.match(line):
                    last_key = number
            for quote in ('"""', "'''"):
                if in_string in (None, quote) and line.count(quote) % 2 == 1:
                    in_string = None if in_string == quote else quote
                    if current is not None:
                        last_key = number
        if current is not None:
            spans.append(_Span(current, last_key + 1))
        return spans

    # -- editing ------------------------------------------------------------------------

    def _render(self, data: dict[str, Any]) -> list[str]:
        lines = ["[[sources]]"]
        lines += [f"{key} = {tomlkit.item(value).as_string()}" for key, value in data.items()]
        return [line + self.newline for line in lines]

    def _edit(self, lines: list[str], expected: dict[str, Any], what: str) -> None:
        text = "".join(lines)
        if self._parse(text) != expected:
            raise ConfigError(
                str(self.path),
                f"cannot {what} without disturbing the file's layout (are the sources "
                "written as [[sources]] tables?); nothing was changed: edit it by hand",
            )
        self.text, self.data = text, expected
        self._known = None

    def add(self, source: NewSource) -> None:
        """Append a ``[[sources]]`` table after the last one (or at the end of the file).

        Raises ConfigError for a duplicate (same name, same normalised URL, same file).
        """
        self.add_all([source])

    def add_all(self, sources: Sequence[NewSource]) -> None:
        """Append ``[[sources]]`` tables after the last one (or at the end of the file),
        in one edit: one block of text inserted, and one check of the whole file, however
        many there are.

        Raises ConfigError for a duplicate (same name, same normalised URL, same file)
        of a source in the file or of another in ``sources``; nothing is then added.
        """
        if not sources:
            return
        known = copy.copy(self._index())
        count = len(self.tables())
        for number, source in enumerate(sources, start=count + 1):
            problem = known.duplicate_of(source)
            if problem is not None:
                raise ConfigError(str(self.path), f"{problem}; nothing was changed")
            known.note(f"sources[{number}]", source.table())
        expected = dict(self.data)  # only "sources" changes: its list is a new one
        expected["sources"] = [*self.tables(), *(source.table() for source in sources)]
        lines = self._lines()
        spans = self._spans()
        if len(spans) != count:
            self._edit(lines, {}, "add a source")  # fails with the layout message
        at = spans[-1].end if spans else len(lines)
        if at > 0 and not lines[at - 1].endswith(("\n", "\r")):
            lines[at - 1] += self.newline
        new: list[str] = []
        for source in sources:
            new += [self.newline, *self._render(source.table())]
        if not spans and at > 0 and not lines[at - 1].strip():
            new = new[1:]  # the file already ends with a blank line
        lines[at:at] = new
        self._edit(lines, expected, "add a source")

    def remove(self, name: str) -> dict[str, Any]:
        """Take out the source called ``name`` (its header and keys; comments stay)."""
        index = self.index_of(name)
        expected = copy.deepcopy(self.data)
        removed: dict[str, Any] = expected["sources"].pop(index)
        if not expected["sources"]:
            del expected["sources"]
        lines = self._lines()
        spans = self._spans()
        if len(spans) != len(self.tables()):
            self._edit(lines, {}, "remove a source")
        span = spans[index]
        start = span.start
        # Its own comment, right above its header (no blank line between), goes with it
        # (found by review: it stayed, heading the next source); not the file's opening
        # comment.
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        if start == 0:
            start = span.start
        header = start
        while start > 0 and not lines[start - 1].strip():
            start -= 1  # the blank lines that separated it from what was before
        if start == 0:
            start = header
        del lines[start : span.end]
        self._edit(lines, expected, "remove a source")
        return removed

    def set_enabled(self, name: str, enabled: bool) -> bool:
        """Disable (``enabled = false``) or enable (no ``enabled`` key) a source. An
        ``enabled`` line with a comment keeps its comment: only its value changes.

        Returns False when it already was so (and nothing changes).
        """
        index = self.index_of(name)
        table = self.tables()[index]
        if bool(table.get("enabled", True)) == enabled:
            return False
        expected = copy.deepcopy(self.data)
        lines = self._lines()
        spans = self._spans()
        if len(spans) != len(self.tables()):
            self._edit(lines, {}, "change a source")
        span = spans[index]
        found = [n for n in range(span.start + 1, span.end) if _ENABLED.match(lines[n])]
        written = _ENABLED_VALUE.match(lines[found[0]].rstrip("\r\n")) if found else None
        if written is not None and written[3].strip():
            # A comment on the line stays, and so does the line: only its value changes.
            line = lines[found[0]]
            ending = line[len(line.rstrip("\r\n")) :]
            value = "true" if enabled else "false"
            lines[found[0]] = f"{written[1]}{value}{written[3]}{ending}"
            expected["sources"][index]["enabled"] = enabled
        elif enabled:
            del expected["sources"][index]["enabled"]
            for number in reversed(found):
                del lines[number]
        elif found:
            expected["sources"][index]["enabled"] = False
            lines[found[0]] = f"enabled = false{self.newline}"
        else:
            expected["sources"][index]["enabled"] = False
            if not lines[span.end - 1].endswith(("\n", "\r")):
                lines[span.end - 1] += self.newline
            lines.insert(span.end, f"enabled = false{self.newline}")
        self._edit(lines, expected, "change a source")
        return True

    # -- writing ------------------------------------------------------------------------

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def save(self) -> Config:
        """Check the edited file with load_config and put it in place atomically.

        Returns the new configuration. Nothing is written when nothing changed. A file
        that no longer holds the bytes read at the start (another command's edit, or an
        editor's, made meanwhile) is not overwritten: ConfigError, and nothing changes.
        """
        if not self.changed:
            return self.config
        target = self.path.resolve()  # a symlinked config.toml: replace what it points to
        data = (self.bom + self.text).encode("utf-8")
        try:
            handle, name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
            )
        except OSError as error:  # an unwritable or read-only directory, a full disk
            raise ConfigError(str(self.path), _cannot_write(error, target.parent)) from error
        temporary = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                config = replace(load_config(temporary), path=self.path)
            except ConfigError as error:
                where = error.where.replace(str(temporary), str(self.path))
                raise ConfigError(
                    where, f"{error.message} (after the edit); nothing was changed"
                ) from error
            found = target.stat()
            temporary.chmod(found.st_mode & 0o7777)
            if (found.st_uid, found.st_gid) != (os.geteuid(), os.getegid()):
                # Edited as root (sudo) for the user the service runs as: the file stays
                # that user's, or the next run as it could not read its own config (found
                # by review). Anyone else cannot give a file away: it becomes theirs,
                # with the same mode, as an editor's save would.
                with contextlib.suppress(PermissionError):
                    os.chown(temporary, found.st_uid, found.st_gid)
            if target.read_bytes() != self.read:
                raise ConfigError(
                    str(self.path),
                    f"changed while {self.command} ran (another command, or an editor); "
                    "nothing was changed; run it again",
                )
            temporary.replace(target)
        except OSError as error:
            raise ConfigError(str(self.path), _cannot_write(error, target.parent)) from error
        finally:
            temporary.unlink(missing_ok=True)
        self.original = self.text
        self.read = data
        self.config = config
        _sweep_stale(target)
        return config


def _cannot_write(error: OSError, directory: Path) -> str:
    """One line for a config that could not be written: why, and what to do.

    The edit is written to a temporary file beside the config and renamed over it, so
    the directory, not only the file, must be writable.
    """
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"cannot write: {os_advice(error)}; nothing was changed"
    return (
        f"cannot write: {error.strerror or error} in {directory}; make the directory "
        "writable by this user (the edit is written beside the file, then renamed over "
        "it), or edit the file by hand; nothing was changed"
    )


# Older than this, a temporary file of an edit is one that was killed before it could
# remove it (another command's edit takes seconds).
STALE_SECONDS = 3600


def _sweep_stale(target: Path) -> None:
    """Remove the temporary files of edits of ``target`` that were killed (found by
    review: one was left beside config.toml for good), never one being written now."""
    import time

    cutoff = time.time() - STALE_SECONDS
    with contextlib.suppress(OSError):
        for found in target.parent.glob(f".{glob_escape(target.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                if found.is_file() and found.stat().st_mtime < cutoff:
                    found.unlink()
