"""What a feed document held, and the form it crosses from a parser worker in.

:class:`FeedDocument` is what :func:`aggregator.live.feedparse.parse_feed` and
:func:`aggregator.live.jsonfeed.parse_json_feed` return. It lives here, apart from the
parsers, so that the main process can rebuild one without importing feedparser.

A parser worker (:mod:`aggregator.live.sandbox`) hands a document back as plain
tuples (:func:`pack`), rebuilt on this side by :func:`unpack`: pickling frozen, slotted
dataclasses runs Python code per object on both sides (about 45 µs an entry in all),
tuples of strings, numbers and datetimes are pickled in C (about 12 µs, most of it
building the entries again). ``unpack(pack(document)) == document``, field for field.
"""

from __future__ import annotations

from dataclasses import field
from datetime import date, datetime
from typing import Any

from aggregator.model import Enclosure, Provenance, Published, SourceEntry
from aggregator.records import record


@record
class FeedDocument:
    """What a feed document held: its entries, and what it asks of pollers."""

    title: str
    entries: tuple[SourceEntry, ...]
    warnings: tuple[str, ...] = ()
    ttl_minutes: int | None = None
    # The digest of every item read (see feedparse.item_digest), for the next read to
    # skip the ones it already knows; and how many this read skipped (they are not in
    # entries). Not part of what the document says: equal documents may differ in them.
    digests: tuple[str, ...] = field(default=(), compare=False)
    # The id of each digest's item, as read (None: skipped as known, or no id); with the
    # last read's, what tells which ids the source still lists (ingest.listed_ids).
    item_ids: tuple[str | None, ...] = field(default=(), compare=False)
    item_marks: tuple[str | None, ...] = field(default=(), compare=False)  # text.item_mark
    unchanged: int = field(default=0, compare=False)


Packed = tuple[Any, ...]


def _date(published: Published | None) -> date | datetime | None:
    # An instant determines its day (Published.at): the instant alone is enough.
    if published is None:
        return None
    return published.day if published.instant is None else published.instant


def _published(value: date | datetime | None) -> Published | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return Published(value.date(), value)
    return Published(value)


def pack(document: FeedDocument) -> Packed:
    """``document`` as tuples of plain values (see the module's note)."""
    entries = tuple(
        (
            e.title,
            _date(e.published),
            e.summary,
            (e.provenance.source, e.provenance.location, e.provenance.line, e.provenance.page_url),
            e.link,
            e.author,
            e.guid,
            _date(e.updated),
            e.categories,
            e.content_html,
            tuple((x.url, x.type, x.length, x.thumbnail) for x in e.enclosures),
        )
        for e in document.entries
    )
    return (
        document.title,
        entries,
        document.warnings,
        document.ttl_minutes,
        document.digests,
        document.item_ids,
        document.item_marks,
        document.unchanged,
    )


def unpack(packed: Packed) -> FeedDocument:
    """The document :func:`pack` was given."""
    title, rows, warnings, ttl_minutes, digests, item_ids, item_marks, unchanged = packed
    provenances: dict[tuple[Any, ...], Provenance] = {}  # one object per place, shared
    entries = []
    for row in rows:
        (
            entry_title,
            published,
            summary,
            where,
            link,
            author,
            guid,
            updated,
            categories,
            content_html,
            enclosures,
        ) = row
        provenance = provenances.get(where)
        if provenance is None:
            provenance = provenances[where] = Provenance(*where)
        entries.append(
            SourceEntry(
                entry_title,
                _published(published),
                summary,
                provenance,
                link,
                author,
                guid,
                _published(updated),
                categories,
                content_html,
                tuple(Enclosure(*enclosure) for enclosure in enclosures),
            )
        )
    return FeedDocument(
        title, tuple(entries), warnings, ttl_minutes, digests, item_ids, item_marks, unchanged
    )
