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

# "14 Jun. 2024 240614d-009.jpg - Press conference …, 100.97KB" and
# "12 Dec. 2023 231213-DIPB.JPG - Inaugural meeting …, 107.70KB"
DATE_LINE = re.compile(
    rf"^(?P<date>\d{{1,2}} {_MONTH} \d{{4}}) "
    r"(?P<image>\S+?\.(?i:jpe?g|png|gif|webp|tiff?|bmp|svg|avif))"
    r"(?: - (?P<caption>.*?))?, (?P<size>[\d.,]+) ?(?i:[KMG]i?B)$"
)
# "60 Entries", "1,181 Entries"
COUNTER = re.compile(r"^\d[\d,.]* Entr(?:y|ies)$", re.IGNORECASE)
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
        dated = sum(1 for line in page.content() if DATE_LINE.match(line.text))
        return 10 * dated

    def read(self, page: Page) -> list[SourceEntry]:
        entries = []
        for block in self._blocks(page):
            entry = self._entry(page, block)
            if entry is not None:
                entries.append(entry)
        return entries

    def _blocks(self, page: Page) -> list[_Block]:
        found: list[_Block] = []
        for line in page.content():
            if END.match(line.text):
                break
            if DATE_LINE.match(line.text):
                found.append(_Block(line, []))
            elif found:
                found[-1].body.append(line)
            elif not COUNTER.match(line.text):
                page.warn(line, f"text before the first dated item ignored: {line.text[:60]!r}")
        return found

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
