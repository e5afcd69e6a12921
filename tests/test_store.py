"""The lasting store, on a real SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aggregator.model import Provenance, Published, SourceEntry
from aggregator.store import MIGRATIONS, Store, StoreError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Brussels")


def item(title: str, day: date | None, source: str = "a", summary: str = "") -> SourceEntry:
    return SourceEntry(
        title=title,
        published=None if day is None else Published.on_day(day),
        summary=summary,
        provenance=Provenance(source, f"{source}.txt", 3),
    )


def add(store: Store, items: list[SourceEntry], now: datetime = NOW) -> None:
    with store.transaction():
        store.add(items, authority="x,2026", zone=ZONE, now=now)


def test_new_store_is_at_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this aggregator understands"):
        Store(path)


def test_every_source_is_remembered_and_dropped_stories_stay(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        add(store, [item("Board meets", date(2023, 12, 12), "a", "short")])
        later = NOW + timedelta(hours=1)
        add(store, [item("Board meets", date(2023, 12, 12), "b", "a longer summary")], later)
        add(store, [item("Other story", date(2023, 12, 13), "a")], later)
        stories = {e.title: e for e in store.newest(10)}
    assert set(stories) == {"Board meets", "Other story"}
    board = stories["Board meets"]
    assert [p.source for p in board.sources] == ["a", "b"]
    assert board.summary == "a longer summary"
    assert (board.first_seen, board.last_seen) == (NOW, later)


def test_a_failed_run_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        add(store, [item("Kept", date(2023, 1, 1))])
        with pytest.raises(RuntimeError), store.transaction():
            store.add([item("Lost", date(2023, 1, 2))], authority="x,2026", zone=ZONE, now=NOW)
            raise RuntimeError("the run died here")
        assert [e.title for e in store.newest(10)] == ["Kept"]


def test_newest_puts_undated_entries_last(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        add(
            store,
            [item("Old", date(2020, 1, 1)), item("Evergreen", None), item("New", date(2024, 1, 1))],
        )
        assert [e.title for e in store.newest(10)] == ["New", "Old", "Evergreen"]
        assert [e.title for e in store.newest(1)] == ["New"]


def test_retention_forgets_what_no_source_showed_for_long(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        add(store, [item("Old", date(2020, 1, 1))], NOW - timedelta(days=400))
        add(store, [item("Recent", date(2026, 1, 1))])
        with store.transaction():
            assert store.prune(NOW - timedelta(days=365)) == 1
        assert [e.title for e in store.newest(10)] == ["Recent"]


def test_find_by_id_title_or_words(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        add(store, [item("Secretary General in Kyiv", date(2023, 9, 28))])
        [entry] = store.find("secretary general in kyiv")
        assert store.find(entry.id) == [entry]
        assert store.find("in Kyiv") == [entry]
        assert store.find("50%_") == []


WRITER = textwrap.dedent(
    """
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO meta (key, value) VALUES ('other', 'process')")
    print("locked", flush=True)
    time.sleep(1.0)
    db.execute("COMMIT")
    """
)


def test_a_second_process_writing_makes_us_wait_not_fail(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    Store(path).close()
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    ) as other:
        assert other.stdout is not None and other.stdout.readline() == "locked\n"
        with Store(path, timeout=10) as store:
            add(store, [item("Written after the other process", date(2024, 1, 1))])
            assert store.meta("other") == "process"
        assert other.wait(timeout=10) == 0
