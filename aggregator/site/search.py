"""Searching the archive for the search page: bounded work, whole words, any case,
with or without accents (:func:`search_pattern`).

The store's index (:meth:`~aggregator.store.StoreType.search`) hands over the
candidates, newest first, a batch at a time (:func:`candidates`): every entry that
holds the words, over the whole archive; the whole-word patterns
(:func:`search_pattern`) then decide, so the index changes how many entries are
read, never what is found. A search the index cannot narrow
(only punctuation, ``q=-``) reads the newest :data:`SCAN` entries, as before it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

from aggregator.model import Entry
from aggregator.store.words import term_words
from aggregator.text import NOT_XML, composed, fold, unaccented
from aggregator.topics import term_pattern

MAX_QUERY = 100  # characters
MAX_WORDS = 8
SCAN = 5000  # newest entries looked through when the index cannot narrow a search
RESULTS = 50  # entries shown at most
BATCH = 200  # candidates asked of the store at a time

if TYPE_CHECKING:
    from aggregator.store import StoreType


# Punctuation people type around a word or a phrase ("Ukraine?", "(NATO)", a quoted
# phrase, "#Kyiv", a wildcard "Kyiv*" the search has no need of, "Kyiv…", "Kyiv—"), not
# part of what they look for. Curly quotes are straight after fold(), dashes "-". A
# full stop only ends a term ("U.S." is "U.S"): ".NET" keeps its own; a hyphen too
# (a leading one is no exclusion here).
BEFORE = "\"'«»([{<¿¡#*"
AFTER = "\"'«»)]}>?!.,;:*…-"


def search_pattern(term: str) -> re.Pattern[str]:
    """What finds ``term`` in a :func:`searched` text: its whole words in any case, the
    accents of Latin and Greek letters taken off both (aggregator.text.unaccented):
    "Silina" finds "Siliņa", and "Kraków" finds "Krakow". The index's words are cut
    the same way (aggregator.store.words). Topics keep their terms' accents."""
    return term_pattern(unaccented(term))


def searched(text: str) -> str:
    """A story's text as :func:`search_pattern` looks through it."""
    return unaccented(text)


def typed_term(text: str) -> str:
    """A word or phrase as typed, as it is looked for: composed (NFC, as stories are
    stored), quotes folded (:func:`~aggregator.text.fold`), without the punctuation
    around it. "" when nothing is left."""
    return fold(composed(text)).strip().lstrip(BEFORE).rstrip(AFTER).strip()


class QueryError(ValueError):
    """A query the search refuses, with a sentence saying why."""


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    patterns: tuple[re.Pattern[str], ...]
    terms: tuple[str, ...] = ()  # the words, for the store's index

    @classmethod
    def parse(cls, text: str) -> Query:
        """Every word must appear, as a whole word, in the title or the summary (the
        punctuation typed around a word is not part of it: :func:`typed_term`)."""
        if len(text) > MAX_QUERY:
            raise QueryError(f"The search is longer than {MAX_QUERY} characters.")
        if NOT_XML.search(text):  # (as a filtered feed's q: found by review)
            raise QueryError("The search holds a control character, which no story can hold.")
        words = list(dict.fromkeys(w for w in map(typed_term, text.split()) if w))
        if len(words) > MAX_WORDS:
            raise QueryError(f"The search has more than {MAX_WORDS} words.")
        patterns = tuple(search_pattern(word) for word in words)
        return cls(" ".join(text.split()), patterns, tuple(words))

    def matches(self, entry: Entry) -> bool:
        text = searched(fold(f"{entry.title}\n{entry.summary}"))
        return all(pattern.search(text) for pattern in self.patterns)


def candidates(
    store: StoreType,
    terms: Sequence[str],
    exclude: Sequence[str] = (),
    topic: str | None = None,
    *,
    unindexed: int = SCAN,
    either: bool = False,
    position: tuple[str, str] | None = None,
) -> Iterator[Entry]:
    """The entries that may match every term (``either``: one of them at least), newest
    first (after ``position``, a store's :meth:`~aggregator.store.StoreType.position`,
    to read on), read from the store's index a batch at a time, for as long as the
    caller wants more. When the index cannot narrow them (:func:`narrows`), only
    ``unindexed`` entries: such a search stays as bounded as before the index."""

    def batches() -> Iterator[Entry]:
        after: Entry | None = None
        while True:
            batch = store.search(
                terms,
                exclude=exclude,
                topic=topic,
                limit=BATCH,
                after=after,
                either=either,
                position=position if after is None else None,
            )
            yield from batch
            if len(batch) < BATCH:
                return
            after = batch[-1]

    if narrows(terms, either=either):
        return batches()
    return islice(batches(), unindexed)


def narrows(terms: Sequence[str], *, either: bool = False) -> bool:
    """Whether the store's index can narrow a search for ``terms``: one of them can be
    looked up in it (:func:`~aggregator.store.words.term_words`; of ``either`` terms,
    every one)."""
    looked_up = [term_words(term) is not None for term in terms]
    return bool(terms) and (all(looked_up) if either else any(looked_up))


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


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a search's results, newest first."""

    results: list[Entry]
    more: bool  # older stories may match too: the next page reads on from ``next``
    after: str | None = None  # where this page read on from (None: the newest)
    next: str | None = None  # where the next page reads on from, when ``more``


def search_page(
    store: StoreType,
    query: Query,
    *,
    after: str | None = None,
    limit: int = RESULTS,
    deadline: float | None = None,
    unindexed: int = SCAN,
) -> Page:
    """The ``limit`` newest stories that match ``query`` (after the place ``after``
    names, to read on: the ``next`` of an earlier page), and whether older ones may
    match too. A place is the order key a story was read with and its id: reading on
    from it needs neither the story (deleted meanwhile) nor its key now (changed
    meanwhile). Raises :class:`QueryError` when ``after`` is no such place.

    A search the index cannot narrow reads ``unindexed`` entries a page: when they end
    before the page is full, older ones may still match, and the next page reads on
    from the last entry read."""
    position = None
    if after is not None:
        key, mark, entry_id = after.partition(_PLACE)
        if not mark or not key or not entry_id or len(after) > MAX_PLACE:
            raise QueryError("This is no place in a search's results to read on from.")
        position = (key, entry_id)
    # Each match's place as it was read (found by review: asked after the next batch,
    # a story of an earlier batch gave the key stored by then, which may have changed),
    # and the last entry read: what is read and does not match is not kept.
    found: list[Entry] = []
    places: dict[str, tuple[str, str]] = {}
    read, last_place = 0, None
    if query.patterns:
        for entry in candidates(store, query.terms, unindexed=unindexed, position=position):
            if deadline is not None and time.monotonic() >= deadline:
                raise OutOfTime("the search took too long")
            read += 1
            last_place = store.position(entry)
            if query.matches(entry):
                found.append(entry)
                places[entry.id] = last_place
                if len(found) > limit:
                    break
    more = len(found) > limit
    shown = found[:limit]
    ends = places[shown[-1].id] if more else None
    if not more and not narrows(query.terms) and read >= unindexed:
        more, ends = True, last_place  # the scan ended, not the matches
    following = None if ends is None else f"{ends[0]}{_PLACE}{ends[1]}"
    return Page(shown, more, after, following)


# A place in a search's results, as a page's link gives it: a story's order key and id,
# between them a character no order key holds (aggregator.store.plan.sort_key).
_PLACE = "~"
MAX_PLACE = 400
