"""Adapters for saved NATO news pages, one module per page layout.

Each layout is an object with a ``sniff`` (how strongly does this text look
like me?) and a ``read`` (the entries it holds). :data:`LAYOUTS` maps the names
used by ``kind = "..."`` in config.toml to them; :func:`read_page` picks the
layout by sniffing unless a kind is given.
"""

from __future__ import annotations

from typing import Protocol

from aggregator.errors import SourceError, UnknownLayoutError
from aggregator.model import SourceEntry
from aggregator.snapshots.digest import DIGEST
from aggregator.snapshots.event_page import EVENT_PAGE
from aggregator.snapshots.listing import LISTING
from aggregator.snapshots.newsfeed import NEWSFEED
from aggregator.snapshots.page import Page


class Layout(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def looks_like(self) -> str:
        """What a page of this layout shows, for error messages."""
        ...

    def sniff(self, page: Page) -> int:
        """A score: 0 when the page is surely not of this layout."""
        ...

    def read(self, page: Page) -> list[SourceEntry]: ...


LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (LISTING, EVENT_PAGE, DIGEST, NEWSFEED)
}


def choose_layout(page: Page) -> Layout:
    """The layout that fits the page best, or an error saying what was expected."""
    scores = sorted(((layout.sniff(page), name) for name, layout in LAYOUTS.items()), reverse=True)
    best_score, best = scores[0]
    if best_score <= 0:
        expected = "; ".join(f"{name}: {layout.looks_like}" for name, layout in LAYOUTS.items())
        raise UnknownLayoutError(
            page.source,
            page.location,
            f"text fits no known page layout (expected one of {expected}); "
            "set kind in config.toml if it is one of these",
        )
    return LAYOUTS[best]


def read_page(page: Page, kind: str | None = None) -> list[SourceEntry]:
    if kind is None:
        layout = choose_layout(page)
    elif kind in LAYOUTS:
        layout = LAYOUTS[kind]
    else:
        raise SourceError(
            page.source,
            page.location,
            f"unknown snapshot kind {kind!r} (expected one of: {', '.join(LAYOUTS)})",
        )
    entries = layout.read(page)
    if not entries and kind is not None:
        raise SourceError(
            page.source,
            page.location,
            f"read as kind {kind!r} but no items found ({layout.looks_like} expected); "
            "check kind in config.toml",
        )
    return entries
