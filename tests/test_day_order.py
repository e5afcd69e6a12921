"""Stories of one day only (a listing page gives no time) stand in the order the page
gives them, in every feed and on both backends, through a page saved again and an
upgrade of a store written before (aggregator.store.plan.sort_key)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import psycopg
from lxml import etree

from aggregator.cli import main
from aggregator.config import StoreSettings
from aggregator.model import Published
from aggregator.store import MIGRATIONS, open_store
from aggregator.store.migrations import POSTGRESQL, create_sqlite_at
from aggregator.store.plan import keeps_place, sort_key

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
DAY = Published(NOW.date() - timedelta(days=3))
ATOM = "{http://www.w3.org/2005/Atom}"

# Six stories of one day: by their ids alone, they come in one of 720 orders.
TITLES = [
    "Ministers agree the plan for the coming year",
    "Committee meets to discuss air defence",
    "Secretary General visits the northern flank",
    "Exercise ends after two weeks at sea",
    "Partners sign a new training agreement",
    "Deputy Secretary General speaks on new technologies",
]


def listing(stories: list[tuple[str, str, str]]) -> str:
    """A saved listing page (the layout of seeds/000): date, image, title, summary."""
    lines = [f"{len(stories)} Entries", ""]
    for day, title, summary in stories:
        lines += [f"{day} photo.jpg, 10KB", "", title, "", summary]
    return "\n".join([*lines, "", "Back To Top", ""])


def first_page() -> list[tuple[str, str, str]]:
    return [
        *(("27 Nov. 2026", title, f"What happened: {title.lower()}.") for title in TITLES),
        ("26 Nov. 2026", "A story of the day before", "It happened on Thursday."),
    ]


def project(tmp_path: Path, store: StoreSettings, *first: str) -> Path:
    """A config reading the files named ``first`` (each its own source, in order), then
    page.txt."""
    where = f'url = "{store.url}"' if store.url else f'path = "{store.path}"'
    sources = "".join(
        f'[[sources]]\nname = "{name}"\npath = "{name}"\n' for name in (*first, "page.txt")
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[feeds]\ndirectory = "feeds"\n[store]\n{where}\n{sources}', encoding="utf-8"
    )
    return config


def shown(feeds: Path) -> list[str]:
    """The titles of the feed, as feedparser reads its RSS; the Atom and JSON Feed
    documents (read with lxml and json) must agree."""
    rss = [entry.title for entry in feedparser.parse(feeds / "all.rss").entries]
    atom = [
        entry.findtext(f"{ATOM}title")
        for entry in etree.parse(str(feeds / "all.atom")).getroot().iter(f"{ATOM}entry")
    ]
    items = json.loads((feeds / "all.json").read_text(encoding="utf-8"))["items"]
    assert atom == rss
    assert [item["title"] for item in items] == rss
    return rss


def test_a_days_stories_stand_in_the_pages_order_and_keep_their_places(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    config = project(tmp_path, store_settings)
    page = tmp_path / "page.txt"
    page.write_text(listing(first_page()), encoding="utf-8")
    assert main(["-q", "--config", str(config), "run"]) == 0
    assert shown(tmp_path / "feeds") == [*TITLES, "A story of the day before"]

    # Saved again: two stories found since at the top, so every other one is ten lines
    # lower; the lead story's summary grew (it is written again, at its new line).
    stories = first_page()
    longer = stories[0][2].rstrip(".") + ", and for the year after."
    stories[0] = (stories[0][0], stories[0][1], longer)
    page.write_text(
        listing(
            [
                ("27 Nov. 2026", "A story found later that day", "It happened last."),
                ("27 Nov. 2026", "Another story found later that day", "It happened too."),
                *stories,
            ]
        ),
        encoding="utf-8",
    )
    # (--force: on a shared store, the page is not due again so soon)
    assert main(["-q", "--config", str(config), "run", "--force"]) == 0
    assert shown(tmp_path / "feeds") == [
        "A story found later that day",
        "Another story found later that day",
        *TITLES,
        "A story of the day before",
    ]
    with open_store(store_settings) as store:
        [lead] = [entry for entry in store.newest(20) if entry.title == TITLES[0]]
    assert lead.summary == longer


def test_a_feeds_stories_of_a_day_stand_in_its_order_before_the_next_sources(
    tmp_path: Path,
) -> None:
    # A JSON Feed read first, giving days only (found by review: its items stood by
    # their ids, and the page's lead story, which the feed told first, came last).
    told = [TITLES[0], "Feed story two of the day", "Feed story three of the day"]
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Feed",
        "items": [
            {"id": f"item-{n}", "title": title, "date_published": "2026-11-27"}
            for n, title in enumerate(told)
        ],
    }
    (tmp_path / "feed.json").write_text(json.dumps(feed), encoding="utf-8")
    (tmp_path / "page.txt").write_text(listing(first_page()), encoding="utf-8")
    config = project(tmp_path, StoreSettings(path=tmp_path / "store.sqlite3"), "feed.json")
    assert main(["-q", "--config", str(config), "run"]) == 0
    assert shown(tmp_path / "feeds") == [*told, *TITLES[1:], "A story of the day before"]


def test_a_page_listing_its_news_oldest_first_is_read_from_its_end(tmp_path: Path) -> None:
    # An event's page lists its news oldest first, under the event's own story
    # (seeds/001): of two stories of one day, the one listed later came later (found by
    # review: it stood second).
    (tmp_path / "page.txt").write_text(
        listing(
            [
                ("28 Nov. 2026", "The meeting of ministers", "The event's own story."),
                ("25 Nov. 2026", "Ministers arrive for the meeting", "They arrived."),
                ("26 Nov. 2026", "Ministers open the meeting", "It opened."),
                ("26 Nov. 2026", "Ministers agree a statement", "They agreed."),
                ("27 Nov. 2026", "Ministers close the meeting", "It closed."),
            ]
        ),
        encoding="utf-8",
    )
    (tmp_path / "newest-first.txt").write_text(
        listing(
            [
                ("26 Nov. 2026", "A newsroom's later story of the day", "Later."),
                ("26 Nov. 2026", "A newsroom's earlier story of the day", "Earlier."),
            ]
        ),
        encoding="utf-8",
    )
    config = project(tmp_path, StoreSettings(path=tmp_path / "store.sqlite3"), "newest-first.txt")
    assert main(["-q", "--config", str(config), "run"]) == 0
    assert shown(tmp_path / "feeds") == [
        "The meeting of ministers",
        "Ministers close the meeting",
        "A newsroom's later story of the day",  # (its source is read first)
        "A newsroom's earlier story of the day",
        "Ministers agree a statement",
        "Ministers open the meeting",
        "Ministers arrive for the meeting",
    ]


def test_reading_on_in_search_results_skips_nothing_when_a_story_goes_meanwhile(
    tmp_path: Path,
) -> None:
    config = project(tmp_path, StoreSettings(path=tmp_path / "store.sqlite3"))
    (tmp_path / "page.txt").write_text(listing(first_page()), encoding="utf-8")
    assert main(["-q", "--config", str(config), "run"]) == 0
    with open_store(StoreSettings(path=tmp_path / "store.sqlite3")) as store:
        first = store.search(["happened"], limit=2)
        assert [e.title for e in first] == TITLES[:2]
        # The second is forgotten (a run's retention, a source removed) before the next
        # batch is read: the batch reads on from the key it was read with.
        with store.transaction():
            store.db.execute("DELETE FROM entries WHERE id = ?", (first[1].id,))
        rest = store.search(["happened"], limit=10, after=first[1])
    assert [e.title for e in rest] == [*TITLES[2:], "A story of the day before"]


def test_a_later_find_comes_first_then_the_first_read() -> None:
    later = NOW + timedelta(hours=1)
    keys = [
        sort_key(DAY, later, 40),
        sort_key(DAY, NOW, 3),
        sort_key(DAY, NOW, 8),
        sort_key(DAY, NOW, 1_000),
        sort_key(DAY, NOW),  # (no place: written so by a changed story)
        sort_key(Published(DAY.day - timedelta(days=1)), later, 1),
        sort_key(None, later, 2),  # undated: after every dated story
        sort_key(None, later, 9),
        sort_key(None, NOW, 1),
    ]
    assert sorted(keys, reverse=True) == keys
    # A story of a known time stands by it, whatever else.
    instant = Published.at(datetime(2026, 11, 27, 15, 30, tzinfo=UTC))
    assert sort_key(instant, NOW, 5) == "2026-11-27T15:30:00+00:00"
    assert sort_key(instant, later) > sort_key(DAY, later, 1)


def test_a_key_stands_while_the_day_and_the_first_sighting_do() -> None:
    stored = sort_key(DAY, NOW, 7)
    assert keeps_place(stored, DAY, NOW)
    assert keeps_place(sort_key(DAY, NOW), DAY, NOW)  # written without a line
    assert not keeps_place(stored, Published(DAY.day + timedelta(days=1)), NOW)
    assert not keeps_place(stored, DAY, NOW + timedelta(seconds=1))
    assert not keeps_place(stored, None, NOW)
    # A time given since: the story stands by it.
    assert not keeps_place(stored, Published.at(datetime(2026, 11, 27, 12, tzinfo=UTC)), NOW)
    undated = sort_key(None, NOW, 7)
    assert keeps_place(undated, None, NOW)
    assert not keeps_place(undated, DAY, NOW)


def _on(db: psycopg.Connection[Any]) -> Callable[..., Any]:
    """Statements with SQLite's placeholders, run on PostgreSQL (as its store does)."""
    return lambda sql, params=(): db.execute(sql.replace("?", "%s"), params)


def _v8_store(settings: StoreSettings) -> Iterator[Callable[..., Any]]:
    """A version-8 store of either backend, and a way to run statements in it."""
    if settings.url:
        with psycopg.connect(settings.url, autocommit=True) as db, db.transaction():
            run = _on(db)
            for migration in MIGRATIONS[:8]:
                migration(run, POSTGRESQL)
            run("CREATE TABLE schema_version (version INTEGER)")
            run("INSERT INTO schema_version VALUES (8)")
            yield run
    else:
        settings.path.parent.mkdir(parents=True, exist_ok=True)
        create_sqlite_at(str(settings.path), 8)
        with sqlite3.connect(settings.path) as lite:
            yield lite.execute


def test_a_store_written_before_is_upgraded_to_the_order_it_was_read_in(
    store_settings: StoreSettings,
) -> None:
    stamp = NOW.isoformat()
    for run in _v8_store(store_settings):
        # As version 8 wrote them: the day's noon as each one's key, so that their ids
        # ordered them (x, y, z), though the run read them z, y, x (the order their
        # sightings were written in). Each read since wrote the line the page then
        # listed them at: all at its last slot, once they had moved down (a line is
        # no place: found by review).
        for name in "zyx":
            entry_id = f"tag:x.example,2026:entry:{name}"
            run(
                "INSERT INTO entries (id, title, title_key, published, summary, categories, "
                "first_seen, last_seen, sort_key) "
                "VALUES (?, ?, ?, '2026-11-27', 'S', '[]', ?, ?, '2026-11-27T12:00:00+00:00')",
                (entry_id, f"Story {name}", f"story {name}", stamp, stamp),
            )
            run(
                "INSERT INTO sightings (entry_id, source, location, line, first_seen, "
                "last_seen) VALUES (?, 'page', 'page.txt', 30, ?, ?)",
                (entry_id, stamp, stamp),
            )
            run(
                "INSERT INTO entry_topics (topic, entry_id, sort_key) "
                "VALUES ('ukraine', ?, '2026-11-27T12:00:00+00:00')",
                (entry_id,),
            )
        # Told by a second source since: its sighting comes later, and changes nothing.
        run(
            "INSERT INTO sightings (entry_id, source, location, line, first_seen, last_seen) "
            "VALUES ('tag:x.example,2026:entry:x', 'other', 'other.txt', 1, ?, ?)",
            (stamp, stamp),
        )
        run(
            "INSERT INTO entries (id, title, title_key, published, summary, categories, "
            "first_seen, last_seen, sort_key) VALUES ('tag:x.example,2026:entry:t', 'Timed', "
            "'timed', '2026-11-27T15:00:00+00:00', 'S', '[]', ?, ?, '2026-11-27T15:00:00+00:00')",
            (stamp, stamp),
        )
        run("INSERT INTO meta (key, value) VALUES ('version', '5')")
    with open_store(store_settings) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert [e.title for e in store.newest(10)] == ["Timed", "Story z", "Story y", "Story x"]
        assert [e.title for e in store.newest(10, "ukraine")] == ["Story z", "Story y", "Story x"]
        assert store.meta("version") == "6"  # so that the feeds are rendered again
    for run in _v8_store_reopened(store_settings):
        assert run(
            "SELECT count(*) FROM entry_topics t JOIN entries e ON e.id = t.entry_id "
            "WHERE t.sort_key != e.sort_key"
        ).fetchone() == (0,)


def _v8_store_reopened(settings: StoreSettings) -> Iterator[Callable[..., Any]]:
    if settings.url:
        with psycopg.connect(settings.url, autocommit=True) as db:
            yield _on(db)
    else:
        with sqlite3.connect(settings.path) as lite:
            yield lite.execute
