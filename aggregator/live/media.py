"""The media files a live feed item carries, as :class:`~aggregator.model.Enclosure` values.

Read from what feedparser makes of an item, in this order (the order decides
which one an RSS item, which allows only one enclosure, republishes):

1. ``enclosures``: RSS 2.0 ``<enclosure url length type>`` and Atom 1.0
   ``<link rel="enclosure" href type length>`` (RFC 4287 §4.2.7.2);
2. ``media_content``: Media RSS ``<media:content url type fileSize>``;
3. ``media_thumbnail``: Media RSS ``<media:thumbnail url>``, a preview image.

Nothing a feed says is trusted: a URL is kept only when it is http(s) (made
absolute against the item's base, so ``javascript:`` and ``data:`` are dropped);
a type only when it has the shape of a MIME type (RFC 6838 §4.2), without its
parameters; a length only when it is a whole number of bytes, not negative.
A URL given twice is kept once, as first given. Nothing missing is guessed.
"""

from __future__ import annotations

import re
from typing import Any

from aggregator.live import clean
from aggregator.model import Enclosure

MAX_ENCLOSURES = 20
# A length larger than this (8 EiB) is nonsense, and SQLite's integers stop there.
MAX_LENGTH = 2**63 - 1

# type "/" subtype, each a restricted name (RFC 6838 §4.2): "audio/mpeg", "image/svg+xml".
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def mime_type(value: object) -> str | None:
    """A MIME type, lowercased and without parameters, or None when it is not one."""
    if not isinstance(value, str):
        return None
    essence = value.split(";", 1)[0].strip().lower()
    return essence if _MIME.fullmatch(essence) else None


def length(value: object) -> int | None:
    """A size in bytes: a non-negative whole number (as text or int), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if 0 <= number <= MAX_LENGTH else None


def _candidates(item: Any) -> list[tuple[object, object, object, bool]]:
    """(url, type, length, thumbnail) for each media reference, in the module's order."""
    found: list[tuple[object, object, object, bool]] = []
    for enclosure in item.get("enclosures") or []:
        found.append((enclosure.get("href"), enclosure.get("type"), enclosure.get("length"), False))
    for content in item.get("media_content") or []:
        found.append((content.get("url"), content.get("type"), content.get("filesize"), False))
    for thumbnail in item.get("media_thumbnail") or []:
        found.append((thumbnail.get("url"), None, None, True))
    return found


def enclosures(item: Any, base: str | None) -> tuple[Enclosure, ...]:
    """The media of a feedparser item, cleaned (see the module's rules)."""
    kept: dict[str, Enclosure] = {}
    for url, kind, size, thumbnail in _candidates(item):
        if len(kept) >= MAX_ENCLOSURES:
            break
        safe = clean.safe_url(url, base) if isinstance(url, str) else None
        if safe is None or safe in kept:
            continue
        kept[safe] = Enclosure(safe, mime_type(kind), length(size), thumbnail)
    return tuple(kept.values())
