"""News feed pages that date items by age: title, "2 weeks 3 days ago", summary.

Example (seeds/004_…)::

    Partners discuss strengthened cooperation in light of new Strategic Concept

    2 weeks 3 days ago
    On 9 November 2022, representatives from over 30 Partner Nations attended …

    …
    this carrier sends a powerful message of Allied deterrence every day.”
    1 hour 8 minutes ago                          (a stray age: footer, no title)
    What´s new at NATO Headquarters?              (footer)
    Subscribe to NATO News feed                   (footer)

Ages count back from the moment the page was saved (its capture time). That comes
from config.toml (``captured = 2022-11-26``) or ``--captured``; failing both it is
inferred from items that print their own date beside a to-the-day age, and logged
as inferred. With none of these the page is an error for its source: an age with
nothing to count back from is not a date.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from aggregator.dates import Age, first_date_in, parse_age
from aggregator.errors import CaptureTimeError
from aggregator.model import Published, SourceEntry
from aggregator.snapshots.page import Captured, Line, Page

log = logging.getLogger("aggregator")

# "said today (8 November 2022)": the item was published on the day it names. Bounded,
# so a summary of "today (today (today (…" without a ")" is not scanned to its end at
# every "today (".
TODAY = re.compile(r"\btoday \((?P<date>[^)]{1,40})\)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Item:
    title: Line
    age: Age
    summary: list[Line]


@dataclass(frozen=True, slots=True)
class NewsfeedLayout:
    name: str = "newsfeed"
    looks_like: str = 'titles each followed by an age line such as "2 weeks 3 days ago"'

    def sniff(self, page: Page) -> int:
        return 8 * len(self._items(page))

    def read(self, page: Page) -> list[SourceEntry]:
        items = self._items(page)
        if not items:
            return []
        captured = page.captured or self._infer_capture(page, items)
        entries = []
        for item in items:
            summary = " ".join(line.text for line in item.summary)
            entries.append(
                page.entry(
                    item.title,
                    title=item.title.text,
                    published=resolve_age(item.age, captured, summary),
                    summary=summary,
                )
            )
        return entries

    @staticmethod
    def _items(page: Page) -> list[_Item]:
        lines = page.lines
        # Each line's age, read once: the walk below asks about most lines three times.
        ages = [parse_age(line.text) if line.text else None for line in lines]
        content = [i for i, line in enumerate(lines) if line.text]
        items: list[_Item] = []
        previous_age: int | None = None  # index into lines
        for position, index in enumerate(content):
            age = ages[index]
            if age is None:
                continue
            title_index = content[position - 1] if position > 0 else None
            stray = title_index is None or (
                # The line above is the first line of the previous item's summary, so this
                # age has no title of its own: page chrome ("1 hour 8 minutes ago").
                previous_age is not None and title_index == previous_age + 1
            )
            previous_age = index
            if stray or title_index is None or ages[title_index] is not None:
                continue
            if items and items[-1].summary and items[-1].summary[-1] is lines[title_index]:
                items[-1].summary.pop()  # no blank line between that summary and this title
            summary: list[Line] = []
            # Indexes, not a slice of the rest of the page per item (quadratic on a long page).
            following = index + 1
            while following < len(lines) and lines[following].text and ages[following] is None:
                summary.append(lines[following])
                following += 1
            items.append(_Item(lines[title_index], age, summary))
        return items

    @staticmethod
    def _infer_capture(page: Page, items: list[_Item]) -> date:
        """The capture day most items agree on: their own date plus their age."""
        said_today: list[date] = []
        dated: list[date] = []
        for item in items:
            if not item.age.to_the_day:
                continue
            summary = " ".join(line.text for line in item.summary)
            today = TODAY.search(summary)
            own = first_date_in(today["date"]) if today else None
            if own is not None:
                said_today.append(own + timedelta(days=item.age.least.days))
            own = own or first_date_in(summary)
            if own is not None:
                dated.append(own + timedelta(days=item.age.least.days))
        candidates = said_today or dated
        if not candidates:
            raise CaptureTimeError(
                page.source,
                page.location,
                'the page dates items by age ("2 weeks ago") but its capture time is unknown '
                "and the page prints no dates to infer it from; set captured = YYYY-MM-DD for "
                "this source in config.toml or pass --captured",
            )
        counts = Counter(candidates)
        best = max(counts, key=lambda day: (counts[day], day))
        log.info(
            "%s: capture time inferred as %s from %d of the page's own dates "
            "(%d agree); set captured in config.toml or pass --captured to override",
            page.where(),
            best,
            len(candidates),
            counts[best],
        )
        return best


def resolve_age(age: Age, captured: Captured, summary: str = "") -> Published:
    """The publication date an age stands for, counted back from ``captured``.

    An age to the minute ("3 hours 27 minutes") against an exact capture instant
    gives an instant.
    Otherwise it gives a day: the latest day the age allows, unless the age is
    coarse ("1 month ago" spans a week) and the summary names a day inside that
    span, which is then taken as the more precise reading.
    """
    one_day = timedelta(days=1)
    if isinstance(captured, datetime):
        if age.to_the_minute:
            return Published.at(captured - age.least)
        latest = (captured - age.least).date()
        earliest = (captured - age.least - age.slack).date() + one_day
    else:
        latest = captured - timedelta(days=age.least.days)
        earliest = captured - timedelta(days=(age.least + age.slack).days) + one_day
    if age.to_the_day:
        return Published.on_day(latest)
    named = first_date_in(summary, latest)
    if named is not None and earliest <= named <= latest:
        return Published.on_day(named)
    return Published.on_day(latest)


NEWSFEED = NewsfeedLayout()
