"""Topic listing pages: a counter, then dated blocks with an image line.

Example (seeds/000_…)::

    60 Entries

    14 Jun. 2024 240614d-009.jpg - Press conference by the NATO Secretary General, 100.97KB

    NATO Defence Ministers agree plan to lead coordination of security assistance …

    NATO Defence Ministers concluded a two-day meeting on Friday (14 June 2024) …
    23 May. 2024 240523-logistics-com.jpg, 59.20KB
    …
    Back To Top

The date on the image line is the entry's date. The caption after " - " is optional
and may hold commas and " - " itself; a summary may run straight into the next
date line. The image, its caption and size are chrome, not part of the entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aggregator.dates import MONTHS, parse_day
from aggregator.model import Published, SourceEntry
from aggregator.snapshots.page import Line, Page

_MONTH = "(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"

# "14 Jun. 2024 240614d-009.jpg - Press conference …, 100.97KB",
# "12 Dec. 2023 231213-DIPB.JPG - Inaugural meeting …, 107.70KB"; an item without a
# picture prints its date alone ("12 Jun. 2024"), and the size may be missing
# ("10 Jun. 2024 240610.jpg"). Missed, such a line ran the next stories into a summary.
DATE_LINE = re.compile(
    rf"^(?P<date>\d{{1,2}} {_MONTH} \d{{4}})(?: "
    r"(?P<image>\S+?\.(?i:jpe?g|png|gif|webp|tiff?|bmp|svg|avif))"
    r"(?: - (?P<caption>.*?))?(?:, (?P<size>[\d.,]+) ?(?i:[KMG]i?B))?)?$"
)
# "60 Entries", "1,181 Entries"
COUNTER = re.compile(r"^(?P<count>\d[\d,.]{0,15}) Entr(?:y|ies)$", re.IGNORECASE)
# How many items a NATO listing shows a page (both saved listings show 10): a counter
# of more counts the pages not saved, so only a smaller one is checked against the items.
PAGE_SIZE = 10
# The link that closes the list.
END = re.compile(r"^Back To Top$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Block:
    date_line: Line
    body: list[Line]


@dataclass(frozen=True, slots=True)
class ListingLayout:
    name: str = "listing"
    looks_like: str = 'dated image lines such as "14 Jun. 2024 photo.jpg, 100.97KB"'

    def sniff(self, page: Page) -> int:
        # Lines with a picture: a date alone is also a digest's date line.
        dated = sum(
            1
            for line in page.content()
            if (match := DATE_LINE.match(line.text)) and match["image"] is not None
        )
        return 10 * dated

    def read(self, page: Page) -> list[SourceEntry]:
        counter, blocks = self._blocks(page)
        entries = []
        for block in blocks:
            entry = self._entry(page, block)
            if entry is not None:
                entries.append(entry)
        if counter is not None:
            self._check_count(page, counter, len(blocks))
        return entries

    def _blocks(self, page: Page) -> tuple[Line | None, list[_Block]]:
        """The counter's line ("60 Entries"), if any, and the dated blocks."""
        counter: Line | None = None
        found: list[_Block] = []
        for line in page.content():
            if END.match(line.text):
                break
            if DATE_LINE.match(line.text):
                found.append(_Block(line, []))
            elif found:
                found[-1].body.append(line)
            elif COUNTER.match(line.text):
                counter = counter or line
            else:
                page.warn(line, f"text before the first dated item ignored: {line.text[:60]!r}")
        return counter, found

    @staticmethod
    def _check_count(page: Page, counter: Line, found: int) -> None:
        """Warn when the page's "N Entries" disagrees with the items found: a date line
        not recognised runs the stories after it into one summary, silently."""
        match = COUNTER.match(counter.text)
        assert match is not None
        count = int(re.sub(r"\D", "", match["count"]))
        if found > count or (found < count <= PAGE_SIZE):
            page.warn(
                counter,
                f"the page counts {count:,} entries but {found:,} were found; check the page "
                "for items run together or cut off",
            )

    def _entry(self, page: Page, block: _Block) -> SourceEntry | None:
        match = DATE_LINE.match(block.date_line.text)
        assert match is not None
        day = parse_day(match["date"])
        if day is None:
            page.warn(block.date_line, f"impossible date {match['date']!r}; item skipped")
            return None
        if not block.body:
            page.warn(block.date_line, "dated line with no title (page cut off?); skipped")
            return None
        title, *summary = block.body
        if not summary:
            page.warn(title, "item has no summary (page cut off?); kept with its title")
        return page.entry(
            title,
            title=title.text,
            published=Published.on_day(day),
            summary=" ".join(line.text for line in summary),
        )


LISTING = ListingLayout()
