"""What a run changes in the store, decided once for every backend.

:mod:`aggregator.dedupe` says when two tellings are one story and how they merge;
:func:`plan_merge` applies that policy to one run's items against the stories already
stored, and returns a :class:`MergePlan`: which entries to insert, which to rewrite,
which were only seen again, and every sighting. A backend only writes the plan, so the
merge policy cannot drift between SQLite and PostgreSQL. Pure: no I/O, ``now`` passed in.

A source that corrects a headline keeps the item's own id (its RSS guid, Atom id or
JSON Feed id): an item whose title matches no story, but whose source told a story of
a matching date under the same item id, is that story under its new title
(:func:`aggregator.dedupe.retitled`), not a second one. The title a story matches by
comes first: a corrected headline that another source told already joins that story.
An item id a source gives items of different titles in one run says nothing of them:
the first is matched as above, the others are stories of their own titles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, tzinfo
from operator import attrgetter

from aggregator.dedupe import choose, matches, merge_into, new_entry, retitled
from aggregator.model import Entry, Provenance, Published, SourceEntry
from aggregator.text import title_key

# An entry's fields but when it was last seen and where: what a merge may change that
# makes a stored story "changed" (rewritten, judged again) rather than only seen again.
_STORY = attrgetter(*(f.name for f in fields(Entry) if f.name not in ("last_seen", "sources")))


@dataclass(frozen=True, slots=True)
class IngestReport:
    """How one run's items were merged: new stories, changed ones, ones only seen again."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class MergePlan:
    inserted: tuple[Entry, ...]  # new stories
    changed: tuple[Entry, ...]  # stored stories whose text, date or media changed
    seen: tuple[str, ...]  # ids of stored stories only seen again (last_seen moves)
    # (entry id, where it was read, the item's own id at its source: RSS guid, Atom id)
    sightings: tuple[tuple[str, Provenance, str | None], ...]
    # The title key (aggregator.text.title_key) of each inserted entry's title, by id, so
    # that the writer need not compute it again. (Not of a changed one: its stored title
    # is rekeyed as it always was, should the key's rules have changed since.)
    title_keys: Mapping[str, str] = field(default_factory=dict)

    @property
    def report(self) -> IngestReport:
        return IngestReport(len(self.inserted), len(self.changed), len(self.seen))

    @property
    def touched(self) -> list[Entry]:
        """The entries whose topics need judging."""
        return [*self.inserted, *self.changed]


def plan_merge(
    items: Sequence[SourceEntry],
    stored: Mapping[str, Sequence[Entry]],
    *,
    authority: str,
    zone: tzinfo,
    now: datetime,
    keys: Sequence[str] | None = None,
    told: Mapping[Told, Entry] | None = None,
) -> MergePlan:
    """Merge ``items`` into ``stored`` (stored entries by title key, without sources).

    ``keys``: each item's title key, when the caller has them already; ``told``: the
    stored stories each source told under the items' ids (see :meth:`Planner.add`).
    """
    planner = Planner(authority=authority, zone=zone, now=now)
    planner.add(items, stored, keys, told)
    return planner.plan()


# A source's name and the id it gave an item (SourceEntry.guid).
Told = tuple[str, str]


def told_by(items: Iterable[SourceEntry]) -> set[Told]:
    """The (source, item id) pairs of ``items`` that have an id."""
    return {(item.provenance.source, item.guid) for item in items if item.guid}


class Planner:
    """:func:`plan_merge` a batch of items at a time: one run's items folded, in order,
    into the stored stories, as the sources are read. Folding the batches in turn gives
    the plan of folding them all at once, as long as the store does not change between
    them (a run holding the write lock) and each batch comes with the stored stories of
    the title keys this planner has not seen yet (:meth:`unseen`)."""

    def __init__(self, *, authority: str, zone: tzinfo, now: datetime) -> None:
        self.authority = authority
        self.zone = zone
        self.now = now
        self._candidates: dict[str, list[Entry]] = {}
        self.inserted: dict[str, Entry] = {}
        self._changed: dict[str, Entry] = {}
        self._title_keys: dict[str, str] = {}
        self._seen: set[str] = set()
        self._sightings: list[tuple[str, Provenance, str | None]] = []
        # The story each (source, item id) told, by id: stored ones as the caller gave
        # them (None: none stored), this run's as they were folded.
        self._told: dict[Told, str | None] = {}
        # The title key each (source, item id) came with first in this run: one that
        # comes again with another title says nothing more (see the module).
        self._used: dict[Told, str] = {}
        self._stories: dict[str, Entry] = {}  # every story folded or given, as it is now

    def unseen(self, keys: Iterable[str]) -> set[str]:
        """The title keys among ``keys`` whose stored stories this planner has not had."""
        return {key for key in keys if key not in self._candidates}

    def untold(self, pairs: Iterable[Told]) -> set[Told]:
        """The (source, item id) pairs among ``pairs`` whose stored stories this planner
        has not had (see :meth:`add`)."""
        return {pair for pair in pairs if pair not in self._told}

    def add(
        self,
        items: Sequence[SourceEntry],
        stored: Mapping[str, Sequence[Entry]],
        keys: Sequence[str] | None = None,
        told: Mapping[Told, Entry] | None = None,
    ) -> list[str]:
        """Fold ``items`` in; ``stored``: the stored stories of (at least) the unseen
        keys among theirs (a key it lacks has none); ``told``: the stored story each
        (source, item id) pair of theirs that is :meth:`untold` was sighted with (a pair
        it lacks has none). Returns the ids of the new stories these items made or
        changed (in :attr:`inserted`)."""
        if keys is None:
            keys = [title_key(item.title) for item in items]
        candidates_by_key = self._candidates
        for key, entries in stored.items():
            candidates_by_key.setdefault(key, list(entries))
        stories = self._stories
        for new_pair in told_by(items):
            if new_pair not in self._told:
                story = told.get(new_pair) if told else None
                self._told[new_pair] = None if story is None else story.id
                if story is not None:
                    stories.setdefault(story.id, story)
        authority, zone, now = self.authority, self.zone, self.now
        inserted, changed = self.inserted, self._changed
        made: list[str] = []
        for item, key in zip(items, keys, strict=True):
            candidates = candidates_by_key.get(key)
            pair = (item.provenance.source, item.guid) if item.guid else None
            # Only the first item of this run under an item id may correct a story's
            # headline; one that comes again with another title says nothing more.
            retelling = pair if pair is not None and pair not in self._used else None
            if pair is not None and self._used.setdefault(pair, key) != key:
                self._told[pair] = None
            if candidates is None and (retelling is None or self._told.get(retelling) is None):
                # The usual case in a large run: a title not seen before, of an item
                # its source gave no story before.
                entry = new_entry(item, authority=authority, zone=zone, now=now, key=key)
                candidates_by_key[key] = [entry]
                inserted[entry.id] = entry
                stories[entry.id] = entry
                made.append(entry.id)
                self._title_keys[entry.id] = key
                self._sightings.append((entry.id, item.provenance, item.guid))
                if retelling is not None:
                    self._told[retelling] = entry.id
                continue
            if candidates is None:
                candidates = candidates_by_key[key] = []
            found = choose(candidates, item, zone)
            if found is None:
                entry = new_entry(item, authority=authority, zone=zone, now=now, key=key)
                # Same title and day already stored under this id: the same story.
                found = next((c for c in candidates if c.id == entry.id), None)
            if found is None and retelling is not None:
                retold = self._retell(retelling, item, key, candidates)
                if retold is not None:
                    if retold.id in inserted:
                        made.append(retold.id)
                    self._sightings.append((retold.id, item.provenance, item.guid))
                    continue
            if found is None:
                inserted[entry.id] = entry
                stories[entry.id] = entry
                made.append(entry.id)
                self._title_keys[entry.id] = key
                candidates.append(entry)
            else:
                entry = merge_into(found, item, now)
                candidates[candidates.index(found)] = entry
                stories[entry.id] = entry
                if entry.id in inserted:
                    inserted[entry.id] = entry
                    made.append(entry.id)
                elif _STORY(entry) != _STORY(found):
                    changed[entry.id] = entry
                else:
                    self._seen.add(entry.id)
            self._sightings.append((entry.id, item.provenance, item.guid))
            if retelling is not None:
                self._told[retelling] = entry.id
        return made

    def _retell(
        self, pair: Told, item: SourceEntry, key: str, candidates: list[Entry]
    ) -> Entry | None:
        """The story the item's source told under the item's id, now under the item's
        title (see the module), or None when there is none of a matching date."""
        story_id = self._told.get(pair)
        story = self._stories.get(story_id) if story_id is not None else None
        if story is None or not matches(story.published, item.published, self.zone):
            return None
        entry = retitled(merge_into(story, item, self.now), item.title)
        old = title_key(story.title)
        if old != key:  # it moves to its new title's candidates
            previous = self._candidates.get(old)
            if previous is not None:
                previous[:] = [c for c in previous if c.id != story.id]
            candidates.append(entry)
        else:
            candidates[:] = [entry if c.id == story.id else c for c in candidates]
        self._stories[entry.id] = entry
        if entry.id in self.inserted:
            self.inserted[entry.id] = entry
            self._title_keys[entry.id] = key
        elif _STORY(entry) != _STORY(story):
            self._changed[entry.id] = entry
        else:
            self._seen.add(entry.id)
        return entry

    def plan(self) -> MergePlan:
        """What the items folded so far change in the store."""
        return MergePlan(
            tuple(self.inserted.values()),
            tuple(self._changed.values()),
            tuple(sorted(self._seen - self._changed.keys())),
            tuple(self._sightings),
            dict(self._title_keys),
        )


def sort_key(published: Published | None, first_seen: datetime) -> str:
    """Dated entries by the instant feeds show (UTC ISO), undated ones after all of them."""
    if published is None:
        return "0 " + utc_iso(first_seen)
    if published.instant is not None:
        return utc_iso(published.instant)
    return utc_iso(_shown_time()(published))


def utc_iso(when: datetime) -> str:
    """``when.astimezone(UTC).isoformat()``, without the conversion when ``when`` is UTC
    already (any offset of zero prints as "+00:00")."""
    if when.utcoffset() == _ZERO:
        return when.isoformat()
    return when.astimezone(UTC).isoformat()


_ZERO = timedelta(0)
_shown: list[Callable[[Published], datetime]] = []


def _shown_time() -> Callable[[Published], datetime]:
    """aggregator.render.shown_time, imported when first needed (render is heavy)."""
    if not _shown:
        from aggregator.render import shown_time

        _shown.append(shown_time)
    return _shown[0]


def retention_cutoff(now: datetime, days: int) -> datetime | None:
    """When a story last seen before is forgotten; None: keep every story (0 days, or
    more days than the calendar reaches back: nothing was seen that long ago)."""
    if days <= 0 or days >= now.toordinal() - 1:
        return None
    return now - timedelta(days=days)
