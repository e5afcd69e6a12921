"""A saved page as the layouts see it: numbered, whitespace-normalised lines."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from aggregator.dates import full_dates_in
from aggregator.errors import SourceError
from aggregator.model import Provenance, Published, SourceEntry
from aggregator.text import MAX_TEXT, MAX_TITLE, NOT_XML, cap, composed

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
# Non-blank lines one page may hold. Each costs about 150 bytes (a Line and its text),
# so 16 MB of one-letter lines would be 8 million of them and over a gigabyte; a saved
# NATO page has a few hundred, the largest listing under the size cap about 300,000.
MAX_LINES = 1_000_000

# A run of text between line ends. Only "\r\n", "\r" and "\n" end a line, as an editor
# counts lines: str.splitlines also splits at U+2028, U+2029, U+0085, form feed and other
# separators, which cut a title in two and numbered lines differently from an editor;
# within a line they are whitespace (normalise).
_TEXT_RUN = re.compile(r"[^\r\n]+")


def normalise(text: str) -> str:
    """Collapse whitespace; everything else (quotes, accents, "[…]") is kept as written.

    Any run of whitespace, no-break spaces included, becomes one space: ``str.split``
    splits on exactly what ``re``'s ``\\s`` matches, at a fifth of the cost of
    ``re.sub(r"\\s+", " ", text)``. Characters XML cannot hold (an ESC in a title)
    are dropped: kept, they made every RSS and Atom file of the run fail to render.
    """
    text = composed(" ".join(text.split()))  # "e" and an accent stored as "é" (NFC)
    # Whitespace controls (form feed, U+0085) are spaces by now; the rest go.
    return " ".join(NOT_XML.sub("", text).split()) if NOT_XML.search(text) else text


def _line_breaks(text: str, start: int, end: int) -> int:
    """How many lines end in ``text[start:end]``: "\\r\\n", "\\r" or "\\n" each end one."""
    return (
        text.count("\n", start, end) + text.count("\r", start, end) - text.count("\r\n", start, end)
    )


def head(text: str) -> str:
    """The whole lines within the first :data:`SNIFF_CHARS` characters of ``text``."""
    if len(text) <= SNIFF_CHARS:
        return text
    cut = text[:SNIFF_CHARS]
    # Drop the last, probably partial, line (unless it is the only one).
    end = max(cut.rfind("\n"), cut.rfind("\r"))
    return cut[: end + 1] if end >= 0 else cut


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based, as an editor shows it
    text: str  # normalised; "" for a blank line (one stands for a run of them)


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
        """The page's lines, numbered as an editor numbers them.

        A run of blank lines is kept as one blank :class:`Line` (the layouts only ask
        whether a blank separates two lines): a file of 16 MB of line ends once made a
        Line per line, 1.6 GB. More than :data:`MAX_LINES` non-blank lines is an error.
        """
        lines: list[Line] = []
        number, position, count = 1, 0, 0
        for run in _TEXT_RUN.finditer(text):
            breaks = _line_breaks(text, position, run.start())
            if position == 0 and breaks:
                _add_blank(lines, 1)  # the page opens with blank lines
            elif breaks > 1:
                _add_blank(lines, number + 1)  # one or more between this line and the last
            number += breaks
            position = run.end()
            value = normalise(run.group())
            if not value:
                _add_blank(lines, number)
                continue
            count += 1
            if count > MAX_LINES:
                raise SourceError(
                    source,
                    f"{location}:{number}",
                    f"saved page has more than {MAX_LINES:,} non-blank lines; save only the "
                    "news listing part of the page, or split it into several sources",
                )
            lines.append(Line(number, value))
        return cls(source=source, location=location, lines=tuple(lines), captured=captured)

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
        if len(title) > MAX_TITLE or len(summary) > MAX_TEXT:
            # As live feeds are capped: a page of one 16 MB line is not one 16 MB story.
            self.warn(line, f"title over {MAX_TITLE:,} or summary over {MAX_TEXT:,} characters cut")
        return SourceEntry(
            title=cap(title, MAX_TITLE),
            published=published,
            summary=cap(summary, MAX_TEXT),
            provenance=Provenance(self.source, self.location, line.number),
            author=author,
        )

    def where(self, line: Line | None = None) -> str:
        """``source (file:line)`` for messages; just ``file:line`` when they coincide."""
        place = self.location if line is None else f"{self.location}:{line.number}"
        return place if self.source == self.location else f"{self.source} ({place})"

    def note(self, line: Line | None, message: str) -> None:
        """What the page holds and is rightly left out (a link list): said with -v."""
        log.info("%s: %s", self.where(line), message)

    def warn(self, line: Line | None, message: str) -> None:
        number = next(self.warnings)
        if number <= MAX_WARNINGS:
            log.warning("%s: %s", self.where(line), message)
        elif number == MAX_WARNINGS + 1:
            log.warning(
                "%s: more than %d warnings; the rest are not shown", self.where(), number - 1
            )


def _add_blank(lines: list[Line], number: int) -> None:
    """A blank line at ``number``, unless the line before is blank already."""
    if not lines or lines[-1].text:
        lines.append(Line(number, ""))


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
