"""The store's queries, written once for SQLite and PostgreSQL.

A backend subclasses :class:`SQLStore` and supplies a connection (``db``), how to run
a statement (SQLite's ``?`` placeholders are turned into psycopg's ``%s``), its
:class:`~aggregator.store.migrations.Dialect`, and its transactions. What to write is
decided by :func:`aggregator.store.plan.plan_merge`; this module only writes it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, ClassVar, Self

from aggregator.model import Enclosure, Entry, Provenance, Published, SourceEntry
from aggregator.store.migrations import Dialect
from aggregator.store.plan import (
    IngestReport,
    ItemTold,
    MergePlan,
    Sighting,
    WrittenAhead,
    keeps_place,
    needs_place,
    plan_merge,
    reading_places,
    sort_key,
    told_by,
)
from aggregator.store.words import entry_words, is_one_word, term_words
from aggregator.text import title_key
from aggregator.uri import without_credentials, without_credentials_in

# Entry columns in the order _entry reads them.
ENTRY_COLUMNS = (
    "id, title, published, summary, first_seen, last_seen, link, author, categories, "
    "content_html, enclosures, title_key"
)
# An entry's column values in the order _row gives them (id last, for UPDATE … WHERE id).
ROW_COLUMNS = (
    "title, title_key, published, summary, content_html, link, author, "
    "categories, enclosures, words, first_seen, last_seen, sort_key, id"
)
ZERO = timedelta(0)
CHUNK = 500  # ids or title keys per IN (...) lookup
INSERT_ROWS = 500  # new entries per INSERT statement (fewer when parameters are limited)


def utc_text(when: datetime) -> str:
    """A UTC instant as fixed-width ISO text, so that text order is time order."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _published(text: str | None) -> Published | None:
    if text is None:
        return None
    if len(text) == 10:
        return Published.on_day(date.fromisoformat(text))
    return Published.at(datetime.fromisoformat(text))


def _enclosures_json(enclosures: Sequence[Enclosure]) -> str:
    return json.dumps(
        [[e.url, e.type, e.length, e.thumbnail] for e in enclosures], ensure_ascii=False
    )


def _enclosures(text: str) -> tuple[Enclosure, ...]:
    return tuple(
        Enclosure(without_credentials(url), kind, size, thumbnail)
        for url, kind, size, thumbnail in json.loads(text)
    )


def _entry(row: Sequence[Any], sources: Sequence[Provenance], topics: Sequence[str]) -> Entry:
    """An entry from a row of :data:`ENTRY_COLUMNS`. Its links come without a user name
    and password: links a feed gave relative to an address holding them were stored
    with them before they were resolved without (found by review), and what the store
    gives is published."""
    link, content = row[6], row[9]
    return Entry(
        id=row[0],
        title=row[1],
        published=_published(row[2]),
        summary=row[3],
        sources=tuple(sources),
        first_seen=datetime.fromisoformat(row[4]),
        last_seen=datetime.fromisoformat(row[5]),
        link=without_credentials(link) if link else link,
        author=row[7],
        topics=tuple(topics),
        categories=tuple(json.loads(row[8])),
        content_html=without_credentials_in(content) if content else content,
        enclosures=_enclosures(row[10]),
    )


def _row(
    entry: Entry,
    key: str | None = None,
    now: datetime | None = None,
    stamp: str = "",
    place: int | None = None,
) -> tuple[Any, ...]:
    """An entry's column values, in :data:`ROW_COLUMNS` order (``place``: see
    plan.sort_key).

    ``key`` is the entry's title key when the caller knows it; ``stamp`` is
    ``now.isoformat()``, the text of a first or last seen that is ``now`` itself (as
    both are in a new entry): each written once per run rather than twice per entry.
    """
    if now is not None and not stamp:
        stamp = now.isoformat()
    published = entry.published
    first_seen = entry.first_seen
    last_seen = entry.last_seen
    if published is None:
        published_text = None
        order = sort_key(published, first_seen, place)
    else:
        published_text = published.isoformat()
        instant = published.instant
        # An instant in UTC is its own sort key: the same text, not computed twice.
        zero = instant is not None and instant.utcoffset() == ZERO
        order = published_text if zero else sort_key(published, first_seen, place)
    return (
        entry.title,
        title_key(entry.title) if key is None else key,
        published_text,
        entry.summary,
        entry.content_html,
        entry.link,
        entry.author,
        json.dumps(list(entry.categories), ensure_ascii=False) if entry.categories else "[]",
        _enclosures_json(entry.enclosures) if entry.enclosures else "[]",
        entry_words(entry.title, entry.summary, entry.categories),
        stamp if first_seen is now else first_seen.isoformat(),
        stamp if last_seen is now else last_seen.isoformat(),
        order,
        entry.id,
    )


# Tables a copy moves, parents first, each with its columns (dump and load use them).
TABLES: dict[str, str] = {
    "entries": ROW_COLUMNS,
    "sightings": (
        "entry_id, source, location, line, page_url, first_seen, last_seen, item_id, "
        "item_link, item_mark"
    ),
    "entry_topics": "topic, entry_id, sort_key",
    "fetch_state": "source_key, data",
    "meta": "key, value",
    "source_leases": "source, due, holder, until",
}
ORDER = {
    "entries": "id",
    "sightings": "first_seen, {order}",  # the order sources told a story
    "entry_topics": "topic, entry_id",
    "fetch_state": "source_key",
    "meta": "key",
    "source_leases": "source",
}


class SQLStore:
    """Every store operation in portable SQL; subclasses supply the connection."""

    dialect: ClassVar[Dialect]
    db: Any

    # -- what a backend supplies ------------------------------------------------------------

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (``?`` placeholders); returns a cursor."""
        raise NotImplementedError

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    # -- the connection's life ----------------------------------------------------------------

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta and fetch state ---------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def fetch_state(self, key: str) -> dict[str, Any] | None:
        row = self._execute("SELECT data FROM fetch_state WHERE source_key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def fetch_states(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The fetch states of ``keys`` that are stored, by key: one query per CHUNK keys."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in range(0, len(keys), CHUNK):
            part = keys[chunk : chunk + CHUNK]
            marks = ",".join("?" * len(part))
            for key, data in self._execute(
                f"SELECT source_key, data FROM fetch_state WHERE source_key IN ({marks})", part
            ).fetchall():
                found[key] = dict(json.loads(data))
        return found

    def set_fetch_state(self, key: str, data: dict[str, Any]) -> None:
        self._execute(
            "INSERT INTO fetch_state (source_key, data) VALUES (?, ?) "
            "ON CONFLICT (source_key) DO UPDATE SET data = excluded.data",
            (key, json.dumps(data, ensure_ascii=False, sort_keys=True)),
        )

    # -- entries ----------------------------------------------------------------------------

    def _entries(self, rows: Iterable[Sequence[Any]]) -> list[Entry]:
        """Entries (rows of :data:`ENTRY_COLUMNS`) with their sources and topics."""
        rows = list(rows)
        ids = [row[0] for row in rows]
        sources: dict[str, list[Provenance]] = {i: [] for i in ids}
        topics: dict[str, list[str]] = {i: [] for i in ids}
        order = self.dialect.order_column
        for chunk in range(0, len(ids), CHUNK):
            part = ids[chunk : chunk + CHUNK]
            marks = ",".join("?" * len(part))
            for row in self._execute(
                f"SELECT entry_id, source, location, line, page_url FROM sightings "
                f"WHERE entry_id IN ({marks}) ORDER BY first_seen, {order}",
                part,
            ).fetchall():
                sources[row[0]].append(Provenance(row[1], row[2], row[3], row[4]))
            for row in self._execute(
                f"SELECT entry_id, topic FROM entry_topics WHERE entry_id IN ({marks}) "
                "ORDER BY topic",
                part,
            ).fetchall():
                topics[row[0]].append(row[1])
        return [_entry(row, sources[row[0]], topics[row[0]]) for row in rows]

    def _candidates(self, keys: Iterable[str]) -> dict[str, list[Entry]]:
        """Stored entries by title key (without their sources: merging does not need them)."""
        found: dict[str, list[Entry]] = {}
        keys = sorted(keys)
        for chunk in range(0, len(keys), CHUNK):
            part = keys[chunk : chunk + CHUNK]
            rows = self._execute(
                f"SELECT {ENTRY_COLUMNS} FROM entries "
                f"WHERE title_key IN ({','.join('?' * len(part))}) ORDER BY first_seen, id",
                part,
            )
            for row in rows:
                found.setdefault(row[11], []).append(_entry(row, (), ()))
        return found

    def add(
        self,
        items: Sequence[SourceEntry],
        *,
        authority: str,
        zone: tzinfo,
        now: datetime,
        listed: Mapping[str, Iterable[tuple[str, str | None]]] | None = None,
    ) -> tuple[IngestReport, list[Entry]]:
        """Merge items into the stored stories (call inside ``transaction``); ``listed``:
        by source, the ids of items it lists unchanged (plan.Planner.listing).

        Works in bulk: one lookup per 500 titles, one statement per kind of write.
        Returns counts, and the entries that are new or whose text changed (their
        topics need judging).
        """
        keys = [title_key(item.title) for item in items]  # once each: plan and rows use them
        stored = self._candidates(set(keys))
        told = self.told(told_by(items))
        loaded = [e.id for entries in stored.values() for e in entries]
        ids = self.item_ids([*loaded, *(e.id for _, e in told.values())])
        plan = plan_merge(
            items,
            stored,
            authority=authority,
            zone=zone,
            now=now,
            keys=keys,
            told=told,
            ids=ids,
            listed=listed,
        )
        return self.write_plan(plan, now)

    def candidates(self, keys: Iterable[str]) -> dict[str, list[Entry]]:
        """The stored stories of these title keys, by key (without their sources): what
        a :class:`~aggregator.store.plan.Planner` folds items into."""
        return self._candidates(keys)

    def told(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, Entry]]:
        """The stored story each (source, item id) was sighted with, by pair, with its
        title key (the story without its sources): where a corrected headline belongs
        (aggregator.store.plan)."""
        by_source: dict[str, list[str]] = {}
        for source, item_id in sorted(pairs):
            by_source.setdefault(source, []).append(item_id)
        stories: dict[tuple[str, str], dict[str, Sequence[Any]]] = {}
        columns = ", ".join(f"e.{name.strip()}" for name in ENTRY_COLUMNS.split(","))
        for source, item_ids in by_source.items():
            for chunk in range(0, len(item_ids), CHUNK):
                part = item_ids[chunk : chunk + CHUNK]
                rows = self._execute(
                    f"SELECT s.item_id, {columns} FROM sightings s "
                    "JOIN entries e ON e.id = s.entry_id "
                    f"WHERE s.source = ? AND s.item_id IN ({','.join('?' * len(part))}) "
                    "ORDER BY e.id",
                    [source, *part],
                )
                for row in rows:
                    stories.setdefault((source, row[0]), {}).setdefault(row[1], row[1:])
        # An item id the source gave several stories says nothing of any of them.
        told: dict[tuple[str, str], tuple[str, Entry]] = {}
        for pair, found in stories.items():
            if len(found) == 1:
                [row] = found.values()
                told[pair] = (row[11], _entry(row, (), ()))
        return told

    def item_ids(self, entry_ids: Iterable[str]) -> dict[str, dict[str, ItemTold]]:
        """The item each source told each of these stories with: its id, link and mark
        (each None when not known), by story id, then source (aggregator.store.plan)."""
        found: dict[str, dict[str, ItemTold]] = {}
        ids = sorted(set(entry_ids))
        for chunk in range(0, len(ids), CHUNK):
            part = ids[chunk : chunk + CHUNK]
            for entry_id, source, item_id, link, mark in self._execute(
                "SELECT entry_id, source, item_id, item_link, item_mark FROM sightings "
                f"WHERE entry_id IN ({','.join('?' * len(part))})",
                part,
            ).fetchall():
                found.setdefault(entry_id, {})[source] = (item_id, link, mark)
        return found

    def write_plan(
        self, plan: MergePlan, now: datetime, ahead: WrittenAhead | None = None
    ) -> tuple[IngestReport, list[Entry]]:
        """Write a merge plan made against this store as it was before the transaction
        (call inside ``transaction``; ``ahead``: what of the plan was written ahead in
        it, see aggregator.store.ahead); returns what :meth:`add` returns."""
        resighted = self._resighted(plan)
        self.apply_plan(plan, now, ahead)
        # New stories carry every source they were read from; a stored one that changed,
        # or was told again by a new source, is read back with all of its sources (the
        # plan knows only this run's), for judging: a source's topic hint counts.
        again = [entry.id for entry in plan.changed] + resighted
        rows = []
        for chunk in range(0, len(again), CHUNK):
            part = again[chunk : chunk + CHUNK]
            marks = ",".join("?" * len(part))
            rows += self._execute(
                f"SELECT {ENTRY_COLUMNS} FROM entries WHERE id IN ({marks})", part
            ).fetchall()
        return plan.report, [*plan.inserted, *self._entries(rows)]

    def _resighted(self, plan: MergePlan) -> list[str]:
        """Stories only seen again, but by a source new to them or at a new place (another
        line of a saved page, another page URL): what their pages show, and the topics a
        source's hint gives them, change with that. Read before the plan is written."""
        seen = set(plan.seen)
        told = [(entry_id, p) for entry_id, p, *_ in plan.sightings if entry_id in seen]
        if not told:
            return []
        ids = sorted({entry_id for entry_id, _ in told})
        where: dict[tuple[str, str], tuple[Any, ...]] = {}
        for chunk in range(0, len(ids), CHUNK):
            part = ids[chunk : chunk + CHUNK]
            for row in self._execute(
                "SELECT entry_id, source, location, line, page_url FROM sightings "
                f"WHERE entry_id IN ({','.join('?' * len(part))})",
                part,
            ).fetchall():
                where[(row[0], row[1])] = (row[2], row[3], row[4])
        return sorted(
            {
                entry_id
                for entry_id, p in told
                if where.get((entry_id, p.source)) != (p.location, p.line, p.page_url)
            }
        )

    def _max_parameters(self) -> int:
        """How many ``?`` one statement may hold."""
        getlimit = getattr(self.db, "getlimit", None)  # sqlite3's connection (Python 3.11+)
        if getlimit is None:
            return 65_535  # PostgreSQL's wire protocol
        import sqlite3

        return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))  # 999 before SQLite 3.32

    def prepare(self, entries: Iterable[tuple[Entry, str]], now: datetime) -> None:
        """Make ahead the rows these new entries (each with its title key) are written as,
        should :meth:`write_plan` write them at ``now``: what a run does while it waits
        for its parser workers rather than after (pipeline.Folding). A row is used only
        for the very entry it was made from (the same object: entries are immutable) and
        title key; a story folded again since is made anew. (``now`` only spares making
        the text of a first or last seen that is ``now`` itself again: see :func:`_row`.)"""
        prepared = self.__dict__.setdefault("_prepared", {})
        stamp = now.isoformat()
        for entry, key in entries:
            prepared[entry.id] = (entry, key, _row(entry, key, now, stamp))

    def prepared_row(self, entry: Entry) -> tuple[Any, ...] | None:
        """The row :meth:`prepare` made for this very entry, if it did."""
        made = self.__dict__.get("_prepared", {}).get(entry.id)
        return made[2] if made is not None and made[0] is entry else None

    def _rows_of(
        self, entries: Sequence[Entry], keys: Mapping[str, str], now: datetime, stamp: str
    ) -> list[tuple[Any, ...]]:
        """The rows of new ``entries``: those :meth:`prepare` made for them, the others
        made now."""
        prepared: dict[str, Any] = self.__dict__.pop("_prepared", {})
        rows = []
        # Their places, once one has no time of its own (only such a story's key has a
        # place: a cold run's 10,000 stories, each with a time, never need them).
        places: list[int] | None = None
        for index, entry in enumerate(entries):
            key = keys.get(entry.id)
            made = prepared.get(entry.id)
            if not needs_place(entry.published):
                if made is None or made[0] is not entry or made[1] != key:
                    rows.append(_row(entry, key, now, stamp))
                else:
                    rows.append(made[2])
                continue
            if places is None:
                places = reading_places(entries)
            place = places[index]
            if made is None or made[0] is not entry or made[1] != key:
                rows.append(_row(entry, key, now, stamp, place))
            else:  # (made before the run's order was known)
                row = made[2]
                rows.append(
                    (*row[:-2], sort_key(entry.published, entry.first_seen, place), row[-1])
                )
        return rows

    def apply_plan(self, plan: MergePlan, now: datetime, ahead: WrittenAhead | None = None) -> None:
        """Write ``plan`` (``ahead``: what of it was written ahead, in this transaction)."""
        stamp = now.isoformat()
        keys = plan.title_keys
        rows = self._rows_of(plan.inserted, keys, now, stamp)
        again: list[tuple[Any, ...]] = []  # new stories written ahead, since changed
        if ahead is not None and ahead.rows:
            fresh = []
            for row in rows:
                before = ahead.rows.get(row[-1])
                if before is None:
                    fresh.append(row)
                elif before != row:
                    again.append(row)
            rows = fresh
        self.write_entries(rows)
        rows = self._keeping_places(
            plan.changed, [_row(e, keys.get(e.id), now, stamp) for e in plan.changed]
        )
        rows += again
        self._executemany(
            "UPDATE entries SET title = ?, title_key = ?, published = ?, summary = ?, "
            "content_html = ?, link = ?, author = ?, categories = ?, enclosures = ?, words = ?, "
            "first_seen = ?, last_seen = ?, sort_key = ? WHERE id = ?",
            rows,
        )
        self._executemany(
            "UPDATE entry_topics SET sort_key = ? WHERE entry_id = ?",
            [(r[-2], r[-1]) for r in rows],  # sort_key, id
        )
        self._executemany(
            "UPDATE entries SET last_seen = ? WHERE id = ?", [(stamp, i) for i in plan.seen]
        )
        written = ahead.sightings if ahead is not None else frozenset()
        self.write_sightings(
            [s for number, s in enumerate(plan.sightings) if number not in written], stamp
        )

    def write_entries(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert new entries' rows (made by :func:`_row`)."""
        # Many rows per INSERT, not one statement per row: on SQLite each statement that
        # writes the search index (through the entries_search_insert trigger) makes FTS5
        # flush its pending terms to a new segment, and merge them: 150 µs an entry one
        # at a time, 50 µs at 500 a statement.
        self._in_statements_of_many(f"INSERT INTO entries ({ROW_COLUMNS}) VALUES {{values}}", rows)

    def write_sightings(self, sightings: Iterable[Sighting], stamp: str) -> None:
        """Write where these stories were read (``stamp``: now, as text), each sighting
        over the one its story had from the same source (an earlier one of these too)."""
        self._insert_rows(
            "INSERT INTO sightings (entry_id, source, location, line, page_url, first_seen, "
            "last_seen, item_id, item_link, item_mark) VALUES {values} "
            "ON CONFLICT (entry_id, source) DO UPDATE SET "
            "location = excluded.location, line = excluded.line, page_url = excluded.page_url, "
            "last_seen = excluded.last_seen, item_id = excluded.item_id, "
            "item_link = excluded.item_link, item_mark = excluded.item_mark",
            [
                (entry_id, p.source, p.location, p.line, p.page_url, stamp, stamp, *told)
                for entry_id, p, *told in sightings
            ],
        )

    def write_labels(self, labels: Sequence[tuple[str, str, str]]) -> None:
        """Label new stories, which have no labels yet: (topic, entry id, sort key)."""
        self._insert_rows(
            "INSERT INTO entry_topics (topic, entry_id, sort_key) VALUES {values}", labels
        )

    def _insert_rows(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """``statement`` (``{values}`` where its rows go) for each of ``rows``. On SQLite
        in statements of many rows, in order: sqlite3's executemany takes the
        interpreter's lock again for every row, which a thread writing ahead
        (aggregator.store.ahead) then waits for, up to 5 ms a row, while the run reads.
        On PostgreSQL a row each (psycopg sends them together; there an upsert may not
        meet a row it wrote itself)."""
        if self.dialect.name != "sqlite":
            if rows:
                one = f"({','.join('?' * len(rows[0]))})"
                self._executemany(statement.format(values=one), rows)
            return
        self._in_statements_of_many(statement, rows)

    def _in_statements_of_many(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """``statement`` (``{values}`` where its rows go) for ``rows``, in order, as many
        to a statement as its parameters allow (INSERT_ROWS at most)."""
        if not rows:
            return
        width = len(rows[0])
        one = f"({','.join('?' * width)})"
        per = max(1, min(INSERT_ROWS, self._max_parameters() // width))
        for start in range(0, len(rows), per):
            part = rows[start : start + per]
            self._execute(
                statement.format(values=",".join([one] * len(part))),
                [value for row in part for value in row],
            )

    def _sort_keys(self, ids: Sequence[str]) -> dict[str, str]:
        """The sort key each of these stored entries was written with (one lookup per
        chunk); an id not stored is left out."""
        keys: dict[str, str] = {}
        for chunk in range(0, len(ids), CHUNK):
            part = ids[chunk : chunk + CHUNK]
            keys.update(
                self._execute(
                    f"SELECT id, sort_key FROM entries WHERE id IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
            )
        return keys

    def _keeping_places(
        self, entries: Sequence[Entry], rows: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        """The rows of stored ``entries``, each with the sort key it was written with
        while that still stands for it (plan.keeps_place): a story of a day keeps its
        place among its day's, however far down a page saved since lists it."""
        stored = self._sort_keys([entry.id for entry in entries])
        kept = []
        for entry, row in zip(entries, rows, strict=True):
            before = stored.get(entry.id)
            if before is not None and keeps_place(before, entry.published, entry.first_seen):
                row = (*row[:-2], before, row[-1])  # sort_key, id
            kept.append(row)
        return kept

    def rename_source(self, old: str, new: str, location: str | None = None) -> None:
        """What ``old`` told (read at ``location``, or anywhere) is told by ``new`` (a
        source renamed in the config). A story both told keeps the sighting under the
        new name."""
        where, values = ("", ()) if location is None else (" AND location = ?", (location,))
        self._execute(
            f"DELETE FROM sightings WHERE source = ?{where} AND entry_id IN "
            "(SELECT entry_id FROM sightings WHERE source = ?)",
            (old, *values, new),
        )
        self._execute(
            f"UPDATE sightings SET source = ? WHERE source = ?{where}", (new, old, *values)
        )

    def touch_source(
        self,
        source: str,
        now: datetime,
        items: Sequence[tuple[str | None, str | None]] | None = None,
    ) -> None:
        """The stories of ``items`` (each an item's id and mark: what ``source`` lists and
        this run did not read) are still current; None: every story the source told.

        A sighting is the item's when its mark is one of theirs (the mark is of the
        item's title and link as the source last told them), or, written before marks
        were kept, when its item id is one of theirs; one written before marks, of an
        item without an id, is kept current (which item it was is not known). A story
        the source no longer lists
        is left to retention: touching all of them kept such stories for ever, as long
        as the source listed anything unchanged (found by review)."""
        stamp = now.isoformat()
        if items is None:
            self._execute("UPDATE sightings SET last_seen = ? WHERE source = ?", (stamp, source))
        else:
            marks = sorted({mark for _, mark in items if mark is not None})
            ids = sorted({item for item, _ in items if item is not None})
            for condition, values in (
                ("item_mark IN", marks),
                ("item_mark IS NULL AND item_id IN", ids),
            ):
                for start in range(0, len(values), CHUNK):
                    chunk = values[start : start + CHUNK]
                    self._execute(
                        f"UPDATE sightings SET last_seen = ? WHERE source = ? AND {condition} "
                        f"({', '.join('?' * len(chunk))})",
                        (stamp, source, *chunk),
                    )
            # Written before items kept marks, and of an item without an id: not known
            # which item it was, so kept current as before, until the item is read again
            # (found by review: such stories were forgotten while still listed).
            self._execute(
                "UPDATE sightings SET last_seen = ? WHERE source = ? AND item_mark IS NULL "
                "AND item_id IS NULL",
                (stamp, source),
            )
        self._execute(
            "UPDATE entries SET last_seen = ? "
            "WHERE id IN (SELECT entry_id FROM sightings WHERE source = ? AND last_seen = ?)",
            (stamp, source, stamp),
        )

    def set_topics(self, entries: Iterable[Entry], *, new: Collection[str] = ()) -> None:
        """Label ``entries`` with their topics, replacing what they had (``new``: ids of
        stories written in this transaction, which have no labels to replace)."""
        entries = list(entries)
        self._executemany(
            "DELETE FROM entry_topics WHERE entry_id = ?",
            [(e.id,) for e in entries if e.id not in new],
        )
        # Each label sorts as its story does (the key it was written with: _row), read in
        # one lookup per chunk of stories: an INSERT … SELECT of each label's story took
        # five times as long (35 µs a label against 7 on a cold run's 8,500).
        keys = self._sort_keys([entry.id for entry in entries if entry.topics])
        self.write_labels(
            [
                (topic, entry.id, keys[entry.id])
                for entry in entries
                if entry.id in keys
                for topic in entry.topics
            ]
        )

    def all_entries(self, batch: int = 2000) -> Iterator[list[Entry]]:
        """Every stored entry, a batch at a time (for re-judging topics)."""
        last = ""
        while True:
            rows = self._execute(
                f"SELECT {ENTRY_COLUMNS} FROM entries WHERE id > ? ORDER BY id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            yield self._entries(rows)
            last = rows[-1][0]

    def newest(self, limit: int, topic: str | None = None) -> list[Entry]:
        """The newest entries, of one topic or of all; dated before undated."""
        if topic is None:
            rows = self._execute(
                f"SELECT {ENTRY_COLUMNS} FROM entries ORDER BY sort_key DESC, id LIMIT ?",
                (limit,),
            ).fetchall()
        else:
            columns = ", ".join(f"entries.{c.strip()}" for c in ENTRY_COLUMNS.split(","))
            rows = self._execute(
                f"SELECT {columns} FROM entry_topics "
                "JOIN entries ON entries.id = entry_topics.entry_id "
                "WHERE entry_topics.topic = ? "
                "ORDER BY entry_topics.sort_key DESC, entries.id LIMIT ?",
                (topic, limit),
            ).fetchall()
        return self._entries(rows)

    def search(
        self,
        terms: Sequence[str],
        *,
        exclude: Sequence[str] = (),
        topic: str | None = None,
        limit: int,
        after: Entry | None = None,
        either: bool = False,
        position: tuple[str, str] | None = None,
    ) -> list[Entry]:
        """Up to ``limit`` entries, newest first (after ``after``, to read on; or after
        ``position``, a :meth:`position` kept from an earlier read), among
        which are all those of ``topic`` (or of all) that hold every term (``either``:
        one of them at least) and no excluded term as whole words: the index narrows,
        the caller's exact patterns (:func:`aggregator.site.search.search_pattern`)
        decide. A term the index cannot help with (:func:`~aggregator.store.words.term_words` is
        None) narrows nothing (of ``either`` terms, nothing at all: a story may hold
        that one only); an excluded term leaves entries out only when it is one word
        (:func:`~aggregator.store.words.is_one_word`), where the index is exact.
        """
        looked_up = [term_words(term) for term in terms]
        required = [w for w in looked_up if w is not None]
        if either and None in looked_up:
            required = []
        excluded = [w[0] for t in exclude if is_one_word(t) and (w := term_words(t))]
        where: list[str] = []
        params: list[Any] = []
        query = self._either_query(required) if either else self._all_query(required)
        if required and not self._common(query):
            where.append(self._holding())
            params.append(query)
        if excluded:
            where.append(f"NOT {self._holding()}")
            params.append(self._any_query(excluded))
        if topic is not None:
            where.append(
                "EXISTS (SELECT 1 FROM entry_topics t "
                "WHERE t.topic = ? AND t.entry_id = entries.id)"
            )
            params.append(topic)
        if after is not None:  # read on after it, by the key it was read with
            position = self.position(after)
        if position is not None:
            key, last = position
            where.append("(entries.sort_key < ? OR (entries.sort_key = ? AND entries.id > ?))")
            params += (key, key, last)
        condition = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._execute(
            f"SELECT {ENTRY_COLUMNS}, entries.sort_key FROM entries {condition}"
            "ORDER BY entries.sort_key DESC, entries.id LIMIT ?",
            (*params, limit),
        ).fetchall()
        # Each one's key as read, for the next batch to read on from (found by review:
        # a story deleted between two batches, its key made again without its place,
        # skipped the rest of its day).
        self.__dict__["_read_keys"] = {row[0]: row[-1] for row in rows}
        return self._entries(rows)

    def position(self, entry: Entry) -> tuple[str, str]:
        """Where ``entry`` stands in a search's order: the key the last batch read it
        with (else its stored key), and its id."""
        key = self.__dict__.get("_read_keys", {}).get(entry.id) or self._stored_key(entry)
        return key, entry.id

    def _stored_key(self, entry: Entry) -> str:
        found = self._execute("SELECT sort_key FROM entries WHERE id = ?", (entry.id,)).fetchone()
        return sort_key(entry.published, entry.first_seen) if found is None else str(found[0])

    def _common(self, query: str) -> bool:
        """Whether so many entries hold the words that reading the newest entries
        finds matches sooner than sorting every entry the index names (SQLite; the
        PostgreSQL planner weighs that itself)."""
        return False

    def _holding(self) -> str:
        """A condition on ``entries``: the entry is among those the index query (its
        one ``?``) finds."""
        raise NotImplementedError

    def _all_query(self, terms: Sequence[Sequence[str]]) -> str:
        """The index query for entries holding every term (each a list of words)."""
        raise NotImplementedError

    def _either_query(self, terms: Sequence[Sequence[str]]) -> str:
        """The index query for entries holding one term at least (each a list of words)."""
        raise NotImplementedError

    def _any_query(self, words: Sequence[str]) -> str:
        """The index query for entries holding any of ``words``."""
        raise NotImplementedError

    def entry(self, entry_id: str) -> Entry | None:
        """The entry with this id, if the store has it."""
        rows = self._execute(
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE id = ?", (entry_id,)
        ).fetchall()
        found = self._entries(rows)
        return found[0] if found else None

    def find(self, text: str, limit: int = 20) -> list[Entry]:
        """Entries by id, by title, or by a part of their title."""
        exact = self.entry(text)
        if exact is not None:
            return [exact]
        select = f"SELECT {ENTRY_COLUMNS} FROM entries"
        rows = self._execute(
            f"{select} WHERE title_key = ? ORDER BY sort_key DESC, id LIMIT ?",
            (title_key(text), limit),
        ).fetchall()
        if not rows:
            pattern = (
                "%"
                + title_key(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            # (Or the title as shown: a corrected headline keeps its first title's key.)
            rows = self._execute(
                f"{select} WHERE title_key LIKE ? ESCAPE '\\' OR title = ? "
                "ORDER BY sort_key DESC, id LIMIT ?",
                (pattern, text.strip(), limit),
            ).fetchall()
        return self._entries(rows)

    def prune(self, older_than: datetime) -> int:
        """Forget entries no source has shown since ``older_than``."""
        cursor = self._execute("DELETE FROM entries WHERE last_seen < ?", (older_than.isoformat(),))
        return int(cursor.rowcount)

    def counts_by_source(self) -> dict[str, int]:
        rows = self._execute("SELECT source, COUNT(*) FROM sightings GROUP BY source")
        return {str(source): int(count) for source, count in rows}

    def source_summary(self) -> dict[str, tuple[int, int, str | None]]:
        """Per source name: stories it has shown, stories no other source told, and
        when it last showed any (ISO 8601). Reads only."""
        rows = self._execute(
            "SELECT s.source, COUNT(*), SUM(CASE WHEN c.n = 1 THEN 1 ELSE 0 END), "
            "MAX(s.last_seen) FROM sightings s "
            "JOIN (SELECT entry_id, COUNT(*) AS n FROM sightings GROUP BY entry_id) c "
            "ON c.entry_id = s.entry_id GROUP BY s.source"
        )
        return {str(r[0]): (int(r[1]), int(r[2] or 0), r[3]) for r in rows}

    def server_time(self) -> datetime | None:
        """The database server's clock, for a store many machines share (one clock for
        the time of every change); None for a store of one machine, whose own clock
        serves."""
        return None

    def last_seen_of(self, sources: Sequence[str]) -> dict[str, datetime]:
        """When each of these sources last showed any story (its sightings' latest
        ``last_seen``), for those that showed one. Reads only."""
        found: dict[str, datetime] = {}
        for name in sources:
            row = self._execute(
                "SELECT MAX(last_seen) FROM sightings WHERE source = ?", (name,)
            ).fetchone()
            if row is not None and row[0]:
                found[name] = datetime.fromisoformat(str(row[0]))
        return found

    def counts(self) -> dict[str, int]:
        total = self._execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        by_topic = self._execute(
            "SELECT topic, COUNT(*) FROM entry_topics GROUP BY topic"
        ).fetchall()
        return {"all": int(total), **{str(k): int(v) for k, v in by_topic}}

    # -- source leases ------------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[object]:
        """All or nothing (each backend's own)."""
        raise NotImplementedError

    def _claim_rows(self, sources: Sequence[str], now: datetime, due_or_not: bool) -> list[str]:
        """The sources that may be claimed: not held by a live lease, and due unless
        ``due_or_not`` (inside a transaction; PostgreSQL locks them)."""
        raise NotImplementedError

    def claim(
        self,
        sources: Sequence[str],
        *,
        holder: str,
        now: datetime,
        lease_seconds: float,
        due_or_not: bool = False,
    ) -> list[str]:
        """Lease whichever of ``sources`` are due (any, ``due_or_not``) and free, in one
        transaction (each backend's _claim_rows picks them its own way)."""
        with self.transaction():
            self._executemany(
                "INSERT INTO source_leases (source, due) VALUES (?, ?) "
                "ON CONFLICT (source) DO NOTHING",
                [(s, utc_text(now)) for s in sources],
            )
            free = set(self._claim_rows(sources, now, due_or_not))
            claimed = [s for s in sources if s in free]
            until = utc_text(now + timedelta(seconds=lease_seconds))
            self._executemany(
                "UPDATE source_leases SET holder = ?, until = ? WHERE source = ?",
                [(holder, until, s) for s in claimed],
            )
            return claimed

    def _release(self, source: str, *, holder: str, due: datetime) -> None:
        # Only the holder's own lease: one that expired and was claimed by another
        # worker since is theirs now.
        self._execute(
            "UPDATE source_leases SET due = ?, holder = NULL, until = NULL "
            "WHERE source = ? AND holder = ?",
            (utc_text(due), source, holder),
        )

    def due(self, source: str) -> datetime | None:
        row = self._execute("SELECT due FROM source_leases WHERE source = ?", (source,)).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    # -- copying ------------------------------------------------------------------------------

    def _dump_query(self, table: str) -> str:
        order = ORDER[table].format(order=self.dialect.order_column)
        return f"SELECT {TABLES[table]} FROM {table} ORDER BY {order}"

    def dump(self, table: str, batch: int = 1000) -> Iterator[tuple[Any, ...]]:
        """Every row of ``table``, in a stable order, ``batch`` rows at a time (SQLite's
        cursor steps through the file: nothing more is read ahead)."""
        cursor = self._execute(self._dump_query(table))
        while rows := cursor.fetchmany(batch):
            yield from (tuple(row) for row in rows)

    def rows(self, table: str) -> int:
        if table not in TABLES:  # names come from TABLES only: never SQL from outside
            raise ValueError(f"no table {table!r}")
        return int(self._execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def load(self, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
        columns = TABLES[table]
        marks = ",".join("?" * len(columns.split(",")))
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == 1000:
                self._executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", batch)
                batch = []
        self._executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", batch)
