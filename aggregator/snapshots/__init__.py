"""Adapters for saved NATO news pages, one module per page layout.

Each layout is an object with a ``sniff`` (how strongly does this text look
like me?) and a ``read`` (the entries it holds). :data:`LAYOUTS` maps the names
used by ``kind = "..."`` in config.toml to them; :func:`read_text` picks the
layout by sniffing the head of the page (:data:`~aggregator.snapshots.page.SNIFF_CHARS`)
unless a kind is given, then reads the whole page with it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Protocol

from aggregator.errors import SourceError, UnknownLayoutError

# The layouts are imported when a page is read (layouts()): the config and the CLI
# need only their names, and a run with no saved pages never reads one.
if TYPE_CHECKING:
    from aggregator.model import SourceEntry
    from aggregator.snapshots.page import Captured, Page

# The layouts' names (``kind = "..."``), in the order they are tried: LAYOUTS' keys.
LAYOUT_NAMES = ("listing", "event-page", "digest", "newsfeed")


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


@functools.cache
def layouts() -> dict[str, Layout]:
    """Every layout by name (:data:`LAYOUT_NAMES`), imported on first use."""
    from aggregator.snapshots.digest import DIGEST
    from aggregator.snapshots.event_page import EVENT_PAGE
    from aggregator.snapshots.listing import LISTING
    from aggregator.snapshots.newsfeed import NEWSFEED

    return {layout.name: layout for layout in (LISTING, EVENT_PAGE, DIGEST, NEWSFEED)}


if TYPE_CHECKING:
    LAYOUTS: dict[str, Layout]
else:

    def __getattr__(name: str) -> object:
        # ``LAYOUTS`` as before, made when first asked for.
        if name == "LAYOUTS":
            return layouts()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def choose_layout(page: Page) -> Layout:
    """The layout that fits the page best, or an error saying what was expected."""
    if not any(line.text.strip() for line in page.lines):
        # (Found by review: told as a page of no known layout.)
        raise UnknownLayoutError(
            page.source,
            page.location,
            "the file is empty (or only blank lines); save the news page's text into it",
        )
    known = layouts()
    scores = sorted(((layout.sniff(page), name) for name, layout in known.items()), reverse=True)
    best_score, best = scores[0]
    if best_score <= 0:
        expected = "; ".join(f"{name}: {layout.looks_like}" for name, layout in known.items())
        raise UnknownLayoutError(
            page.source,
            page.location,
            f"text fits no known page layout (expected one of {expected}); "
            "if it is one of these, set kind for this source in config.toml "
            "(aggregator parse: --kind)",
        )
    return known[best]


def read_text(
    text: str,
    *,
    source: str,
    location: str,
    kind: str | None = None,
    captured: Captured | None = None,
) -> list[SourceEntry]:
    """The entries in a saved page's text, read as ``kind`` or as the layout it fits."""
    from aggregator.snapshots.page import Page, head

    known = layouts()
    if kind is None:
        sample = Page.from_text(head(text), source=source, location=location, captured=captured)
        layout = choose_layout(sample)
    elif kind in known:
        layout = known[kind]
    else:
        raise SourceError(
            source,
            location,
            f"unknown snapshot kind {kind!r} (expected one of: {', '.join(known)})",
        )
    page = Page.from_text(text, source=source, location=location, captured=captured)
    return _read(page, layout, kind)


def _read(page: Page, layout: Layout, kind: str | None) -> list[SourceEntry]:
    entries = layout.read(page)
    if not entries and kind is not None:
        raise SourceError(
            page.source,
            page.location,
            f"read as kind {kind!r} but no items found ({layout.looks_like} expected); "
            "check the kind given (a source's kind in config.toml, or parse --kind)",
        )
    return entries
