"""What a run changes in the store, decided once for every backend.

:mod:`aggregator.dedupe` says when two tellings are one story and how they merge;
:func:`plan_merge` applies that policy to one run's items against the stories already
stored, and returns a :class:`MergePlan`: which entries to insert, which to rewrite,
which were only seen again, and every sighting. A backend only writes the plan, so the
merge policy cannot drift between SQLite and PostgreSQL. Pure: no I/O, ``now`` passed in.

Items a source gives different ids (its RSS guids, Atom ids or JSON Feed ids) in one run
are never one story, however alike their titles and dates ("Press briefing" at 08:00 and
at 16:00, listed side by side); each sighting keeps its item's id, and of several
stories an item could join, the one its source gave the item's id is chosen. (Across
runs a new id alone does not part an item from a story: some feeds give an item a new id
on every fetch.) But an item of a stored story's title and day that comes with another
id while its source still lists the story's own item (read again, or skipped as
unchanged: :meth:`Planner.listing`) is another story too: the afternoon's briefing first
read in a later run than the morning's. A source that corrects a headline keeps the
item's own id: an item whose title matches no story, but whose source told a story of a
matching date and the same link under the same item id, is that story under its new
title (:func:`aggregator.dedupe.retitled`), not a second one; the story keeps its title
key, so that an item of the old title still finds it. The title a story matches by comes
first: a corrected headline that another source told already joins that story. An item
id a source gives items of different titles in one run says nothing of them: the first
is matched as above, the others are stories of their own titles.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field, fields
from datetime import UTC, datetime, timedelta, tzinfo
from operator import attrgetter
from typing import Any

from aggregator.dedupe import (
    choose,
    close_enough,
    local_day,
    matches,
    merge_into,
    new_entry,
    retitled,
    retold,
)
from aggregator.model import Entry, Provenance, Published, SourceEntry
from aggregator.records import record
from aggregator.text import item_mark, title_key

# An entry's fields but when it was last seen and where: what a merge may change that
# makes a stored story "changed" (rewritten, judged again) rather than only seen again.
_STORY = attrgetter(*(f.name for f in fields(Entry) if f.name not in ("last_seen", "sources")))


@record
class IngestReport:
    """How one run's items were merged: new stories, changed ones, ones only seen again."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0


@record
class MergePlan:
    inserted: tuple[Entry, ...]  # new stories
    changed: tuple[Entry, ...]  # stored stories whose text, date or media changed
    seen: tuple[str, ...]  # ids of stored stories only seen again (last_seen moves)
    # (entry id, where it was read, the item's own id at its source: RSS guid, Atom id,
    # or None; its link and its mark: aggregator.text.item_mark)
    sightings: tuple[Sighting, ...]
    # The title key (aggregator.text.title_key) of each inserted and changed entry, by id:
    # an inserted one's title's, so that the writer need not compute it again; a changed
    # one's as stored, which a corrected headline does not change (see the module).
    title_keys: Mapping[str, str] = field(default_factory=dict)

    @property
    def report(self) -> IngestReport:
        return IngestReport(len(self.inserted), len(self.changed), len(self.seen))

    @property
    def touched(self) -> list[Entry]:
        """The entries whose topics need judging."""
        return [*self.inserted, *self.changed]


@record
class WrittenAhead:
    """What of a run's plan was written in its transaction as its sources were read
    (aggregator.store.ahead), for the plan's writer to write the rest: the row each new
    story was written with, by id; the topics each was labelled with (the same stories);
    the places in :attr:`MergePlan.sightings` of the sightings written; and whether the
    stored stories were judged again first (new topic rules)."""

    rows: Mapping[str, tuple[Any, ...]]
    labels: Mapping[str, tuple[str, ...]]
    sightings: frozenset[int]
    rejudged: bool = False


def plan_merge(
    items: Sequence[SourceEntry],
    stored: Mapping[str, Sequence[Entry]],
    *,
    authority: str,
    zone: tzinfo,
    now: datetime,
    keys: Sequence[str] | None = None,
    told: Mapping[Told, tuple[str, Entry]] | None = None,
    ids: Mapping[str, Mapping[str, ItemTold]] | None = None,
    listed: Mapping[str, Iterable[tuple[str, str | None]]] | None = None,
) -> MergePlan:
    """Merge ``items`` into ``stored`` (stored entries by title key, without sources).

    ``keys``: each item's title key, when the caller has them already; ``told`` and
    ``ids``: see :meth:`Planner.add`; ``listed``: by source, see :meth:`Planner.listing`.
    """
    planner = Planner(authority=authority, zone=zone, now=now)
    for source, listed_ids in (listed or {}).items():
        planner.listing(source, listed_ids)
    planner.add(items, stored, keys, told, ids)
    return planner.plan()


# A source's name and the id it gave an item (SourceEntry.guid).
Told = tuple[str, str]
# The item a source told a story with: its id, its link and its mark (text.item_mark).
ItemTold = tuple[str | None, str | None, str | None]
# A sighting: the story, where it was read, and the item's id (None: it has none),
# link and mark.
Sighting = tuple[str, Provenance, str | None, str | None, str | None]


def told_by(items: Iterable[SourceEntry]) -> set[Told]:
    """The (source, item id) pairs of ``items`` that have an id."""
    return {(item.provenance.source, item.guid) for item in items if item.guid}


class Planner:
    """:func:`plan_merge` a batch of items at a time: one run's items folded, in order,
    into the stored stories, as the sources are read. Folding the batches in turn gives
    the plan of folding them all at once, as long as the store does not change between
    them (a run holding the write lock) and each batch comes with the stored stories of
    the title keys and item ids this planner has not seen yet (:meth:`unseen`,
    :meth:`untold`)."""

    def __init__(self, *, authority: str, zone: tzinfo, now: datetime) -> None:
        self.authority = authority
        self.zone = zone
        self.now = now
        self._candidates: dict[str, list[Entry]] = {}
        self.inserted: dict[str, Entry] = {}
        self._changed: dict[str, Entry] = {}
        self._title_keys: dict[str, str] = {}
        self._seen: set[str] = set()
        self._sightings: list[Sighting] = []
        self._stories: dict[str, Entry] = {}  # every story folded or given, as it is now
        # Each story's title key as stored (or as inserted): a story whose headline was
        # corrected keeps the key its id was made from, so that an item of its old
        # title still finds it, and its id is never made again for another story.
        self._keys: dict[str, str] = {}
        # The story each (source, item id) told, by id: stored ones as the caller gave
        # them (None: none stored), this run's as they were folded.
        self._told: dict[Told, str | None] = {}
        # The title key each (source, item id) came with first in this run: one that
        # comes again with another title says nothing more (see the module).
        self._used: dict[Told, str] = {}
        # The item id each source gave each story (by story id, then source): in this
        # run, and stored or in this run.
        self._run_ids: dict[str, dict[str, str]] = {}
        self._ids: dict[str, dict[str, str]] = {}
        # What each source told each story with in this run by an item without an id (the
        # first such item's link, or place in a saved page): see _apart_by_link.
        self._run_links: dict[str, dict[str, str]] = {}
        # How many items of the batch being added each source gave each link (by its
        # identity): a link two items share tells neither (see _own_item).
        self._batch_links: Counter[tuple[str, str]] = Counter()
        # By source, the ids of the items it lists unchanged since it was last read
        # (skipped, not folded), each with its item's mark: see listing.
        self._listed: dict[str, dict[str, str | None]] = {}
        # The stored story each item of a batch is before any of the batch is folded
        # (by story id, then source: the item's id): see _reserve.
        self._reserved: dict[str, dict[str, str]] = {}
        # The item each source told each stored story with, as stored (never what this
        # run folds: batches folded in turn then see what folding at once sees).
        self._stored_told: dict[str, dict[str, ItemTold]] = {}
        self._stored: dict[str, Entry] = {}  # each stored story given, as stored

    def listing(self, source: str, ids: Iterable[tuple[str, str | None]]) -> None:
        """``source`` lists, in this run, the items of these ids as it did when last read
        (they are not folded again), each given with its mark (its title key and link in
        short: aggregator.text.item_mark; None, not known). A stored story it told with
        one of them, of that title and link, stays apart from an item of its title and
        day that comes with another id: the source lists both. (An id of an item of
        another title or link is not the story's: a feed that numbers its items by place
        gave the story's id to another.) Give them before that source's items."""
        self._listed.setdefault(source, {}).update(ids)

    def _held(self, story_id: str, source: str) -> str | None:
        """The id of the item ``source`` lists unchanged that is the story's own: the
        item it told the story with, of the same mark (title and link)."""
        listed = self._listed.get(source)
        told = self._stored_told.get(story_id, {}).get(source) if listed else None
        if told is None or listed is None:
            return None
        item_id, _, mark = told
        if mark is None:
            # Told before the sightings kept marks (schema 8): as the story is stored.
            story, key = self._stored.get(story_id), self._keys.get(story_id)
            if story is None or key is None:
                return None
            mark = item_mark(key, story.link)
        if item_id not in listed or listed[item_id] != mark:
            return None
        return item_id

    def _told_link(self, story: Entry, source: str) -> str | None:
        """The link ``source`` told the story with, as stored; else the story's own (a
        story another source told first has that source's)."""
        told = self._stored_told.get(story.id, {}).get(source)
        return told[1] if told is not None and told[1] is not None else story.link

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
        told: Mapping[Told, tuple[str, Entry]] | None = None,
        ids: Mapping[str, Mapping[str, ItemTold]] | None = None,
    ) -> list[str]:
        """Fold ``items`` in; ``stored``: the stored stories of (at least) the unseen
        keys among theirs (a key it lacks has none); ``told``: the stored story each
        (source, item id) pair of theirs that is :meth:`untold` was sighted with, with its
        stored title key (a pair it lacks has none); ``ids``: the item ids the sources
        gave the stories in ``stored`` and ``told``, by story id then source (the
        store's ``item_ids``). Returns the ids of the new stories these items made or
        changed (in :attr:`inserted`)."""
        if keys is None:
            keys = [title_key(item.title) for item in items]
        candidates_by_key = self._candidates
        stories = self._stories
        for key, entries in stored.items():
            if key not in candidates_by_key:
                # A story this run already changed (one whose headline it corrected,
                # found by its item id) is as this run left it.
                candidates_by_key[key] = [stories.get(e.id, e) for e in entries]
                for entry in entries:
                    self._keys.setdefault(entry.id, key)
                    self._stored.setdefault(entry.id, entry)
        for pair in told_by(items):
            if pair not in self._told:
                found_told = told.get(pair) if told else None
                self._told[pair] = None if found_told is None else found_told[1].id
                if found_told is not None:
                    stored_key, story = found_told
                    self._keys.setdefault(story.id, stored_key)
                    stories.setdefault(story.id, story)
                    self._stored.setdefault(story.id, story)
        for story_id, given in (ids or {}).items():
            if story_id not in self._ids:  # (what this run gave it is newer)
                self._ids[story_id] = {s: t[0] for s, t in given.items() if t[0] is not None}
            self._stored_told.setdefault(story_id, dict(given))
        self._batch_links = Counter(
            (item.provenance.source, _identity_of_link(item.link)) for item in items if item.link
        )
        self._reserve(items, keys)
        authority, zone, now = self.authority, self.zone, self.now
        inserted, changed = self.inserted, self._changed
        made: list[str] = []
        for item, key in zip(items, keys, strict=True):
            candidates = candidates_by_key.get(key)
            told_as = (item.provenance.source, item.guid) if item.guid else None
            # Only the first item of this run under an item id may correct a story's
            # headline; one that comes again with another title says nothing more.
            retelling = told_as if told_as is not None and told_as not in self._used else None
            if told_as is not None and self._used.setdefault(told_as, key) != key:
                self._told[told_as] = None
            if candidates is None and (retelling is None or self._told.get(retelling) is None):
                # The usual case in a large run: a title not seen before, of an item
                # its source gave no story before.
                entry = new_entry(item, authority=authority, zone=zone, now=now, key=key)
                candidates_by_key[key] = [entry]
                inserted[entry.id] = stories[entry.id] = entry
                made.append(entry.id)
                self._title_keys[entry.id] = self._keys[entry.id] = key
                self._sighted(entry.id, item, retelling, key)
                continue
            if candidates is None:
                candidates = candidates_by_key[key] = []
            found = self._choose(candidates, item)
            if found is None:
                entry = new_entry(item, authority=authority, zone=zone, now=now, key=key)
                # Same title and day already stored under this id: the same story,
                # unless its source told the two apart (then the item's has its own id).
                found = next((c for c in candidates if c.id == entry.id), None)
                # (A story keeps the id of its first day: one whose time its source moved
                # across midnight (_redated) has another day's id, and is not this one.)
                if found is not None and (
                    self._apart(found.id, item)
                    or not matches(found.published, item.published, zone)
                    or not close_enough(found, item, self._own_item(found, item))
                ):
                    entry = new_entry(
                        item, authority=authority, zone=zone, now=now, key=key, distinct=True
                    )
                    # A story of that id is this item's, apart or not: an id is one story.
                    found = next((c for c in candidates if c.id == entry.id), None)
            if found is None and retelling is not None:
                corrected = self._retell(retelling, item)
                if corrected is not None:
                    if corrected.id in inserted:
                        made.append(corrected.id)
                    self._sighted(corrected.id, item, None, key)
                    continue
            if found is None:
                inserted[entry.id] = stories[entry.id] = entry
                made.append(entry.id)
                self._title_keys[entry.id] = self._keys[entry.id] = key
                candidates.append(entry)
            else:
                if self._own(found, item):
                    entry = retold(found, item, now)
                else:
                    entry = merge_into(found, item, now)
                candidates[candidates.index(found)] = stories[entry.id] = entry
                if entry.id in inserted:
                    inserted[entry.id] = entry
                    made.append(entry.id)
                elif _STORY(entry) != _STORY(found):
                    changed[entry.id] = entry
                    self._title_keys[entry.id] = self._keys.get(entry.id, key)
                else:
                    self._seen.add(entry.id)
            self._sighted(entry.id, item, retelling, key)
        return made

    def _reserve(self, items: Sequence[SourceEntry], keys: Sequence[str]) -> None:
        """Before any item of the batch is folded, the stored story each item with an id
        is, when its source says so plainly; by what that source told the story with
        (not what other sources did, nor what this run changed):

        - the story it told under the item's id, with the item's link and a matching
          date (a feed that numbers its items by place gives an old id to a new item,
          with its own link); or under the item's id, title and a matching date, when no
          item of the batch has the link it told it with (a link moved to https);
        - else the story of the item's title and day it told with the item's link (a
          feed that gives an item a new id on every fetch), unless the item it told it
          with is listed unchanged (_held); of several such items, the one of the
          story's very time;
        - else, of several items of one title the source lists, the one of the very time
          of a stored story of that title and day (a feed listing the afternoon's
          briefing above the morning's, a story another source told first).

        Then an item listed first (the afternoon's briefing) does not take the story of
        one listed after (the morning's), which is kept apart from it (see _apart)."""
        zone, stored_told, reserved, stored = (
            self.zone,
            self._stored_told,
            self._reserved,
            self._stored,
        )

        def stored_of(key: str) -> list[Entry]:
            """The stored stories of a title key, as stored (not as this run left them)."""
            found = (stored.get(c.id) for c in self._candidates.get(key) or ())
            return [story for story in found if story is not None]

        batch_links = {(i.provenance.source, i.link) for i in items if i.link is not None}
        claimed: set[int] = set()  # items (by place in the batch) given a story

        def give(story_id: str, place: int) -> None:
            item = items[place]
            mine = reserved.setdefault(story_id, {})
            if item.guid and item.provenance.source not in mine:
                mine[item.provenance.source] = item.guid
                claimed.add(place)

        def taken(story_id: str, source: str) -> bool:
            return source in reserved.get(story_id, {})

        # By the item's own id, as its source told the story.
        for place, (item, key) in enumerate(zip(items, keys, strict=True)):
            if not item.guid:
                continue
            source = item.provenance.source
            story_id = self._told.get((source, item.guid))
            story = stored.get(story_id) if story_id is not None else None
            told = stored_told.get(story_id, {}).get(source) if story_id is not None else None
            if (
                story is not None
                and told is not None
                and not taken(story.id, source)
                and matches(story.published, item.published, zone)
                and (
                    told[1] == item.link
                    or (
                        self._keys.get(story.id) == key
                        and (told[1] is None or (source, told[1]) not in batch_links)
                    )
                )
            ):
                give(story.id, place)
        # By the link its source told the story with; then by the story's very time.
        by_story: dict[tuple[str, str], list[int]] = {}  # (story, source): the items
        by_key: dict[tuple[str, str], list[int]] = {}
        for place, (item, key) in enumerate(zip(items, keys, strict=True)):
            if not item.guid or place in claimed:
                continue
            source = item.provenance.source
            by_key.setdefault((source, key), []).append(place)
            if item.link is None:
                continue
            for candidate in stored_of(key):
                told = stored_told.get(candidate.id, {}).get(source)
                if (
                    told is not None
                    and told[1] == item.link
                    and not taken(candidate.id, source)
                    and self._held(candidate.id, source) is None  # else that item's
                    and matches(candidate.published, item.published, zone)
                ):
                    by_story.setdefault((candidate.id, source), []).append(place)
        for (story_id, _), places in by_story.items():
            chosen = self._at_its_time(story_id, items, [p for p in places if p not in claimed])
            if chosen is not None:
                give(story_id, chosen)
        for (source, key), places in by_key.items():
            if len(places) < 2:
                continue
            for candidate in stored_of(key):
                if taken(candidate.id, source) or self._held(candidate.id, source) is not None:
                    continue
                fitting = [
                    p
                    for p in places
                    if p not in claimed and matches(candidate.published, items[p].published, zone)
                ]
                if len(fitting) > 1:
                    chosen = self._at_its_time(candidate.id, items, fitting, alone=False)
                    if chosen is not None:
                        give(candidate.id, chosen)

    def _at_its_time(
        self,
        story_id: str,
        items: Sequence[SourceEntry],
        places: list[int],
        *,
        alone: bool = True,
    ) -> int | None:
        """Of the items at ``places``, the one the story is: the only one (when
        ``alone`` will do), else the only one of the story's very time (None: none
        is, or several)."""
        if alone and len(places) == 1:
            return places[0]
        story = self._stored.get(story_id)
        when = story.published if story is not None else None
        if when is None or when.instant is None:
            return None
        exact = [p for p in places if items[p].published == when]
        return exact[0] if len(exact) == 1 else None

    def _choose(self, candidates: Sequence[Entry], item: SourceEntry) -> Entry | None:
        """The story ``item`` tells again among those of its title (dedupe.choose): not
        one its source gave another item id in this run, and first the one it gave the
        item's own id."""

        def own(story: Entry) -> bool:
            return self._own_item(story, item)

        # The story of the very item it tells, first: not another source's story of a
        # closer time (found by review).
        mine = [c for c in candidates if own(c) and not self._apart(c.id, item)]
        if mine:
            found = choose(mine, item, self.zone, own)
            if found is not None:
                return found

        fitting = [c for c in candidates if not self._apart(c.id, item)]
        if item.guid:
            source = item.provenance.source
            same = [
                c
                for c in fitting
                if self._reserved.get(c.id, {}).get(source) == item.guid
                or self._ids.get(c.id, {}).get(source) == item.guid
            ]
            found = choose(same, item, self.zone, own) if same else None
            if found is not None:
                return found
        return choose(fitting, item, self.zone, own) or self._redated(fitting, item)

    def _own_item(self, story: Entry, item: SourceEntry) -> bool:
        """Whether ``item`` is the very item its source told ``story`` with, as the store
        knows that telling (whose time its source may then move by hours): the same link
        (by its identity: tracking parameters aside), with the same item id or a new one
        (a feed giving ids anew on every fetch), or with none then either. Not an id
        alone (a feed giving every item one id, or numbering them by place), nor a link
        alone when the source gave an id before, or when another item it gives now has
        it too (found by review: the morning's and the afternoon's briefings merged,
        the first lost). Items without links are told apart by their ids alone."""
        source = item.provenance.source
        told = self._stored_told.get(story.id, {}).get(source)
        if told is None:
            return False
        if told[1] is None and item.link is None:  # told apart by their ids alone
            return item.guid is not None and told[0] == item.guid
        if told[1] is None or item.link is None:
            return False
        link = _identity_of_link(item.link)
        if _identity_of_link(told[1]) != link or self._batch_links[(source, link)] > 1:
            return False
        return item.guid is not None or told[0] is None

    def _apart(self, story_id: str, item: SourceEntry) -> bool:
        """Whether the item's source gave the story another item id in this run: by an
        item it folded, by one that is the story before any is folded (_reserve), or by
        one it lists unchanged (:meth:`listing`: the item the story was last sighted
        with, so its id is the one the story was stored with)."""
        if not item.guid:
            return self._apart_by_link(story_id, item)
        source = item.provenance.source
        given = self._run_ids.get(story_id)
        other = given.get(source) if given else None
        if other is None:
            reserved = self._reserved.get(story_id)
            other = reserved.get(source) if reserved else None
        if other is None:
            other = self._held(story_id, source)
        if other is None:
            # Its source told the story with another item, of another link, on another
            # day: Tuesday's "Press briefing" is not Monday's (dates of a day only are
            # one story a day apart, for other sources' sake).
            told = self._stored_told.get(story_id, {}).get(source)
            story = self._stored.get(story_id)
            if (
                told is not None
                and story is not None
                and told[1] is not None
                and item.link is not None
                and told[1] != item.link
                and local_day(story.published, self.zone) != local_day(item.published, self.zone)
            ):
                other = told[0]
        return other is not None and other != item.guid

    def _own(self, story: Entry, item: SourceEntry) -> bool:
        """Whether ``item`` is an edit of the one item a stored story was told with: the
        story's every source (as stored, and in this run) is the item's, which told it
        with the item's id (or, without one, its link). Then the story is as the item
        tells it (dedupe.retold)."""
        source = item.provenance.source
        if story.id in self.inserted or story.id not in self._stored:
            return False
        told = self._stored_told.get(story.id, {})
        if set(told) != {source} or any(p.source != source for p in story.sources):
            return False
        item_id, link, _ = told[source]
        same = item_id == item.guid if item.guid else link is not None and link == item.link
        # Of the story's own day, or its time moved by a few hours (see _redated): an item
        # a day later that the tolerance for dates of a day only lets match is no edit
        # (found by review: a daily item under one link, taken for an edit, moved the
        # story a day each run, one story for ever).
        return same and (
            local_day(story.published, self.zone) == local_day(item.published, self.zone)
            or _hours_apart(story.published, item.published)
        )

    def _redated(self, candidates: Sequence[Entry], item: SourceEntry) -> Entry | None:
        """The stored story the item's source told with this very item (its id and link),
        whose time the item now gives a few hours apart,
        on another day: a source's correction of its time, or a time read at last in
        the zone it names (found by review: an upgrade read "23:30 CET" rightly, and
        the story told at 23:30 UTC became two). None when not exactly one."""
        if item.link is None or not item.guid:
            # (Without an id, a link alone does not tell a correction from the next item
            # of a feed that links every item to one page: a later review.)
            return None
        source = item.provenance.source
        found = []
        for story in candidates:
            told = self._stored_told.get(story.id, {}).get(source)
            if told is None or not _hours_apart(story.published, item.published):
                continue
            item_id, link, _ = told
            link = link or story.link  # (a sighting from before links were kept)
            same = link and _identity_of_link(link) == _identity_of_link(item.link)
            if item_id == item.guid and same:
                found.append(story)
        return found[0] if len(found) == 1 else None

    def _apart_by_link(self, story_id: str, item: SourceEntry) -> bool:
        """For an item without an id: whether its source told the story with another item
        (in this run: another link, or another place in a saved page; as stored: another
        link), and the story is of another day. A source's "Doorstep statement" of
        Tuesday, dated by day, is not Monday's, which dates of a day only would match
        (found by review: one story, with the other day's text)."""
        mine = _identity(item)
        if mine is None:
            return False
        source = item.provenance.source
        other = self._run_links.get(story_id, {}).get(source)
        if other is None and item.link is not None:
            told = self._stored_told.get(story_id, {}).get(source)
            other = _identity_of_link(told[1]) if told is not None and told[1] else None
        story = self._stories.get(story_id) or self._stored.get(story_id)
        return (
            other is not None
            and other != mine
            and story is not None
            and local_day(story.published, self.zone) != local_day(item.published, self.zone)
        )

    def _sighted(self, story_id: str, item: SourceEntry, retelling: Told | None, key: str) -> None:
        """The item (of title key ``key``) was read as the story: its sighting, with the
        item's id, link and mark (an item without an id too: retention keeps its story
        current by its mark while its source lists it unchanged, see touch_source)."""
        mark = item_mark(key, item.link)
        self._sightings.append((story_id, item.provenance, item.guid, item.link, mark))
        if not item.guid and (mine := _identity(item)) is not None:
            self._run_links.setdefault(story_id, {}).setdefault(item.provenance.source, mine)
        if item.guid:
            source = item.provenance.source
            self._run_ids.setdefault(story_id, {})[source] = item.guid
            self._ids.setdefault(story_id, {})[source] = item.guid
        if retelling is not None:
            self._told[retelling] = story_id

    def _retell(self, pair: Told, item: SourceEntry) -> Entry | None:
        """The story the item's source told under the item's id, now under the item's
        title (see the module), or None when there is none of a matching date and link.
        It keeps its title key (see ``_keys``).

        The link must be the same: a feed that gives every item one id, or numbers its
        items by their place, gives a new story the id an older one had (found by
        review: the older story took the new one's title), and the older item, unchanged,
        is not read again to show the id is given twice. A corrected headline keeps its
        page."""
        story_id = self._told.get(pair)
        story = self._stories.get(story_id) if story_id is not None else None
        if (
            story is None
            or self._told_link(story, pair[0]) is None
            or self._told_link(story, pair[0]) != item.link
            or self._apart(story.id, item)
            or not matches(story.published, item.published, self.zone)
        ):
            return None
        if self._own(story, item):
            entry = retold(story, item, self.now)
        else:
            entry = retitled(merge_into(story, item, self.now), item.title)
        key = self._keys[story.id]
        listed = self._candidates.get(key)
        if listed is not None:
            listed[:] = [entry if c.id == story.id else c for c in listed]
        self._stories[entry.id] = entry
        self._title_keys[entry.id] = key
        if entry.id in self.inserted:
            self.inserted[entry.id] = entry
        elif _STORY(entry) != _STORY(story):
            self._changed[entry.id] = entry
        else:
            self._seen.add(entry.id)
        return entry

    def sightings_from(self, start: int) -> list[Sighting]:
        """The sightings folded so far, from the ``start``-th on (in the plan's order)."""
        return self._sightings[start:]

    def title_key_of(self, entry_id: str) -> str | None:
        """The title key the plan will give this inserted or changed story."""
        return self._title_keys.get(entry_id)

    def plan(self) -> MergePlan:
        """What the items folded so far change in the store."""
        return MergePlan(
            tuple(self.inserted.values()),
            tuple(self._changed.values()),
            tuple(sorted(self._seen - self._changed.keys())),
            tuple(self._sightings),
            dict(self._title_keys),
        )


# How far a source may move its item's time and still tell the same item (see
# Planner._redated): zones are at most 14 hours from UTC, a daily item is 24 apart.
REDATED = timedelta(hours=12)


def _hours_apart(a: Published | None, b: Published | None) -> bool:
    """Both of a known time, less than :data:`REDATED` apart."""
    if a is None or b is None or a.instant is None or b.instant is None:
        return False
    return abs(a.instant - b.instant) < REDATED


def _identity(item: SourceEntry) -> str | None:
    """What tells an item without an id from its source's other items in one read: its
    link (without its query and fragment, see :func:`_identity_of_link`), else its place
    in a saved page (None: nothing does)."""
    if item.link is not None:
        return _identity_of_link(item.link)
    where = item.provenance
    return None if where.line is None else f"\0{where.location}:{where.line}"


# Query parameters that track or hold a session, not name an item: feeds fill them anew
# on every fetch (found by review: "?sid=aaa" then "?sid=bbb" made a story twice). Any
# other is the item's own ("index.php?p=101", "briefing?date=…": a later review).
_TRACKING = re.compile(
    r"(?i)^(?:utm_\w*|sid|session(?:id)?|phpsessid|jsessionid|fbclid|gclid|dclid|msclkid|"
    r"mc_cid|mc_eid|_ga|yclid|ref|referrer|src)$"
)


def _identity_of_link(link: str) -> str:
    """A link as it tells items apart: without its fragment, and without the query
    parameters that only track (:data:`_TRACKING`)."""
    link = link.split("#", 1)[0]
    base, mark, query = link.partition("?")
    if not mark:
        return link
    kept = [p for p in query.split("&") if p and not _TRACKING.match(p.split("=", 1)[0])]
    return f"{base}?{'&'.join(kept)}" if kept else base


def sort_key(published: Published | None, first_seen: datetime, place: int | None = None) -> str:
    """Where a story stands among others, newest first (the keys sort descending).

    A story of a known time by its instant (UTC ISO); undated ones after every dated
    one. A story of a day only (and an undated one) has no time to stand by among its
    day's: it stands by when it was first seen (a later find first), then by ``place``,
    its place among the stories first seen with it, in the order the run read them
    (:func:`reading_places`; found by review: by their ids, a day's lead story could
    come last). Once written, that part stays (:func:`keeps_place`).
    """
    if published is not None and published.instant is not None:
        return utc_iso(published.instant)
    if published is None:
        head = "0 " + utc_iso(first_seen)
    else:
        head = f"{utc_iso(_shown_time()(published))} {utc_iso(first_seen)}"
    if place is None:
        return head
    return f"{head} {_LAST_PLACE - min(max(place, 0), _LAST_PLACE):09d}"


def reading_places(entries: Sequence[Entry]) -> list[int]:
    """The place (see :func:`sort_key`) of each of a run's new stories, given in the
    order they were read: the sources in turn, each as it lists them, except a source
    that lists them oldest first (the news on an event's page, under the event's own
    story: more of its stories dated after the one before them than before it), read
    from its end, as the others list theirs, newest first (found by review: the earlier
    of two stories of a day on such a page came first)."""
    by_source: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        by_source.setdefault(entry.sources[0].source if entry.sources else "", []).append(index)
    places = [0] * len(entries)
    place = 0
    for members in by_source.values():
        days = [d.day for i in members if (d := entries[i].published) is not None]
        later = sum(after > before for before, after in itertools.pairwise(days))
        oldest_first = later > sum(after < before for before, after in itertools.pairwise(days))
        for index in reversed(members) if oldest_first else members:
            places[index] = place
            place += 1
    return places


def needs_place(published: Published | None) -> bool:
    """Whether a story's sort key has a place part (it has no time to stand by)."""
    return published is None or published.instant is None


_LAST_PLACE = 999_999_999


def keeps_place(stored: str, published: Published | None, first_seen: datetime) -> bool:
    """Whether a story's ``stored`` sort key still stands for it, now that it is
    ``published`` (its day, and when it was first seen, as when the key was made)."""
    head = sort_key(published, first_seen)
    if published is not None and published.instant is not None:
        return stored == head
    return stored == head or (stored.startswith(head) and stored[len(head)] == " ")


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
