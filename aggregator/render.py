"""Entries to feed documents: RSS 2.0 and Atom 1.0 (built with lxml), JSON Feed 1.1.

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
* Atom and JSON Feed times (RFC 3339) keep their offset unless it has seconds
  (``+05:45:30``, which RFC 3339 cannot say): those are given in UTC, the same instant.
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
* RSS and Atom are built with lxml directly, byte for byte as they were when feedgen
  built them: its element order, lxml's two-space indentation, the XML declaration
  ``<?xml version='1.0' encoding='UTF-8'?>``, so the feeds already on subscribers' disks
  do not change (tests/test_render_direct.py and tests/data/render pin the bytes).
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aggregator.model import Enclosure, Entry, Provenance, Published
from aggregator.records import record
from aggregator.site.outputs import entry_file
from aggregator.uri import without_credentials

if TYPE_CHECKING:
    import mimetypes

    from lxml import etree

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
ATOM_NS = "http://www.w3.org/2005/Atom"
# The RSS <docs> element every channel carries (feedgen's default, kept).
RSS_DOCS = "http://www.rssboard.org/rss-specification"


@record
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


entry_page = entry_file  # where an entry's own page lives (aggregator.site.outputs)


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


def atom_text(element: etree._Element, text: str) -> None:
    """Set an Atom text construct to ``text``: ``type="text"``, or, when the text
    could be read as markup, ``type="html"`` holding that text escaped as HTML (a
    reader shows exactly the text either way)."""
    if looks_like_markup(text):
        element.set("type", "html")
        element.text = text_as_html(text)
    else:
        element.set("type", "text")
        element.text = text


def rfc3339(moment: datetime) -> str:
    """An instant as Atom and JSON Feed write it (RFC 3339): at its own offset, unless that
    offset has seconds (``+05:45:30``, which RFC 3339 cannot say), then in UTC."""
    offset = moment.utcoffset()
    if offset is not None and offset.total_seconds() % 60:
        moment = moment.astimezone(UTC)
    return moment.isoformat()


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
    # and the same store must render the same bytes wherever it runs. (Loaded for the
    # first enclosure that does not say its type.)
    import mimetypes

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


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc822(moment: datetime) -> str:
    """``Mon, 23 Nov 2026 12:00:00 +0000``: an RSS date, in English whatever the locale.

    The fields are those of ``strftime("%a, %d %b %Y %H:%M:%S %z")`` in the C locale, as
    feedgen wrote them (the year unpadded, as glibc gives it).
    """
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"naive datetime {moment!r}: give a time zone")
    sign = "-" if offset.days < 0 else "+"
    offset = abs(offset)
    minutes, seconds = divmod(offset.seconds, 60)
    zone = f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    if seconds or offset.microseconds:
        zone += f"{seconds:02d}"
        if offset.microseconds:
            zone += f".{offset.microseconds:06d}"
    return (
        f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} "
        f"{moment.year} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {zone}"
    )


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: give a time zone")
    return moment


def _via(entry: Entry) -> Provenance | None:
    """The primary source, when it has a URL to name (see the module's conventions)."""
    primary = entry.sources[0] if entry.sources else None
    if primary is not None and primary.location.startswith(("http://", "https://")):
        return primary
    return None


def _categories(entry: Entry) -> list[str]:
    """The topics, then the source's categories that are not also topics."""
    return list(entry.topics) + [c for c in entry.categories if c not in entry.topics]


def _serialise(root: etree._Element) -> bytes:
    from lxml import etree

    # Two-space indentation: lxml's pretty printing, as feedgen asked for it.
    document = etree.tostring(
        etree.ElementTree(root), pretty_print=True, encoding="UTF-8", xml_declaration=True
    )
    return bytes(document)


# The elements below are in the order feedgen wrote them, which the feeds on subscribers'
# disks have: another order would show readers every item again as changed. Both
# functions refuse what feedgen refused, with the same exceptions (a missing title, a
# naive time, text XML cannot hold). tests/test_render_direct.py pins the bytes.


def render_rss(
    spec: FeedSpec,
    entries: Sequence[Entry],
    fallback: datetime,
    *,
    only: Collection[str] | None = None,
) -> bytes:
    from lxml import etree  # lazily: a run with nothing new renders nothing

    if not (spec.title and spec.site_url and spec.description):
        raise ValueError("an RSS channel needs a title, a link and a description")
    updated = _aware(rss_time(feed_updated(entries, fallback)))
    sub = etree.SubElement
    root = etree.Element("rss", version="2.0", nsmap={"atom": ATOM_NS, "content": CONTENT_NS})
    channel = sub(root, "channel")
    sub(channel, "title").text = spec.title
    sub(channel, "link").text = spec.site_url  # the site, not the feed (the self link)
    sub(channel, "description").text = spec.description
    sub(channel, f"{{{ATOM_NS}}}link", href=spec.url("rss"), rel="self", type=FEED_TYPES["rss"])
    sub(channel, "docs").text = RSS_DOCS
    sub(channel, "generator").text = GENERATOR
    sub(channel, "language").text = "en"
    sub(channel, "lastBuildDate").text = rfc822(updated)
    for entry in entries:
        if only is not None and entry.id not in only:
            continue  # its item is kept as it was (aggregator.splice)
        if not entry.title:
            raise ValueError(f"entry {entry.id!r} has no title")
        item = sub(channel, "item")
        sub(item, "title").text = entry.title
        sub(item, "link").text = item_link(spec, entry)
        if entry.id:
            # The tag: id, never the link: a link may appear or change when another source
            # joins the story, and a guid that changes shows readers a duplicate.
            sub(item, "guid", isPermaLink="false").text = entry.id
        for term in _categories(entry):
            sub(item, "category").text = term
        if entry.published is not None:
            sub(item, "pubDate").text = rfc822(rss_time(shown_time(entry.published)))
        via = _via(entry)
        if via is not None:
            sub(item, "source", url=without_credentials(via.location)).text = via.source
        if entry.summary:
            sub(item, "description").text = text_as_html(entry.summary)
        if entry.content_html:
            sub(item, f"{{{CONTENT_NS}}}encoded").text = entry.content_html
        enclosure = rss_enclosure(entry)
        if enclosure is not None:
            sub(
                item,
                "enclosure",
                url=enclosure.url,
                length=str(enclosure.length or 0),
                type=media_type(enclosure),
            )
    # The same character either way to an XML parser; the hexadecimal reference is
    # what the RSS Best Practices Profile asks of "<" in text (readers differ in
    # whether they take a title as HTML).
    return with_stylesheet(_serialise(root).replace(b"&lt;", b"&#x3C;"))


def render_atom(
    spec: FeedSpec,
    entries: Sequence[Entry],
    fallback: datetime,
    *,
    only: Collection[str] | None = None,
) -> bytes:
    from lxml import etree  # lazily: a run with nothing new renders nothing

    from aggregator import __version__

    feed_id = f"tag:{spec.id_authority}:feed:{spec.slug}"
    if spec.query:  # an ad-hoc filtered feed is another feed than the whole one
        feed_id += f"?{spec.query}"
    if not spec.title:
        raise ValueError("an Atom feed needs a title")
    updated = _aware(feed_updated(entries, fallback))
    sub = etree.SubElement
    # The Atom namespace is written as a plain xmlns attribute, so the elements below
    # are un-namespaced in lxml's tree and serialised without a prefix.
    root = etree.Element("feed", xmlns=ATOM_NS)
    root.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    sub(root, "id").text = feed_id
    sub(root, "title").text = spec.title
    sub(root, "updated").text = rfc3339(updated)
    if spec.author:
        sub(sub(root, "author"), "name").text = spec.author
    sub(root, "link", href=spec.url("atom"), rel="self", type=FEED_TYPES["atom"])
    sub(root, "link", href=spec.site_url, rel="alternate")
    sub(root, "generator", version=__version__).text = GENERATOR
    if spec.description:
        sub(root, "subtitle").text = spec.description
    for entry in entries:
        if only is not None and entry.id not in only:
            continue  # its item is kept as it was (aggregator.splice)
        if not (entry.id and entry.title):
            raise ValueError(f"entry {entry.id!r} needs an id and a title")
        element = sub(root, "entry")
        sub(element, "id").text = entry.id
        atom_text(sub(element, "title"), entry.title)
        sub(element, "updated").text = rfc3339(entry_time(entry))
        if entry.author:
            sub(sub(element, "author"), "name").text = entry.author
        # Always an alternate link (rel left implicit), so Atom needs no content
        # (RFC 4287 §4.1.1.1).
        sub(element, "link", href=item_link(spec, entry))
        for term in _categories(entry):
            sub(element, "category", term=term)
        if entry.published is not None:
            sub(element, "published").text = rfc3339(shown_time(entry.published))
        if entry.summary:
            atom_text(sub(element, "summary"), entry.summary)
        if entry.content_html:
            sub(element, "content", type="html").text = entry.content_html
        via = _via(entry)
        if via is not None:
            sub(
                element, "link", rel="via", href=without_credentials(via.location), title=via.source
            )
        for enclosure in entry.enclosures:
            link = sub(element, "link", rel="enclosure", href=enclosure.url)
            if enclosure.type:
                link.set("type", enclosure.type)
            if enclosure.length is not None:
                link.set("length", str(enclosure.length))
    return with_stylesheet(_serialise(root))


def with_stylesheet(document: bytes) -> bytes:
    """An XML document with the :data:`STYLESHEET` processing instruction before its root:
    right after the XML declaration, where a processing instruction may stand (XML 1.0
    §2.8, "Misc" in the prolog), on a line of its own.
    """
    instruction = f'<?xml-stylesheet type="text/xsl" href="{STYLESHEET}"?>'.encode()
    if not document.startswith(b"<?xml "):
        return instruction + b"\n" + document
    end = document.index(b"?>") + len(b"?>")
    return document[:end] + b"\n" + instruction + document[end:]


def _json_date(published: Published | None) -> str | None:
    return None if published is None else rfc3339(shown_time(published))


def _attachment(enclosure: Enclosure) -> dict[str, object]:
    attachment: dict[str, object] = {"url": enclosure.url, "mime_type": media_type(enclosure)}
    if enclosure.length is not None:
        attachment["size_in_bytes"] = enclosure.length
    return attachment


def render_json(
    spec: FeedSpec,
    entries: Sequence[Entry],
    fallback: datetime,
    *,
    only: Collection[str] | None = None,
) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    items = []
    for entry in entries:
        if only is not None and entry.id not in only:
            continue  # its item is kept as it was (aggregator.splice)
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
        if entry.published is not None:  # an undated story has no date here (optional)
            item["date_published"] = _json_date(entry.published)
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
    spec: FeedSpec,
    entries: Sequence[Entry],
    fallback: datetime,
    before: Mapping[str, bytes] | None = None,
    keep: Collection[str] = (),
) -> dict[str, bytes]:
    """``<slug>.rss``, ``<slug>.atom`` and ``<slug>.json`` for one feed.

    ``before``: the feed's documents as last written (file name → bytes, checked by
    the caller: see :mod:`aggregator.splice`); the items of the entries in ``keep``
    (those whose digests did not change since) are then taken from them as they are.
    The bytes are the same either way."""
    from aggregator import splice

    files = {}
    for extension, render, layout in (
        ("rss", render_rss, splice.RSS),
        ("atom", render_atom, splice.ATOM),
        ("json", render_json, splice.JSON),
    ):
        name = f"{spec.slug}.{extension}"
        old = before.get(name) if before else None
        document = None
        if old is not None and keep:
            document = splice.remade(render, layout, spec, entries, fallback, old, keep)
        files[name] = document if document is not None else render(spec, entries, fallback)
    return files
