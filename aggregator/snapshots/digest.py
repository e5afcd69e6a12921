"""News digests: headline bullets, a date, then items, some printed with their title twice.

Example (seeds/002_…)::

    • Secretary General at NATO-Industry Forum: without industry there is no defence
    • Video: NATO Allies train together with partner Moldova

    27 October 2023

    NATO steps up Baltic Sea patrols after subsea infrastructure damage      (headline only)

    Secretary General meets Prime Minister of Moldova and reaffirms …       (title, printed twice)

    Secretary General meets Prime Minister of Moldova and reaffirms …

    NATO Secretary General Jens Stoltenberg welcomed … on 26 October 2023. (summary)

    Read more
    …
    NATO Review                                                               (section heading)
    Protecting our critical satellite infrastructure
    Protecting our critical satellite infrastructure
    David Eagleson                                                            (author line)

The bullets announce items further down and fold into them (an announcer prefix such
as "Video: " is not part of the title, in a bullet or an item). An item's date is the
first date in its summary, a year-less one taking the digest's year, when that date
falls within the fortnight the digest covers (:data:`COVERS`, up to its own date): a
summary's date outside it is what the story is about (an exercise held in September,
one starting next Monday), not when the page told it, and the item carries the
digest's date, as an item that prints no date of its own does (a headline, a NATO
Review article). Titles that end the page under a section heading ("NATO Review"),
each printed once with nothing under any, are links to elsewhere (the section's other
articles), not items of the digest.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from aggregator.dates import first_date_in, parse_day
from aggregator.model import Published, SourceEntry
from aggregator.snapshots.page import Line, Page, looks_like_prose
from aggregator.text import ANNOUNCER, title_key

# "• Secretary General at NATO-Industry Forum: …"
BULLET = re.compile(r"^[•▪◦‣]\s*(?P<text>.+)$")
# "Read more", "Watch Video", "Read the speech": the link that closes an item.
MORE = re.compile(
    r"^(?:Read more|Read the (?:full )?(?:article|speech|statement|story|interview|transcript|"
    r"text|declaration|communiqu[eé]|press release|news release|report)|"
    r"Watch (?:the )?video|Listen|View (?:the )?gallery|More)$",
    re.IGNORECASE,
)
# "Friday, 27 October 2023": a weekday before the digest's date.
WEEKDAY = re.compile(
    r"^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday),?\s+", re.IGNORECASE
)
# Headings of the page's sections; never items.
SECTIONS = frozenset(
    s.casefold()
    for s in ("NATO Review", "Latest news", "News", "Videos", "Photos", "Multimedia", "Events")
)
# How far back from its own date a digest's items go: a date in a summary before that, or
# after the digest's date, is the date of what the story is about.
COVERS = timedelta(days=14)
# "David Eagleson", "Jamie Shea", "Anna Wieslander-Smith": a byline under a NATO Review title.
AUTHOR = re.compile(r"^(?:[A-Z][\w'’.-]*\.?)(?: (?:[A-Z][\w'’.-]*|van|von|de|da|di|der)){1,4}$")


@dataclass(slots=True)
class _Item:
    title: Line
    printed_twice: bool = False
    summary: list[Line] = field(default_factory=list)
    author: str | None = None
    closed: bool = False  # by its "Read more"


@dataclass(frozen=True, slots=True)
class DigestLayout:
    name: str = "digest"
    looks_like: str = 'headline bullets ("• …"), a digest date, items closed by "Read more"'

    def sniff(self, page: Page) -> int:
        lines = page.content()
        bullets = sum(1 for line in lines if BULLET.match(line.text))
        closers = sum(1 for line in lines if MORE.match(line.text))
        doubled = sum(1 for a, b in itertools.pairwise(lines) if a.text == b.text)
        if not (bullets or closers):
            return 0
        return 3 * bullets + 4 * closers + 2 * doubled

    def read(self, page: Page) -> list[SourceEntry]:
        lines = page.content()
        start = 0  # past the bullets and the date; not list.pop(0), quadratic on many bullets
        while start < len(lines) and BULLET.match(lines[start].text):
            start += 1
        headlines = lines[:start]
        digest_day: date | None = None
        if start < len(lines) and (digest_day := _digest_day(lines[start].text)) is not None:
            start += 1
        lines = lines[start:]
        reference = digest_day or page.reference_day()

        items = self._items(page, lines)
        seen = {title_key(item.title.text) for item in items}
        announced = []
        for line in headlines:
            match = BULLET.match(line.text)
            assert match is not None
            if title_key(match["text"]) not in seen:
                # Announced at the top but cut from the page: its headline is all there is.
                seen.add(title_key(match["text"]))
                announced.append(_Item(Line(line.number, ANNOUNCER.sub("", match["text"]))))

        entries = []
        for item in announced + items:
            summary = " ".join(line.text for line in item.summary)
            day = (
                first_date_in(summary, reference)
                or first_date_in(item.title.text, reference)
                or digest_day
            )
            if (
                digest_day is not None
                and day is not None
                and not (digest_day - COVERS <= day <= digest_day)
            ):
                day = digest_day  # (found by review: dated by an exercise in September)
            title = ANNOUNCER.sub("", item.title.text) or item.title.text
            entries.append(
                page.entry(
                    item.title,
                    title=title,
                    published=None if day is None else Published.on_day(day),
                    summary=summary,
                    author=item.author,
                )
            )
        return entries

    def _items(self, page: Page, lines: list[Line]) -> list[_Item]:
        """Walk the body: a title (perhaps twice), then a summary, author or closer."""
        items: list[_Item] = []
        keys: set[str] = set()
        section: str | None = None
        index = 0
        while index < len(lines):
            line = lines[index]
            text = line.text
            nxt = lines[index + 1].text if index + 1 < len(lines) else None
            index += 1
            if MORE.match(text):
                if items:
                    items[-1].closed = True
                continue
            if BULLET.match(text):
                continue
            if text.casefold() in SECTIONS:
                section = text
                continue
            if items and self._belongs_to_last(items[-1], line, nxt, section):
                continue
            twice = nxt is not None and title_key(nxt) == title_key(text)
            if twice:
                index += 1
            elif nxt is not None and looks_like_prose(nxt) and looks_like_prose(text):
                page.warn(line, "summary with no title above it; skipped")
                continue
            elif section is not None and _links_to_the_end(lines, index - 1):
                # The page ends with titles printed once under a section's heading,
                # nothing under any: links to the section's other articles (found by
                # review: published as stories of the digest's day).
                for link in lines[index - 1 :]:
                    page.note(link, f"link {link.text[:60]!r} under {section!r}; skipped")
                break
            if title_key(text) in keys:
                page.warn(line, f"headline {text[:60]!r} printed again; kept once")
                continue
            keys.add(title_key(text))
            items.append(_Item(line, printed_twice=twice))
        return items

    @staticmethod
    def _belongs_to_last(item: _Item, line: Line, nxt: str | None, section: str | None) -> bool:
        """Whether ``line`` is the summary or byline of the item just read (and take it)."""
        if item.closed or item.author:
            return False
        if item.summary:
            # A further paragraph of prose, until the closer or a title printed twice.
            if looks_like_prose(line.text) and (
                nxt is None or title_key(nxt) != title_key(line.text)
            ):
                item.summary.append(line)
                return True
            return False
        # A byline sits under a title printed twice, in a section such as "NATO Review".
        if section is not None and item.printed_twice and AUTHOR.match(line.text):
            item.author = line.text
            return True
        # A summary is prose, or whatever a "Read more" closes.
        if looks_like_prose(line.text) or (nxt is not None and MORE.match(nxt)):
            item.summary.append(line)
            return True
        return False


def _links_to_the_end(lines: list[Line], start: int) -> bool:
    """Whether ``lines`` from ``start`` to the page's end are titles printed once with
    nothing under any: no summary, closer, byline or bullet, none printed twice."""
    rest = lines[start:]
    if any(
        looks_like_prose(line.text)
        or MORE.match(line.text)
        or BULLET.match(line.text)
        or (AUTHOR.match(line.text) and len(line.text.split()) <= 4)  # a byline: articles
        or line.text.casefold() in SECTIONS
        for line in rest
    ):
        return False
    return all(title_key(a.text) != title_key(b.text) for a, b in itertools.pairwise(rest))


def _digest_day(text: str) -> date | None:
    """The digest's date: "27 October 2023", or "Friday, 27 October 2023"."""
    return parse_day(WEEKDAY.sub("", text, count=1))


DIGEST = DigestLayout()
