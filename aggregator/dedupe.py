"""One entry per story: merging the same story read from several sources.

Policy. Two source entries are the same story when their titles are the same
after normalisation (Unicode NFKC, case folded, curly and straight quotes and
dashes folded, whitespace collapsed, an announcer prefix such as "Video: "
removed) and they fall on the same calendar day; an undated entry only matches
an undated entry of the same title. A false merge (two stories shown as one)
is worse than a missed one, so nothing looser is matched.

Merging keeps the richest fields: the longest summary and HTML content, a link
when any source has one, the most precise date, every category, and every
source in the order first seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime

from aggregator.model import Entry, Precision, Published, SourceEntry
from aggregator.text import title_key


def story_key(title: str, published: Published | None) -> tuple[str, date | None]:
    return title_key(title), None if published is None else published.day


def entry_id(authority: str, key: tuple[str, date | None]) -> str:
    """A tag: URI (RFC 4151) that names the story for good."""
    title, day = key
    digest = hashlib.sha256(f"{title}\n{day or 'undated'}".encode()).hexdigest()[:20]
    return f"tag:{authority}:entry:{digest}"


def _better_date(a: Published | None, b: Published | None) -> Published | None:
    if a is None or b is None:
        return a or b
    if a.precision is Precision.DAY and b.precision is Precision.INSTANT:
        return b
    return a


def merge(entries: Iterable[SourceEntry], *, authority: str, now: datetime) -> list[Entry]:
    """Source entries merged into stories, in the order stories are first seen."""
    stories: dict[tuple[str, date | None], Entry] = {}
    for item in entries:
        key = story_key(item.title, item.published)
        found = stories.get(key)
        if found is None:
            stories[key] = Entry(
                id=entry_id(authority, key),
                title=item.title,
                published=item.published,
                summary=item.summary,
                sources=(item.provenance,),
                first_seen=now,
                link=item.link,
                author=item.author,
                categories=item.categories,
                content_html=item.content_html,
            )
            continue
        stories[key] = Entry(
            id=found.id,
            title=found.title,
            published=_better_date(found.published, item.published),
            summary=max(found.summary, item.summary, key=len),
            sources=(*found.sources, item.provenance),
            first_seen=found.first_seen,
            link=found.link or item.link,
            author=found.author or item.author,
            categories=tuple(dict.fromkeys(found.categories + item.categories)),
            content_html=max(found.content_html or "", item.content_html or "", key=len) or None,
        )
    return list(stories.values())
