"""What ``run`` refuses before changing anything, where going on would take from readers
what they see (found by a review of crash safety and bad input): an emptied config, and
an emptied store file beside feeds made from a store."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.cli import EXIT_STORAGE, EXIT_USAGE, main
from tests.pgcluster import Cluster
from tests.test_corrected_headline import item, project


def published(directory: Path) -> dict[str, bytes]:
    feeds = directory / "feeds"
    return {
        p.relative_to(feeds).as_posix(): p.read_bytes() for p in feeds.rglob("*") if p.is_file()
    }


def published_project(tmp_path: Path) -> tuple[Path, str, dict[str, bytes]]:
    """A project that ran once: its folder, its config's path, the files it published."""
    directory = project(tmp_path, item("Allies meet in Brussels"))
    config = str(directory / "config.toml")
    assert main(["-q", "--config", config, "run"]) == 0
    return directory, config, published(directory)


def test_an_emptied_config_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, config, before = published_project(tmp_path)
    (directory / "config.toml").write_text("", encoding="utf-8")
    capsys.readouterr()
    assert main(["-q", "--config", config, "run"]) == EXIT_USAGE
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "config.toml: names no source" in line and "nothing was changed" in line
    assert published(directory) == before


def test_an_emptied_store_beside_published_feeds_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, config, before = published_project(tmp_path)
    store = directory / "state" / "store.sqlite3"
    for extra in store.parent.glob("store.sqlite3-*"):
        extra.unlink()
    store.write_bytes(b"")  # a copy cut short, a restore gone wrong
    capsys.readouterr()
    assert main(["-q", "--config", config, "run"]) == EXIT_STORAGE
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "is empty, but the feeds" in line and "nothing was changed" in line
    assert published(directory) == before
    assert store.stat().st_size == 0


def test_a_missing_store_beside_published_feeds_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store moved aside, deleted, or on a volume not mounted: a new, empty one took
    its place, and the feeds lost every story no source still shows (found by review)."""
    directory, config, before = published_project(tmp_path)
    aside = tmp_path / "aside"
    (directory / "state").rename(aside)
    capsys.readouterr()
    assert main(["-q", "--config", config, "run"]) == EXIT_STORAGE
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "store.sqlite3: no such store, but the feeds" in line
    assert "nothing was changed" in line
    assert published(directory) == before
    assert not (directory / "state").exists()  # not even made
    # Put back, the run goes on from it.
    aside.rename(directory / "state")
    assert main(["-q", "--config", config, "run"]) == 0


def test_an_empty_store_file_with_nothing_published_is_a_new_store(tmp_path: Path) -> None:
    # (A first run stopped right after the file was made: there is nothing to lose.)
    directory = project(tmp_path, item("Allies meet in Brussels"))
    (directory / "state").mkdir()
    (directory / "state" / "store.sqlite3").write_bytes(b"")
    assert main(["-q", "--config", str(directory / "config.toml"), "run"]) == 0
    assert "Allies meet in Brussels" in (directory / "feeds" / "all.rss").read_text("utf-8")


def test_an_empty_database_beside_published_feeds_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    postgres: Cluster,
) -> None:
    """On PostgreSQL, a mistyped database name, or one made again empty, became a new
    store and the feeds lost every story no source still showed (found by review):
    refused, as a missing SQLite file is; the database the feeds came from goes on."""
    directory = project(tmp_path, item("Allies meet in Brussels"))
    config = str(directory / "config.toml")
    used, other = postgres.new_database(), postgres.new_database()
    monkeypatch.setenv("AGGREGATOR_STORE_URL", used)
    assert main(["-q", "--config", config, "run"]) == 0
    before = published(directory)
    monkeypatch.setenv("AGGREGATOR_STORE_URL", other)
    capsys.readouterr()
    assert main(["-q", "--config", config, "run"]) == EXIT_STORAGE
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "holds no story, but the feeds" in line and "[store] url" in line
    assert published(directory) == before
    monkeypatch.setenv("AGGREGATOR_STORE_URL", used)
    assert main(["-q", "--config", config, "run"]) == 0


def test_an_emptied_sqlite_store_that_was_made_anew_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store made anew (not missing, not empty: a new file with its tables) beside
    feeds made from one that held stories: refused too."""
    directory, config, before = published_project(tmp_path)
    store = directory / "state" / "store.sqlite3"
    for extra in store.parent.glob("store.sqlite3*"):
        extra.unlink()
    from aggregator.config import StoreSettings
    from aggregator.store import open_store

    with open_store(StoreSettings(path=store)):
        pass  # the tables, and nothing in them
    capsys.readouterr()
    assert main(["-q", "--config", config, "run"]) == EXIT_STORAGE
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "holds no story, but the feeds" in line and "[store] path" in line
    assert published(directory) == before


def test_a_new_store_beside_feeds_that_never_showed_a_story_is_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Feeds written while every source failed show no story: a new store beside them
    has nothing to lose, and is no refusal (found by review)."""
    directory = project(tmp_path, item("Allies meet in Brussels"))
    config = str(directory / "config.toml")
    news = directory / "news.xml"
    news.rename(directory / "news.aside")
    assert main(["-q", "--config", config, "run"]) == 1  # its one source failed
    store = directory / "state" / "store.sqlite3"
    for made in store.parent.glob("store.sqlite3*"):
        made.unlink()
    from aggregator.config import StoreSettings
    from aggregator.store import open_store

    with open_store(StoreSettings(path=store)):
        pass
    (directory / "news.aside").rename(news)
    capsys.readouterr()
    assert main(["-q", "--config", config, "run"]) == 0
    assert "Allies meet in Brussels" in (directory / "feeds" / "all.rss").read_text("utf-8")
