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

import re
from dataclasses import dataclass
from datetime import date

from aggregator.dates import first_date_in
from aggregator.model import Published, SourceEntry
from aggregator.snapshots.page import CUT_MARK, Line, Page, looks_like_prose

# The link that closes the list, as on listing pages; what follows is the page's footer.
END = re.compile(r"^Back To Top$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class EventPageLayout:
    name: str = "event-page"
    looks_like: str = 'headline and teaser paragraphs cut off with "[…]"'

    def sniff(self, page: Page) -> int:
        return 5 * sum(1 for line in page.content() if CUT_MARK.search(line.text))

    def read(self, page: Page) -> list[SourceEntry]:
        pairs = self._pairs(page)
        reference = self._reference_day(page, pairs)
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

    @staticmethod
    def _pairs(page: Page) -> list[tuple[Line, list[Line]]]:
        """Each headline and its teaser: the line right under it, and further paragraphs
        of prose until one ends with "[…]".

        Whether a line reads as prose does not tell a headline from a teaser: a headline
        may end in a quoted sentence ('Stoltenberg: “Allies will support Ukraine.”').
        Where it stands does: under a headline, after a teaser closed by "[…]". Under a
        headline, a line that reads as no teaser at all (neither prose nor cut off) is
        the next headline: the one above it has no teaser.
        """
        pairs: list[tuple[Line, list[Line]]] = []
        lines = list(page.content())
        for number, line in enumerate(lines):
            if END.match(line.text):
                break  # the page's footer follows
            teaser = pairs[-1][1] if pairs else None
            following = lines[number + 1].text if number + 1 < len(lines) else None
            last = following is None or END.match(following) is not None  # a page cut short
            if teaser is not None and not teaser and (last or _teaser_like(line.text)):
                teaser.append(line)  # the line right under a headline: its teaser
            elif teaser and not CUT_MARK.search(teaser[-1].text) and looks_like_prose(line.text):
                teaser.append(line)  # a teaser that runs over two paragraphs
            elif teaser is None and (looks_like_prose(line.text) or CUT_MARK.search(line.text)):
                page.warn(line, "teaser with no headline above it; skipped")
            else:
                pairs.append((line, []))
        return pairs

    @staticmethod
    def _reference_day(page: Page, pairs: list[tuple[Line, list[Line]]]) -> date | None:
        """The day that gives a year to dates printed without one ("5 October"): the
        capture day, else the latest of the items' own dates, the first full date in each
        teaser. Not the latest date anywhere on the page: a teaser announcing a summit
        next year put this year's stories a year late."""
        if page.captured is not None:
            return page.reference_day()
        own = (first_date_in(" ".join(line.text for line in teaser)) for _, teaser in pairs)
        return max((day for day in own if day is not None), default=None)


# A sentence's end: a headline has none ("Environment, climate change and security"), a
# teaser has, however short ("NATO condemns the attack.").
_SENTENCE_END = re.compile(r"[.!?…][\"”’»)]*\s*$")


# A quotation headlined ('Stoltenberg: “Russia must stop this war.”', '“…”, says …'):
# it ends a sentence, and is still a headline.
_QUOTED = re.compile(r"^[“\"]|:\s*[“\"]")


def _teaser_like(text: str) -> bool:
    """Whether a line under a headline can be its teaser: prose, cut off, or a sentence
    that is not a headlined quotation."""
    if looks_like_prose(text) or CUT_MARK.search(text) is not None:
        return True
    return _SENTENCE_END.search(text) is not None and _QUOTED.search(text) is None


EVENT_PAGE = EventPageLayout()
