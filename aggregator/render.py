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
  RSS ``<source>`` and as an Atom ``link rel="via"`` when that source has a URL (RSS
  requires one; an ``atom:source`` would need the source feed's own id and updated
  time, which a saved page or a feed that gives none does not have).
* RSS dates keep their source's offset unless it is not a whole or half hour
  (``+0545``), which some RSS readers misread: those are given in UTC, the same instant.
* Every item has a link: the story's own (from its source) when it has one, else
  its permalink page on our site, ``base_url`` + :func:`entry_page`.
* Text is escaped exactly once, and written with the type it has. A title is plain
  text (Atom ``type="text"``). A summary is plain text: Atom ``<summary
  type="text">``, JSON Feed ``summary``/``content_text``, and in RSS, whose
  ``description`` readers treat as HTML (RSS 2.0), that text as HTML (only ``&``,
  ``<`` and ``>`` escaped, never quotes: readers that show a description as text
  would print ``&#x27;``). Sanitised HTML content is Atom ``<content
  type="html">``, RSS ``content:encoded`` and JSON Feed ``content_html``. Plain text
  that could be read as markup (an end tag such as ``</b>``, an entity reference) is
  written in Atom as ``type="html"``, escaped once more, so no reader takes it for
  HTML; and RSS writes ``<`` as ``&#x3C;`` (the RSS Best Practices Profile), since
  readers treat RSS titles inconsistently. A story told by its headline alone has no
  Atom summary (the validator's MissingTextualContent hint: the headline again would
  show twice); JSON Feed, which requires some text, repeats the title in
  ``content_text``.
* Enclosures (media files) are Atom ``link rel="enclosure"`` (all of them), JSON
  Feed ``attachments`` (all but thumbnails) and ``image`` (the first thumbnail,
  else the first image), and one RSS ``enclosure`` (RSS allows one: the first that
  is not a thumbnail, else the first). RSS and JSON Feed require a type: when the
  source gave none, it is read from the URL's extension, else
  ``application/octet-stream``; an unknown RSS length is 0 (RSS Best Practices
  Profile); Atom and JSON Feed leave out what is unknown.
* RSS and Atom documents name ``feed.xsl`` (:data:`STYLESHEET`, beside the feeds)
  in an ``xml-stylesheet`` processing instruction, so a browser shows a page.
"""

from __future__ import annotations

import functools
import html
import json
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import urlsplit

from aggregator.model import Enclosure, Entry, Published

NOON_UTC = time(12, 0, tzinfo=UTC)
FEED_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
GENERATOR = "aggregator"
# The XSLT that shows an RSS or Atom file as a page in a browser, relative to the feed.
STYLESHEET = "feed.xsl"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"


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


def item_link(spec: FeedSpec, entry: Entry) -> str:
    """Where a feed item leads: the story's own link, else its page on our site."""
    return entry.link or spec.base_url + entry_page(entry.id)


def text_as_html(text: str) -> str:
    """Plain text as HTML that shows exactly that text (quotes need no escape there)."""
    return html.escape(text, quote=False)


# Plain text a reader might take for markup: an end tag, or what an HTML parser
# reads as a character or entity reference, with or without its semicolon (Atom
# ``type="text"`` holding these draws the validator's warning that undeclared HTML
# may be rendered). "AT&T" and "R&D" are not references.
_END_TAG = re.compile(r"</[A-Za-z][\w-]*\s*>")
_REFERENCE = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*)")


def looks_like_markup(text: str) -> bool:
    if _END_TAG.search(text):
        return True
    from html.entities import name2codepoint

    return any(
        name.startswith("#") or name in name2codepoint or name == "apos"
        for name in _REFERENCE.findall(text)
    )


def atom_text(element: Any, text: str) -> None:
    """Set an Atom text construct to ``text``: ``type="text"``, or, when the text
    could be read as markup, ``type="html"`` holding that text escaped as HTML (a
    reader shows exactly the text either way)."""
    if looks_like_markup(text):
        element.set("type", "html")
        element.text = text_as_html(text)
    else:
        element.set("type", "text")
        element.text = text


def rss_time(moment: datetime) -> datetime:
    """An instant as RSS shows it: at its own offset, unless that offset is not a whole
    or half hour (RFC 822 allows it; some readers misread it), then in UTC."""
    offset = moment.utcoffset()
    if offset is not None and offset.total_seconds() % 1800:
        return moment.astimezone(UTC)
    return moment


@functools.cache
def _builtin_types() -> mimetypes.MimeTypes:
    # Python's own table only: the system's /etc/mime.types differs between machines,
    # and the same store must render the same bytes wherever it runs.
    return mimetypes.MimeTypes()


def media_type(enclosure: Enclosure) -> str:
    """A MIME type for a format that requires one (RSS, JSON Feed); see the module's notes."""
    if enclosure.type:
        return enclosure.type
    guessed, _ = _builtin_types().guess_type(urlsplit(enclosure.url).path, strict=False)
    return guessed or "application/octet-stream"


def rss_enclosure(entry: Entry) -> Enclosure | None:
    """The one enclosure an RSS item carries: the first that is not a thumbnail, else the first."""
    media = [e for e in entry.enclosures if not e.thumbnail] or entry.enclosures
    return media[0] if media else None


def json_image(entry: Entry) -> str | None:
    """JSON Feed ``image``: the first thumbnail, else the first image."""
    for enclosure in entry.enclosures:
        if enclosure.thumbnail:
            return enclosure.url
    for enclosure in entry.enclosures:
        if media_type(enclosure).startswith("image/"):
            return enclosure.url
    return None


class _Body:
    """A feedgen entry extension that writes an item's text and media itself.

    feedgen ties the RSS ``description`` to the Atom summary and content: ``summary()``
    copies its text into the description, and ``description()`` overwrites the Atom
    content or summary (feedgen/entry.py). Ours differ (plain text in Atom, that text
    as HTML in RSS), so they are written here. feedgen's enclosure keeps the last
    one given and writes a missing type as nothing; ours is chosen and complete.
    """

    def __init__(self, entry: Entry) -> None:
        self.entry = entry

    def extend_atom(self, element: Any) -> Any:
        from lxml import etree

        # feedgen builds Atom elements without a namespace under a root that declares
        # the default one, so these are un-namespaced too.
        atom_text(element.find("title"), self.entry.title)
        if self.entry.summary:
            atom_text(etree.SubElement(element, "summary"), self.entry.summary)
        if self.entry.content_html:
            etree.SubElement(element, "content", type="html").text = self.entry.content_html
        primary = self.entry.sources[0] if self.entry.sources else None
        if primary is not None and primary.location.startswith(("http://", "https://")):
            etree.SubElement(
                element, "link", rel="via", href=primary.location, title=primary.source
            )
        for enclosure in self.entry.enclosures:
            link = etree.SubElement(element, "link", rel="enclosure", href=enclosure.url)
            if enclosure.type:
                link.set("type", enclosure.type)
            if enclosure.length is not None:
                link.set("length", str(enclosure.length))
        return element

    def extend_rss(self, element: Any) -> Any:
        from lxml import etree

        if self.entry.summary:
            etree.SubElement(element, "description").text = text_as_html(self.entry.summary)
        if self.entry.content_html:
            encoded = etree.SubElement(element, f"{{{CONTENT_NS}}}encoded")
            encoded.text = self.entry.content_html
        enclosure = rss_enclosure(self.entry)
        if enclosure is not None:
            etree.SubElement(
                element,
                "enclosure",
                url=enclosure.url,
                length=str(enclosure.length or 0),
                type=media_type(enclosure),
            )
        return element


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
    rss = extension == "rss"
    updated = feed_updated(entries, fallback)
    feed.updated(rss_time(updated) if rss else updated)
    for entry in entries:
        item = feed.add_entry(order="append")
        item.id(entry.id)
        # The tag: id, never the link: a link may appear or change when another source
        # joins the story, and a guid that changes shows readers a duplicate.
        item.guid(entry.id, permalink=False)
        item.title(entry.title)
        # Always an alternate link, so Atom needs no content (RFC 4287 §4.1.1.1).
        item.link(href=item_link(spec, entry), rel="alternate")
        # Summary, content and enclosures: see _Body (not feedgen's summary(),
        # content(), description() or enclosure()).
        item.register_extension("aggregator", lambda entry=entry: _Body(entry))
        if entry.author:
            item.author({"name": entry.author})
        for topic in entry.topics:
            item.category(term=topic)
        for category in entry.categories:
            if category not in entry.topics:
                item.category(term=category)
        # Atom names the primary source in a rel="via" link, written by _Body (feedgen
        # drops an entry link's rel, type and title: feedgen/entry.py atom_entry).
        primary = entry.sources[0] if entry.sources else None
        if rss and primary is not None and primary.location.startswith(("http://", "https://")):
            item.source(url=primary.location, title=primary.source)
        item.updated(entry_time(entry))
        if entry.published is not None:
            published = shown_time(entry.published)
            item.published(rss_time(published) if rss else published)
    return feed


def with_stylesheet(document: bytes) -> bytes:
    """An XML document with the :data:`STYLESHEET` processing instruction before its root.

    feedgen has no way to add one, so it goes into the bytes feedgen returns: right
    after the XML declaration, where a processing instruction may stand (XML 1.0
    §2.8, "Misc" in the prolog).
    """
    instruction = f'<?xml-stylesheet type="text/xsl" href="{STYLESHEET}"?>'.encode()
    if not document.startswith(b"<?xml "):
        return instruction + b"\n" + document
    end = document.index(b"?>") + len(b"?>")
    return document[:end] + b"\n" + instruction + document[end:]


def render_rss(spec: FeedSpec, entries: Sequence[Entry], fallback: datetime) -> bytes:
    document = _generator(spec, entries, fallback, "rss").rss_str(pretty=True)
    # The same character either way to an XML parser; the hexadecimal reference is
    # what the RSS Best Practices Profile asks of "<" in text (readers differ in
    # whether they take a title as HTML).
    return with_stylesheet(bytes(document).replace(b"&lt;", b"&#x3C;"))


def render_atom(spec: FeedSpec, entries: Sequence[Entry], fallback: datetime) -> bytes:
    document = _generator(spec, entries, fallback, "atom").atom_str(pretty=True)
    return with_stylesheet(bytes(document))


def _json_date(published: Published | None) -> str | None:
    return None if published is None else shown_time(published).isoformat()


def _attachment(enclosure: Enclosure) -> dict[str, object]:
    attachment: dict[str, object] = {"url": enclosure.url, "mime_type": media_type(enclosure)}
    if enclosure.length is not None:
        attachment["size_in_bytes"] = enclosure.length
    return attachment


def render_json(spec: FeedSpec, entries: Sequence[Entry], fallback: datetime) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    items = []
    for entry in entries:
        item: dict[str, object] = {"id": entry.id, "url": item_link(spec, entry)}
        item["title"] = entry.title
        if entry.content_html:
            item["content_html"] = entry.content_html
        else:
            item["content_text"] = entry.summary or entry.title
        if entry.summary:
            item["summary"] = entry.summary
        image = json_image(entry)
        if image is not None:
            item["image"] = image
        if entry.published is not None:
            item["date_published"] = _json_date(entry.published)
        else:
            item["date_modified"] = entry.first_seen.isoformat()
        if entry.author:
            item["authors"] = [{"name": entry.author}]
        tags = list(dict.fromkeys(entry.topics + entry.categories))
        if tags:
            item["tags"] = tags
        attachments = [_attachment(e) for e in entry.enclosures if not e.thumbnail]
        if attachments:
            item["attachments"] = attachments
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
