"""A store's first run writes it out of WAL mode, each page once (Store.write_alone):
the same store and files as a run in WAL mode, the store back in WAL mode after it, and
a first run killed anywhere leaves a store the next run opens and completes."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator import pipeline
from aggregator.config import Config, load_config
from aggregator.store import kept_open
from aggregator.store.sqlite import Store
from tests.test_folding import NOW, dump, files, large_feed
from tests.test_incremental_render import CONFIG


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])


def first_run_config(folder: Path, sources: int = 2, items: int = 600) -> Config:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"source{n}" for n in range(sources)]
    for name in names:
        large_feed(folder / f"{name}.xml", name, items)
    listed = "\n".join(f'[[sources]]\nname = "{n}"\npath = "{n}.xml"' for n in names)
    (folder / "config.toml").write_text(
        CONFIG.format(max_entries=50, sources=listed), encoding="utf-8"
    )
    return load_config(folder / "config.toml")


@pytest.fixture
def alone_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """What each Store.write_alone of the test answered (the method itself runs)."""
    answers: list[bool] = []
    write_alone = Store.write_alone

    def noted(store: Store) -> bool:
        answer = write_alone(store)
        answers.append(answer)
        return answer

    monkeypatch.setattr(Store, "write_alone", noted)
    yield answers


def test_a_first_run_writes_alone_what_it_writes_in_wal_mode(
    tmp_path: Path, alone_calls: list[bool]
) -> None:
    # 1,200 new stories, most written ahead by the thread. The same run into a store that
    # another connection holds open (a server reading it, say) stays in WAL mode: the
    # two give the same store, search index and files.
    alone = first_run_config(tmp_path / "alone")
    pipeline.run(alone, NOW)
    assert alone_calls == [True]
    assert journal_mode(alone.store.path) == "wal"
    assert not Path(f"{alone.store.path}-journal").exists()

    shared = first_run_config(tmp_path / "shared")
    Store(shared.store.path).close()  # made (in WAL mode), still without a story
    other = sqlite3.connect(shared.store.path)
    try:
        assert other.execute("SELECT count(*) FROM entries").fetchone() == (0,)
        pipeline.run(shared, NOW)
        assert other.execute("SELECT count(*) FROM entries").fetchone() == (1200,)
    finally:
        other.close()
    assert alone_calls == [True, False]
    stored = [
        repr(dump(config)).replace(str(config.store.path.parent.parent), "…")
        for config in (alone, shared)
    ]
    assert stored[0] == stored[1]
    assert len(dump(alone)["entries"]) == 1200
    assert files(alone) == files(shared)

    # A store with stories (a second run) is written in WAL mode, as ever.
    pipeline.run(alone, NOW)
    assert alone_calls == [True, False]  # not even asked
    assert journal_mode(alone.store.path) == "wal"


def test_written_alone_the_store_file_itself_is_synced_ahead(
    tmp_path: Path, syncs_asked: list[str | Path]
) -> None:
    # Out of WAL mode, what the thread wrote ahead is in the store's file, not in a log:
    # that file is put on disk ahead of the commit (Store.sync_log_soon).
    path = tmp_path / "store.sqlite3"
    with Store(path) as store:
        assert store.write_alone()
        with store.transaction():
            store.set_meta("test", "written")
            store.sync_log_soon()
    assert syncs_asked == [str(path)]


def test_writing_alone_needs_an_empty_store_no_one_else_holds(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    store = Store(path)
    try:
        assert store.is_empty()
        assert store.db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert store.write_alone()
        assert store.db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        # EXTRA: the folder synced after the journal's removal, the commit itself.
        assert store.db.execute("PRAGMA synchronous").fetchone() == (3,)
        with store.transaction():  # the transaction written alone, then WAL mode again
            store.set_meta("note", "first")
        assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.db.execute("PRAGMA synchronous").fetchone() == (2,)

        assert store.write_alone()  # a rolled-back transaction ends it too
        with pytest.raises(RuntimeError), store.transaction():
            store.set_meta("note", "second")
            raise RuntimeError("stopped")
        assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.meta("note") == "first"

        assert store.write_alone()  # and so does one begun ahead and abandoned
        assert store.begin(lambda: store.set_meta("note", "third"))
        store.abandon()
        assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.meta("note") == "first"

        other = sqlite3.connect(path)  # another connection holds the store open
        try:
            other.execute("SELECT count(*) FROM meta").fetchone()
            assert not store.write_alone()
            assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            other.close()
    finally:
        store.close()
    assert journal_mode(path) == "wal"


def test_going_back_to_wal_mode_never_waits_for_a_reader(tmp_path: Path) -> None:
    # A reader that comes as the transaction ends holds the file: the store goes back to
    # WAL mode later (here, whoever opens it next), rather than wait for the reader.
    path = tmp_path / "store.sqlite3"
    store = Store(path, timeout=30)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        assert store.write_alone()
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM meta").fetchone() is not None
        started = time.monotonic()
        store.close()  # (asks for WAL mode again as it closes)
        assert time.monotonic() - started < 10  # not the busy timeout's 30 s
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        reader.execute("COMMIT")
    finally:
        reader.close()
    Store(path).close()
    assert journal_mode(path) == "wal"


def test_a_store_a_server_keeps_open_is_not_written_alone(tmp_path: Path) -> None:
    # `serve` keeps the store open while it serves (kept_open): a cron run's first run
    # into it stays in WAL mode, where the server's reads never wait for it.
    config = first_run_config(tmp_path, sources=1, items=3)
    Store(config.store.path).close()
    store = Store(config.store.path)
    try:
        with kept_open(config.store):
            assert not store.write_alone()
            assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.write_alone()  # let go of, it may
    finally:
        store.close()
    assert journal_mode(config.store.path) == "wal"


def test_the_log_is_cut_back_while_a_server_keeps_the_store_open(tmp_path: Path) -> None:
    # A large transaction beside a server (kept_open) goes through the log, which is not
    # deleted as the run closes the store: the next transaction cuts it back.
    from aggregator.store.sqlite import KEPT_LOG

    config = first_run_config(tmp_path, sources=1, items=3)
    Store(config.store.path).close()
    log = Path(f"{config.store.path}-wal")
    with kept_open(config.store):
        with Store(config.store.path) as store, store.transaction():
            for number in range(40):
                store.set_meta(f"large {number}", "x" * (1 << 20))
        assert log.stat().st_size > KEPT_LOG
        with Store(config.store.path) as store, store.transaction():
            store.set_meta("small", "x")
        assert 0 < log.stat().st_size <= KEPT_LOG


def test_a_store_with_a_story_is_never_written_alone(tmp_path: Path) -> None:
    config = first_run_config(tmp_path, sources=1, items=3)
    pipeline.run(config, NOW)
    store = Store(config.store.path)
    try:
        assert not store.is_empty()
        assert not store.write_alone()
        assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        store.close()


def stored_ids(path: Path) -> set[str]:
    """The stories stored (none when killed before the store had its tables)."""
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'entries'").fetchone() is None:
            return set()
        return {row[0] for row in db.execute("SELECT id FROM entries")}


def feed_ids(config: Config) -> set[str]:
    import json

    document = json.loads((config.feeds.directory / "all.json").read_text("utf-8"))
    return {item["id"] for item in document["items"]}


def test_a_first_run_killed_anywhere_leaves_a_store_the_next_run_completes(
    tmp_path: Path,
) -> None:
    # Killed while its transaction is open out of WAL mode, the run leaves a hot journal:
    # the next opening rolls it back (the store as before the run: no story), and the
    # next run writes every story, the feeds showing each.
    config = first_run_config(tmp_path / "run", sources=8, items=400)
    command = [sys.executable, "-m", "aggregator", "--config", str(config.path), "run"]
    started = time.monotonic()
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    duration = time.monotonic() - started
    assert len(stored_ids(config.store.path)) == 3200
    journal = Path(f"{config.store.path}-journal")
    hot = 0
    for fraction in (None, 0.3, 0.55, 0.8):
        for made in (config.store.path.parent, config.feeds.directory):
            for path in sorted(made.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if fraction is None:  # its stories going into the file itself (not into a log)
            while process.poll() is None and (
                not config.store.path.exists() or config.store.path.stat().st_size < 2 << 20
            ):
                time.sleep(0.001)
        else:
            time.sleep(duration * fraction)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        if fraction is None:
            assert journal.exists()  # the transaction was open: its journal is hot
            # Read only (`sources list`), the store is read as before the run: the
            # journal, which a read-only connection cannot roll back, is rolled back.
            reading = Store.read_only(config.store.path)
            try:
                assert reading.is_empty()
            finally:
                reading.close()
            assert not journal.exists()
        hot += journal.exists()
        if config.store.path.exists():  # all of the run, or none of it
            assert len(stored_ids(config.store.path)) in (0, 3200)
        assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
        assert journal_mode(config.store.path) == "wal"
        assert not Path(f"{config.store.path}-journal").exists()
        stored = stored_ids(config.store.path)
        assert len(stored) == 3200
        shown = feed_ids(config)
        assert len(shown) == 50 and shown <= stored
    assert hot  # (a journal left by a kill, rolled back by the next opening)
