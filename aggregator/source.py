"""Reading one source's bytes into entries: the library's entry point."""

from __future__ import annotations

from datetime import datetime

from aggregator.errors import SourceError
from aggregator.model import SourceEntry
from aggregator.snapshots import read_page
from aggregator.snapshots.page import Captured, Page


def decode(data: bytes, source: str, location: str) -> str:
    """Snapshot text: UTF-8 (with or without a byte-order mark)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SourceError(
            source,
            f"{location}:{line}",
            f"not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start}); "
            "save the page as UTF-8",
        ) from error


def parse_source(
    data: bytes,
    *,
    url: str | None = None,
    kind: str | None = None,
    captured: Captured | None = None,
    name: str | None = None,
) -> list[SourceEntry]:
    """The entries in one source's bytes.

    ``url`` says where the bytes came from (a path or URL), for provenance and
    messages; ``name`` is the source's name (default: ``url``). ``kind`` picks the
    layout instead of sniffing it. ``captured`` is when a snapshot was saved, for
    pages that date items by age. Raises a :class:`~aggregator.SourceError` for
    input it cannot read.
    """
    location = url or "<data>"
    source = name or location
    if captured is not None and isinstance(captured, datetime) and captured.tzinfo is None:
        raise SourceError(source, location, f"capture time {captured} has no time zone")
    text = decode(data, source, location)
    page = Page.from_text(text, source=source, location=location, captured=captured)
    return read_page(page, kind)
