"""Entries to feed documents: RSS 2.0 and Atom 1.0 (with feedgen), JSON Feed 1.1.

Pure: no I/O, no clock.

Conventions, chosen once and kept:

* A day-precision date is shown as 12:00 UTC on that day: the same calendar day for
  readers from UTC-11 to UTC+11, where midnight would show the day before to
  anyone west of the source.
* An undated entry has no RSS ``pubDate``; its Atom ``updated`` is when the
  aggregator first saw it. Undated entries come after dated ones.
* A feed's own ``lastBuildDate`` / ``updated`` is that of its newest entry, so a
  regeneration with nothing new produces the same bytes.
* Every entry's id (RSS ``guid``, ``isPermaLink="false"``) is its stable ``tag:`` URI.
* An entry's primary source is the first source it was read from; it is named in
  ``<source>`` / ``atom:source`` when that source has a URL (RSS requires one).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from aggregator.model import Entry, Published

NOON_UTC = time(12, 0, tzinfo=UTC)
FEED_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
GENERATOR = "aggregator"


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What a feed says about itself."""

    slug: str
    title: str
    description: str
    base_url: str  # where the feeds are served, ending in "/"
    site_url: str
    author: str
    id_authority: str
    query: str = ""  # for an ad-hoc filtered feed: the query string it is served with

    def url(self, extension: str) -> str:
        address = f"{self.base_url}{self.slug}.{extension}"
        return f"{address}?{self.query}" if self.query else address


def entry_page(entry_id: str) -> str:
    """Where an entry's own page lives, relative to ``base_url``: ``entries/<digest>.html``.

    The digest is the last part of the entry's stable ``tag:`` id, so the page's URL is
    as stable as the id.
    """
    return f"entries/{entry_id.rsplit(':', 1)[-1]}.html"


def shown_time(published: Published) -> datetime:
    """The instant a feed shows for a date (see the module's conventions)."""
    if published.instant is not None:
        return published.instant
    return datetime.combine(published.day, NOON_UTC)


def entry_time(entry: Entry) -> datetime:
    return entry.first_seen if entry.published is None else shown_time(entry.published)


def feed_updated(entries: Sequence[Entry], fallback: datetime) -> datetime:
    return max((entry_time(e) for e in entries), default=fallback)


def _generator(spec: FeedSpec, entries: Sequence[Entry], fallback: datetime, extension: str) -> Any:
    from feedgen.feed import FeedGenerator  # lazily: a run with nothing new renders nothing

    from aggregator import __version__

    feed = FeedGenerator()
    feed.id(f"tag:{spec.id_authority}:feed:{spec.slug}")
    feed.title(spec.title)
    feed.description(spec.description)
    # The self link first: feedgen makes the last link added the RSS channel <link>,
    # which must point at the site, not at the feed.
    feed.link(href=spec.url(extension), rel="self", type=FEED_TYPES[extension])
    feed.link(href=spec.site_url, rel="alternate")
    feed.author({"name": spec.author})
    feed.language("en")
    feed.generator(GENERATOR, version=__version__)
    feed.updated(feed_updated(entries, fallback))
    for entry in entries:
        item = feed.add_entry(order="append")
        item.id(entry.id)
        # The tag: id, never the link: a link may appear or change when another source
        # joins the story, and a guid that changes shows readers a duplicate.
        item.guid(entry.id, permalink=False)
        item.title(entry.title)
        if entry.link:
            item.link(href=entry.link, rel="alternate")
        # Atom needs content when there is no alternate link (RFC 4287 §4.1.1.1).
        text = entry.summary or entry.title
        if entry.content_html:
            item.content(entry.content_html, type="html")
            item.description(entry.content_html)
        elif entry.link:
            if entry.summary:
                item.summary(entry.summary)
            item.description(html.escape(text))
        else:
            item.content(text, type="text")
            item.description(html.escape(text))
        if entry.author:
            item.author({"name": entry.author})
        for topic in entry.topics:
            item.category(term=topic)
        for category in entry.categories:
            if category not in entry.topics:
                item.category(term=category)
        primary = entry.sources[0] if entry.sources else None
        if primary is not None and primary.location.startswith(("http://", "https://")):
            item.source(url=primary.location, title=primary.source)
        item.updated(entry_time(entry))
        if entry.published is not None:
            item.published(shown_time(entry.published))
    return feed


def render_rss(spec: FeedSpec, entries: Sequence[Entry], fallback: datetime) -> bytes:
    return bytes(_generator(spec, entries, fallback, "rss").rss_str(pretty=True))


def render_atom(spec: FeedSpec, entries: Sequence[Entry], fallback: datetime) -> bytes:
    return bytes(_generator(spec, entries, fallback, "atom").atom_str(pretty=True))


def _json_date(published: Published | None) -> str | None:
    return None if published is None else shown_time(published).isoformat()


def render_json(spec: FeedSpec, entries: Sequence[Entry], fallback: datetime) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    items = []
    for entry in entries:
        item: dict[str, object] = {"id": entry.id}
        if entry.link:
            item["url"] = entry.link
        item["title"] = entry.title
        if entry.content_html:
            item["content_html"] = entry.content_html
        else:
            item["content_text"] = entry.summary or entry.title
        if entry.summary:
            item["summary"] = entry.summary
        if entry.published is not None:
            item["date_published"] = _json_date(entry.published)
        else:
            item["date_modified"] = entry.first_seen.isoformat()
        if entry.author:
            item["authors"] = [{"name": entry.author}]
        tags = list(dict.fromkeys(entry.topics + entry.categories))
        if tags:
            item["tags"] = tags
        items.append(item)
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": spec.title,
        "home_page_url": spec.site_url,
        "feed_url": spec.url("json"),
        "description": spec.description,
        "language": "en",
        "authors": [{"name": spec.author}],
        "items": items,
    }
    del fallback  # JSON Feed has no feed-level date
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()


def render_feed_files(
    spec: FeedSpec, entries: Sequence[Entry], fallback: datetime
) -> dict[str, bytes]:
    """``<slug>.rss``, ``<slug>.atom`` and ``<slug>.json`` for one feed."""
    return {
        f"{spec.slug}.rss": render_rss(spec, entries, fallback),
        f"{spec.slug}.atom": render_atom(spec, entries, fallback),
        f"{spec.slug}.json": render_json(spec, entries, fallback),
    }
