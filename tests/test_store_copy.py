"""``aggregator store copy``: an SQLite store into PostgreSQL and back, nothing changed.

Real stores on both ends: the shipped config's sources read into SQLite by a real run,
copied into a throw-away PostgreSQL database, and from there into a new SQLite file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.config import Config, StoreSettings, load_config
from aggregator.model import Entry
from aggregator.pipeline import build_files
from aggregator.store import open_store
from tests.pgcluster import Cluster


def everything(settings: StoreSettings) -> tuple[list[Entry], dict[str, int], str | None]:
    with open_store(settings) as store:
        entries = [e for batch in store.all_entries() for e in batch]
        return entries, store.counts(), store.meta("version")


@pytest.fixture
def filled(project: Path) -> Iterator[Config]:
    """The shipped config after one real run into its SQLite store."""
    assert main(["--config", str(project / "config.toml"), "-q", "run"]) == 0
    yield load_config(project / "config.toml")


def test_sqlite_to_postgresql_and_back_keeps_every_story(
    filled: Config,
    postgres: Cluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = str(filled.path)
    url = postgres.new_database()
    assert main(["--config", config, "store", "copy", "--to", url]) == 0
    assert "the counts match" in capsys.readouterr().out
    original = everything(filled.store)
    assert original[1]["all"] > 40  # a real archive: every seed page and the live feed
    on_postgres = StoreSettings(path=filled.store.path, url=url)
    assert everything(on_postgres) == original  # ids, times, sources (in order), topics

    # Both render the same bytes: a reader switched over sees nothing change.
    with open_store(filled.store) as lite, open_store(on_postgres) as pg:
        assert build_files(filled, pg) == build_files(filled, lite)

    # And back, from PostgreSQL (named by the environment) into a new SQLite file.
    back = filled.path.parent / "back.sqlite3"
    monkeypatch.setenv("AGGREGATOR_STORE_URL", url)
    assert main(["--config", config, "store", "copy", "--to", str(back)]) == 0
    assert everything(StoreSettings(path=back)) == original


def test_a_copy_into_a_store_that_is_not_empty_is_refused(
    filled: Config, postgres: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(filled.path)
    url = postgres.new_database()
    assert main(["--config", config, "store", "copy", "--to", url]) == 0
    capsys.readouterr()
    assert main(["--config", config, "store", "copy", "--to", url]) == 4
    error = capsys.readouterr().err
    assert f"{url}: is not empty" in error and "nothing was copied" in error
    assert error.count("\n") == 1


@pytest.mark.parametrize("to", ["mysql://x/y", "sqlite://x.db", "same"])
def test_a_copy_to_what_is_no_store_is_a_usage_error(
    filled: Config,
    to: str,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A URL of another database is not taken for a file name; nor is the store itself
    a place to copy to. Nothing is created."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    target = str(filled.store.path) if to == "same" else to
    capsys.readouterr()
    assert main(["--config", str(filled.path), "store", "copy", "--to", target]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"--to {target}" in error, error
    assert list(elsewhere.iterdir()) == []
