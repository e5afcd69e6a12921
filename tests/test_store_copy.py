"""``aggregator store copy``: an SQLite store into PostgreSQL and back, nothing changed.

Real stores on both ends: the shipped config's sources read into SQLite by a real run,
copied into a throw-away PostgreSQL database, and from there into a new SQLite file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.config import Config, StoreSettings, load_config
from aggregator.model import Entry
from aggregator.pipeline import build_files
from aggregator.store import open_store
from aggregator.store.postgres import PostgresStore
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
    assert main(["--config", config, "store", "copy", "--to", url]) == 2  # the wrong target
    error = capsys.readouterr().err
    assert f"{url}: is not empty" in error and "nothing was copied" in error
    assert error.count("\n") == 1


@pytest.mark.parametrize("to", ["mysql://x/y", "sqlite://x.db", "same", "", "."])
def test_a_copy_to_what_is_no_store_is_a_usage_error(
    filled: Config,
    to: str,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A URL of another database is not taken for a file name; nor is the store itself
    a place to copy to. Nothing is created."""
    target = str(filled.store.path) if to == "same" else to
    error = _refused_copy(filled, target, tmp_path_factory, capsys, monkeypatch)
    assert error.count("\n") == 1 and f"--to {target}".strip() in error, error


def _refused_copy(
    filled: Config,
    to: str,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """What ``store copy --to`` said, run from an empty folder: a usage error, and
    nothing made there."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["--config", str(filled.path), "store", "copy", "--to", to]) == 2
    captured = capsys.readouterr()
    assert list(elsewhere.iterdir()) == []
    return captured.err + captured.out


@pytest.mark.parametrize(
    "to",
    [
        "postgresql:/owner:S3cretPw%21@/db?host=/tmp",
        "postgresql//owner:S3cretPw@db.example/news",
        "owner:S3cretPw@db.example/news",
    ],
)
def test_a_postgresql_url_written_wrong_is_no_file_name(
    filled: Config,
    to: str,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by review: taken for a file's path, it made folders named after it and
    printed its password: a usage error that does not echo it, and nothing made."""
    said = _refused_copy(filled, to, tmp_path_factory, capsys, monkeypatch)
    assert "S3cretPw" not in said and "reads as a PostgreSQL URL written wrong" in said


@pytest.mark.parametrize(
    "to", ["postgres-backup.sqlite3", "PostgresMigration.db", "backup-10:30@host.sqlite3"]
)
def test_a_file_named_like_a_url_is_still_a_file(
    filled: Config,
    to: str,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by review of the refusal above: these SQLite paths were refused too."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    assert main(["--config", str(filled.path), "store", "copy", "--to", to]) == 0
    assert (elsewhere / to).is_file()


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_copy_from_postgresql_reads_rows_a_batch_at_a_time(postgres: Cluster) -> None:
    """Dumping a table holds one batch of rows in memory, not the whole table: psycopg's
    ordinary cursor received every row before the first (480 MB for 18,000 entries)."""
    url = postgres.new_database()
    with open_store(StoreSettings(path=Path("unused"), url=url)) as store:
        with store.transaction():  # 3,000 entries of 10 KB: 30 MB in all
            store.db.execute(  # type: ignore[attr-defined]
                "INSERT INTO entries (id, title, title_key, summary, categories, first_seen, "
                "last_seen, sort_key) SELECT 'tag:x,2026:' || n, 'T' || n, 't' || n, "
                "repeat(md5(n::text), 320), '[]', '2026', '2026', lpad(n::text, 6, '0') "
                "FROM generate_series(1, 3000) AS n"
            )
        assert isinstance(store, PostgresStore)
        before = resident_bytes()
        rows = store.dump("entries", batch=50)
        first = next(rows)
        grown = resident_bytes() - before
        assert (first[0], first[-1]) == ("T1", "tag:x,2026:1")
        assert grown < 8 << 20, f"{grown:,} bytes held for the first row"
        assert sum(1 for _ in rows) == 2999  # and then every other row, in order
    assert store.db.closed


def test_a_copy_from_a_store_that_does_not_exist_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong [store] path is said, not copied as an empty store; nothing is created."""
    monkeypatch.delenv("AGGREGATOR_STORE_URL", raising=False)
    config = tmp_path / "config.toml"
    config.write_text('[store]\npath = "state/aggregator.sqlite3"\n', "utf-8")
    target = tmp_path / "copy.sqlite3"
    assert main(["--config", str(config), "store", "copy", "--to", str(target)]) == 2
    error = capsys.readouterr().err
    missing = tmp_path / "state" / "aggregator.sqlite3"
    assert error == (
        f"error: store copy: no store at {missing}; check [store] path (nothing was copied)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]
