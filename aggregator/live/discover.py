"""Finding a site's feeds from its address, and checking that each one is a feed.

Given a URL, the answer is fetched (with :class:`~aggregator.live.fetch.Fetcher`:
its timeouts, size caps and redirect rules) and parsed as a feed first, the way a
run reads it, whatever its Content-Type says and whatever its text holds (an RSS
file served as ``text/html``, ``<html`` inside a CDATA section): a feed is itself
the only candidate, and is never replaced by another. Only an answer that does not
parse as a feed, and looks like a web page, is searched for links. A web page's
candidates are its ``<link rel="alternate">`` elements of a feed type
(RSS, Atom, JSON Feed), in page order, resolved against the page's final URL (after
redirects) or its ``<base href>``, so relative and protocol-relative hrefs work.
A page that links none gets the usual places tried on its site, in order
(:data:`FALLBACKS`), up to the first that is a feed.

Nothing a page says is taken on trust: every candidate is fetched and parsed (in
the sandbox, as a run would) before it is offered, and one that is not a feed is
shown with its error. The best is the first that parses and is not a comments
feed; ``pick`` chooses another.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from aggregator.errors import SourceError
from aggregator.live import clean
from aggregator.live.fetch import Fetched, Fetcher, FetchError, Limits, Validators
from aggregator.live.harden import looks_like_xml
from aggregator.live.jsonfeed import is_json_feed
from aggregator.live.sandbox import Sandbox

# The media types of <link rel="alternate" type="…"> that name a feed.
FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/rdf+xml": "RSS 1.0",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON Feed",  # JSON Feed 1.0 was announced with this type
}
# Where sites without feed links usually keep their feed (WordPress, Jekyll, Hugo, Ghost…),
# relative to the site's root.
FALLBACKS = ("/feed", "/rss.xml", "/atom.xml", "/feed.json", "/index.xml", "/feed.xml", "/rss")
MAX_CANDIDATES = 10
# Only the start of a page is searched for links: they belong in its <head>.
HEAD_BYTES = 512 << 10
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass(frozen=True, slots=True)
class Candidate:
    """A feed URL found for a site, and what fetching and parsing it gave."""

    url: str
    how: str  # "the address itself", "<link rel=alternate>", "fallback /feed"
    type: str | None = None  # the link's declared type
    label: str | None = None  # the link's title attribute
    title: str | None = None  # the feed's own title, once parsed
    entries: int | None = None  # entries it holds, once parsed
    error: str | None = None  # why it is not usable

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def comments(self) -> bool:
        """A feed of comments rather than of stories ("Comments Feed", /comments/feed)."""
        text = f"{self.url} {self.label or ''} {self.title or ''}".lower()
        return "comments" in text


@dataclass(frozen=True, slots=True)
class Discovery:
    url: str  # what was asked for
    final_url: str  # where it led, after redirects
    is_feed: bool  # the address was a feed itself
    candidates: tuple[Candidate, ...]

    def best(self) -> Candidate | None:
        usable = [c for c in self.candidates if c.ok]
        stories = [c for c in usable if not c.comments]
        preferred = stories or usable
        return preferred[0] if preferred else None


def feed_links(html: bytes, page_url: str) -> list[tuple[str, str, str | None]]:
    """(absolute URL, type, title) of each feed ``<link rel="alternate">``, in page order.

    URLs are resolved against ``<base href>`` when the page has one, else the page's
    URL; only http(s) URLs are kept, each once.
    """
    from lxml import html as lxml_html

    if not html.strip():
        return []
    try:
        root = lxml_html.document_fromstring(html[:HEAD_BYTES])
    except Exception:  # lxml's errors for markup it cannot make a document of
        return []
    base = page_url
    for element in root.iter("base"):
        href = element.get("href")
        if href:
            base = urljoin(page_url, href.strip())
            break
    found: dict[str, tuple[str, str, str | None]] = {}
    for element in root.iter("link"):
        rel = (element.get("rel") or "").lower().split()
        kind = (element.get("type") or "").split(";")[0].strip().lower()
        if "alternate" not in rel or kind not in FEED_TYPES:
            continue
        url = clean.safe_url(element.get("href"), base)
        if url is None or url in found:
            continue
        title = clean.plain(element.get("title"), 200) or None
        found[url] = (url, kind, title)
        if len(found) >= MAX_CANDIDATES:
            break
    return list(found.values())


def _looks_like_feed(fetched: Fetched) -> bool:
    """Whether an answer that did not parse as a feed was meant as one (XML or a JSON
    Feed, not a web page): its parser's error is then the answer, and it is not
    searched for links."""
    kind = (fetched.content_type or "").split(";")[0].strip().lower()
    if kind in HTML_TYPES:
        return False
    head = fetched.body[:2048].lower()
    if b"<html" in head:  # a page, whatever it was sent as (XHTML as application/xml)
        return False
    if kind in FEED_TYPES or kind in ("application/xml", "text/xml"):
        # Sent as a feed, broken (empty, binary, cut short): its own error, not another
        # feed of the site tried instead without a word (found by review).
        return True
    if looks_like_xml(fetched.body):
        return True
    return is_json_feed(fetched.body, fetched.content_type)


class Discoverer:
    """Discovery with one fetcher and one sandbox (use as an async context manager)."""

    def __init__(
        self,
        sandbox: Sandbox,
        limits: Limits | None = None,
        user_agent: str | None = None,
        max_entries: int = 1000,
    ) -> None:
        self.sandbox = sandbox
        self.fetcher = Fetcher(limits, user_agent)
        self.max_entries = max_entries

    async def __aenter__(self) -> Discoverer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.fetcher.close()

    async def _get(self, url: str) -> Fetched:
        return await self.fetcher.fetch(
            url, name=url, validators=Validators(), now=datetime.now(UTC)
        )

    async def check(self, candidate: Candidate, fetched: Fetched | None = None) -> Candidate:
        """The candidate with its feed's title and entry count, or the reason it has none.

        Parsed as a run parses it: a web page is told by the parser ("not a feed: HTML
        page"), never by its Content-Type or a ``<html`` somewhere in its text."""
        from aggregator.source import read_feed

        try:
            if fetched is None:
                fetched = await self._get(candidate.url)
            document = await asyncio.to_thread(
                read_feed,
                fetched.body,
                url=fetched.url,
                name=candidate.url,
                sandbox=self.sandbox,
                content_type=fetched.content_type,
                max_entries=self.max_entries,
            )
        except SourceError as error:
            return replace(candidate, error=error.message)
        return replace(
            candidate,
            # A permanent redirect's target is the feed's address from now on.
            url=fetched.moved_to or candidate.url,
            title=document.title or None,
            entries=len(document.entries),
        )

    async def discover(self, url: str) -> Discovery:
        """The feeds of the page (or the feed) at ``url``. FetchError when it cannot be
        fetched at all."""
        fetched = await self._get(url)
        itself = await self.check(Candidate(url, "the address itself"), fetched)
        if itself.ok or _looks_like_feed(fetched):
            return Discovery(url, fetched.url, True, (itself,))
        links = feed_links(fetched.body, fetched.url)
        if links:
            candidates = [
                Candidate(link, "<link rel=alternate>", kind, title) for link, kind, title in links
            ]
            results = await asyncio.gather(*(self.check(c) for c in candidates))
            return Discovery(url, fetched.url, False, tuple(results))
        tried: list[Candidate] = []
        parts = urlsplit(fetched.url)
        for path in FALLBACKS:
            candidate = Candidate(f"{parts.scheme}://{parts.netloc}{path}", f"fallback {path}")
            try:
                answer = await self._get(candidate.url)
            except FetchError as error:
                if error.timed_out and path != FALLBACKS[-1]:
                    # The site does not answer: each other guess would wait as long
                    # (found by review: seven timeouts in a row, 2 minutes 21 s).
                    note = f"{error.message}; the other usual addresses were not asked"
                    tried.append(replace(candidate, error=note))
                    break
                tried.append(replace(candidate, error=error.message))
                continue
            checked = await self.check(candidate, answer)
            tried.append(checked)
            if checked.ok:
                break
        return Discovery(url, fetched.url, False, tuple(tried))


def discover(
    url: str,
    sandbox: Sandbox,
    *,
    limits: Limits | None = None,
    user_agent: str | None = None,
    max_entries: int = 1000,
) -> Discovery:
    """:meth:`Discoverer.discover`, for callers without an event loop."""

    async def run() -> Discovery:
        async with Discoverer(sandbox, limits, user_agent, max_entries) as discoverer:
            return await discoverer.discover(url)

    return asyncio.run(run())
