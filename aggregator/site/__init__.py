"""The site around the feeds: pages, ``topics.opml``, the stylesheet and ``feed.xsl``.

Pure functions from entries to file bytes, like :mod:`aggregator.render`, and
byte-stable: nothing here reads a clock, so a run with nothing new writes the
same bytes. :mod:`aggregator.site.outputs` is the one list of the files a run
writes; :mod:`aggregator.site.pages` renders the HTML with Jinja2.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# The pages (and the plan) load when something is rendered: a run with nothing new
# only asks aggregator.site.outputs which files there are.
if TYPE_CHECKING:
    from aggregator.config import Config
    from aggregator.model import Entry
    from aggregator.render import FeedSpec
    from aggregator.site.pages import Site
    from aggregator.site.plan import Changes

__all__ = [
    "LATEST_ON_INDEX",
    "render_opml",
    "render_site_files",
    "renderer_fingerprint",
    "site_files",
    "site_from_config",
    "static_file",
]

LATEST_ON_INDEX = 5
# The package's own files, read where pip installed them (importlib.resources and the
# zipfile, tempfile and compression modules it loads cost a rendering run about 10 ms).
HERE = Path(__file__).parent


def site_from_config(config: Config) -> Site:
    from aggregator.site.pages import Site

    settings = config.feeds
    return Site(
        title=settings.title,
        description=settings.description,
        base_url=settings.base_url,
        topic_titles={topic.slug: topic.title for topic in config.topics},
        zone=settings.timezone,
    )


@functools.cache
def renderer_fingerprint() -> str:
    """Changes with the code that turns entries into files: our renderers, templates and
    static files, and the versions of the libraries whose output is in the files.

    A publish that renders only what changed trusts the files it keeps only if they
    were rendered by the same code (a new release without a new version number, a
    library upgrade): aggregator.site.plan.
    """
    import jinja2
    from lxml import etree

    digest = hashlib.sha256()
    # Python's own (its mimetypes table, json, html.escape) and libxml2's versions too:
    # a changed feed keeps its other items' bytes (aggregator.splice) only while the
    # code that made them is the same (found by review).
    versions = [jinja2.__version__, etree.LXML_VERSION, etree.LIBXML_VERSION]
    digest.update(repr([*versions, tuple(sys.version_info)]).encode())
    sources = [HERE.parent / name for name in ("render.py", "xmlescape.py", "splice.py", "uri.py")]
    sources += [
        HERE / name for name in ("__init__.py", "pages.py", "outputs.py", "parts.py", "plan.py")
    ]
    for folder in ("templates", "static"):
        sources += sorted((HERE / folder).iterdir(), key=lambda p: p.name)
    for source in sources:
        digest.update(source.name.encode())
        # Installed without sources: the version number in the settings must do.
        with contextlib.suppress(OSError):
            digest.update(source.read_bytes())
    return digest.hexdigest()


def static_file(name: str) -> bytes:
    """A file shipped with the package (``style.css``, ``feed.xsl``), as it is written."""
    return (HERE / "static" / name).read_bytes()


def render_opml(site: Site, specs: Sequence[FeedSpec]) -> bytes:
    """OPML 2.0 listing every feed (RSS), so a reader can subscribe to all at once."""
    from aggregator.xmlescape import escape_text, quote_attribute

    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{escape_text(site.title)}</title>",
        "  </head>",
        "  <body>",
    ]
    for spec in specs:
        attributes = {
            "text": spec.title,
            "title": spec.title,
            "description": spec.description,
            "xmlUrl": spec.url("rss"),
            "htmlUrl": spec.site_url,
        }
        quoted = " ".join(f"{name}={quote_attribute(value)}" for name, value in attributes.items())
        lines.append(f'    <outline type="rss" {quoted}/>')
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines).encode()


def render_site_files(
    site: Site,
    specs: Sequence[FeedSpec],
    latest: Mapping[str, Sequence[Entry]],
    changes: Changes | None = None,
) -> dict[str, bytes]:
    """Every file of the site but the feeds: pages, OPML, stylesheet and XSLT.

    ``latest`` holds each feed's entries, newest first, as the feed shows them; the
    entry pages are those entries' (each once), so their number is bounded by the
    feeds' ``max_entries``. Only the files ``changes`` names are rendered (the topic
    pages of its feeds, its entry pages, the index); by default every one.
    """
    return dict(site_files(site, specs, latest, changes))


def site_files(
    site: Site,
    specs: Sequence[FeedSpec],
    latest: Mapping[str, Sequence[Entry]],
    changes: Changes | None = None,
) -> Iterator[tuple[str, bytes]]:
    """:func:`render_site_files`, one ``(name, bytes)`` at a time, as each is rendered
    (so that a file can be on its way to the disk while the next one is rendered)."""
    from aggregator.site.pages import feeds
    from aggregator.site.parts import Inputs, render_units, site_units
    from aggregator.site.plan import EVERYTHING

    changes = EVERYTHING if changes is None else changes
    inputs = Inputs(site, tuple(specs), latest, None, changes)
    chosen = site_units(feeds(site, specs, latest), changes)
    yield from render_units(inputs, chosen)
