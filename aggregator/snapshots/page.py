"""A saved page as the layouts see it: numbered, whitespace-normalised lines."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from aggregator.dates import full_dates_in
from aggregator.model import Provenance, Published, SourceEntry

log = logging.getLogger("aggregator")

# The cut mark NATO pages end a shortened summary with: "[…]" (or "[...]").
CUT_MARK = re.compile(r"\[(?:…|\.\.\.)\]$")

Captured = date | datetime
"""When a page was saved: a day, or an aware instant."""

# How much of a page sniffing looks at, so that recognising a layout costs the same
# whatever the page's size (a saved NATO page is 5 to 60 KB; a 50 MB file of random
# text must not be scanned four times over to find it fits nothing).
SNIFF_CHARS = 256 * 1024
# Warnings one page logs (an item skipped, text ignored); the rest are counted in one more
# line, so a large page of junk read with a forced kind does not print a line per line.
MAX_WARNINGS = 20


def normalise(text: str) -> str:
    """Collapse whitespace; everything else (quotes, accents, "[…]") is kept as written.

    Any run of whitespace, no-break spaces included, becomes one space: ``str.split``
    splits on exactly what ``re``'s ``\\s`` matches, at a fifth of the cost of
    ``re.sub(r"\\s+", " ", text)``.
    """
    return " ".join(text.split())


def head(text: str) -> str:
    """The whole lines within the first :data:`SNIFF_CHARS` characters of ``text``."""
    if len(text) <= SNIFF_CHARS:
        return text
    cut = text[:SNIFF_CHARS]
    # Drop the last, probably partial, line (unless it is the only one).
    lines = cut.splitlines(keepends=True)
    return "".join(lines[:-1]) if len(lines) > 1 else cut


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based, as an editor shows it
    text: str  # normalised; "" for a blank line


@dataclass(frozen=True, slots=True)
class Page:
    """The text of one snapshot, and what is known about where it came from."""

    source: str
    location: str
    lines: tuple[Line, ...]
    captured: Captured | None = None
    warnings: Iterator[int] = field(
        default_factory=lambda: itertools.count(1), init=False, repr=False, compare=False
    )

    @classmethod
    def from_text(
        cls, text: str, *, source: str, location: str, captured: Captured | None = None
    ) -> Page:
        lines = tuple(
            Line(number, normalise(raw)) for number, raw in enumerate(text.splitlines(), start=1)
        )
        return cls(source=source, location=location, lines=lines, captured=captured)

    def reference_day(self) -> date | None:
        """The day that gives a year to dates printed without one: the capture day,
        else the latest full date the page prints."""
        if self.captured is not None:
            return self.captured.date() if isinstance(self.captured, datetime) else self.captured
        found = [day for line in self.lines for day in full_dates_in(line.text)]
        return max(found, default=None)

    def content(self) -> list[Line]:
        """The non-blank lines."""
        return [line for line in self.lines if line.text]

    def entry(
        self,
        line: Line,
        *,
        title: str,
        published: Published | None,
        summary: str = "",
        author: str | None = None,
    ) -> SourceEntry:
        return SourceEntry(
            title=title,
            published=published,
            summary=summary,
            provenance=Provenance(self.source, self.location, line.number),
            author=author,
        )

    def where(self, line: Line | None = None) -> str:
        """``source (file:line)`` for messages; just ``file:line`` when they coincide."""
        place = self.location if line is None else f"{self.location}:{line.number}"
        return place if self.source == self.location else f"{self.source} ({place})"

    def warn(self, line: Line | None, message: str) -> None:
        number = next(self.warnings)
        if number <= MAX_WARNINGS:
            log.warning("%s: %s", self.where(line), message)
        elif number == MAX_WARNINGS + 1:
            log.warning(
                "%s: more than %d warnings; the rest are not shown", self.where(), number - 1
            )


def blocks(lines: list[Line] | tuple[Line, ...]) -> Iterator[list[Line]]:
    """Runs of non-blank lines, split at blank lines."""
    run: list[Line] = []
    for line in lines:
        if line.text:
            run.append(line)
        elif run:
            yield run
            run = []
    if run:
        yield run


# A sentence's end: ".", "!", or either followed by a closing quote; or a cut mark.
_SENTENCE_END = re.compile(r"(?:[.!][\"”’)]?|\[(?:…|\.\.\.)\])$")


def looks_like_prose(text: str) -> bool:
    """A summary rather than a headline: it ends a sentence and has a sentence's length.

    Headlines here never end with a full stop ("NATO holds long-planned annual
    nuclear exercise"); a long headline is still a headline, so length alone is
    not enough.
    """
    return bool(_SENTENCE_END.search(text)) and len(text.split()) >= 8
