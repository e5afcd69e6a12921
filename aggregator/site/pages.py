"""The site's HTML pages, from entries to bytes with Jinja2 (autoescaping on). Pure.

Every link between pages is relative (``root`` is the way from a page to the feeds
directory), so the pages work wherever the directory is served: by any web server
after ``aggregator run``, or by ``aggregator serve`` under ``/feeds/``. Only the
addresses a person copies into a feed reader are absolute (``base_url``).

No clock: a page changes only when what it shows changes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path, PurePath
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from aggregator.model import Enclosure, Entry, Provenance, Published
from aggregator.records import record
from aggregator.render import FeedSpec, entry_page
from aggregator.site import outputs
from aggregator.text import SANITISED_TAG

if TYPE_CHECKING:
    from datetime import tzinfo

    import jinja2

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@record
class Site:
    """What the pages say about the whole site."""

    title: str
    description: str
    base_url: str  # where the feeds directory is served, ending in "/"
    topic_titles: Mapping[str, str] | None = None  # slug → the topic's own title
    # The news's time zone ([feeds] timezone), whose days the pages show times in: as
    # dedupe counts days (None: each time in the offset its source wrote it with).
    zone: tzinfo | None = None

    def heading(self, spec: FeedSpec) -> str:
        """A feed's heading on the pages: the topic's title, never the site's again."""
        if spec.slug == "all":
            return "All stories"
        return (self.topic_titles or {}).get(spec.slug, spec.title)


@record
class Feed:
    """One feed as the pages show it."""

    slug: str
    heading: str
    title: str
    description: str
    page: str  # relative to the feeds directory
    links: tuple[tuple[str, str, str, str], ...]  # (label, file, absolute URL, media type)
    entries: tuple[Entry, ...]


def shown_date(published: Published, zone: tzinfo | None = None) -> str:
    """A date as precise as the source gave it: '12 October 2023', plus a time if given,
    in ``zone`` when given ('5 October 2023, 00:30 CEST'): the days of a list of stories
    newest first then run in order (found by review: each in its source's offset, a
    day went back and forth)."""
    instant = published.instant
    if instant is not None and zone is not None:
        instant = instant.astimezone(zone)
    day = published.day if instant is None else instant.date()
    text = f"{day.day} {MONTHS[day.month - 1]} {day.year}"
    if instant is None:
        return text
    name = instant.tzname() if zone is not None else None
    if name and name.isalpha():  # "CEST", "UTC"; not "+0545", as some zones are named
        return f"{text}, {instant:%H:%M} {name}"
    offset = instant.utcoffset()
    label = "UTC"
    if offset:
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes > 0 else "-"
        hours, rest = divmod(abs(minutes), 60)
        label = f"UTC{sign}{hours:02d}:{rest:02d}"
    return f"{text}, {instant:%H:%M} {label}"


def paragraphs(text: str) -> list[str]:
    return [part.strip() for part in PARAGRAPH_BREAK.split(text) if part.strip()]


def _web(url: str | None) -> str | None:
    return url if url is not None and url.startswith(("http://", "https://")) else None


def source_link(provenance: Provenance) -> str | None:
    """A source's own address a browser can open: the feed's URL, or the web page a
    saved page was saved from (``page_url``, where the config names it), without a user
    name and password (found by review: a feed's password was on its stories' pages)."""
    from aggregator.uri import without_credentials

    link = _web(getattr(provenance, "page_url", None)) or _web(provenance.location)
    return None if link is None else without_credentials(link)


# What a media file is, by the first part of its MIME type, for people.
_MEDIA_KINDS = {"audio": "audio", "video": "video", "image": "image", "text": "text"}


def media_name(enclosure: Enclosure) -> str:
    """A media file's name as people know it: the last part of its address, decoded
    (``episode%2012.mp3`` is "episode 12.mp3"), or the address when it names no file."""
    path = urlsplit(enclosure.url).path
    name = unquote(path.rsplit("/", 1)[-1]) if path else ""
    return name.strip() or enclosure.url


def media_about(enclosure: Enclosure) -> str:
    """What the source said of a media file: its kind, format and size ("audio, MPEG,
    12.4 MB"), as far as it said; nothing is guessed."""
    parts = []
    if enclosure.type:
        main, _, sub = enclosure.type.partition("/")
        kind = _MEDIA_KINDS.get(main.lower())
        if kind is not None:
            parts.append(kind)
        if sub:
            parts.append(sub.split(";")[0].strip().removeprefix("x-").upper())
        elif kind is None:
            parts.append(enclosure.type)
    if enclosure.length:
        parts.append(_size(enclosure.length))
    return ", ".join(parts)


def _size(length: int) -> str:
    if length < 1000:
        return f"{length} bytes"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if length < scale * 1000 or unit == "GB":
            return f"{length / scale:.1f} {unit}"
    raise AssertionError("unreachable")


def source_place(provenance: Provenance) -> str:
    """Where a local file was read, for people: a saved page's file name and line, a
    feed file's name ('' for a URL)."""
    if _web(provenance.location):
        return ""
    # Only the file's name: where the aggregator keeps its files is nobody's business.
    name = PurePath(provenance.location).name
    if provenance.line is None:  # (a saved page's every story has its line)
        return f"feed file {name}"
    return f"saved page {name}, line {provenance.line}"


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs, in the user's cache directory
    (``$XDG_CACHE_HOME/aggregator/templates``): a cron run is a new process, and
    compiling the templates cost about 0.1 s of every run that renders a page. Jinja2
    checks each one against its template's source. None when the directory cannot be
    made; a cache that cannot be read or written is passed over, never an error."""
    import os

    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):
                super().load_bytecode(bucket)

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    try:
        base = Path(os.environ.get("XDG_CACHE_HOME", ""))
        if not base.is_absolute():  # unset, or relative: ignored (XDG Base Directory)
            base = Path("~/.cache").expanduser()
        directory = base / "aggregator" / "templates"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home directory to expand
        return None
    return QuietCache(str(directory))


@cache
def environment() -> jinja2.Environment:
    import jinja2  # lazily: a run with nothing new renders nothing

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("aggregator.site", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        bytecode_cache=_bytecode_cache(),
        # The templates ship with the package and do not change while it runs: without
        # this, every page rendered (and every "extends") checked its template's file on
        # disk again, a quarter of the time of rendering an entry's page.
        auto_reload=False,
    )
    env.globals.update(
        entry_page=entry_page,
        shown_date=shown_date,
        paragraphs=paragraphs,
        source_link=source_link,
        source_place=source_place,
        media_name=media_name,
        media_about=media_about,
        stylesheet=outputs.STYLESHEET,
        index=outputs.INDEX,
        opml=outputs.OPML,
    )
    return env


def _render(template: str, **context: object) -> bytes:
    return environment().get_template(template).render(**context).encode()


def feeds(
    site: Site, specs: Sequence[FeedSpec], latest: Mapping[str, Sequence[Entry]]
) -> list[Feed]:
    result = []
    for spec in specs:
        links = tuple(
            (label.split()[0], f"{spec.slug}.{extension}", spec.url(extension), media_type)
            for extension, (media_type, label) in outputs.FEED_FORMATS.items()
        )
        result.append(
            Feed(
                slug=spec.slug,
                heading=site.heading(spec),
                title=spec.title,
                description=spec.description,
                page=outputs.topic_page(spec.slug),
                links=links,
                entries=tuple(latest.get(spec.slug, ())),
            )
        )
    return result


def render_index(site: Site, feeds: Sequence[Feed], latest_count: int) -> bytes:
    return _render("index.html", site=site, feeds=feeds, latest_count=latest_count, root="")


def render_topic(site: Site, feed: Feed) -> bytes:
    return _render("topic.html", site=site, feed=feed, root="")


# A heading's start or end tag as the sanitiser writes it: its attributes (dir, lang)
# follow the name after a space.
_HEADING = re.compile(r"<(/?)h([1-6])((?:\s[^>]*)?)>", re.DOTALL)


def _lowered(tag: re.Match[str]) -> str:
    heading = _HEADING.fullmatch(tag[0])
    if heading is None:
        return tag[0]
    return f"<{heading[1]}h{min(int(heading[2]) + 2, 6)}{heading[3]}>"


def _below_the_page(html: str) -> str:
    """A story's sanitised markup with its headings two levels down: the page's own
    heading is its h1 and its sections' are h2, so the story's "h1" is an h3 there.
    Tags are found whole (aggregator.text.SANITISED_TAG): an attribute's value that
    reads "<h1>" is text, and stays as it is."""
    return SANITISED_TAG.sub(_lowered, html) if "<h" in html else html


def render_entry(site: Site, entry: Entry, topics: Mapping[str, Feed]) -> bytes:
    from markupsafe import Markup

    shown = [topics[slug] for slug in entry.topics if slug in topics]
    # Sanitised on input (aggregator.live.clean).
    content = Markup(_below_the_page(entry.content_html)) if entry.content_html else None
    return _render("entry.html", site=site, entry=entry, topics=shown, content=content, root="../")


def render_search(
    site: Site,
    query: str,
    results: Sequence[Entry],
    *,
    limit: int,
    note: str = "",
    after: str | None = None,
    following: str | None = None,
) -> bytes:
    """The search page ``aggregator serve`` answers at ``/search`` (beside ``/feeds/``):
    ``results``, newest first; ``after``: these went on from an earlier page;
    ``following``: older stories may match too, and the next page reads on from there
    (aggregator.site.search.Page)."""
    return _render(
        "search.html",
        site=site,
        query=query,
        results=results,
        limit=limit,
        note=note,
        after=after,
        following=following,
        root="feeds/",
    )


def render_not_found(site: Site, *, root: str, search: str) -> bytes:
    """The page of a 404 that ``aggregator serve`` sends a browser (``search``: the way
    to the search page)."""
    return _render("notfound.html", site=site, root=root, search=search)


def unique_entries(feeds: Iterable[Feed]) -> list[Entry]:
    """Every entry shown in any feed, once."""
    seen: dict[str, Entry] = {}
    for feed in feeds:
        for entry in feed.entries:
            seen.setdefault(entry.id, entry)
    return list(seen.values())
