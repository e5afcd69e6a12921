"""JSON Feed 1.0 and 1.1 documents (https://jsonfeed.org/version/1.1) to entries.

The same guarantees as RSS and Atom (see ``feedparse``): HTML goes through the
allowlist sanitiser, titles and names are plain text, links and attachments are
kept only when they are http(s), every field is capped, dates keep the offset
(and the precision) they were written with, and one bad item is skipped with a
warning. A document that is not JSON, or JSON that is not a JSON Feed, is an
error for its source.

It runs where RSS and Atom are parsed: in the sandbox's worker processes when
there is a sandbox (``sandbox._serve`` picks this reader by :func:`is_json_feed`).
``json`` has no entities or external references to defuse, but a 40 MB document
takes about ten times that in Python objects and cleaning thousands of HTML
bodies takes seconds; the worker's memory and time limits bound both, as they
do for XML. Rejected: parsing in the calling process with caps of its own (it
would need its own memory bound, and would hold the GIL in ``serve``'s threads).

What 1.0 and 1.1 differ in: 1.1 has ``authors`` (a list) where 1.0 had ``author``
(one object); both are read, ``authors`` first. An item without authors has the
feed's (1.1, "authors"). 1.1 says an ``id`` given as a number is read as text.
"""

from __future__ import annotations

import heapq
import json
import re
from typing import Any

from aggregator.dates import parse_timestamp
from aggregator.errors import SourceError
from aggregator.live import clean
from aggregator.live.document import FeedDocument
from aggregator.live.newest import MAX_ENTRIES, when
from aggregator.model import Enclosure, Provenance, Published, SourceEntry
from aggregator.text import MAX_TEXT
from aggregator.uri import without_credentials

# "version" of JSON Feed 1 and 1.1: "https://jsonfeed.org/version/1" and ".../1.1".
VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
# The media type JSON Feed 1.1 asks servers to use (older ones say application/json).
FEED_TYPES = frozenset({"application/feed+json"})
# How far into a document its "version" is looked for when sniffing by content.
SNIFF_BYTES = 64 << 10
MAX_WARNINGS = 20
MAX_ENCLOSURES = 20
# A size larger than this (8 EiB) is nonsense, and SQLite's integers stop there.
MAX_SIZE = 2**63 - 1
# type "/" subtype, each a restricted name (RFC 6838 §4.2): "audio/mpeg", "image/svg+xml".
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _head(data: bytes) -> bytes:
    return data[:SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")


def looks_like_json_feed(data: bytes) -> bool:
    """Whether bytes look like a JSON Feed by content alone: a JSON object whose
    first 64 KB name a jsonfeed.org version (feeds put ``version`` first)."""
    head = _head(data)
    return head.startswith(b"{") and b"jsonfeed.org/version/" in head


def is_json_feed(data: bytes, content_type: str | None = None) -> bool:
    """Whether to read ``data`` as a JSON Feed rather than XML: served as
    ``application/feed+json``, or starting like a JSON object (no XML document does),
    so that JSON that is not a JSON Feed is told so rather than "no RSS elements"."""
    return _media_type(content_type) in FEED_TYPES or _head(data).startswith(b"{")


def _string(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value.strip() else None


def _date(item: dict[str, Any], key: str, warnings: list[str], index: int) -> Published | None:
    raw = item.get(key)
    if raw is None:
        return None
    published = parse_timestamp(raw[:100]) if isinstance(raw, str) else None
    if published is None:
        shown = clean.plain(str(raw), 60)
        warnings.append(f"item {index}: {key} {shown!r} is not a date (RFC 3339); left out")
    return published


def _authors(data: dict[str, Any]) -> list[str]:
    """Author names: 1.1 ``authors``, else 1.0 ``author``; objects without a name skipped."""
    found = data.get("authors")
    if not isinstance(found, list):
        single = data.get("author")
        found = [single] if isinstance(single, dict) else []
    names = (clean.name(_string(a, "name")) for a in found[:20] if isinstance(a, dict))
    return list(dict.fromkeys(n for n in names if n))


def _mime_type(value: object) -> str | None:
    """A MIME type without parameters, lowercased; None when it has not the shape of one."""
    if not isinstance(value, str):
        return None
    essence = value.split(";", 1)[0].strip().lower()
    return essence if _MIME.fullmatch(essence) else None


def _size(value: object) -> int | None:
    """``size_in_bytes``: a whole JSON number of bytes, not negative; else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_SIZE else None


def _enclosures(item: dict[str, Any], base: str | None) -> tuple[Enclosure, ...]:
    """``attachments`` (url, mime_type, size_in_bytes), then ``image`` as a thumbnail."""
    candidates: list[tuple[object, object, object, bool]] = []
    attachments = item.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if isinstance(attachment, dict):
            candidates.append(
                (
                    attachment.get("url"),
                    attachment.get("mime_type"),
                    attachment.get("size_in_bytes"),
                    False,
                )
            )
    candidates.append((item.get("image"), None, None, True))
    kept: dict[str, Enclosure] = {}
    for url, kind, size, thumbnail in candidates:
        if len(kept) >= MAX_ENCLOSURES:
            break
        safe = clean.safe_url(url, base) if isinstance(url, str) else None
        if safe is None or safe in kept:
            continue
        kept[safe] = Enclosure(safe, _mime_type(kind), _size(size), thumbnail)
    return tuple(kept.values())


def _item(
    item: dict[str, Any],
    *,
    index: int,
    base: str | None,
    name: str,
    location: str,
    feed_authors: list[str],
    warnings: list[str],
) -> SourceEntry | None:
    content_html = _string(item, "content_html")
    content_text = _string(item, "content_text")
    if content_html is not None:
        body = clean.sanitize_html(content_html, base)
    elif content_text is not None:
        body = clean.sanitize_html(clean.text_as_html(content_text), base)
    else:
        body = ""
    summary_raw = _string(item, "summary")  # plain text, by the spec
    if summary_raw is not None:
        summary = clean.text_summary(clean.plain(summary_raw, MAX_TEXT))
    elif content_text is not None:
        summary = clean.text_summary(clean.plain(content_text, MAX_TEXT))
    else:
        summary = clean.text_summary(clean.html_to_text(body, summary=True))
    title = clean.plain(_string(item, "title"))  # plain text, by the spec
    if not title:  # microblog items have none: the start of the text stands in
        title = clean.plain(summary, 120)
    if not title:
        return None
    raw_id = item.get("id")
    # 1.1: "if an id is presented as a number … a JSON Feed reader must coerce it to a string".
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    guid = clean.plain(raw_id, clean.MAX_URL) if isinstance(raw_id, str) else ""
    link = clean.safe_url(_string(item, "url"), base) or clean.safe_url(
        _string(item, "external_url"), base
    )
    published = _date(item, "date_published", warnings, index)
    updated = _date(item, "date_modified", warnings, index)
    authors = _authors(item) or feed_authors
    tags = item.get("tags")
    categories = tuple(
        dict.fromkeys(
            term
            for tag in (tags if isinstance(tags, list) else [])[: clean.MAX_CATEGORIES]
            if isinstance(tag, str) and (term := clean.plain(tag, 100))
        )
    )
    return SourceEntry(
        title=title,
        published=published or updated,
        updated=updated,
        summary=summary,
        provenance=Provenance(name, location),
        link=link,
        # (Each name is plain text already: the list is capped, not read again.)
        author=clean.name(", ".join(authors), is_html=False) if authors else None,
        guid=guid or None,
        categories=categories,
        content_html=body or None,
        enclosures=_enclosures(item, base),
    )


def _newest(items: list[Any], limit: int) -> list[tuple[int, Any]]:
    """The ``limit`` newest items with their 1-based positions, in document order.

    Newest by ``date_published`` (else ``date_modified``), then by position (earlier is
    newer, as feeds list their newest first); undated items count as oldest.
    """
    numbered = list(enumerate(items, start=1))
    if len(items) <= limit:
        return numbered

    def key(pair: tuple[int, Any]) -> tuple[float, int]:
        position, item = pair
        seconds = None
        if isinstance(item, dict):
            for field in ("date_published", "date_modified"):
                raw = item.get(field)
                if isinstance(raw, str) and (seconds := when(parse_timestamp(raw[:100]))):
                    break
        return (float("-inf") if seconds is None else seconds, -position)

    return sorted(heapq.nlargest(limit, numbered, key=key))


def parse_json_feed(
    data: bytes,
    *,
    url: str,
    name: str | None = None,
    content_type: str | None = None,
    max_entries: int = MAX_ENTRIES,
) -> FeedDocument:
    """Read a JSON Feed 1.0/1.1 document. Raises SourceError when it holds no feed.

    Of more than ``max_entries`` items, only the newest are read, with a warning.
    ``content_type`` is accepted for symmetry with ``parse_feed``: JSON is UTF-8.
    """
    del content_type
    source = name or url
    try:
        # RFC 8259 §8.1: JSON exchanged between systems is UTF-8 (a BOM is tolerated).
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise SourceError(
            source, url, f"not a JSON Feed: not UTF-8 (byte offset {error.start})"
        ) from error
    except json.JSONDecodeError as error:
        raise SourceError(
            source, url, f"not a JSON Feed: invalid JSON at line {error.lineno} ({error.msg})"
        ) from error
    except RecursionError as error:
        raise SourceError(source, url, "not a JSON Feed: JSON nested too deeply") from error
    if not isinstance(document, dict):
        raise SourceError(source, url, "not a JSON Feed: the document is not a JSON object")
    version = document.get("version")
    if not isinstance(version, str) or not version.startswith(VERSION_PREFIXES):
        raise SourceError(
            source,
            url,
            'not a JSON Feed: no "version": "https://jsonfeed.org/version/1.1" '
            f"(found {clean.plain(str(version), 80)!r})",
        )
    items = document.get("items")
    if not isinstance(items, list):
        raise SourceError(source, url, 'not a JSON Feed: "items" is missing or not a list')
    http = url.startswith(("http://", "https://"))
    # Relative URLs (the spec says they should not occur) resolve against where the
    # document came from; for a local file, against the site the feed names.
    # (Without the address's user name and password: the links are published.)
    base = without_credentials(url) if http else clean.safe_url(_string(document, "home_page_url"))
    feed_authors = _authors(document)
    warnings: list[str] = []
    entries: list[SourceEntry] = []
    for index, item in _newest(items, max_entries):
        if not isinstance(item, dict):
            warnings.append(f"item {index} skipped: not a JSON object")
            continue
        try:
            entry = _item(
                item,
                index=index,
                base=base,
                name=source,
                location=url,
                feed_authors=feed_authors,
                warnings=warnings,
            )
        except Exception as error:  # one bad item is skipped, never the feed
            warnings.append(f"item {index} skipped: {type(error).__name__}: {error}")
            continue
        if entry is None:
            warnings.append(f"item {index} skipped: no title and no text")
            continue
        entries.append(entry)
    if len(items) > max_entries:
        warnings.append(
            f"kept the newest {max_entries} of {len(items)} entries ([fetch] max_entries_per_feed)"
        )
    if len(warnings) > MAX_WARNINGS:
        left = len(warnings) - MAX_WARNINGS
        warnings = [*warnings[:MAX_WARNINGS], f"{left} more warnings left out"]
    return FeedDocument(
        title=clean.plain(_string(document, "title")),
        entries=tuple(entries),
        warnings=tuple(warnings),
    )
