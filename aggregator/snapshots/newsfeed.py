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
from aggregator.snapshots.page import Captured, Line, Page, looks_like_prose

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
    ignored: Line | None = None  # text after the summary, before the next item


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
            if item.ignored is not None:
                text = item.ignored.text
                page.warn(item.ignored, f"text after a summary ignored: {text[:60]!r}")
            summary = " ".join(line.text for line in item.summary)
            try:
                published: Published | None = resolve_age(item.age, captured, summary)
            except OverflowError:  # an age reaching before year 1 from a capture time given
                page.warn(item.title, f"age counted back from {captured} is before year 1; undated")
                published = None
            entries.append(
                page.entry(item.title, title=item.title.text, published=published, summary=summary)
            )
        return entries

    @staticmethod
    def _items(page: Page) -> list[_Item]:
        """Each title with its age (the line right under it) and the summary after it."""
        lines = page.lines
        # Each line's age, read once: the walk below asks about most lines three times.
        ages = [parse_age(line.text) if line.text else None for line in lines]
        content = [i for i, line in enumerate(lines) if line.text]
        pairs: list[tuple[int, int]] = []  # (title, age) as positions in content
        previous_age: int | None = None  # position in content
        # A page saved without blank lines cannot tell a summary from a headline that
        # ends a sentence by the blank line above it: there, no line is taken as prose.
        spaced = any(not _touching(content, p, p + 1) for p in range(len(content) - 1))
        aged = [position for position, index in enumerate(content) if ages[index] is not None]
        final = aged[-1] if aged else None
        for position, index in enumerate(content):
            if ages[index] is None:
                continue
            titled = position > 0 and ages[content[position - 1]] is None
            # Read as prose, the line above an age is the last summary only under the
            # page's last age (chrome such as "1 hour 8 minutes ago" closes the list);
            # above any other, it is a headline that ends a sentence.
            by_prose = spaced and position == final
            if titled and not _stray(lines, content, previous_age, position, by_prose=by_prose):
                pairs.append((position - 1, position))
            previous_age = position
        items = []
        for number, (title, age) in enumerate(pairs):
            # The summary runs to the next title, or the next age (a stray one: chrome).
            # The last item's ends with its first paragraph: what follows it on the page
            # is the page's own text (a footer, a notice), which no next title bounds.
            last = number + 1 == len(pairs)
            end = len(content) if last else pairs[number + 1][0]
            summary, ignored = _summary(lines, ages, content[age + 1 : end], more=not last)
            age_value = ages[content[age]]
            assert age_value is not None
            items.append(_Item(lines[content[title]], age_value, summary, ignored))
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
            raise CaptureTimeError(page.source, page.location, _no_capture_time(items))
        counts = Counter(candidates)
        best = max(counts, key=lambda day: (counts[day], day))
        log.info(
            "%s: capture time inferred as %s from %d of the page's own dates "
            "(%d agree); set captured for this source in config.toml (aggregator parse: "
            "--captured) to override",
            page.where(),
            best,
            len(candidates),
            counts[best],
        )
        return best


def _no_capture_time(items: list[_Item]) -> str:
    """Why the capture time cannot be inferred, and what to do, for any command.

    ``captured`` in config.toml serves ``run`` and ``serve``; ``--captured`` is an
    option of ``parse`` (``sources add`` says so in its own words). The adapter cannot
    tell which command reads the page, so the message names both.
    """
    prints_dates = any(
        first_date_in(" ".join(line.text for line in [item.title, *item.summary])) for item in items
    )
    why = (
        "no item that prints its own date has an age to the day ('2 weeks 3 days ago', "
        "not '1 month ago') to infer it from"
        if prints_dates
        else "the page prints no dates to infer it from"
    )
    return (
        f'the page dates items by age ("2 weeks ago") but its capture time is unknown and {why}; '
        "set captured = YYYY-MM-DD for this source in config.toml (aggregator parse: "
        "--captured YYYY-MM-DD)"
    )


def _stray(
    lines: tuple[Line, ...], content: list[int], previous: int | None, age: int, *, by_prose: bool
) -> bool:
    """Whether the line above the age at ``age`` (positions in ``content``) is the summary
    of the item before, not a title: the age is page chrome ("1 hour 8 minutes ago" under
    the last summary).

    That line is then in the first paragraph after the previous age, and either right
    under that age (no blank line between), or reads as prose right above this one
    (headlines never end a sentence). So a headline-only item ("title, age, blank line,
    title, age") stays an item.
    """
    if previous is None:
        return False
    above = age - 1
    if any(not _touching(content, p, p + 1) for p in range(previous + 1, above)):
        return False  # a blank line between the previous age's text and this line
    if above == previous + 1 and _touching(content, previous, above):
        return True
    return (
        by_prose and _touching(content, above, age) and looks_like_prose(lines[content[above]].text)
    )


def _touching(content: list[int], first: int, second: int) -> bool:
    """Whether two lines, by position in ``content``, have no blank line between them."""
    return content[second] == content[first] + 1


def _summary(
    lines: tuple[Line, ...], ages: list[Age | None], indexes: list[int], *, more: bool = True
) -> tuple[list[Line], Line | None]:
    """The lines after an age (``indexes``, up to the next title) that are its summary:
    the first paragraph (after a blank line or not), then, with ``more``, each further
    paragraph that reads as prose; not a stray age or what follows it (chrome). Also the
    first line of other text ignored there, for a warning."""
    summary: list[Line] = []
    for count, index in enumerate(indexes):
        line = lines[index]
        if ages[index] is not None:
            break  # a stray age: chrome, and whatever follows it
        new_paragraph = count > 0 and index != indexes[count - 1] + 1
        if new_paragraph and not (more and looks_like_prose(line.text)):
            return summary, line
        summary.append(line)
    return summary, None


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
