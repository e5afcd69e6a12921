"""The lasting store: every story ever seen, where it came from, and each feed's fetch state.

SQLite in WAL mode, so a cron run and a running server can share it: readers
never wait for a writer, and writers wait (up to ``timeout``) for each other.
Each run applies what it read in one transaction, so a run that dies half way
leaves the store as it was before that run. The schema is versioned
(``PRAGMA user_version``); :data:`MIGRATIONS` brings an older file up to date.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from aggregator.dedupe import choose, merge_into, new_entry
from aggregator.errors import StoreError, WriteError, os_advice
from aggregator.model import Enclosure, Entry, Provenance, Published, SourceEntry
from aggregator.text import title_key

# Each step takes the schema from version N to N+1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE entries (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        title_key TEXT NOT NULL,
        published TEXT,               -- ISO 8601: a day, or an instant with offset
        summary TEXT NOT NULL,
        content_html TEXT,
        link TEXT,
        author TEXT,
        categories TEXT NOT NULL,     -- JSON array
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        sort_key TEXT NOT NULL        -- newest first, undated entries after dated ones
    );
    CREATE INDEX entries_by_title ON entries (title_key);
    CREATE INDEX entries_by_age ON entries (sort_key DESC, id);
    CREATE TABLE sightings (          -- every source an entry was read from
        entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        location TEXT NOT NULL,
        line INTEGER,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        PRIMARY KEY (entry_id, source)
    );
    CREATE INDEX sightings_by_source ON sightings (source);
    CREATE TABLE entry_topics (
        topic TEXT NOT NULL,
        entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
        sort_key TEXT NOT NULL,
        PRIMARY KEY (topic, entry_id)
    );
    CREATE INDEX entry_topics_by_age ON entry_topics (topic, sort_key DESC, entry_id);
    CREATE TABLE fetch_state (
        source_key TEXT PRIMARY KEY,
        data TEXT NOT NULL            -- JSON
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: re-judging an entry's topics looks them up by entry, not by topic.
    """
    CREATE INDEX entry_topics_by_entry ON entry_topics (entry_id);
    """,
    # 3: each entry's media files (a JSON array), and the web page a snapshot was saved from.
    """
    ALTER TABLE entries ADD COLUMN enclosures TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sightings ADD COLUMN page_url TEXT;
    """,
)


def sort_key(published: Published | None, first_seen: datetime) -> str:
    """Dated entries by the instant feeds show (UTC ISO), undated ones after all of them."""
    if published is None:
        return "0 " + first_seen.astimezone(UTC).isoformat()
    from aggregator.render import shown_time

    return shown_time(published).astimezone(UTC).isoformat()


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
        Enclosure(url, kind, size, thumbnail) for url, kind, size, thumbnail in json.loads(text)
    )


@dataclass(frozen=True, slots=True)
class IngestReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


class Store:
    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as error:
            raise StoreError(f"{path}: cannot open the store: {_advice(error)}") from error
        except OSError as error:
            raise StoreError(f"{path}: cannot open the store: {os_advice(error)}") from error

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing; writers queue behind each other (BEGIN IMMEDIATE).

        A write the file system refuses (disk full, read-only, permissions) rolls
        back and raises :class:`~aggregator.errors.WriteError` naming the store.
        """
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise WriteError(f"{self.path}: cannot write the store: {_advice(error)}") from error

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this aggregator "
                f"understands ({len(MIGRATIONS)}); upgrade the aggregator"
            )
        for number in range(version, len(MIGRATIONS)):
            with self.transaction() as db:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    # -- meta and fetch state ------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def fetch_state(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT data FROM fetch_state WHERE source_key = ?", (key,)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def set_fetch_state(self, key: str, data: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO fetch_state (source_key, data) VALUES (?, ?)",
            (key, json.dumps(data, ensure_ascii=False, sort_keys=True)),
        )

    # -- entries --------------------------------------------------------------------------

    @staticmethod
    def _entry(row: sqlite3.Row, sources: Sequence[Provenance], topics: Sequence[str]) -> Entry:
        return Entry(
            id=row["id"],
            title=row["title"],
            published=_published(row["published"]),
            summary=row["summary"],
            sources=tuple(sources),
            first_seen=datetime.fromisoformat(row["first_seen"]),
            last_seen=datetime.fromisoformat(row["last_seen"]),
            link=row["link"],
            author=row["author"],
            topics=tuple(topics),
            categories=tuple(json.loads(row["categories"])),
            content_html=row["content_html"],
            enclosures=_enclosures(row["enclosures"]),
        )

    def _entries(self, rows: Iterable[sqlite3.Row]) -> list[Entry]:
        """Entries with their sources and topics."""
        rows = list(rows)
        ids = [row["id"] for row in rows]
        sources: dict[str, list[Provenance]] = {i: [] for i in ids}
        topics: dict[str, list[str]] = {i: [] for i in ids}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            for row in self.db.execute(
                f"SELECT entry_id, source, location, line, page_url FROM sightings "
                f"WHERE entry_id IN ({marks}) ORDER BY first_seen, rowid",
                part,
            ):
                sources[row[0]].append(Provenance(row[1], row[2], row[3], row[4]))
            for row in self.db.execute(
                f"SELECT entry_id, topic FROM entry_topics WHERE entry_id IN ({marks}) "
                "ORDER BY topic",
                part,
            ):
                topics[row[0]].append(row[1])
        return [self._entry(row, sources[row["id"]], topics[row["id"]]) for row in rows]

    @staticmethod
    def _row(entry: Entry) -> tuple[Any, ...]:
        """An entry's column values, in UPDATE order (id last)."""
        return (
            entry.title,
            title_key(entry.title),
            None if entry.published is None else entry.published.isoformat(),
            entry.summary,
            entry.content_html,
            entry.link,
            entry.author,
            json.dumps(list(entry.categories), ensure_ascii=False),
            _enclosures_json(entry.enclosures),
            entry.first_seen.isoformat(),
            entry.last_seen.isoformat(),
            sort_key(entry.published, entry.first_seen),
            entry.id,
        )

    def _candidates(self, keys: Iterable[str]) -> dict[str, list[Entry]]:
        """Stored entries by title key (without their sources: merging does not need them)."""
        found: dict[str, list[Entry]] = {}
        keys = list(keys)
        for chunk in range(0, len(keys), 500):
            part = keys[chunk : chunk + 500]
            rows = self.db.execute(
                f"SELECT * FROM entries WHERE title_key IN ({','.join('?' * len(part))})", part
            )
            for row in rows:
                found.setdefault(row["title_key"], []).append(self._entry(row, (), ()))
        return found

    def add(
        self, items: Sequence[SourceEntry], *, authority: str, zone: tzinfo, now: datetime
    ) -> tuple[IngestReport, list[Entry]]:
        """Merge items into the stored stories (call inside :meth:`transaction`).

        Works in bulk: one lookup per 500 titles, one statement per kind of write.
        Returns counts, and the entries that are new or whose text changed (their
        topics need judging).
        """
        stored = self._candidates({title_key(item.title) for item in items})
        inserted: dict[str, Entry] = {}
        changed: dict[str, Entry] = {}
        seen: set[str] = set()
        sightings: list[tuple[Any, ...]] = []
        stamp = now.isoformat()
        for item in items:
            key = title_key(item.title)
            candidates = stored.setdefault(key, [])
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
            source = item.provenance
            sightings.append(
                (
                    entry.id,
                    source.source,
                    source.location,
                    source.line,
                    source.page_url,
                    stamp,
                    stamp,
                )
            )
        columns = "title, title_key, published, summary, content_html, link, author, "
        columns += "categories, enclosures, first_seen, last_seen, sort_key, id"
        self.db.executemany(
            f"INSERT INTO entries ({columns}) VALUES ({','.join('?' * 13)})",
            [self._row(e) for e in inserted.values()],
        )
        rows = [self._row(e) for e in changed.values()]
        self.db.executemany(
            "UPDATE entries SET title = ?, title_key = ?, published = ?, summary = ?, "
            "content_html = ?, link = ?, author = ?, categories = ?, enclosures = ?, "
            "first_seen = ?, last_seen = ?, sort_key = ? WHERE id = ?",
            rows,
        )
        self.db.executemany(
            "UPDATE entry_topics SET sort_key = ? WHERE entry_id = ?",
            [(r[-2], r[-1]) for r in rows],  # sort_key, id
        )
        seen -= changed.keys()
        self.db.executemany(
            "UPDATE entries SET last_seen = ? WHERE id = ?", [(stamp, i) for i in sorted(seen)]
        )
        self.db.executemany(
            "INSERT INTO sightings (entry_id, source, location, line, page_url, first_seen, "
            "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (entry_id, source) DO UPDATE SET "
            "location = excluded.location, line = excluded.line, page_url = excluded.page_url, "
            "last_seen = excluded.last_seen",
            sightings,
        )
        report = IngestReport(len(inserted), len(changed), len(seen))
        return report, [*inserted.values(), *changed.values()]

    def touch_source(self, source: str, now: datetime) -> None:
        """A source answered "not modified": its entries are still current."""
        stamp = now.isoformat()
        self.db.execute("UPDATE sightings SET last_seen = ? WHERE source = ?", (stamp, source))
        self.db.execute(
            "UPDATE entries SET last_seen = ? "
            "WHERE id IN (SELECT entry_id FROM sightings WHERE source = ?)",
            (stamp, source),
        )

    def set_topics(self, entries: Iterable[Entry]) -> None:
        entries = list(entries)
        self.db.executemany(
            "DELETE FROM entry_topics WHERE entry_id = ?", [(e.id,) for e in entries]
        )
        self.db.executemany(
            "INSERT INTO entry_topics (topic, entry_id, sort_key) VALUES (?, ?, ?)",
            [
                (topic, entry.id, sort_key(entry.published, entry.first_seen))
                for entry in entries
                for topic in entry.topics
            ],
        )

    def all_entries(self, batch: int = 2000) -> Iterator[list[Entry]]:
        """Every stored entry, a batch at a time (for re-judging topics)."""
        last = ""
        while True:
            rows = self.db.execute(
                "SELECT * FROM entries WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            yield self._entries(rows)
            last = rows[-1]["id"]

    def newest(self, limit: int, topic: str | None = None) -> list[Entry]:
        """The newest entries, of one topic or of all; dated before undated."""
        if topic is None:
            rows = self.db.execute(
                "SELECT * FROM entries ORDER BY sort_key DESC, id LIMIT ?", (limit,)
            )
        else:
            rows = self.db.execute(
                "SELECT entries.* FROM entry_topics "
                "JOIN entries ON entries.id = entry_topics.entry_id "
                "WHERE entry_topics.topic = ? "
                "ORDER BY entry_topics.sort_key DESC, entries.id LIMIT ?",
                (topic, limit),
            )
        return self._entries(rows)

    def find(self, text: str, limit: int = 20) -> list[Entry]:
        """Entries by id, by title, or by a part of their title."""
        rows = self.db.execute("SELECT * FROM entries WHERE id = ?", (text,)).fetchall()
        if not rows:
            rows = self.db.execute(
                "SELECT * FROM entries WHERE title_key = ? ORDER BY sort_key DESC LIMIT ?",
                (title_key(text), limit),
            ).fetchall()
        if not rows:
            pattern = (
                "%"
                + title_key(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            rows = self.db.execute(
                "SELECT * FROM entries WHERE title_key LIKE ? ESCAPE '\\' "
                "ORDER BY sort_key DESC LIMIT ?",
                (pattern, limit),
            ).fetchall()
        return self._entries(rows)

    def prune(self, older_than: datetime) -> int:
        """Forget entries no source has shown since ``older_than``."""
        cursor = self.db.execute(
            "DELETE FROM entries WHERE last_seen < ?", (older_than.isoformat(),)
        )
        return cursor.rowcount

    def counts_by_source(self) -> dict[str, int]:
        rows = self.db.execute("SELECT source, COUNT(*) FROM sightings GROUP BY source")
        return {str(source): int(count) for source, count in rows}

    def source_summary(self) -> dict[str, tuple[int, int, str | None]]:
        """Per source name: stories it has shown, stories no other source told, and
        when it last showed any (ISO 8601). Reads only."""
        rows = self.db.execute(
            "SELECT s.source, COUNT(*), SUM(c.n = 1), MAX(s.last_seen) FROM sightings s "
            "JOIN (SELECT entry_id, COUNT(*) AS n FROM sightings GROUP BY entry_id) c "
            "USING (entry_id) GROUP BY s.source"
        )
        return {str(r[0]): (int(r[1]), int(r[2] or 0), r[3]) for r in rows}

    def counts(self) -> dict[str, int]:
        total = self.db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        by_topic = dict(
            self.db.execute("SELECT topic, COUNT(*) FROM entry_topics GROUP BY topic").fetchall()
        )
        return {"all": int(total), **{str(k): int(v) for k, v in by_topic.items()}}


def _advice(error: sqlite3.Error) -> str:
    """SQLite's words for a refused write, and what to do about it."""
    text = str(error)
    if "full" in text:
        return f"{text}; free some disk space and run again (nothing was changed)"
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return f"{text}; make the store and its directory writable by this user"
    if "locked" in text or "busy" in text:
        return f"{text}; another process held the store too long, try again"
    return f"{text}; nothing was changed"


def retention_cutoff(now: datetime, days: int) -> datetime | None:
    return None if days <= 0 else now - timedelta(days=days)
