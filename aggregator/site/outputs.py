"""The one list of files a run writes into the feeds directory, and what each one is.

The pipeline asks it which files must exist, the server which names it may serve
(and with which ``Content-Type``), and the CLI what to list in ``run --help``.
Nothing else spells out a file name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Feed formats: extension → (media type, what it is).
FEED_FORMATS: dict[str, tuple[str, str]] = {
    "rss": ("application/rss+xml", "RSS 2.0"),
    "atom": ("application/atom+xml", "Atom 1.0"),
    "json": ("application/feed+json", "JSON Feed 1.1"),
}
INDEX = "index.html"
OPML = "topics.opml"
STYLESHEET = "style.css"
FEED_XSLT = "feed.xsl"
STATIC_FILES = (STYLESHEET, FEED_XSLT)
# Which install the files are, also noted in the store (aggregator.pipeline.publish):
# a dot-file, never served.
TOKEN = ".rendered"

# An entry page's name (entry_file): a hex digest under entries/.
ENTRY_PAGE = re.compile(r"^entries/[0-9a-f]{1,64}\.html\Z")

CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    # Chromium applies an xml-stylesheet only when the stylesheet comes as XSLT.
    "xsl": "text/xsl; charset=utf-8",
}

# For `run --help` and the README: every kind of file, in the order a reader meets them.
DESCRIPTIONS = (
    ("<slug>.rss", "RSS 2.0, for 'all' and for each topic"),
    ("<slug>.atom", "Atom 1.0, the same entries"),
    ("<slug>.json", "JSON Feed 1.1, the same entries"),
    ("<slug>.html", "the topic's page: its stories, newest first"),
    ("entries/<id>.html", "one page per story shown in any feed"),
    (INDEX, "every topic with its latest stories and subscribe links"),
    (OPML, "every feed, to subscribe to all at once"),
    (STYLESHEET, "the pages' stylesheet"),
    (FEED_XSLT, "shows an RSS or Atom feed opened in a browser as a page"),
    (TOKEN, "which render the files are (the store notes it too); not served"),
)


def feed_files(slug: str) -> list[str]:
    return [f"{slug}.{extension}" for extension in FEED_FORMATS]


def topic_page(slug: str) -> str:
    return f"{slug}.html"


def fixed_files(slugs: Iterable[str]) -> list[str]:
    """Every file a run writes whatever the store holds (entry pages are on top)."""
    names: list[str] = []
    for slug in slugs:
        names += [*feed_files(slug), topic_page(slug)]
    return [*names, OPML, INDEX, *STATIC_FILES]


def entry_file(entry_id: str) -> str:
    """Where a story's own page lives, relative to the feeds' ``base_url``:
    ``entries/<digest>.html``, the digest being the last part of the story's stable
    ``tag:`` id (so the page's URL is as stable as the id). Named here, where a run
    that renders nothing asks it too, without loading the renderers."""
    return f"entries/{entry_id.rsplit(':', 1)[-1]}.html"


def kind(name: str, slugs: Iterable[str]) -> str | None:
    """The kind of output ``name`` is (a key of CONTENT_TYPES), or None if it is none."""
    if ENTRY_PAGE.match(name) or name in fixed_files(slugs):
        return name.rsplit(".", 1)[1]
    return None


def describe() -> str:
    """The list of outputs as lines for a help text."""
    width = max(len(name) for name, _ in DESCRIPTIONS)
    return "\n".join(f"  {name:<{width}}  {text}" for name, text in DESCRIPTIONS)
