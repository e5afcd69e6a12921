"""What a run changes in the store, decided once for every backend.

:mod:`aggregator.dedupe` says when two tellings are one story and how they merge;
:func:`plan_merge` applies that policy to one run's items against the stories already
stored, and returns a :class:`MergePlan`: which entries to insert, which to rewrite,
which were only seen again, and every sighting. A backend only writes the plan, so the
merge policy cannot drift between SQLite and PostgreSQL. Pure: no I/O, ``now`` passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo

from aggregator.dedupe import choose, merge_into, new_entry
from aggregator.model import Entry, Provenance, Published, SourceEntry
from aggregator.text import title_key


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
    sightings: tuple[tuple[str, Provenance], ...]  # (entry id, where it was read)

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
) -> MergePlan:
    """Merge ``items`` into ``stored`` (stored entries by title key, without sources)."""
    candidates_by_key = {key: list(entries) for key, entries in stored.items()}
    inserted: dict[str, Entry] = {}
    changed: dict[str, Entry] = {}
    seen: set[str] = set()
    sightings: list[tuple[str, Provenance]] = []
    for item in items:
        candidates = candidates_by_key.setdefault(title_key(item.title), [])
        found = choose(candidates, item, zone)
        if found is None:
            entry = new_entry(item, authority=authority, zone=zone, now=now)
            # Same title and day already stored under this id: the same story.
            found = next((c for c in candidates if c.id == entry.id), None)
        if found is None:
            inserted[entry.id] = entry
            candidates.append(entry)
        else:
            entry = merge_into(found, item, now)
            candidates[candidates.index(found)] = entry
            if entry.id in inserted:
                inserted[entry.id] = entry
            elif replace(entry, last_seen=found.last_seen, sources=found.sources) != found:
                changed[entry.id] = entry
            else:
                seen.add(entry.id)
        sightings.append((entry.id, item.provenance))
    return MergePlan(
        tuple(inserted.values()),
        tuple(changed.values()),
        tuple(sorted(seen - changed.keys())),
        tuple(sightings),
    )


def sort_key(published: Published | None, first_seen: datetime) -> str:
    """Dated entries by the instant feeds show (UTC ISO), undated ones after all of them."""
    if published is None:
        return "0 " + first_seen.astimezone(UTC).isoformat()
    from aggregator.render import shown_time

    return shown_time(published).astimezone(UTC).isoformat()


def retention_cutoff(now: datetime, days: int) -> datetime | None:
    return None if days <= 0 else now - timedelta(days=days)
