from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.config import StoreSettings
from tests.feedserver import Server, serving
from tests.pgcluster import Cluster, running_cluster

ROOT = Path(__file__).resolve().parent.parent
NATO_FEED = "https://www.nato.int/cps/rss/en/natohq/rssFeed.xsl/rssFeed.xml"


@pytest.fixture(autouse=True)
def fresh_logger() -> Iterator[None]:
    """Undo what ``aggregator.cli.main`` does to the "aggregator" logger after each test.

    main() gives the logger its own handler and stops propagation, which would hide
    every later test's records from pytest's caplog.
    """
    logger = logging.getLogger("aggregator")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


@pytest.fixture(scope="session")
def feedserver() -> Iterator[Server]:
    """A real HTTP server on 127.0.0.1 serving tests/data/feeds (see tests/feedserver.py)."""
    with serving() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throw-away PostgreSQL cluster for the session (see tests/pgcluster.py)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """Settings naming an empty store: an SQLite file, or a new PostgreSQL database."""
    path = tmp_path / "state" / "aggregator.sqlite3"
    if request.param == "sqlite":
        return StoreSettings(path=path)
    cluster: Cluster = request.getfixturevalue("postgres")
    return StoreSettings(path=path, url=cluster.new_database())


@pytest.fixture
def syncs_asked(monkeypatch: pytest.MonkeyPatch) -> list[str | Path]:
    """The paths the SQLite store asks ``sync_quietly`` to sync (each synced as ever)."""
    from aggregator.store import sqlite as sqlite_store

    asked: list[str | Path] = []
    sync = sqlite_store.sync_quietly

    def noting(path: str | Path, flags: int = 0) -> None:
        asked.append(path)
        sync(path, flags)

    monkeypatch.setattr(sqlite_store, "sync_quietly", noting)
    return asked


def make_project(directory: Path, feedserver: Server) -> Path:
    """A copy of the shipped config.toml and seeds, its live feed served from 127.0.0.1."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    assert NATO_FEED in text
    text = text.replace(NATO_FEED, f"{feedserver.base}/feeds/rss20.xml")
    (directory / "config.toml").write_text(text, encoding="utf-8")
    shutil.copytree(ROOT / "seeds", directory / "seeds")
    return directory


@pytest.fixture
def project(tmp_path: Path, feedserver: Server) -> Path:
    return make_project(tmp_path, feedserver)
