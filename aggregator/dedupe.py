"""One entry per story: deciding when two items tell the same story, and merging them.

Policy. Two items are the same story when

* their titles are equal after normalisation: Unicode NFKC, case folded, curly
  and straight quotes and dashes folded, whitespace collapsed, an announcer
  prefix such as "Video: " removed; and
* their dates fall on the same calendar day in the news's time zone (NATO:
  Europe/Brussels). A day-precision date matches an exact instant on that day.
  When at least one side is day-precision, a one-day difference still matches:
  a page that prints only the day may have printed it in another time zone.
  Two exact instants get no such tolerance: their days are known; and they must be
  within :data:`SAME_STORY_WITHIN` of each other (a time a source wrote in the wrong
  zone is an hour or two off; "Press briefing" at 08:00 and at 16:00 are two
  briefings: found by review, merged into one). A source that moves the time of the
  very item it told a story with tells the same story (:func:`close_enough`; what
  makes it the very item: aggregator.store.plan's ``_own_item``).
* An undated item matches only an undated entry of the same title.

A false merge (two stories shown as one) is worse than a missed one (one story
shown twice), so nothing looser is matched: no fuzzy titles, no wider windows.

* An item whose title matches no story is still the story its source told
  before under the same item id (RSS guid, Atom id), when the dates match as
  above: a corrected headline (aggregator.store.plan), which the story then takes.
* Two items a source gives different item ids in one run are two stories,
  whatever their titles and dates: the source tells them apart ("Press briefing"
  at 08:00 and at 16:00). The second then gets an id of its own
  (:func:`distinct_entry_id`). Items without ids are told apart the same way by
  their links (or places in a saved page), when their days differ.

Merging keeps the richest fields: the longest summary and HTML content, a link
when any source has one, the most precise date, every category, every enclosure
(one per URL, those of the first source first), and every source. The id stays
the one the story was first seen with, so a feed reader never sees the entry
change identity; so does the title, unless its source corrects it. A story only
one source told is as that source last told it: its edit of the item (a mended
link, a corrected time or summary) is the story's (:func:`retold`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo

from aggregator.model import Enclosure, Entry, Precision, Published, SourceEntry
from aggregator.text import title_key


def local_day(published: Published | None, zone: tzinfo) -> date | None:
    """The calendar day a date falls on in ``zone``; a day-precision date is its own day."""
    if published is None:
        return None
    if published.instant is None:
        return published.day
    return published.instant.astimezone(zone).date()


# How far apart two exact times of one story may be (see the module's policy).
SAME_STORY_WITHIN = timedelta(hours=3)


def matches(a: Published | None, b: Published | None, zone: tzinfo) -> bool:
    """Whether two dates allow two equal titles to be one story (see the module's policy;
    of two sources, :func:`close_enough` too)."""
    if a is None or b is None:
        return a is None and b is None
    day_a, day_b = local_day(a, zone), local_day(b, zone)
    assert day_a is not None and day_b is not None
    apart = abs((day_a - day_b).days)
    if apart == 0:
        return True
    return apart == 1 and Precision.DAY in (a.precision, b.precision)


def close_enough(story: Entry, item: SourceEntry, own: bool = False) -> bool:
    """Whether ``item``'s time allows it to tell ``story`` (whose date :func:`matches`
    its): two exact times must be within :data:`SAME_STORY_WITHIN`, unless the item is
    the very item the story was told with (``own``: see aggregator.store.plan's ``_own_item``),
    whose time its source moved (found by review: re-dated from 08:00 to 12:30, it
    became a second story; and any item of that source was too much: its morning and
    afternoon briefings were merged)."""
    a, b = story.published, item.published
    if own or a is None or b is None or a.instant is None or b.instant is None:
        return True
    return abs(a.instant - b.instant) <= SAME_STORY_WITHIN


def entry_id(authority: str, title: str, day: date | None) -> str:
    """A tag: URI (RFC 4151) for a story, from its first title and day; stored, never recomputed."""
    return key_entry_id(authority, title_key(title), day)


def key_entry_id(authority: str, key: str, day: date | None) -> str:
    """:func:`entry_id` from the title's :func:`~aggregator.text.title_key`, when known."""
    digest = hashlib.sha256(f"{key}\n{day or 'undated'}".encode()).hexdigest()[:20]
    return f"tag:{authority}:entry:{digest}"


def distinct_entry_id(authority: str, key: str, day: date | None, source: str, item_id: str) -> str:
    """The id of a story whose title and day are another story's, which its source told
    apart from it by the item's own id: the source and that id make it another."""
    text = f"{key}\n{day or 'undated'}\n{source}\n{item_id}"
    return f"tag:{authority}:entry:{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def _more_precise(kept: Published | None, new: Published | None) -> Published | None:
    if kept is None or new is None:
        return kept or new
    if kept.precision is Precision.DAY and new.precision is Precision.INSTANT:
        return new
    return kept


def new_entry(
    item: SourceEntry,
    *,
    authority: str,
    zone: tzinfo,
    now: datetime,
    key: str | None = None,
    distinct: bool = False,
) -> Entry:
    """A story first told by ``item`` (``key``: its title's title_key, if already known;
    ``distinct``: another story of the same title and day is there, which the item's
    source told apart from this one by the item's id (or link), see
    :func:`distinct_entry_id`)."""
    if key is None:
        key = title_key(item.title)
    day = local_day(item.published, zone)
    if distinct:  # by what the source tells the item apart by, if anything
        told_as = item.guid or item.link or ""
        story_id = distinct_entry_id(authority, key, day, item.source, told_as)
    else:
        story_id = key_entry_id(authority, key, day)
    return Entry(
        id=story_id,
        title=item.title,
        published=item.published,
        summary=item.summary,
        sources=(item.provenance,),
        first_seen=now,
        last_seen=now,
        link=item.link,
        author=item.author,
        categories=item.categories,
        content_html=item.content_html,
        enclosures=_enclosures((), item.enclosures) if item.enclosures else (),
    )


def _enclosures(kept: tuple[Enclosure, ...], new: tuple[Enclosure, ...]) -> tuple[Enclosure, ...]:
    """Every enclosure once per URL: those already kept first, as they were kept."""
    known = {e.url for e in kept}
    added = []
    for enclosure in new:
        if enclosure.url not in known:
            known.add(enclosure.url)
            added.append(enclosure)
    return (*kept, *added)


def merge_into(entry: Entry, item: SourceEntry, now: datetime) -> Entry:
    """``entry`` enriched by another telling of the same story."""
    sources = entry.sources
    if not any(p.source == item.provenance.source for p in sources):
        sources = (*sources, item.provenance)
    else:
        sources = tuple(item.provenance if p.source == item.source else p for p in sources)
    # The constructor, not dataclasses.replace (three times slower): every field is named.
    return Entry(
        id=entry.id,
        title=entry.title,
        published=_more_precise(entry.published, item.published),
        summary=max(entry.summary, item.summary, key=len),
        sources=sources,
        first_seen=entry.first_seen,
        last_seen=max(entry.last_seen, now),
        link=entry.link or item.link,
        author=entry.author or item.author,
        topics=entry.topics,
        categories=tuple(dict.fromkeys(entry.categories + item.categories)),
        content_html=max(entry.content_html or "", item.content_html or "", key=len) or None,
        enclosures=_enclosures(entry.enclosures, item.enclosures),
    )


def retold(entry: Entry, item: SourceEntry, now: datetime) -> Entry:
    """``entry``, which only ``item``'s source told, as that source now tells it: its
    edit of the item (a link mended, a time or a summary corrected) is the story's, not
    merged with what it wrote before (a shorter, corrected summary lost to the longer
    wrong one). The id, the first sighting and the topics stay; a link, a date, a
    summary, content, an author, categories or media the edit leaves out are kept, not
    lost."""
    return Entry(
        id=entry.id,
        title=item.title,
        published=item.published or entry.published,
        summary=item.summary or entry.summary,
        sources=tuple(item.provenance if p.source == item.source else p for p in entry.sources)
        or (item.provenance,),
        first_seen=entry.first_seen,
        last_seen=max(entry.last_seen, now),
        link=item.link or entry.link,
        author=item.author or entry.author,
        topics=entry.topics,
        categories=item.categories or entry.categories,
        content_html=item.content_html or entry.content_html,
        enclosures=_enclosures((), item.enclosures) if item.enclosures else entry.enclosures,
    )


def retitled(entry: Entry, title: str) -> Entry:
    """``entry`` under a corrected ``title`` (its id stays)."""
    return Entry(
        id=entry.id,
        title=title,
        published=entry.published,
        summary=entry.summary,
        sources=entry.sources,
        first_seen=entry.first_seen,
        last_seen=entry.last_seen,
        link=entry.link,
        author=entry.author,
        topics=entry.topics,
        categories=entry.categories,
        content_html=entry.content_html,
        enclosures=entry.enclosures,
    )


# How far in time a story dated by day alone is taken to be from an item of a known time.
UNKNOWN_GAP = timedelta(days=1)


def choose(
    candidates: Sequence[Entry],
    item: SourceEntry,
    zone: tzinfo,
    own: Callable[[Entry], bool] | None = None,
) -> Entry | None:
    """The stored entry (same title key) that ``item`` tells again, if any: the closest
    day, then, when both have a time of day, the closest time (a third source's 16:00
    "Press briefing" is the afternoon's, not whichever was seen first: found by review),
    then the first seen. (``own``: whether a story is the one the item's source told
    with this very item: :func:`close_enough`.)"""
    fitting = [
        c
        for c in candidates
        if matches(c.published, item.published, zone)
        and close_enough(c, item, own is not None and own(c))
    ]
    if not fitting:
        return None
    day = local_day(item.published, zone)
    when = item.published.instant if item.published is not None else None

    def distance(entry: Entry) -> tuple[int, timedelta, datetime]:
        other = local_day(entry.published, zone)
        apart = abs((other - day).days) if other is not None and day is not None else 0
        instant = entry.published.instant if entry.published is not None else None
        if when is None:  # the item gives no time: no story is closer than another
            gap = timedelta(0)
        elif instant is None:  # a story of a day only is after those of a known time
            gap = UNKNOWN_GAP  # (found by review: it took an 08:05 item from 08:00's)
        else:
            gap = abs(instant - when)
        return apart, gap, entry.first_seen

    return min(fitting, key=distance)


def merge(
    items: Iterable[SourceEntry], *, authority: str, zone: tzinfo, now: datetime
) -> list[Entry]:
    """Items merged into stories in memory, in the order stories are first seen."""
    by_title: dict[str, list[Entry]] = {}
    order: list[str] = []
    stories: dict[str, Entry] = {}
    for item in items:
        candidates = [stories[i.id] for i in by_title.get(title_key(item.title), [])]
        found = choose(candidates, item, zone)
        if found is None:
            entry = new_entry(item, authority=authority, zone=zone, now=now)
            by_title.setdefault(title_key(item.title), []).append(entry)
            order.append(entry.id)
        else:
            entry = merge_into(found, item, now)
        stories[entry.id] = entry
    return [stories[i] for i in order]
