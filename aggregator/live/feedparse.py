"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 documents to entries, with feedparser.

feedparser always gets a stream (``io.BytesIO``) and the document's real URL as
its content location: given ``str`` or ``bytes`` it would treat the text as a
path or a URL to open. The document is defused first (see ``harden``), and
everything it says is cleaned (see ``clean``) before it becomes an entry.

A document feedparser calls "bozo" (not well-formed) is still read when it has
entries, with a warning; with none it is an error for its source. One bad entry
is skipped with a warning; it never costs the others.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from itertools import pairwise
from typing import Any

from aggregator.dates import parse_timestamp
from aggregator.errors import SourceError
from aggregator.live import clean, media
from aggregator.live.document import FeedDocument as FeedDocument  # re-exported
from aggregator.live.harden import defuse
from aggregator.live.newest import MAX_ENTRIES, keep_newest, newest_entries
from aggregator.model import Provenance, Published, SourceEntry
from aggregator.text import MAX_TEXT, item_mark, title_key, windows_1252_references
from aggregator.uri import without_credentials

log = logging.getLogger("aggregator")

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


# Bumped whenever what an item becomes changes (cleaning, dates, the entry model), or
# how its digest is taken, so that digests stored by an older version no longer match
# and every item is read again. 2: repr instead of JSON. 3: the fast path digests each
# item's bytes as they came, not as lxml writes them back. 4: an entry with content and
# no summary takes its summary from the content's text, not from its markup; an Atom
# title of type text keeps what reads as markup; links are URIs (clean.as_uri). 5: a
# space where a block ends in a text, C1 controls read as Windows-1252, chosen spaces
# kept, single line breaks in plain text kept, JSON Feed titles plain text, text
# composed (NFC). 6: each item read once more, for its sighting to keep the item's id
# (store migration 7: a corrected headline is the story it corrects). 7: an RSS title or
# an author's name is HTML only when it holds HTML ("C++ vector<int>" is text); HTML 5
# blocks end a line in the text; struck text, quotations and images' alternatives are
# read as a person reads them (clean._readable). 8: each item read once more, for the
# fetch state to keep its id (ingest.listed_ids: an item skipped still lists its id).
# 9: and for each sighting to keep the item's link and mark (store migration 8).
# 10: references to C1 controls read as Windows-1252 ("&#133;" ending a title), and
# RFC 822 dates in zones such as CEST read in them (not as UTC), <noscript> dropped.
# 11: a guid that is a code or a path is no link (_guid_is_address).
DIGEST_VERSION = "11"


def item_digest(item: Any, salt: str) -> str:
    """A short fingerprint of everything a parsed item says (feedparser's dict or the
    fast path's), salted with where it came from: equal digests, equal entries.

    Hashing the raw item costs a few microseconds; cleaning it costs a hundred. Its
    repr, not sorted JSON: half the time, and as exact (repr writes every str, number,
    list, dict and date unambiguously; the same item read with its keys in another
    order would only cost one more reading, never a missed change).
    """
    text = repr(item)
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12)
    digest.update(salt.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


# RFC 822 as RSS feeds write it: "Mon, 01 Jan 2024 09:00:00 +0000" (or GMT); years
# under 1000 are left to the email parser (it reads "0054" as 2054).
_RFC822 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d?) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"([1-9]\d{3}) (\d\d):(\d\d):(\d\d) ([+-]\d{4}|GMT)"
)
_MONTHS = {
    "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
    "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}  # fmt: skip


@functools.lru_cache(maxsize=256)  # the fast path reads each date, the entry again
def _timestamp(text: str) -> Published | None:
    """parse_timestamp(text), with the usual RFC 822 form read by one pattern (the
    general reader tries ISO 8601 first, then the email parser: ten times slower).
    tests/test_clean_shortcuts.py checks the two agree."""
    found = _RFC822.fullmatch(text)
    if found is None:
        return parse_timestamp(text)
    day, month, year, hour, minute, second, zone = found.groups()
    try:
        instant = datetime(
            int(year),
            _MONTHS[month],
            int(day),
            int(hour),
            int(minute),
            int(second),
            0,
            _offset(zone),
        )
    except ValueError:  # 31 February, 25 o'clock, an offset of a day or more
        return parse_timestamp(text)
    return Published(instant.date(), instant)


@functools.lru_cache(maxsize=64)  # a feed's dates share one offset or a few: each made once
def _offset(zone: str) -> tzinfo:
    """The time zone of an RFC 822 offset ("+0100") or "GMT"; ValueError for a day or more."""
    if zone == "GMT" or zone == "-0000":  # "-0000": UTC, as parse_timestamp reads it
        return UTC
    minutes = int(zone[1:3]) * 60 + int(zone[3:])
    return timezone(timedelta(minutes=-minutes if zone[0] == "-" else minutes))


def _date(raw: str | None, parsed: Any) -> Published | None:
    """Our own reading first (it keeps the offset); feedparser's (UTC) as a fallback."""
    if raw:
        ours = _timestamp(raw)
        if ours is not None:
            return ours
    if parsed:
        import calendar  # feedparser's reading: only with feedparser

        try:
            return Published.at(datetime.fromtimestamp(calendar.timegm(parsed), UTC))
        except (OverflowError, ValueError, TypeError):
            return None
    return None


def _is_html(detail: Any) -> bool:
    return bool(detail) and detail.get("type", "text/plain") in HTML_TYPES


def _base(detail: Any, fallback: str) -> str:
    """The URL relative links in a text are relative to: its xml:base, else the feed's."""
    base = detail.get("base") if detail else None
    return base if isinstance(base, str) and base.startswith(("http://", "https://")) else fallback


def _entry(
    item: Any,
    *,
    base: str,
    name: str,
    location: str,
    atom: bool = False,
    guid_link: bool = True,
) -> SourceEntry | None:
    """``atom``: the document is Atom, whose titles say their type (RSS titles do not).
    ``guid_link``: False when the item's link is its guid and must not be taken for
    one (see :func:`_guid_is_address`)."""
    title_detail = item.get("title_detail")
    if atom and title_detail is not None:
        # Declared: plain text (type="text", Atom's default: "<canvas>" is text) or HTML.
        title = clean.title(item.get("title"), is_html=_is_html(title_detail))
    else:  # RSS: HTML only when it holds HTML (clean.looks_like_html)
        title = clean.title(item.get("title"))
    contents = [c for c in item.get("content", []) if c.get("value")]
    summary_detail = item.get("summary_detail")
    # An entry with content and no summary gets the content's value as its "summary"
    # from feedparser, without a summary_detail (so without its type): that is not a
    # summary, and its text is read from the sanitised content below.
    summary_raw = "" if summary_detail is None and contents else item.get("summary") or ""
    summary_html = _is_html(summary_detail)
    body = contents[0] if contents else None
    text: str | None = None  # the summary's text, when read with its sanitised HTML
    if body is not None:
        content_html = clean.sanitize_html(
            body["value"] if _is_html(body) else _escape(body["value"]), _base(body, base)
        )
    elif summary_raw and summary_html:
        # One sanitiser pass gives both the HTML and the text (see sanitized_with_text).
        content_html, text = clean.sanitized_with_text(summary_raw, _base(summary_detail, base))
    elif summary_raw:
        content_html = clean.sanitize_html(_escape(summary_raw), _base(summary_detail, base))
    else:
        content_html = ""
    if text is None:
        text = (
            clean.html_to_text(summary_raw, summary=True)
            if summary_html
            else clean.plain(summary_raw, MAX_TEXT)
        )
    summary = clean.text_summary(text)
    if not summary and body is not None:
        summary = clean.text_summary(clean.html_to_text(content_html, summary=True))
    link = clean.safe_url(item.get("link"), base) if guid_link else None
    if not title:
        title = clean.plain(summary, 120)
    if not title:
        return None
    published = _date(item.get("published"), item.get("published_parsed"))
    # dict.get, not item.get: feedparser maps a missing "updated" to "published" with a
    # DeprecationWarning; an RSS item has a publication date, not an update date.
    updated = _date(dict.get(item, "updated"), dict.get(item, "updated_parsed"))
    guid = clean.plain(item.get("id"), clean.MAX_URL) or None
    categories = tuple(
        dict.fromkeys(
            term
            for tag in item.get("tags", [])[: clean.MAX_CATEGORIES]
            if (term := clean.plain(tag.get("term") or tag.get("label"), 100))
        )
    )
    return SourceEntry(
        title=title,
        published=published or updated,
        updated=updated,
        summary=summary,
        provenance=Provenance(name, location),
        link=link,
        author=clean.name(item.get("author"), is_html=False if atom else None),
        guid=guid,
        categories=categories,
        content_html=content_html or None,
        # Media RSS URLs come as written: relative ones against the entry's xml:base
        # (what its title was read under), as feedparser resolved its links.
        enclosures=media.enclosures(item, _base(item.get("title_detail"), base)),
    )


def _link_is_guid(item: Any) -> bool:
    """Whether feedparser gave the item its guid as its link (it has no link of its own)."""
    return bool(item.get("guidislink")) and item.get("link") == item.get("id")


def _guid_is_address(item: Any, written: frozenset[str]) -> bool:
    """Whether an RSS item's guid, which feedparser took for its link (a guid without
    ``isPermaLink="false"`` and no ``<link>``), is written in the document as the web
    address feedparser made of it (``written``: :func:`_written_addresses`). RSS 2.0
    has such a guid be the item's permalink, but feeds write ``<guid>a4</guid>``, or a
    path: feedparser resolves those against the feed's address
    (``https://feeds.example/a4``), a page that may not exist, where a reader would be
    sent. Only an address the feed wrote whole is kept; the story then links to its own
    page otherwise."""
    value = item.get("id")
    return isinstance(value, str) and _address(value) in written


def _address(text: str) -> str:
    """A web address as compared here: its scheme in lower case, as feedparser gives it."""
    scheme, colon, rest = text.partition(":")
    return f"{scheme.lower()}{colon}{rest}"


def _written_addresses(data: bytes, encoding: str | None = None) -> frozenset[str]:
    """The web addresses a document writes whole as an item's guid (or an entry's id):
    their text as written, entities read. One pass over the document, made only for a
    document with an item whose guid is its link (feedparser keeps no raw text), read
    as feedparser read it: in ``encoding`` (feedparser's), and past what is not
    well-formed (an undefined ``&nbsp;``, a bare ``&``: found by review, a stray one
    dropped every such link of the feed)."""
    from lxml import etree

    root = None
    for hint in dict.fromkeys((encoding, None)):
        try:
            parser = etree.XMLParser(
                resolve_entities=False,
                no_network=True,
                load_dtd=False,
                remove_comments=True,
                recover=True,
                encoding=hint,
            )
            root = etree.fromstring(data, parser)
        except (LookupError, ValueError, etree.XMLSyntaxError):
            continue
        if root is not None:
            break
    if root is None:
        return frozenset()
    found = set()
    for element in root.iter("{*}guid", "{*}id"):
        text = (element.text or "").strip()
        if text[:8].lower().startswith(("http://", "https://")):
            found.add(_address(text))
    return frozenset(found)


def _escape(text: str) -> str:
    return clean.text_as_html(text)


def _ttl(feed: Any) -> int | None:
    value = feed.get("ttl")
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return minutes if 0 < minutes <= 7 * 24 * 60 else None


def parse_feed(
    data: bytes,
    *,
    url: str,
    name: str | None = None,
    content_type: str | None = None,
    fast: bool = True,
    max_entries: int = MAX_ENTRIES,
    known: frozenset[str] = frozenset(),
) -> FeedDocument:
    """Read an RSS or Atom document. Raises SourceError when it holds no feed.

    Of a document with more than ``max_entries`` items, only the newest (by date,
    then document order) are read, with a warning (see :mod:`newest`).
    ``fast=False`` sends every document to feedparser (see :func:`fast_rss`).
    An item whose digest is in ``known`` (the source's last read) is not cleaned and
    not returned: it is counted in ``unchanged``; every item's digest is returned.
    """
    source = name or url
    defused = windows_1252_references(defuse(data), _charset(content_type))
    warnings = []
    reduced = keep_newest(defused, max_entries, encoding=_charset(content_type))
    if reduced is not None:
        # The rebuilt document is UTF-8 and says so: a charset given by HTTP is spent.
        defused, content_type = reduced.data, None
        if reduced.problem is not None:
            warnings.append(f"feed is not well-formed ({reduced.problem}); read what it holds")
    parsed = (
        fast_rss(defused, url=url, content_type=content_type, source=source, known=known)
        if fast
        else None
    )
    if parsed is None:
        headers = {}
        if url.startswith(("http://", "https://")):
            headers["content-location"] = without_credentials(url)  # (see _channel)
        if content_type:
            headers["content-type"] = content_type
        # feedparser is imported when a document needs it: most do not (fast_rss), and a
        # parser worker's start, on the critical path of a run, is half its import.
        import feedparser

        try:
            parsed = feedparser.parse(
                io.BytesIO(defused),
                response_headers=headers,
                # nh3 resolves relative URLs in HTML, against each text's own xml:base; left
                # to feedparser, "javascript:" hrefs come out as https://host/javascript:….
                resolve_relative_uris=False,
                sanitize_html=False,  # nh3 does this, with an allowlist (see clean)
            )
        except Exception as error:  # feedparser's failure is this source's, never the run's
            raise SourceError(
                source, url, f"feed parser failed: {type(error).__name__}: {error}"
            ) from error

    problem = parsed.get("bozo_exception")
    # feedparser's "ThingsNobodyCaresAboutButMe" (a text/plain Content-Type, an encoding
    # declared one way and served another) are not worth a warning.
    if problem is not None:
        import feedparser  # loaded already: a problem is only ever feedparser's

        if isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe):
            problem = None
    if not parsed.entries:
        if not parsed.get("version"):
            raise SourceError(source, url, f"not a feed: {_what_it_is(data, content_type)}")
        if problem is not None:
            raise SourceError(source, url, f"broken feed with no entries: {_describe(problem)}")
    if problem is not None:
        warnings.append(f"feed is not well-formed ({_describe(problem)}); read what it holds")
    entries = []
    digests: list[str] = []
    ids: list[str | None] = []  # each digest's item's id, when read (None when skipped)
    marks: list[str | None] = []  # and its title and link, in short (text.item_mark)
    unchanged = 0
    http = url.startswith(("http://", "https://"))
    base = without_credentials(url) if http else parsed.feed.get("link")  # (see _channel)
    # Atom 1.0 only: Atom 0.3's titles say mode="escaped", which feedparser reads as HTML.
    atom = parsed.get("version") == "atom10"
    salt = f"{DIGEST_VERSION}\0{source}\0{url}\0{url if http else base}"
    raw = getattr(parsed, "digests", None)  # the fast path's, from the items' bytes
    addresses: list[frozenset[str]] = []  # read once, when an item needs them

    def written() -> frozenset[str]:
        if not addresses:
            addresses.append(_written_addresses(defused, parsed.get("encoding")))
        return addresses[0]

    for index, item in enumerate(parsed.entries, start=1):
        digest = raw[index - 1] if raw is not None else item_digest(item, salt)
        if digest in known or item is None:  # as last time: nothing to clean or store
            unchanged += 1
            digests.append(digest)
            ids.append(None)
            marks.append(None)
            continue
        try:
            entry = _entry(
                item,
                base=base or url,
                name=source,
                location=url,
                atom=atom,
                guid_link=not _link_is_guid(item) or _guid_is_address(item, written()),
            )
        except Exception as error:  # one bad entry is skipped, never the feed
            warnings.append(f"entry {index} skipped: {type(error).__name__}: {error}")
            continue
        if entry is None:
            warnings.append(f"entry {index} skipped: no title and no text")
            continue
        entries.append(entry)
        digests.append(digest)
        ids.append(entry.guid)
        marks.append(item_mark(title_key(entry.title), entry.link))
    if problem is not None and not entries and not unchanged:
        raise SourceError(
            source, url, f"broken feed with no readable entries: {_describe(problem)}"
        )
    # The streaming pass has already capped the document; this catches what it cannot
    # count (items feedparser finds that lxml does not, in a broken document).
    kept, total = (reduced.kept, reduced.total) if reduced else (max_entries, len(entries))
    entries = newest_entries(entries, max_entries)
    if kept < total:
        warnings.append(f"kept the newest {kept} of {total} entries ([fetch] max_entries_per_feed)")
    return FeedDocument(
        title=clean.plain(
            parsed.feed.get("title"), is_html=_is_html(parsed.feed.get("title_detail"))
        ),
        entries=tuple(entries),
        warnings=tuple(warnings),
        ttl_minutes=_ttl(parsed.feed),
        digests=tuple(digests),
        item_ids=tuple(ids),
        item_marks=tuple(marks),
        unchanged=unchanged,
    )


def _charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type, if it has one."""
    for parameter in (content_type or "").split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip(" \"'"):
            return value.strip(" \"'")
    return None


def _describe(problem: BaseException) -> str:
    text = " ".join(str(problem).split())
    return text[:200] or type(problem).__name__


def _what_it_is(data: bytes, content_type: str | None) -> str:
    head = data[:2048].lower()
    if (content_type and content_type.split(";")[0].strip() in HTML_TYPES) or b"<html" in head:
        return "HTML page"
    if not data.strip():
        return "empty document"
    return "no RSS or Atom elements found"


# -- The fast path -------------------------------------------------------------------------
#
# Profiling a 200-feed run showed feedparser's pure-Python SAX handlers taking most
# of the time. Plain, well-formed RSS 2.0 (what NATO and most publishers serve) is read
# here with lxml instead, into the same shape feedparser gives, so that everything after
# (cleaning, dates, the entry model) is shared. Anything unusual (another format,
# namespaced or nested item elements, xml:base, a permalink guid that feedparser would
# resolve, a date only feedparser can read, a charset given by HTTP) goes to feedparser.
# tests/test_fast_path.py checks both paths give the same entries.

_ITEM_FIELDS = frozenset({"title", "link", "guid", "pubDate", "description", "category", "author"})


@dataclass(frozen=True, slots=True)
class _Parsed:
    """The parts of a ``feedparser`` result that :func:`parse_feed` reads."""

    feed: dict[str, Any]
    entries: list[dict[str, Any] | None]  # None: an item known from the last read
    version: str = "rss20"
    bozo: bool = False
    digests: list[str] | None = None  # the fast path's, of each item's own bytes

    def get(self, key: str, default: Any = None) -> Any:
        return {"version": self.version}.get(key, default)


def _text(element: Any) -> str:
    return str(element.text or "").strip()


def raw_digest(item: bytes | memoryview, salt: str) -> str:
    """The fast path's digest of an item: of its own bytes (the same item, the same bytes),
    salted like :func:`item_digest`, and marked so that it never equals a digest of a
    parsed item. A known item then costs a hash, not the reading of its fields and dates."""
    digest = hashlib.blake2b(item, digest_size=12)
    digest.update(salt.encode("utf-8", "surrogatepass"))
    return "r" + digest.hexdigest()


@functools.cache
def _unplain_nodes() -> Any:
    """An XPath (compiled once): is there an xml:base or a processing instruction anywhere
    in the document? (Comments never reach the tree: the parser drops them, as feedparser
    does, joining the text around them.)"""
    from lxml import etree

    return etree.XPath("boolean(//@xml:base | //processing-instruction())")


# Encodings in which every ASCII character is its own single byte, as the byte tests
# below assume; lxml names a document's encoding in one of these spellings.
_ASCII_BYTES = frozenset({"utf-8", "us-ascii", "ascii"})
_XML_SPACE = b" \t\r\n"  # what XML calls white space (not Python's \v and \f)


def _plain_bytes(data: bytes) -> bool:
    """Whether the bytes alone show that there is no xml:base, no processing instruction
    and no unresolved entity to look for in the tree (an entity needs a DOCTYPE; the XML
    declaration is no processing instruction). Anything looking like one (even in a CDATA
    section or a comment) leaves the tree to be searched."""
    if b"xml:base" in data or b"<!DOCTYPE" in data:
        return False
    first = data.find(b"<?")
    if first == -1:
        return True
    return (
        not data[:first].lstrip(b"\xef\xbb\xbf \t\r\n")
        and data[first : first + 5] == b"<?xml"
        and data[first + 5 : first + 6] in (b" ", b"\t", b"\r", b"\n")
        and data.find(b"<?", first + 2) == -1
    )


# In a well-formed document every "<" opens markup, except inside a CDATA section, a
# comment or a processing instruction: skipping those, the item tags found are the
# document's own. "<item" must end its name (not "<items>").
_ITEM_MARKS = re.compile(rb"<(?:(item)(?=[\s/>])|(/item)\s*>|(!\[CDATA\[)|(!--)|(\?))")
_TAG_REST = re.compile(rb"""(?:[^>"']++|"[^"]*+"|'[^']*+')*+>""")
_SKIP_TO = {3: b"]]>", 4: b"-->", 5: b"?>"}


def item_spans(data: bytes) -> list[tuple[int, int]] | None:
    """Where each un-prefixed ``item`` element of a well-formed document starts and ends
    in its bytes, in document order; None when the bytes do not read as expected (an
    item inside an item, an unclosed section), for the caller to take another way."""
    spans: list[tuple[int, int]] = []
    start = -1
    at = 0
    search = _ITEM_MARKS.search
    while (mark := search(data, at)) is not None:
        kind = mark.lastindex
        if kind == 1:  # <item ...> or <item/>
            rest = _TAG_REST.match(data, mark.end())
            if rest is None or start != -1:
                return None
            at = rest.end()
            if data[at - 2 : at - 1] == b"/":
                spans.append((mark.start(), at))
            else:
                start = mark.start()
        elif kind == 2:  # </item>
            if start == -1:
                return None
            at = mark.end()
            spans.append((start, at))
            start = -1
        else:  # skipped whole: "<item" in a CDATA section is text
            end = data.find(_SKIP_TO[kind or 0], mark.end())
            if end == -1:
                return None
            at = end + len(_SKIP_TO[kind or 0])
    return spans if start == -1 else None


def fast_rss(
    data: bytes,
    *,
    url: str,
    content_type: str | None = None,
    source: str | None = None,
    known: frozenset[str] = frozenset(),
) -> _Parsed | None:
    """Plain RSS 2.0 read with lxml, or None when feedparser should read it.

    Every item's :func:`raw_digest` comes with it; an item whose digest is in ``known``
    (read, whole, from the same bytes last time) is not read again: None in its place.
    When some are known, only the others are parsed (see :func:`_without_known`).
    """
    from lxml import etree

    if b"<rss" not in data[:2048] or (content_type and "charset" in content_type.lower()):
        return None
    cut = _without_known(data, url=url, source=source, known=known) if known else None
    if cut is not None:
        return cut
    root = _parse(data)
    if root is None:
        return None
    channel = root.find("channel")
    if root.tag != "rss" or root.get("version") != "2.0" or channel is None:
        return None
    # xml:base, a processing instruction or an entity left unresolved anywhere: for
    # feedparser. The bytes rule them out in most documents; else one XPath and one walk
    # in C (a Python loop over every element cost more than the parse itself).
    encoding = _encoding(root)
    ascii_bytes = encoding in _ASCII_BYTES
    if not (ascii_bytes and _plain_bytes(data)) and (
        _unplain_nodes()(root) or next(root.iter(etree.Entity), None) is not None
    ):
        return None
    feed, salt = _channel(channel, url=url, source=source)
    items = channel.findall("item")
    # Each item's own bytes, as they came: found by a scan of the bytes when they are
    # ASCII-compatible and the scan finds exactly the channel's items (then they are the
    # same elements, in the same order); else as lxml writes each item back. The two
    # are told apart, and so are the namespaces in scope and the document's encoding
    # (the same bytes could mean other text).
    # (Not past a DOCTYPE: its literals may hold anything, "<item/>" or "<!--".)
    spans = item_spans(data) if ascii_bytes and b"<!DOCTYPE" not in data else None
    raw: list[bytes | memoryview]
    if spans is not None and len(spans) == len(items):
        view = memoryview(data)
        salt += _span_context(encoding, channel)
        raw = [view[begin:end] for begin, end in spans]
    else:
        salt += "\0lxml"
        raw = [etree.tostring(item, with_tail=False) for item in items]
    digests = [raw_digest(own, salt) for own in raw]
    return _read_items(feed, items, digests, known, base=feed["title_detail"]["base"])


def _parse(data: bytes) -> Any:
    """The document's root element, or None when lxml finds it not well-formed."""
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return None


def _encoding(root: Any) -> str:
    return str(root.getroottree().docinfo.encoding or "").lower()


def _channel(channel: Any, *, url: str, source: str | None) -> tuple[dict[str, Any], str]:
    """What the feed says of itself, and the salt of its items' digests."""
    http = url.startswith(("http://", "https://"))
    # Links are resolved against the feed's address without its user name and password:
    # they are published (found by review: the password was in every story's link).
    base = without_credentials(url) if http else ""
    feed: dict[str, Any] = {}
    for name in ("title", "link", "ttl"):
        element = channel.find(name)
        if element is not None:
            feed[name] = _text(element)
    feed["title_detail"] = {"type": "text/plain", "base": base}
    # As parse_feed salts item_digest: the same source, URL and base.
    salt = f"{DIGEST_VERSION}\0{source or url}\0{url}\0{url if http else feed.get('link')}"
    return feed, salt


def _span_context(encoding: str, channel: Any) -> str:
    """The part of the salt of digests taken from an item's bytes: the encoding and the
    namespaces in scope say what those bytes mean."""
    scope = sorted((prefix or "", uri) for prefix, uri in channel.nsmap.items())
    return f"\0span\0{encoding}\0{scope}"


def _without_known(
    data: bytes, *, url: str, source: str | None, known: frozenset[str]
) -> _Parsed | None:
    """The document read without parsing the items known from the last read, or None
    for the whole document to be parsed.

    A feed polled again mostly holds the items it held: what comes before the first
    item and after the last one, with only whitespace between the items, is parsed on
    its own first (for the encoding, the namespaces and the channel, which salt each
    item's digest), then again with the new items only. A known item is the same bytes
    as one read whole last time, in the same encoding and namespaces; its meaning does
    not depend on what else the document holds (no DOCTYPE, no xml:base, no processing
    instruction: the bytes say so), so it needs no parsing to be known unchanged.
    """
    # (An xml:id repeated anywhere makes the whole document ill-formed to libxml2: the
    # items known are not parsed here, so any xml:id leaves the whole to be parsed.)
    if b"<!DOCTYPE" in data or b"xml:id" in data or not _plain_bytes(data):
        return None
    spans = item_spans(data)
    if not spans:
        return None
    view = memoryview(data)
    if any(view[end:begin].tobytes().strip(_XML_SPACE) for (_, end), (begin, _) in pairwise(spans)):
        return None  # something besides items between them: the whole document, then
    head, tail = data[: spans[0][0]], data[spans[-1][1] :]
    frame = _parse(head + tail)
    if frame is None:
        return None
    channel = frame.find("channel")
    encoding = _encoding(frame)
    if (
        frame.tag != "rss"
        or frame.get("version") != "2.0"
        or channel is None
        or encoding not in _ASCII_BYTES
        or channel.find("item") is not None
    ):
        return None
    feed, salt = _channel(channel, url=url, source=source)
    salt += _span_context(encoding, channel)
    digests = [raw_digest(view[begin:end], salt) for begin, end in spans]
    new = [span for span, digest in zip(spans, digests, strict=True) if digest not in known]
    if len(new) == len(spans):
        return None  # nothing known: one parse of the whole document is cheaper
    # The items, side by side, are the channel's own: the new ones are parsed where the
    # whole document had them, or, with none new, one known item is, to see that.
    shown = new or spans[:1]
    root = _parse(b"\n".join([head, *(view[begin:end] for begin, end in shown), tail]))
    items = root.find("channel").findall("item") if root is not None else None
    if items is None or len(items) != len(shown):
        return None
    found = iter(items)
    elements = [None if digest in known else next(found) for digest in digests]
    return _read_items(feed, elements, digests, known, base=feed["title_detail"]["base"])


def _read_items(
    feed: dict[str, Any],
    items: list[Any],
    digests: list[str],
    known: frozenset[str],
    *,
    base: str,
) -> _Parsed | None:
    """The fast path's entries (None for a known item), or None when an item holds what
    only feedparser reads."""
    entries: list[dict[str, Any] | None] = []
    for item, digest in zip(items, digests, strict=True):
        if item is None or digest in known:
            entries.append(None)
            continue
        entry: dict[str, Any] = {"tags": []}
        for child in item:
            name = child.tag
            if name not in _ITEM_FIELDS or len(child):
                return None
            text = _text(child)
            if name == "title":
                entry["title"] = text
                entry["title_detail"] = {"type": "text/plain", "base": base}
            elif name == "link":
                entry["link"] = clean.join(base, text) if base else text
            elif name == "guid":
                if child.get("isPermaLink") != "false":
                    return None  # feedparser resolves permalink guids as URLs
                entry["id"] = text
            elif name == "pubDate":
                if text and _timestamp(text) is None:
                    return None  # a form only feedparser may read
                entry["published"] = text
            elif name == "description":
                entry["summary"] = text
                entry["summary_detail"] = {"type": "text/html", "base": base}
            elif name == "category":
                entry["tags"].append({"term": text, "scheme": child.get("domain"), "label": None})
            else:
                entry["author"] = text
        entries.append(entry)
    return _Parsed(feed, entries, digests=digests)
