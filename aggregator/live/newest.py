"""The newest items of a big feed document, picked in one streaming pass.

feedparser costs about 60 µs per item and keeps every item in memory, so a
document of 100,000 items took half a minute. A feed document with more items
than ``[fetch] max_entries_per_feed`` is therefore first read once with lxml's
incremental parser: each item is weighed by its date as it ends and taken out
of the tree, and a heap of at most ``limit`` items keeps the newest (by date,
then by document order: earlier is newer, as feeds list their newest first).
The document is then rebuilt with only those items, in their document order,
and read by the ordinary path (the lxml fast path or feedparser), which thus
never sees more than ``limit`` items. Time is linear in the document and
memory bounded by the items kept.

A document with at most ``limit`` items is not touched, so that it is read
exactly as before. Rejected: capping feedparser's result afterwards (it has
already spent the time and the memory), and a SAX target written in Python
(a Python call per element costs as much as feedparser's own handlers).
"""

from __future__ import annotations

import functools
import heapq
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from aggregator.dates import parse_timestamp
from aggregator.model import MAX_ENTRIES as MAX_ENTRIES  # the limit's default, said there
from aggregator.model import Published, SourceEntry

RSS_090 = "http://my.netscape.com/rdf/simple/0.9/"
RSS_10 = "http://purl.org/rss/1.0/"
ATOM_03 = "http://purl.org/atom/ns#"
ATOM_10 = "http://www.w3.org/2005/Atom"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"

# The elements feedparser reads as entries: RSS <item> (no namespace, RSS 0.90 or 1.0) and
# Atom <entry> (0.3 or 1.0).
ITEMS = frozenset(
    f"{{{namespace}}}{name}" if namespace else name
    for namespace in ("", RSS_090, RSS_10, ATOM_03, ATOM_10)
    for name in ("item", "entry")
)
# An item's dates, as feedparser files them: "published" (RSS pubDate, Atom published,
# Atom 0.3 issued, dcterms:issued) before "updated" (Atom updated, Atom 0.3 modified,
# dc:date, dcterms:modified); an entry's date is its published date, else its updated one.
PUBLISHED, UPDATED = 0, 1
DATES: dict[str, int] = {
    "pubDate": PUBLISHED,
    f"{{{ATOM_10}}}published": PUBLISHED,
    f"{{{ATOM_03}}}issued": PUBLISHED,
    f"{{{DCTERMS}}}issued": PUBLISHED,
    f"{{{ATOM_10}}}updated": UPDATED,
    f"{{{ATOM_03}}}modified": UPDATED,
    f"{{{DC}}}date": UPDATED,
    f"{{{DCTERMS}}}modified": UPDATED,
}
# RSS 1.0's <items><rdf:Seq> lists every item again; the rebuilt document drops it.
RSS_10_ITEMS = f"{{{RSS_10}}}items"

# A day without a time of day counts as noon UTC, as the feeds we write show it
# (render.shown_time), so that a day sorts between the instants of that day.
NOON_UTC = time(12, tzinfo=UTC)

# The RFC 822 dates almost every RSS feed writes, read without the general parser:
# "Mon, 01 Jan 2024 09:00:00 +0000". It gives the same instant as
# dates.parse_timestamp (tests/test_newest.py checks) at a fraction of the cost,
# which matters in a document of a million items: the parts repeat from item to
# item (the same days, times of day and zones), so each is worked out once.
_RFC822 = re.compile(
    r"\s*(?:[A-Za-z]{3},\s*)?(\d\d?\s+[A-Za-z]{3}\s+[1-9]\d{3})\s+(\d\d:\d\d(?::\d\d)?)"
    r"\s+([+-]\d{4}|GMT|UTC?|Z)\s*"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}


@functools.lru_cache(maxsize=4096)
def _midnight(day: str) -> float | None:
    """ "01 Jan 2024" as seconds since the epoch at 00:00 UTC; None when no such day."""
    number, month, year = day.split()
    try:
        return datetime(int(year), _MONTHS[month.lower()], int(number), tzinfo=UTC).timestamp()
    except (KeyError, ValueError):
        return None  # "31 Feb", "01 Foo": parse_timestamp refuses them too


@functools.lru_cache(maxsize=4096)
def _clock(clock: str) -> int | None:
    """ "09:00:00" or "09:00" as seconds into the day; "24:00" its end (the next day's
    first moment, as aggregator.dates reads it); None past that."""
    hour, minute, second = (clock + ":00").split(":")[:3]
    seconds = int(hour) * 3600 + int(minute) * 60 + int(second)
    if int(hour) == 24:
        return seconds if seconds == 24 * 3600 else None
    return seconds if int(hour) < 24 and int(minute) < 60 and int(second) < 60 else None


@functools.lru_cache(maxsize=256)
def _zone(zone: str) -> int:
    """ "+0200" or "GMT" as seconds east of UTC ("-0000", unknown, is UTC too)."""
    if zone[0] not in "+-":
        return 0
    seconds = int(zone[1:3]) * 3600 + int(zone[3:5]) * 60
    return -seconds if zone[0] == "-" else seconds


def when(published: Published | None) -> float | None:
    """Where a date sorts: seconds since the epoch (a day at noon UTC), None when undated."""
    if published is None:
        return None
    moment = published.instant or datetime.combine(published.day, NOON_UTC)
    return moment.timestamp()


def date_key(text: str) -> float | None:
    """``when(parse_timestamp(text))``, quicker for plain RFC 822 dates."""
    match = _RFC822.fullmatch(text)
    if match is None:
        return when(parse_timestamp(text))
    day, clock, zone = match.groups()
    midnight, seconds = _midnight(day), _clock(clock)
    if midnight is None or seconds is None:
        return None
    return midnight + seconds - _zone(zone)


def order_key(position: int, seconds: float | None) -> tuple[int, float, int]:
    """Greater is newer: dated before undated, then later dates, then earlier positions."""
    return (0, 0.0, -position) if seconds is None else (1, seconds, -position)


def newest_entries(entries: list[SourceEntry], limit: int) -> list[SourceEntry]:
    """The ``limit`` newest of ``entries`` (by date, then position), in their order."""
    if len(entries) <= limit:
        return entries
    ranked = heapq.nlargest(
        limit,
        range(len(entries)),
        key=lambda index: order_key(index, when(entries[index].published)),
    )
    return [entries[index] for index in sorted(ranked)]


@dataclass(frozen=True, slots=True)
class Reduced:
    """A document rebuilt with its newest items only."""

    data: bytes  # UTF-8, with an XML declaration saying so
    total: int  # items the document held
    kept: int
    problem: str | None = None  # what the parser had to repair or where it stopped


def count_bound(data: bytes, limit: int) -> int:
    """At least the number of items and entries in ``data``, or a number over ``limit``:
    a document under the cap skips the streaming pass. Every start tag opens with "<",
    so their count bounds the items, in one quick pass (a quarter of the four below) that
    settles a feed of a few hundred tags; past ``limit``, every item and entry start tag
    has one of the four marks."""
    tags = data.count(b"<")
    if tags <= limit:
        return tags
    return sum(data.count(mark) for mark in (b"<item", b":item", b"<entry", b":entry"))


def keep_newest(data: bytes, limit: int, *, encoding: str | None = None) -> Reduced | None:
    """``data`` with only its ``limit`` newest items, or None when it has no more than
    ``limit`` (or none this parser can find): then it is to be read as it is.

    ``data`` must be defused (no DTD subset: entities are left unexpanded).
    ``encoding`` is a charset the document was served with, which overrides its own.
    """
    if limit < 1:
        raise ValueError(f"max_entries must be at least 1, not {limit}")
    if count_bound(data, limit) <= limit:
        return None
    try:
        return _stream(data, limit, encoding, huge=False)
    except _TooDeep:
        # Past libxml2's default limits (nesting deeper than 256, a text node over 10 MB),
        # where it stops: read again without them, memory bounded by the sandbox.
        return _stream(data, limit, encoding, huge=True)


class _TooDeep(Exception):
    pass


def _stream(data: bytes, limit: int, encoding: str | None, *, huge: bool) -> Reduced | None:
    from lxml import etree

    # Item ends and date ends, filtered in C: Python sees a few events per item.
    events = etree.iterparse(
        io.BytesIO(data),
        events=("end",),
        tag=("{*}item", "{*}entry", *DATES),
        encoding=encoding,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=huge,
        recover=True,  # a stray "&" must not cost the rest of the feed, as in feedparser
    )
    # (key, position, element, parent): the kept items, the oldest on top.
    heap: list[tuple[tuple[int, float, int], int, Any, Any]] = []
    total = 0
    stopped: str | None = None
    container: Any = None  # where the items are: <channel>, <feed> or <rdf:RDF>
    dates: list[str | None] = [None, None]  # the current item's published and updated
    try:
        for _, element in events:
            tag = element.tag
            role = DATES.get(tag)
            if role is not None:
                if dates[role] is None and element.getparent().tag in ITEMS:
                    dates[role] = element.text or ""
                continue
            if tag not in ITEMS:
                continue
            parent = element.getparent()
            if parent is not container:
                if parent is None or any(a.tag in ITEMS for a in element.iterancestors()):
                    dates = [None, None]
                    continue  # the root, or an item inside an item: part of the outer one
                container = container if container is not None else parent
            # order_key(total, the item's date), written out: this runs a million times.
            published, updated = dates
            seconds = None if published is None else date_key(published)
            if seconds is None and updated is not None:
                seconds = date_key(updated)
            key = (0, 0.0, -total) if seconds is None else (1, seconds, -total)
            dates = [None, None]
            total += 1
            parent.remove(element)
            if len(heap) < limit:
                heapq.heappush(heap, (key, total, element, parent))
            elif key > heap[0][0]:
                heapq.heapreplace(heap, (key, total, element, parent))
    except etree.XMLSyntaxError as error:
        stopped = " ".join(str(error).split())
    except LookupError:  # an encoding libxml2 does not know: leave it to feedparser
        return None
    # In recovery, libxml2 stops at a resource limit without raising: look for one.
    limits = [e.message for e in events.error_log if e.type_name == "ERR_RESOURCE_LIMIT"]
    if not huge and (limits or (stopped and "huge" in stopped.lower())):
        raise _TooDeep(stopped or limits[0])
    if stopped is not None:
        stopped = f"{stopped}; read the {total} items before it"
    if total <= limit or container is None:
        return None
    for _, _, element, parent in sorted(heap, key=lambda kept: kept[1]):
        parent.append(element)
    root = container.getroottree().getroot()
    for listing in root.iter(RSS_10_ITEMS):
        listing.getparent().remove(listing)
    problem = stopped or _repaired(events.error_log)
    reduced = etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)
    return Reduced(reduced, total, len(heap), problem)


def _repaired(log: Any) -> str | None:
    """The first error the recovering parser repaired (an undeclared entity, such as RSS
    0.91's "&eacute;", is only a warning and left as a reference)."""
    from lxml import etree

    for entry in log:
        if entry.level >= etree.ErrorLevels.ERROR:
            return f"line {entry.line}: {entry.message}"
    return None
