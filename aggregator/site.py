"""The pages around the feeds: ``topics.opml`` and ``index.html``. Pure, like render.

Both are byte-stable: they carry no clock, only what the feeds hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from xml.sax.saxutils import quoteattr

from aggregator.model import Entry
from aggregator.render import FEED_TYPES, FeedSpec

LATEST_ON_INDEX = 5


@dataclass(frozen=True, slots=True)
class Site:
    title: str
    description: str
    base_url: str


def render_opml(site: Site, specs: Sequence[FeedSpec]) -> bytes:
    """OPML 2.0 listing every feed (RSS), so a reader can subscribe to all at once."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{escape(site.title, quote=False)}</title>",
        "  </head>",
        "  <body>",
    ]
    for spec in specs:
        lines.append(
            f'    <outline type="rss" text={quoteattr(spec.title)} title={quoteattr(spec.title)} '
            f"description={quoteattr(spec.description)} xmlUrl={quoteattr(spec.url('rss'))} "
            f"htmlUrl={quoteattr(spec.site_url)}/>"
        )
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines).encode()


def _when(entry: Entry) -> str:
    return "" if entry.published is None else entry.published.day.isoformat()


def render_index(
    site: Site, specs: Sequence[FeedSpec], latest: Mapping[str, Sequence[Entry]]
) -> bytes:
    """A plain page: each feed with subscribe links and its latest entries."""
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(site.title)}</title>",
    ]
    for spec in specs:
        for kind, mime in FEED_TYPES.items():
            label = escape(f"{spec.title} ({kind.upper()})")
            href = escape(spec.url(kind))
            head.append(f'<link rel="alternate" type="{mime}" title="{label}" href="{href}">')
    head.append(
        f'<link rel="outline" type="text/x-opml" href="{escape(site.base_url)}topics.opml">'
    )
    body = [
        "</head>",
        "<body>",
        f"<h1>{escape(site.title)}</h1>",
        f"<p>{escape(site.description)}</p>",
        f'<p>Subscribe to every topic at once: <a href="{escape(site.base_url)}topics.opml">'
        "topics.opml</a></p>",
    ]
    for spec in specs:
        links = " · ".join(
            f'<a href="{escape(spec.url(kind))}" type="{mime}">{kind.upper()}</a>'
            for kind, mime in FEED_TYPES.items()
        )
        body += [
            f'<section id="{escape(spec.slug)}">',
            f"<h2>{escape(spec.title)}</h2>",
            f"<p>{escape(spec.description)}</p>",
            f"<p>Subscribe: {links}</p>",
            "<ul>",
        ]
        for entry in list(latest.get(spec.slug, ()))[:LATEST_ON_INDEX]:
            title = escape(entry.title)
            if entry.link:
                title = f'<a href="{escape(entry.link)}">{title}</a>'
            when = _when(entry)
            stamp = f'<time datetime="{when}">{when}</time> ' if when else ""
            body.append(f"<li>{stamp}{title}</li>")
        body += ["</ul>", "</section>"]
    body += ["</body>", "</html>", ""]
    return "\n".join(head + body).encode()


def render_site_files(
    site: Site, specs: Sequence[FeedSpec], latest: Mapping[str, Sequence[Entry]]
) -> dict[str, bytes]:
    return {
        "topics.opml": render_opml(site, specs),
        "index.html": render_index(site, specs, latest),
    }
