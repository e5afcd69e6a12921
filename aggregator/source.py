"""Reading one source's bytes into entries: the library's entry point."""

from __future__ import annotations

import codecs
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.errors import SourceError
from aggregator.model import MAX_ENTRIES, SourceEntry
from aggregator.uri import without_credentials

# Every package imports this module (aggregator/__init__.py): what reads a feed or a
# page is imported when one is read, so that a run with nothing to read never does.
if TYPE_CHECKING:
    from aggregator.live.feedparse import FeedDocument
    from aggregator.live.sandbox import Sandbox
    from aggregator.snapshots.page import Captured

log = logging.getLogger("aggregator")

# The largest saved page read (README, "Snapshot layouts"). NATO's pages are 5 to 60 KB
# as text. Reading is linear; each non-blank line costs about 150 bytes of memory, a run
# of blank lines one line's worth. Measured (2026-11-30, one core): 16 MB of 16-character
# lines, a million lines (snapshots.page.MAX_LINES, the most a page may hold), peaks at
# 200 MB and takes 6 s as a listing; a 16 MB listing of 80,000 items 140 MB and 6 s;
# 16 MB of blank lines 50 MB and 0.4 s.
MAX_SNAPSHOT_BYTES = 16 * 10**6
# Byte-order marks of the UTF-16 text accepted besides UTF-8, and their codecs.
_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def decode(data: bytes, source: str, location: str) -> str:
    """Snapshot text: UTF-8 (with or without a byte-order mark), or UTF-16 with one
    (as Windows "Unicode" saves it). Larger than :data:`MAX_SNAPSHOT_BYTES` is refused
    before any decoding."""
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SourceError(
            source,
            location,
            f"saved page is {len(data):,} bytes, over the {MAX_SNAPSHOT_BYTES:,}-byte limit "
            "for snapshots; save only the news listing part of the page, or split it into "
            "several sources",
        )
    # Without a BOM, UTF-16 cannot be told from other bytes; with one it is unambiguous.
    codec, skip = next(
        ((codec, len(bom)) for bom, codec in _UTF16_BOMS if data.startswith(bom)),
        ("utf-8-sig", 0),
    )
    try:
        return data[skip:].decode(codec)
    except UnicodeDecodeError as error:
        start = skip + error.start
        before = data[skip:start].decode(codec, errors="replace")
        line = before.count("\n") + 1
        name = "UTF-8" if skip == 0 else "UTF-16"
        raise SourceError(
            source,
            f"{location}:{line}",
            f"not {name} text (byte {data[start]:#04x} at offset {start}: {error.reason}); "
            "save the page as UTF-8 (or UTF-16 with a byte-order mark)",
        ) from error


def is_feed(data: bytes, kind: str | None) -> bool:
    """Whether bytes are an RSS/Atom or JSON Feed document (rather than a saved page)."""
    from aggregator.live.harden import looks_like_xml
    from aggregator.live.jsonfeed import looks_like_json_feed

    if kind is not None:
        return kind == "feed"
    return looks_like_xml(data) or looks_like_json_feed(data)


def read_feed(
    data: bytes,
    *,
    url: str,
    name: str,
    sandbox: Sandbox | None = None,
    content_type: str | None = None,
    max_entries: int = MAX_ENTRIES,
) -> FeedDocument:
    """An RSS/Atom or JSON Feed document, parsed in ``sandbox`` when given; its warnings
    are logged.

    Only its ``max_entries`` newest entries are read (``[fetch] max_entries_per_feed``).
    """
    if sandbox is not None:
        document = sandbox.parse(
            data, url=url, name=name, content_type=content_type, max_entries=max_entries
        )
    else:
        from aggregator.live.feedparse import parse_feed  # lazily: feedparser is slow to import
        from aggregator.live.jsonfeed import is_json_feed, parse_json_feed

        parse = parse_json_feed if is_json_feed(data, content_type) else parse_feed
        document = parse(
            data, url=url, name=name, content_type=content_type, max_entries=max_entries
        )
    for warning in document.warnings:
        shown = without_credentials(url)
        log.warning("%s: %s", name if name == url else f"{name} ({shown})", warning)
    return document


def parse_source(
    data: bytes,
    *,
    url: str | None = None,
    kind: str | None = None,
    captured: Captured | None = None,
    name: str | None = None,
    sandbox: Sandbox | None = None,
    content_type: str | None = None,
    max_entries: int = MAX_ENTRIES,
) -> list[SourceEntry]:
    """The entries in one source's bytes: an RSS/Atom feed or a saved page.

    ``url`` says where the bytes came from (a path or URL), for provenance,
    relative links and messages; ``name`` is the source's name (default: ``url``).
    ``kind`` is ``"feed"`` or a page layout, instead of recognising it from the
    bytes. ``captured`` is when a page was saved, for pages that date items by
    age. Feeds are parsed in ``sandbox`` (bounded in time and memory) when one
    is given; of a feed, only the ``max_entries`` newest entries are read.
    Raises a :class:`~aggregator.SourceError` for input it cannot read.
    """
    location = url or "<data>"
    source = name or location
    if is_feed(data, kind):
        document = read_feed(
            data,
            url=location,
            name=source,
            sandbox=sandbox,
            content_type=content_type,
            max_entries=max_entries,
        )
        return list(document.entries)
    if captured is not None and isinstance(captured, datetime) and captured.tzinfo is None:
        raise SourceError(source, location, f"capture time {captured} has no time zone")
    from aggregator.snapshots import read_text

    text = decode(data, source, location)
    return read_text(text, source=source, location=location, kind=kind, captured=captured)
