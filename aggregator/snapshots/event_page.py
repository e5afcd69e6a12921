"""Event and topic pages: a heading with its summary, then headline + teaser blocks.

Example (seeds/001_…)::

    Meeting of NATO Ministers of Defence (Updated)

    Brussels, 11-12 October 2023 GENERAL A meeting of Defence Ministers will take place …[…]

    Secretary General in Kyiv: Ukraine is closer to NATO than ever before

    Secretary General Jens Stoltenberg visited Kyiv on Thursday (28 September 2023), …[…]

The page prints no dates of its own: an entry's date is the first date in its text
(for a range, the first day). Evergreen topic pages ("Resilience, civil
preparedness and Article 3") mention none and stay undated.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.dates import first_date_in
from aggregator.model import Published, SourceEntry
from aggregator.snapshots.page import CUT_MARK, Line, Page, looks_like_prose


@dataclass(frozen=True, slots=True)
class EventPageLayout:
    name: str = "event-page"
    looks_like: str = 'headline and teaser paragraphs cut off with "[…]"'

    def sniff(self, page: Page) -> int:
        return 5 * sum(1 for line in page.content() if CUT_MARK.search(line.text))

    def read(self, page: Page) -> list[SourceEntry]:
        lines = page.content()
        reference = page.reference_day()
        pairs: list[tuple[Line, list[Line]]] = []
        for index, line in enumerate(lines):
            last = index == len(lines) - 1
            is_summary = looks_like_prose(line.text) or CUT_MARK.search(line.text) is not None
            if pairs and not pairs[-1][1] and (is_summary or last):
                # The teaser of the headline before (the last line may be one cut short).
                pairs[-1][1].append(line)
            elif is_summary and pairs:
                # A teaser that runs over two paragraphs.
                pairs[-1][1].append(line)
            elif is_summary:
                page.warn(line, "teaser with no headline above it; skipped")
            else:
                pairs.append((line, []))
        entries = []
        for title, summary_lines in pairs:
            summary = " ".join(line.text for line in summary_lines)
            day = first_date_in(summary, reference) or first_date_in(title.text, reference)
            entries.append(
                page.entry(
                    title,
                    title=title.text,
                    published=None if day is None else Published.on_day(day),
                    summary=summary,
                )
            )
        return entries


EVENT_PAGE = EventPageLayout()
