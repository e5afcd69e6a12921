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

import calendar
import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from aggregator.dates import parse_timestamp
from aggregator.errors import SourceError
from aggregator.live import clean
from aggregator.live.harden import defuse
from aggregator.model import Provenance, Published, SourceEntry

log = logging.getLogger("aggregator")

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """What a feed document held: its entries, and what it asks of pollers."""

    title: str
    entries: tuple[SourceEntry, ...]
    warnings: tuple[str, ...] = ()
    ttl_minutes: int | None = None


def _date(raw: str | None, parsed: Any) -> Published | None:
    """Our own reading first (it keeps the offset); feedparser's (UTC) as a fallback."""
    if raw:
        ours = parse_timestamp(raw)
        if ours is not None:
            return ours
    if parsed:
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


def _entry(item: Any, *, base: str, name: str, location: str) -> SourceEntry | None:
    title = clean.title(item.get("title"))
    contents = [c for c in item.get("content", []) if c.get("value")]
    summary_raw = item.get("summary") or ""
    summary_detail = item.get("summary_detail")
    summary_html = _is_html(summary_detail)
    body = contents[0] if contents else None
    if body is not None:
        content_html = clean.sanitize_html(
            body["value"] if _is_html(body) else _escape(body["value"]), _base(body, base)
        )
    elif summary_raw:
        content_html = clean.sanitize_html(
            summary_raw if summary_html else _escape(summary_raw), _base(summary_detail, base)
        )
    else:
        content_html = ""
    summary = clean.text_summary(
        clean.html_to_text(summary_raw)
        if summary_html
        else clean.plain(summary_raw, clean.MAX_TEXT)
    )
    if not summary and body is not None:
        summary = clean.text_summary(clean.html_to_text(content_html))
    link = clean.safe_url(item.get("link"), base)
    if not title:
        title = clean.plain(summary, 120)
    if not title:
        return None
    published = _date(item.get("published"), item.get("published_parsed"))
    updated = _date(item.get("updated"), item.get("updated_parsed"))
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
        author=clean.name(item.get("author")),
        guid=guid,
        categories=categories,
        content_html=content_html or None,
    )


def _escape(text: str) -> str:
    import html

    return html.escape(text).replace("\n\n", "<br><br>")


def _ttl(parsed: Any) -> int | None:
    value = parsed.feed.get("ttl")
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return minutes if 0 < minutes <= 7 * 24 * 60 else None


def parse_feed(
    data: bytes, *, url: str, name: str | None = None, content_type: str | None = None
) -> FeedDocument:
    """Read an RSS or Atom document. Raises SourceError when it holds no feed."""
    source = name or url
    headers = {}
    if url.startswith(("http://", "https://")):
        headers["content-location"] = url
    if content_type:
        headers["content-type"] = content_type
    try:
        parsed = feedparser.parse(
            io.BytesIO(defuse(data)),
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
    if isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe):
        problem = None
    if not parsed.entries:
        if not parsed.get("version"):
            raise SourceError(source, url, f"not a feed: {_what_it_is(data, content_type)}")
        if problem is not None:
            raise SourceError(source, url, f"broken feed with no entries: {_describe(problem)}")
    warnings = []
    if problem is not None:
        warnings.append(f"feed is not well-formed ({_describe(problem)}); read what it holds")
    entries = []
    base = parsed.feed.get("link") if not url.startswith(("http://", "https://")) else url
    for index, item in enumerate(parsed.entries, start=1):
        try:
            entry = _entry(item, base=base or url, name=source, location=url)
        except Exception as error:  # one bad entry is skipped, never the feed
            warnings.append(f"entry {index} skipped: {type(error).__name__}: {error}")
            continue
        if entry is None:
            warnings.append(f"entry {index} skipped: no title and no text")
            continue
        entries.append(entry)
    if problem is not None and not entries:
        raise SourceError(
            source, url, f"broken feed with no readable entries: {_describe(problem)}"
        )
    return FeedDocument(
        title=clean.plain(
            parsed.feed.get("title"), is_html=_is_html(parsed.feed.get("title_detail"))
        ),
        entries=tuple(entries),
        warnings=tuple(warnings),
        ttl_minutes=_ttl(parsed),
    )


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
