"""Searching the archive for the search page: bounded work, whole words, any case.

Pure: the caller hands in the entries to look through (the newest :data:`SCAN`
of the store), so a request costs at most that many regular-expression passes
over a title and a summary, whatever is asked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aggregator.model import Entry
from aggregator.text import fold
from aggregator.topics import term_pattern

MAX_QUERY = 100  # characters
MAX_WORDS = 8
SCAN = 5000  # newest entries looked through
RESULTS = 50  # entries shown at most


class QueryError(ValueError):
    """A query the search refuses, with a sentence saying why."""


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def parse(cls, text: str) -> Query:
        """Every word must appear, as a whole word, in the title or the summary."""
        if len(text) > MAX_QUERY:
            raise QueryError(f"The search is longer than {MAX_QUERY} characters.")
        words = list(dict.fromkeys(fold(text).split()))
        if len(words) > MAX_WORDS:
            raise QueryError(f"The search has more than {MAX_WORDS} words.")
        return cls(" ".join(text.split()), tuple(term_pattern(word) for word in words))

    def matches(self, entry: Entry) -> bool:
        text = fold(f"{entry.title}\n{entry.summary}")
        return all(pattern.search(text) for pattern in self.patterns)


class OutOfTime(Exception):
    """A search ran past its deadline."""


def search(
    entries: Iterable[Entry],
    query: Query,
    limit: int = RESULTS,
    *,
    deadline: float | None = None,
) -> list[Entry]:
    """The first ``limit`` of ``entries`` (newest first) that match ``query``.

    Raises :class:`OutOfTime` when :func:`time.monotonic` passes ``deadline``.
    """
    found: list[Entry] = []
    if not query.patterns:
        return found
    for entry in entries:
        if deadline is not None and time.monotonic() >= deadline:
            raise OutOfTime("the search took too long")
        if query.matches(entry):
            found.append(entry)
            if len(found) == limit:
                break
    return found
