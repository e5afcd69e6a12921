"""The lasting store: one contract, run against a real SQLite file and a real PostgreSQL.

``store_settings`` (tests/conftest.py) gives each test an empty store of each backend;
the tests at the end are about what only one backend has (WAL, a second writer process,
PostgreSQL's migration lock).
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from aggregator.config import MAX_NAME_BYTES, StoreSettings
from aggregator.lock import LockTimeout, write_lock
from aggregator.model import Enclosure, Provenance, Published, SourceEntry
from aggregator.store import MIGRATIONS, Store, StoreError, StoreType, open_store
from aggregator.store.migrations import POSTGRESQL, SQLITE
from aggregator.store.postgres import PostgresStore, redact
from aggregator.store.sqlite import PAGE_SIZE
from aggregator.text import item_mark, title_key
from tests.pgcluster import Cluster

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Brussels")


def item(title: str, day: date | None, source: str = "a", summary: str = "") -> SourceEntry:
    return SourceEntry(
        title=title,
        published=None if day is None else Published.on_day(day),
        summary=summary,
        provenance=Provenance(source, f"{source}.txt", 3),
    )


def add(store: StoreType, items: list[SourceEntry], now: datetime = NOW) -> None:
    with store.transaction():
        store.add(items, authority="x,2026", zone=ZONE, now=now)


@pytest.fixture
def store(store_settings: StoreSettings) -> Iterator[StoreType]:
    with open_store(store_settings) as opened:
        yield opened


# -- the contract ---------------------------------------------------------------------------


def test_a_new_store_is_at_the_latest_schema(store: StoreType) -> None:
    assert store.schema_version == len(MIGRATIONS)
    assert store.counts() == {"all": 0}


def test_every_source_is_remembered_and_dropped_stories_stay(store: StoreType) -> None:
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


def test_add_reports_new_updated_and_unchanged(store: StoreType) -> None:
    with store.transaction():
        report, touched = store.add(
            [item("One", date(2024, 1, 1)), item("Two", date(2024, 1, 2))],
            authority="x,2026",
            zone=ZONE,
            now=NOW,
        )
    assert (report.new, report.updated, report.unchanged) == (2, 0, 0)
    assert sorted(e.title for e in touched) == ["One", "Two"]
    with store.transaction():
        report, touched = store.add(
            [item("One", date(2024, 1, 1), "b", "with a summary"), item("Two", date(2024, 1, 2))],
            authority="x,2026",
            zone=ZONE,
            now=NOW + timedelta(hours=1),
        )
    assert (report.new, report.updated, report.unchanged) == (0, 1, 1)
    assert [e.title for e in touched] == ["One"]


def test_an_entry_comes_back_as_it_went_in(store: StoreType) -> None:
    told = SourceEntry(
        title="Ministers meet in Brussels",
        published=Published.at(datetime(2024, 3, 1, 9, 30, tzinfo=ZONE)),
        summary="Défense: « les ministres » se réunissent",
        provenance=Provenance("feed", "https://example.org/rss", None, "https://example.org/p"),
        link="https://example.org/a",
        author="NATO",
        categories=("Defence", "Ministers"),
        content_html="<p>Ministers <b>meet</b></p>",
        enclosures=(Enclosure("https://example.org/a.mp3", "audio/mpeg", 1234),),
    )
    add(store, [told])
    [entry] = store.newest(1)
    assert (entry.title, entry.published, entry.summary) == (
        told.title,
        told.published,
        told.summary,
    )
    assert (entry.link, entry.author, entry.categories) == (told.link, "NATO", told.categories)
    assert (entry.content_html, entry.enclosures) == (told.content_html, told.enclosures)
    assert entry.sources == (told.provenance,)
    assert store.find(entry.id) == [entry]


def test_a_failed_run_leaves_the_store_as_it_was(store: StoreType) -> None:
    add(store, [item("Kept", date(2023, 1, 1))])
    with pytest.raises(RuntimeError), store.transaction():
        store.add([item("Lost", date(2023, 1, 2))], authority="x,2026", zone=ZONE, now=NOW)
        store.set_meta("version", "99")
        raise RuntimeError("the run died here")
    assert [e.title for e in store.newest(10)] == ["Kept"]
    assert store.meta("version") is None


def test_newest_puts_undated_entries_last(store: StoreType) -> None:
    add(
        store,
        [item("Old", date(2020, 1, 1)), item("Evergreen", None), item("New", date(2024, 1, 1))],
    )
    assert [e.title for e in store.newest(10)] == ["New", "Old", "Evergreen"]
    assert [e.title for e in store.newest(1)] == ["New"]


def test_topics_are_kept_per_entry_and_counted(store: StoreType) -> None:
    add(store, [item("Kyiv visit", date(2024, 1, 2)), item("Budget", date(2024, 1, 1))])
    entries = {e.title: e for e in store.newest(10)}
    with store.transaction():
        store.set_topics([replace(entries["Kyiv visit"], topics=("ukraine", "visits"))])
        store.set_topics([replace(entries["Budget"], topics=("money",))])
        store.set_topics([replace(entries["Budget"], topics=("budget",))])  # replaces
    assert [e.title for e in store.newest(10, "ukraine")] == ["Kyiv visit"]
    assert store.newest(10, "money") == []
    assert store.counts() == {"all": 2, "ukraine": 1, "visits": 1, "budget": 1}
    batches = list(store.all_entries(batch=1))
    assert [len(b) for b in batches] == [1, 1]
    assert {e.title: e.topics for b in batches for e in b} == {
        "Kyiv visit": ("ukraine", "visits"),
        "Budget": ("budget",),
    }


def test_stories_new_in_a_transaction_are_labelled_without_replacing(store: StoreType) -> None:
    # A run's new stories have no labels yet: set_topics(new=...) skips looking for them,
    # and labels them all the same; a story not named new still has its labels replaced.
    add(store, [item("Budget", date(2024, 1, 1))])
    budget = store.newest(10)[0]
    with store.transaction():
        store.set_topics([replace(budget, topics=("money",))])
    with store.transaction():
        store.add([item("Kyiv visit", date(2024, 1, 2))], authority="x,2026", zone=ZONE, now=NOW)
        kyiv = next(e for e in store.newest(10) if e.title == "Kyiv visit")
        store.set_topics(
            [replace(kyiv, topics=("ukraine",)), replace(budget, topics=("budget",))],
            new={kyiv.id},
        )
    assert store.counts() == {"all": 2, "ukraine": 1, "budget": 1}


def test_retention_forgets_what_no_source_showed_for_long(store: StoreType) -> None:
    add(store, [item("Old", date(2020, 1, 1))], NOW - timedelta(days=400))
    add(store, [item("Recent", date(2026, 1, 1))])
    with store.transaction():
        assert store.prune(NOW - timedelta(days=365)) == 1
    assert [e.title for e in store.newest(10)] == ["Recent"]
    assert store.counts_by_source() == {"a": 1}


def test_a_source_that_did_not_change_keeps_its_entries_current(store: StoreType) -> None:
    add(store, [item("Quiet", date(2024, 1, 1), "a"), item("Other", date(2024, 1, 1), "b")])
    later = NOW + timedelta(days=2)
    with store.transaction():
        store.touch_source("a", later)
    seen = {e.title: e.last_seen for e in store.newest(10)}
    assert seen == {"Quiet": later, "Other": NOW}
    assert store.source_summary() == {
        "a": (1, 1, later.isoformat()),
        "b": (1, 1, NOW.isoformat()),
    }
    # What serve's /healthz shows of a saved page after a restart (aggregator.schedule).
    assert store.last_seen_of(["a", "b", "never"]) == {"a": later, "b": NOW}


def test_a_shared_store_times_its_changes_by_its_own_clock(store: StoreType) -> None:
    """Many machines write a shared store: the time of a change is the database's, one
    clock for all (found by review: a machine whose clock ran fast held every later
    change's Last-Modified back); a store of one machine leaves it to that machine."""
    from aggregator.pipeline import written_at

    mine = datetime(2001, 1, 1, tzinfo=UTC)
    when = written_at(store, lambda: mine, mine - timedelta(days=1))
    if store.shared:
        assert when.tzinfo is not None and abs(datetime.now(UTC) - when) < timedelta(hours=1)
    else:
        assert when == mine


def test_find_by_id_title_or_words(store: StoreType) -> None:
    add(store, [item("Secretary General in Kyiv", date(2023, 9, 28))])
    [entry] = store.find("secretary general in kyiv")
    assert store.find(entry.id) == [entry]
    assert store.find("in Kyiv") == [entry]
    assert store.find("50%_") == []


def long_title(seed: int) -> str:
    """1,000 CJK characters (the title cap), 3,000 bytes of UTF-8, that do not compress."""
    rnd = random.Random(seed)
    return "".join(chr(rnd.randint(0x4E00, 0x9FFF)) for _ in range(1000))


def test_a_title_long_in_bytes_is_stored_found_and_merged(store: StoreType) -> None:
    """PostgreSQL's b-tree rows hold 2,704 bytes: such a title once failed every run."""
    title = long_title(7)
    add(store, [item(title, date(2024, 1, 1), "a"), item("Short one", date(2024, 1, 1))])
    add(store, [item(title, date(2024, 1, 1), "b")], NOW + timedelta(hours=1))
    [entry] = store.find(title)
    assert entry.title == title
    assert [p.source for p in entry.sources] == ["a", "b"]
    assert store.counts()["all"] == 2


def told(title: str, day: date, guid: str, source: str = "a", link: str = "") -> SourceEntry:
    """An item its source gave an id (an RSS guid, an Atom id), and a link (by default
    one of its own, as a story's page keeps its address when its headline is corrected)."""
    return replace(item(title, day, source), guid=guid, link=link or f"https://{source}.x/{guid}")


def test_a_corrected_headline_is_the_story_it_corrects(store: StoreType) -> None:
    add(store, [told("Allies meet in Brussles", date(2024, 9, 12), "nato-1")])
    [before] = store.newest(10)
    later = NOW + timedelta(hours=1)
    add(store, [told("Allies meet in Brussels", date(2024, 9, 12), "nato-1")], later)
    [after] = store.newest(10)
    assert (after.id, after.title) == (before.id, "Allies meet in Brussels")
    # Found by its title as shown, and by its first one (which its id was made from).
    assert [e.id for e in store.find("Allies meet in Brussels")] == [before.id]
    assert [e.id for e in store.find("Brussles")] == [before.id]
    # Another source still showing the old headline tells the same story: it joins it,
    # and the story keeps its corrected title (its title key stays the one its id was
    # made from, so that no second story is made under that id).
    add(store, [told("Allies meet in Brussles", date(2024, 9, 12), "b-7", "b")], later)
    [joined] = store.newest(10)
    assert (joined.id, joined.title) == (before.id, "Allies meet in Brussels")
    assert [p.source for p in joined.sources] == ["a", "b"]
    # And the source correcting it once more, in a later run, is still the same story.
    add(store, [told("Allies meet at NATO in Brussels", date(2024, 9, 12), "nato-1")], later)
    [again] = store.newest(10)
    assert (again.id, again.title) == (before.id, "Allies meet at NATO in Brussels")


def test_a_corrected_headline_told_by_another_source_already_joins_that_story(
    store: StoreType,
) -> None:
    add(
        store,
        [
            told("Allies meet in Brussles", date(2024, 9, 12), "nato-1"),
            told("Allies meet in Brussels", date(2024, 9, 12), "b-7", "b"),
        ],
    )
    add(store, [told("Allies meet in Brussels", date(2024, 9, 12), "nato-1")])
    stories = {e.title: [p.source for p in e.sources] for e in store.newest(10)}
    assert stories == {"Allies meet in Brussles": ["a"], "Allies meet in Brussels": ["b", "a"]}


def test_an_item_id_says_nothing_on_another_day_or_of_several_stories(store: StoreType) -> None:
    add(store, [told("Story one", date(2024, 9, 1), "g1")])
    add(store, [told("Story two", date(2024, 9, 20), "g1")])  # the id used again, weeks on
    assert sorted(e.title for e in store.newest(10)) == ["Story one", "Story two"]
    # g1 now names two stories: a third title under it is a story of its own.
    add(store, [told("Story three", date(2024, 9, 20), "g1")])
    assert len(store.newest(10)) == 3
    # Two titles under one id in one run: the first is matched, the second is its own.
    add(
        store,
        [
            told("Story four", date(2024, 9, 2), "g2"),
            told("Story five", date(2024, 9, 2), "g2"),
        ],
    )
    add(store, [told("Story six", date(2024, 9, 2), "g2")])
    # Another source's ids are its own.
    add(store, [told("Story seven", date(2024, 9, 3), "g3", "b")])
    add(store, [told("Story eight", date(2024, 9, 3), "g3", "c")])
    assert sorted(e.title for e in store.newest(20)) == [
        f"Story {n}" for n in ("eight", "five", "four", "one", "seven", "six", "three", "two")
    ]


def test_items_a_source_lists_apart_stay_apart_and_later_news_finds_its_own(
    store: StoreType,
) -> None:
    morning = replace(told("Press briefing", date(2024, 5, 6), "s01"), summary="Morning.")
    afternoon = replace(told("Press briefing", date(2024, 5, 6), "s02"), summary="Afternoon.")
    add(store, [morning, afternoon])
    stories = {e.summary: e.id for e in store.newest(10)}
    assert set(stories) == {"Morning.", "Afternoon."} and len(set(stories.values())) == 2
    # The afternoon's item, read again alone with more to say, goes to its own story.
    later = replace(afternoon, summary="Afternoon: the plan announced.")
    add(store, [later], NOW + timedelta(hours=1))
    now_shown = {e.id: e.summary for e in store.newest(10)}
    assert now_shown == {
        stories["Morning."]: "Morning.",
        stories["Afternoon."]: "Afternoon: the plan announced.",
    }


def test_two_sources_items_of_one_title_and_day_hours_apart_are_two_stories(
    store: StoreType,
) -> None:
    """Found by review: another source's afternoon "Press briefing" was merged into the
    morning's, which took its summary; the afternoon's was gone from every feed."""

    def briefing(when: str, source: str, summary: str) -> SourceEntry:
        moment = datetime.fromisoformat(when)
        return replace(
            told("Press briefing", moment.date(), f"{source}-{moment:%H}", source),
            published=Published.at(moment),
            summary=summary,
        )

    add(store, [briefing("2023-07-12T08:00:00+02:00", "a", "Morning.")])
    add(store, [briefing("2023-07-12T16:00:00+02:00", "b", "Afternoon.")])
    shown = {e.summary: [p.source for p in e.sources] for e in store.newest(10)}
    assert shown == {"Morning.": ["a"], "Afternoon.": ["b"]}
    # A third source's, at a time of its own an hour off the afternoon's (a zone written
    # wrong), is the afternoon's; one of the day alone, the first seen's.
    add(store, [briefing("2023-07-12T15:00:00+02:00", "c", "Afternoon, in short.")])
    add(store, [replace(item("Press briefing", date(2023, 7, 12), "d"), summary="The day's.")])
    shown = {e.published.isoformat(): [p.source for p in e.sources] for e in store.newest(10)}
    assert shown == {
        "2023-07-12T08:00:00+02:00": ["a", "d"],
        "2023-07-12T16:00:00+02:00": ["b", "c"],
    }


@pytest.mark.parametrize(("guid", "link"), [("", "https://a.x/b1"), ("item-1", "")])
def test_a_source_that_moves_its_items_time_within_the_day_tells_one_story(
    store: StoreType, guid: str, link: str
) -> None:
    """Found by review: an item without a guid (or without a link) re-dated from 08:00 to
    12:30 by its own source became a second story beside the first."""
    moment = datetime.fromisoformat("2023-07-12T08:00:00+02:00")
    first = replace(
        item("Press briefing", moment.date()),
        published=Published.at(moment),
        summary="Morning.",
        guid=guid or None,
        link=link or None,
    )
    add(store, [first])
    later = replace(
        first,
        published=Published.at(moment + timedelta(hours=4, minutes=30)),
        summary="Morning, corrected.",
    )
    add(store, [later], NOW + timedelta(hours=5))
    [story] = store.newest(10)
    assert (story.summary, story.published) == ("Morning, corrected.", later.published)


@pytest.mark.parametrize("runs", [1, 2])
@pytest.mark.parametrize(("guids", "links"), [(False, True), (True, False), (False, False)])
def test_a_sources_two_items_of_one_title_hours_apart_are_two_stories(
    store: StoreType, runs: int, guids: bool, links: bool
) -> None:
    """Found by review: let a source move its own item's time, any of its items was
    taken for the first: its morning and afternoon briefings became one story."""

    def briefing(hour: int, summary: str) -> SourceEntry:
        moment = datetime(2023, 7, 12, hour, tzinfo=UTC)
        return replace(
            item("Press briefing", moment.date()),
            published=Published.at(moment),
            summary=summary,
            guid=f"b{hour}" if guids else None,
            link=f"https://a.x/b/{hour}" if links else None,
            provenance=Provenance("a", "a.txt", hour),
        )

    morning, afternoon = briefing(6, "Morning."), briefing(14, "Afternoon.")
    if runs == 1:
        add(store, [afternoon, morning])
    else:
        add(store, [morning])
        add(store, [afternoon], NOW + timedelta(hours=8))
    assert sorted(e.summary for e in store.newest(10)) == ["Afternoon.", "Morning."]
    # Another source's at 10:00, four hours from both: a third.
    add(store, [replace(briefing(10, "Midday."), provenance=Provenance("b", "b.txt", 1))])
    assert len(store.newest(10)) == 3


def briefing_at(
    hour: float, summary: str, source: str = "a", guid: str = "", link: str = "", line: int = 3
) -> SourceEntry:
    """A "Press briefing" item of 12 July 2023 at ``hour`` UTC."""
    moment = datetime(2023, 7, 12, tzinfo=UTC) + timedelta(hours=hour)
    return replace(
        item("Press briefing", moment.date(), source),
        published=Published.at(moment),
        summary=summary,
        guid=guid or None,
        link=link or None,
        provenance=Provenance(source, f"{source}.txt", line),
    )


@pytest.mark.parametrize(
    ("first", "then", "stories"),
    [
        # A feed giving every item one id: its morning and afternoon are two stories,
        # read in one run or two (found by review: merged, the morning lost).
        (
            [briefing_at(6, "Morning.", guid="https://a.x/feed", link="https://a.x/b/6")],
            [
                briefing_at(14, "Afternoon.", guid="https://a.x/feed", link="https://a.x/b/14"),
                briefing_at(6, "Morning.", guid="https://a.x/feed", link="https://a.x/b/6", line=4),
            ],
            2,
        ),
        # Numbered by place: "1" is the next item, of another link.
        (
            [briefing_at(6, "Morning.", guid="1", link="https://a.x/b/6")],
            [briefing_at(14, "Afternoon.", guid="1", link="https://a.x/b/14")],
            2,
        ),
        # Every item linked to one page, no ids, both listed: two.
        (
            [briefing_at(6, "Morning.", link="https://a.x/briefings")],
            [
                briefing_at(14, "Afternoon.", link="https://a.x/briefings", line=2),
                briefing_at(6, "Morning.", link="https://a.x/briefings"),
            ],
            2,
        ),
        # A new id on every fetch, the same link, the time moved: one (found by review).
        (
            [briefing_at(6, "Morning.", guid="g1", link="https://a.x/b1")],
            [briefing_at(10.5, "Morning, corrected.", guid="g2", link="https://a.x/b1")],
            1,
        ),
        # No id, a session in the link: the same link, the time moved: one.
        (
            [briefing_at(6, "Morning.", link="https://a.x/b1?sid=aaa")],
            [briefing_at(10.5, "Morning, corrected.", link="https://a.x/b1?sid=bbb")],
            1,
        ),
    ],
)
def test_what_tells_a_sources_item_from_its_next(
    store: StoreType, first: list[SourceEntry], then: list[SourceEntry], stories: int
) -> None:
    add(store, first)
    add(store, then, NOW + timedelta(hours=8))
    assert len(store.newest(10)) == stories, [(e.published, e.summary) for e in store.newest(10)]


def test_an_item_moved_near_another_sources_story_stays_in_its_own(store: StoreType) -> None:
    """Found by review: A's item (a link, no id) moved from 06:00 to 13:00 joined B's 14:00
    story, A's own left at 06:00 as it was."""
    add(
        store,
        [
            briefing_at(6, "A morning.", "a", link="https://a.x/b1"),
            briefing_at(14, "B afternoon.", "b", link="https://b.x/b1"),
        ],
    )
    add(store, [briefing_at(13, "A moved.", "a", link="https://a.x/b1")], NOW + timedelta(hours=5))
    shown = sorted((e.summary, tuple(p.source for p in e.sources)) for e in store.newest(10))
    assert shown == [("A moved.", ("a",)), ("B afternoon.", ("b",))]


def test_an_id_given_to_a_new_item_does_not_rename_the_story_it_was_given_before(
    store: StoreType,
) -> None:
    # Found by review: a feed giving every item one id, or numbering its items by their
    # place, renamed the older story after the newer one (and the older item, unchanged,
    # is not read again). A correction keeps its link; a new story has its own.
    day = date(2024, 5, 6)
    add(store, [told("Allies meet in Brussels", day, "same", link="https://a.x/allies")])
    add(store, [told("Exercise ends in Norway", day, "same", link="https://a.x/exercise")])
    assert sorted(e.title for e in store.newest(10)) == [
        "Allies meet in Brussels",
        "Exercise ends in Norway",
    ]
    add(store, [told("Summit dates set", day, "1", "b", "https://b.x/summit")])
    add(
        store,
        [
            told("Talks resume", day, "1", "b", "https://b.x/talks"),
            told("Summit dates set", day, "2", "b", "https://b.x/summit"),
        ],
    )
    titles = sorted(e.title for e in store.newest(10))
    assert titles.count("Summit dates set") == 1 and "Talks resume" in titles


def test_a_long_item_id_in_any_script_is_kept(store: StoreType) -> None:
    # Found by review: PostgreSQL's b-tree rows hold at most 2,704 bytes, and every run
    # failed on an id of 2,000 characters of three bytes each.
    rng = random.Random(7)  # (not repetitive: PostgreSQL compresses what repeats)
    long_id = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(2000))
    add(store, [told("Story one", date(2024, 5, 6), long_id)])
    add(store, [told("Story one, corrected", date(2024, 5, 6), long_id)])
    assert [e.title for e in store.newest(10)] == ["Story one, corrected"]


def test_an_item_given_a_new_id_in_a_later_run_is_still_its_story(store: StoreType) -> None:
    # Some feeds give an item a new id on every fetch: a new id alone parts nothing.
    add(store, [told("Press briefing", date(2024, 5, 6), "fetch-1")])
    add(store, [told("Press briefing", date(2024, 5, 6), "fetch-2")], NOW + timedelta(hours=1))
    assert len(store.newest(10)) == 1


def test_meta_and_fetch_state_are_replaced_not_added(store: StoreType) -> None:
    with store.transaction():
        store.set_meta("version", "1")
        store.set_meta("version", "2")
        store.set_fetch_state("https://e.org/rss", {"etag": '"a"'})
        store.set_fetch_state("https://e.org/rss", {"etag": '"b"', "last_error": "é"})
    assert store.meta("version") == "2"
    assert store.meta("missing") is None
    assert store.fetch_state("https://e.org/rss") == {"etag": '"b"', "last_error": "é"}
    assert store.fetch_state("https://e.org/other") is None


def test_a_source_is_claimed_by_one_worker_until_released_or_expired(store: StoreType) -> None:
    sources = ["a", "b", "c"]
    assert store.claim(sources, holder="w1", now=NOW, lease_seconds=60) == sources
    assert store.claim(sources, holder="w2", now=NOW, lease_seconds=60) == []
    store.release("a", holder="w1", due=NOW + timedelta(minutes=15))
    assert store.due("a") == NOW + timedelta(minutes=15)
    # Released but not yet due; b and c are held until their lease ends.
    later = NOW + timedelta(seconds=59)
    assert store.claim(sources, holder="w2", now=later, lease_seconds=60) == []
    expired = NOW + timedelta(seconds=61)
    assert store.claim(sources, holder="w2", now=expired, lease_seconds=60) == ["b", "c"]
    # w1 comes back late: its release of b is ignored, w2 holds it.
    store.release("b", holder="w1", due=NOW + timedelta(days=1))
    assert store.due("b") == NOW
    for source in ("b", "c"):
        store.release(source, holder="w2", due=NOW + timedelta(days=1))
    due = NOW + timedelta(minutes=15)
    assert store.claim(sources, holder="w3", now=due, lease_seconds=60) == ["a"]


def test_the_longest_name_a_source_may_have_is_stored_and_claimed(store: StoreType) -> None:
    """A name of MAX_NAME_BYTES (three-byte characters) is claimed, released and told
    as any other, on PostgreSQL too (found by review: a name of 2,900 bytes broke the
    leases' index, and every run failed); a longer one is refused by the config."""
    name = "界" * (MAX_NAME_BYTES // 3)
    assert store.claim([name], holder="w1", now=NOW, lease_seconds=60) == [name]
    store.release(name, holder="w1", due=NOW + timedelta(minutes=15))
    assert store.due(name) == NOW + timedelta(minutes=15)
    add(store, [item("Kyiv visit", date(2024, 1, 2), name)])
    assert store.counts_by_source() == {name: 1}


def test_workers_claiming_at_once_never_share_a_source(store_settings: StoreSettings) -> None:
    sources = [f"source-{n:03d}" for n in range(200)]
    claimed: dict[str, list[str]] = {}
    failed: dict[str, BaseException] = {}
    # (A worker that cannot start breaks the barrier for the others, which then end:
    # the test fails saying why, where it hung for ever.)
    start = threading.Barrier(4, timeout=60)

    def worker(name: str) -> None:
        try:
            with open_store(store_settings) as mine:
                start.wait()
                got = []
                for offset in range(0, len(sources), 20):
                    got += mine.claim(
                        sources[offset : offset + 20], holder=name, now=NOW, lease_seconds=60
                    )
                claimed[name] = got
        except BaseException as error:
            failed[name] = error
            start.abort()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed, failed
    every = [s for got in claimed.values() for s in got]
    assert sorted(every) == sources  # each source once, none lost


def test_the_write_lock_keeps_a_second_writer_out(store_settings: StoreSettings) -> None:
    quick = replace(store_settings, lock_timeout=0.3)
    busy = "another aggregator run or server is writing"
    with write_lock(quick), pytest.raises(LockTimeout, match=busy), write_lock(quick):
        pass
    with write_lock(quick):  # released
        pass


def test_a_store_from_a_newer_aggregator_is_refused(store_settings: StoreSettings) -> None:
    open_store(store_settings).close()
    newer = len(MIGRATIONS) + 1
    if store_settings.url:
        with psycopg.connect(store_settings.url, autocommit=True) as db:
            db.execute("UPDATE schema_version SET version = %s", (newer,))
    else:
        with sqlite3.connect(store_settings.path) as db:
            db.execute(f"PRAGMA user_version = {newer}")
    with pytest.raises(StoreError, match="newer than this aggregator understands"):
        open_store(store_settings)


def _old_store(settings: StoreSettings, version: int) -> None:
    """A store at schema ``version`` holding one story, written as that version would."""
    stamp = NOW.isoformat()
    rows: list[tuple[str, tuple[Any, ...]]] = [
        (
            "INSERT INTO entries (id, title, title_key, published, summary, content_html, link, "
            "author, categories, first_seen, last_seen, sort_key) VALUES "
            "('tag:x,2026:entry:1', 'Old story', 'old story', '2024-09-17', 'S', NULL, NULL, "
            "NULL, '[]', ?, ?, '2024-09-17T12:00:00+00:00')",
            (stamp, stamp),
        ),
        (
            "INSERT INTO sightings (entry_id, source, location, line, first_seen, last_seen) "
            "VALUES ('tag:x,2026:entry:1', 'a', 'seeds/a.txt', 3, ?, ?)",
            (stamp, stamp),
        ),
    ]
    if settings.url:
        with psycopg.connect(settings.url, autocommit=True) as db, db.transaction():
            for migration in MIGRATIONS[:version]:  # with psycopg's placeholders
                migration(
                    lambda sql, *params: db.execute(sql.replace("?", "%s"), *params), POSTGRESQL
                )
            db.execute("CREATE TABLE schema_version (version INTEGER)")
            db.execute("INSERT INTO schema_version VALUES (%s)", (version,))
            for sql, params in rows if version else []:
                db.execute(sql.replace("?", "%s"), params)
    else:
        settings.path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(settings.path) as lite:
            for migration in MIGRATIONS[:version]:
                migration(lite.execute, SQLITE)
            lite.execute(f"PRAGMA user_version = {version}")
            for sql, params in rows if version else []:
                lite.execute(sql, params)


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS)))
def test_an_older_store_is_upgraded_and_keeps_its_entries(
    store_settings: StoreSettings, version: int
) -> None:
    _old_store(store_settings, version)
    with open_store(store_settings) as upgraded:
        assert upgraded.schema_version == len(MIGRATIONS)
        [entry] = upgraded.newest(10)
        assert (entry.title, entry.enclosures) == ("Old story", ())
        assert entry.sources == (Provenance("a", "seeds/a.txt", 3, None),)
        add(upgraded, [item("Old story", date(2024, 9, 17), "b")])
        [entry] = upgraded.newest(10)
        assert [p.source for p in entry.sources] == ["a", "b"]
        assert upgraded.claim(["a"], holder="w", now=NOW, lease_seconds=1) == ["a"]


# -- SQLite only ----------------------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_and_a_commit_is_synced_before_it_returns(tmp_path: Path) -> None:
    """FULL (2): the write-ahead log is synced at each commit, so the store is on disk
    before a run renames its files into place."""
    with Store(tmp_path / "s.sqlite3") as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_new_file_has_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    with Store(tmp_path / "new.sqlite3") as store:
        assert store.db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16384
    old = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(old)) as lite:
        lite.execute("CREATE TABLE before_us (x)")  # a file with 4 KB pages
        lite.commit()
    with Store(old) as store:
        assert store.db.execute("PRAGMA page_size").fetchone()[0] == 4096
        add(store, [item("Old file", date(2024, 9, 17), "a")])
        assert [entry.title for entry in store.newest(10)] == ["Old file"]


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


# -- PostgreSQL only ------------------------------------------------------------------------


def test_instances_starting_together_migrate_once(postgres: Cluster) -> None:
    url = postgres.new_database()
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_it() -> None:
        start.wait()
        try:
            PostgresStore(url).close()
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]


HOLDER = textwrap.dedent(
    """
    import sys, time
    from aggregator.lock import advisory
    with advisory(sys.argv[1], 5):
        print("holding", flush=True)
        time.sleep(60)
    """
)


def test_a_writer_that_dies_frees_the_write_lock(postgres: Cluster) -> None:
    settings = StoreSettings(path=Path("unused"), url=postgres.new_database(), lock_timeout=0.3)
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, settings.url or ""], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        busy = r"postgresql://postgres@/test_\w+\?host=.*: another aggregator run"
        with pytest.raises(LockTimeout, match=busy), write_lock(settings):
            pass
        holder.kill()
        holder.wait()
    with write_lock(replace(settings, lock_timeout=10)):
        pass


def test_errors_name_the_url_without_its_password(postgres: Cluster) -> None:
    assert redact("postgresql://bob:s3cret@db.example:5432/news?password=x&sslmode=require") == (
        "postgresql://bob@db.example:5432/news?sslmode=require"
    )
    url = f"postgresql://nobody:s3cret@/missing_db?host={postgres.directory}"
    with pytest.raises(StoreError) as caught:
        PostgresStore(url, timeout=5)
    message = str(caught.value)
    assert message.startswith("postgresql://nobody@/missing_db")
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:s3cr%zzet@localhost/news",  # libpq quotes the token it cannot read
        "postgresql://bob@localhost/news?password=s3c%ret",
        "postgresql://bob:s3cret@[::1/news",  # ...or the whole URL
        "postgresql://bob:s3%63ret@[::1/news",
        'postgresql://bob:s3c"ret%zz@localhost/news',  # a quote in it ends libpq's quoting
    ],
)
def test_a_malformed_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        PostgresStore(url, timeout=1)
    message = str(caught.value)
    assert message.startswith("postgresql://bob@")
    assert "cannot connect to the store: " in message
    assert "s3" not in message and "\n" not in message  # as written, or decoded


def test_a_short_password_leaves_the_error_as_libpq_wrote_it() -> None:
    """Found by review: a password of one letter was replaced wherever it occurred,
    garbling the line ("c***nnecti***n") and telling the password by what was taken."""
    with pytest.raises(StoreError) as caught:
        PostgresStore("postgresql://bob:o@127.0.0.1:1/news", timeout=1)
    message = str(caught.value)
    assert message.startswith("postgresql://bob@127.0.0.1:1/news: cannot connect to the store: ")
    assert "connection" in message and "***" not in message, message


@pytest.mark.parametrize("password", ["password", "fail", "o"])
def test_a_password_that_is_a_word_of_the_error_leaves_the_words_alone(password: str) -> None:
    """Found by review: a password replaced wherever it occurred garbled the line and
    told what it was ("*** authentication failed")."""
    from aggregator.errors import conceal

    said = 'connection failed: FATAL:  password authentication failed for user "alice"'
    assert conceal(said, f"postgresql://alice:{password}@db.example/news") == said


def test_an_at_sign_in_a_password_is_refused_before_libpq_shows_part_of_it() -> None:
    with pytest.raises(StoreError) as caught:
        PostgresStore("postgresql://bob:hun@ter2@127.0.0.1:1/news", timeout=1)
    message = str(caught.value)
    assert "ter2" not in message and "hun" not in message
    assert message.endswith("write an '@' in the user name or password as %40"), message


def test_a_user_without_create_rights_is_told_which_to_get(postgres: Cluster) -> None:
    """Since PostgreSQL 15 only the database's owner may create tables in schema
    public: CREATE on the database is not what is missing, CREATE on the schema is."""
    url = postgres.new_database()
    database = url.split("?")[0].rsplit("/", 1)[1]
    reader = f"reader_{database}"  # roles are the cluster's: one for this test only
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE ROLE {reader} LOGIN")
        db.execute(f'GRANT CREATE ON DATABASE "{database}" TO {reader}')  # not enough
    as_reader = url.replace(f"{postgres.user}@", f"{reader}@")
    with pytest.raises(StoreError) as caught:
        PostgresStore(as_reader)
    message = str(caught.value)
    assert message.startswith(f"{as_reader}: cannot create or upgrade the store's tables: ")
    assert message.endswith(
        f"; the user {reader} needs CREATE on schema public (GRANT CREATE ON SCHEMA public "
        f"TO {reader}) or to own the database (nothing was changed)"
    )
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"GRANT CREATE ON SCHEMA public TO {reader}")  # what it said
    with PostgresStore(as_reader) as store:
        assert store.schema_version == len(MIGRATIONS)


def test_title_lookups_use_the_title_index(postgres: Cluster) -> None:
    """The hash index on title keys (schema 6) serves a run's candidates lookup
    (``title_key IN (…)``) and find's ``title_key = ?``, on a store of thousands."""
    url = postgres.new_database()
    with PostgresStore(url) as store:
        add(
            store,
            [item(f"Story {n}", date(2024, 1, 1) + timedelta(days=n % 300)) for n in range(3000)],
        )
        add(store, [item(long_title(n), date(2024, 2, 2)) for n in range(20)])
        store.db.execute("ANALYZE entries")
        keys = ["story 12", "story 2999", "nothing like it"]
        plans = {
            "in": store.db.execute(
                "EXPLAIN SELECT id FROM entries WHERE title_key IN (%s, %s, %s)", keys
            ).fetchall(),
            "equal": store.db.execute(
                "EXPLAIN SELECT id FROM entries WHERE title_key = %s", (keys[0],)
            ).fetchall(),
        }
        for plan in plans.values():
            text = "\n".join(row[0] for row in plan)
            assert "entries_by_title" in text and "Seq Scan" not in text, text
        assert [e.title for e in store.find("Story 12")] == ["Story 12"]
        found = store.candidates(["story 12", "story 2999", "nothing like it"])
        assert sorted(found) == ["story 12", "story 2999"]


@pytest.mark.parametrize("days", [1, 365, 739_000, 740_000, 1_000_000])
def test_retention_of_any_allowed_length(days: int) -> None:
    """[store] retention_days may be up to 1,000,000: longer than the calendar reaches
    back keeps every story, instead of failing to compute a date before year 1."""
    from aggregator.store.plan import retention_cutoff

    for now in (NOW, NOW.astimezone(timezone(timedelta(hours=14)))):
        cutoff = retention_cutoff(now, days)
        if days < now.toordinal() - 1:
            assert cutoff == now - timedelta(days=days)
        else:
            assert cutoff is None


def test_a_failed_run_gives_its_claims_back_keeping_a_servers_wait(
    tmp_path: Path, postgres: Cluster
) -> None:
    """A run that failed gives back what it claimed, due at once, except a source whose
    server asked us to wait (Retry-After, max-age): due when it said."""
    from aggregator.config import SourceConfig
    from aggregator.ingest import Outcome
    from aggregator.store.leases import give_back, worker

    settings = StoreSettings(path=tmp_path / "s.sqlite3", url=postgres.new_database())
    waiting, plain = (SourceConfig(name=n, key=f"sources[{i}]") for i, n in enumerate("ab"))
    asked = NOW + timedelta(hours=2)
    with open_store(settings) as store:
        assert store.claim(["a", "b"], holder=worker(), now=NOW, lease_seconds=600) == ["a", "b"]
        give_back(store, [waiting, plain], NOW, [Outcome(waiting, (), not_before=asked)])
        assert (store.due("a"), store.due("b")) == (asked, NOW)
        assert store.claim(["a", "b"], holder="other", now=NOW, lease_seconds=600) == ["b"]


def test_only_the_items_a_source_still_lists_are_kept_current(store: StoreType) -> None:
    """touch_source with the items a source lists unread (their ids and marks) keeps
    their stories current, and not a story the source no longer lists."""
    listed = replace(item("Listed", date(2024, 1, 1)), guid="g1", link="https://a.example/1")
    dropped = replace(item("Dropped", date(2024, 1, 1)), guid="g2", link="https://a.example/2")
    add(store, [listed, dropped, item("Elsewhere", date(2024, 1, 1), "b")])
    later = NOW + timedelta(days=2)
    with store.transaction():
        store.touch_source("a", later, [("g1", item_mark(title_key("Listed"), listed.link))])
    seen = {e.title: e.last_seen for e in store.newest(10)}
    assert seen == {"Listed": later, "Dropped": NOW, "Elsewhere": NOW}
    # Told by an id alone (a sighting written without a mark), or by nothing it has.
    with store.transaction():
        store.touch_source("a", later + timedelta(days=1), [("g9", "nomark")])
    assert {e.title: e.last_seen for e in store.newest(10)} == seen


def test_postgresql_connections_say_how_to_find_a_server_gone(postgres: Cluster) -> None:
    """Every connection asks for TCP keepalives and a limit on data left unacknowledged,
    so that a run whose server went away mid-query (the network cut) fails in about a
    minute, not never (found by review: it waited for good, holding its leases and the
    write lock); settings the URL gives win. (The test cluster listens on a Unix socket,
    where TCP settings do nothing: what is checked is what each connection asks for.)"""
    from aggregator.store.postgres import PostgresStore

    with PostgresStore(postgres.new_database()) as store:
        asked = store.db.info.get_parameters()
    assert {name: asked.get(name) for name in ("keepalives_idle", "tcp_user_timeout")} == {
        "keepalives_idle": "30",
        "tcp_user_timeout": "60000",
    }
    with PostgresStore(postgres.new_database() + "&keepalives_idle=5") as store:
        assert store.db.info.get_parameters()["keepalives_idle"] == "5"


def test_a_sighting_from_before_marks_of_an_item_without_an_id_is_kept_current(
    store: StoreType,
) -> None:
    """Written by a version that kept no marks, for an item without an id: which item
    it was is not known, so it stays current while its source lists anything unchanged
    (found by review: such stories were forgotten while still listed)."""
    add(store, [item("Old telling", date(2024, 1, 1))])
    with store.transaction():
        store.db.execute("UPDATE sightings SET item_mark = NULL, item_id = NULL")
    later = NOW + timedelta(days=2)
    with store.transaction():
        store.touch_source("a", later, [(None, "someothermark")])
    assert [e.last_seen for e in store.newest(10)] == [later]
