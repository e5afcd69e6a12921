"""Where a saved page came from: ``page_url`` in a source's config, carried by its stories.

Also the store's schema 3 (enclosures and ``page_url``), upgraded from schema 2.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aggregator.cli import main
from aggregator.config import load_config
from aggregator.errors import ConfigError
from aggregator.model import Provenance, Published, SourceEntry
from aggregator.store import MIGRATIONS, Store
from aggregator.store.migrations import create_sqlite_at

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BRUSSELS = ZoneInfo("Europe/Brussels")
PAGE = "https://www.nato.int/cps/en/natohq/topics_49217.htm"


def config(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"[[sources]]\n{source}\n", encoding="utf-8")
    return path


def test_a_saved_page_may_say_where_it_was_saved_from(tmp_path: Path) -> None:
    loaded = load_config(config(tmp_path, f'path = "seeds/000.txt"\npage_url = "{PAGE}"'))
    [source] = loaded.sources
    assert source.page_url == PAGE
    assert source.url is None and source.path == tmp_path / "seeds/000.txt"
    [plain] = load_config(config(tmp_path, 'path = "seeds/000.txt"')).sources
    assert plain.page_url is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            'path = "a.txt"\npage_url = "javascript:alert(1)"',
            "sources[1].page_url: must be an absolute http(s) URL",
            id="not http",
        ),
        pytest.param(
            'path = "a.txt"\npage_url = "/cps/en/natohq/news.htm"',
            "sources[1].page_url: must be an absolute http(s) URL",
            id="relative",
        ),
        pytest.param(
            f'url = "https://www.nato.int/feed.xml"\npage_url = "{PAGE}"',
            "sources[1].page_url: is for a saved file (path)",
            id="live feed",
        ),
    ],
)
def test_bad_page_url(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(config(tmp_path, source))
    assert message in str(raised.value)


def _told(source: str, page_url: str | None) -> SourceEntry:
    return SourceEntry(
        title="NATO-EU cooperation",
        published=Published.on_day(date(2024, 9, 17)),
        summary="A summary.",
        provenance=Provenance(source, f"seeds/{source}.txt", 4, page_url),
    )


def test_the_store_keeps_where_each_source_page_came_from(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with Store(path) as store, store.transaction():
        store.add(
            [_told("a", PAGE), _told("b", None)], authority="x.example,2026", zone=BRUSSELS, now=NOW
        )
    with Store(path) as store:
        [entry] = store.newest(10)
    assert entry.sources == (
        Provenance("a", "seeds/a.txt", 4, PAGE),
        Provenance("b", "seeds/b.txt", 4, None),
    )


def test_a_schema_2_store_is_upgraded_and_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    create_sqlite_at(str(path), 2)
    db = sqlite3.connect(path)
    stamp = NOW.isoformat()
    db.execute(
        "INSERT INTO entries (id, title, title_key, published, summary, content_html, link, "
        "author, categories, first_seen, last_seen, sort_key) "
        "VALUES ('tag:x.example,2026:entry:1', 'Old story', 'old story', '2024-09-17', 'S', "
        "NULL, NULL, NULL, '[]', ?, ?, '2024-09-17T12:00:00+00:00')",
        (stamp, stamp),
    )
    db.execute(
        "INSERT INTO sightings (entry_id, source, location, line, first_seen, last_seen) "
        "VALUES ('tag:x.example,2026:entry:1', 'a', 'seeds/a.txt', 3, ?, ?)",
        (stamp, stamp),
    )
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        [entry] = store.newest(10)
    assert entry.title == "Old story"
    assert entry.enclosures == ()
    assert entry.sources == (Provenance("a", "seeds/a.txt", 3, None),)


def test_a_run_gives_the_stories_of_a_saved_page_its_page_url(project: Path) -> None:
    path = project / "config.toml"
    text = path.read_text(encoding="utf-8")
    seed = 'path = "seeds/003_3cbde41f5230f3d4.txt"'
    assert seed in text
    path.write_text(text.replace(seed, f'{seed}\npage_url = "{PAGE}"'), encoding="utf-8")
    assert main(["-q", "--config", str(path), "run"]) == 0
    with Store(project / "state" / "aggregator.sqlite3") as store:
        sources = [p for entry in store.newest(1000) for p in entry.sources]
    from_page = [p for p in sources if p.location.endswith("003_3cbde41f5230f3d4.txt")]
    assert from_page and all(p.page_url == PAGE for p in from_page)
    others = [p for p in sources if p not in from_page]
    assert others and all(p.page_url is None for p in others)
