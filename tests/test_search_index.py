"""Searches read the store's index (migrations.v5), and find exactly what a scan found.

The store contract (``StoreType.search``) runs against both backends (``store_settings``);
then the indexed search is compared with the scan it replaced (every entry through the
whole-word patterns) on the seeds and on generated stories full of what tokenizers
disagree about: punctuation, curly quotes, accents, ``NATO-EU``, ``foo_bar``,
``nato.int``, dotless i, final sigma, and query syntax (``"``, ``*``, ``NEAR``, ``AND``).
"""

from __future__ import annotations

import random
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from aggregator.config import StoreSettings
from aggregator.errors import AggregatorError
from aggregator.model import Entry, Provenance, Published, SourceEntry
from aggregator.site import search as site_search
from aggregator.site.search import (
    Query,
    QueryError,
    candidates,
    search,
    search_page,
    search_pattern,
    searched,
)
from aggregator.snapshots import read_text
from aggregator.store import MIGRATIONS, StoreType, open_store
from aggregator.store import sqlite as sqlite_store
from aggregator.store.migrations import POSTGRESQL, create_sqlite_at
from aggregator.store.words import entry_words, is_one_word, term_words, words
from aggregator.topics import entry_text

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Brussels")
EVERYTHING = 100_000  # a limit no test store reaches: compare whole result lists

# Terms whose words a tokenizer, a query language or a case table would get wrong.
TRICKY = [
    "NATO", "nato", "EU", "NATO-EU", "NATO - EU", "eu's", "NATO’s", "NATO's", "Allies'",
    "“Allies”", '"Allies"', "‘quoted’", "quoted", "café", "cafe", "CAFÉ", "Yildiz", "YILDIZ",
    "yıldız", "İstanbul", "istanbul", "ΟΔΟΣ", "οδος", "οδοσ", "foo_bar", "foo", "bar",
    "nato.int", "int", "www", "e-mail", "x@y.org", "C++", "C", "U.S.", "U.S", "F-35", "35",
    "1.5", "5", "straße", "STRASSE", "Kelvin", "north atlantic", "North  Atlantic", "Atlantic",
    '"', "*", "NEAR", "AND", "OR", "NOT", "-", ":", "x:y", "a*", "'", "\\", "%", "_", "(", ")",
    "NEAR(nato eu)", "col:nato", "^nato", "nato*", "\u0345", "—", "2024",
]  # fmt: skip

# Pieces of generated stories: the same words written the ways sources write them.
PIECES = [
    "NATO-EU", "NATO–EU", "NATO — EU", "EU’s", "EU's", "eu", "NATO", "Nato", "nato.int",
    "www.nato.int/cps", "e-mail: x@y.org", "Café", "cafe\u0301", "CAFE", "Yıldız", "YILDIZ",
    "Yildiz", "İstanbul", "ISTANBUL", "ΟΔΟΣ", "οδος", "foo_bar", "foo", "_bar", "bar_",
    "C++", "U.S.", "US", "F-35", "F35", "1.5", "15", "“Allies”", "‘quoted’", "Allies'",
    "STRASSE", "Straße", "\u212aelvin", "Kelvin", "North Atlantic", "North\nAtlantic",
    "North, Atlantic", "\ue000NATO", "NATO\u0345", "AND", "NEAR", "OR", "*", '"', ":", "-",
    "col:nato", "2024", "x:y", "(", ")", "\\", "%", "'", "tab\tword", "ﬆ", "ﬅ",
]  # fmt: skip


def item(title: str, day: date, summary: str = "", source: str = "a") -> SourceEntry:
    return SourceEntry(
        title=title,
        published=Published.on_day(day),
        summary=summary,
        provenance=Provenance(source, f"{source}.txt", 1),
    )


def add(store: StoreType, items: Sequence[SourceEntry], now: datetime = NOW) -> list[Entry]:
    with store.transaction():
        return store.add(items, authority="x,2026", zone=ZONE, now=now)[1]


@pytest.fixture
def store(store_settings: StoreSettings) -> Iterator[StoreType]:
    with open_store(store_settings) as opened:
        yield opened


def titles(entries: Sequence[Entry]) -> list[str]:
    return [e.title for e in entries]


# -- words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("NATO-EU’s talks", ["nato", "eu", "s", "talks"], id="punctuation"),
        pytest.param("foo_bar", ["foo_bar"], id="underscore is a word character"),
        pytest.param("www.nato.int", ["www", "nato", "int"], id="a host name is words"),
        pytest.param("Yıldız İstanbul", ["yildiz", "istanbul"], id="dotless and dotted i"),
        pytest.param("ΟΔΟΣ οδος", ["οδοσ", "οδοσ"], id="final sigma"),
        pytest.param("Café cafe\u0301", ["cafe", "cafe"], id="Latin accents go"),
        pytest.param("Ελλάδα Łódź", ["ελλαδα", "łodz"], id="Greek accents go, not letters"),
        pytest.param("Мой край", ["мой", "край"], id="Cyrillic letters stay"),
        pytest.param('" * : - AND', ["and"], id="query syntax is text"),
    ],
)
def test_words_are_runs_of_word_characters_folded_as_re_compares_them(
    text: str, expected: list[str]
) -> None:
    assert words(text) == expected


def test_what_the_index_can_do_with_a_term() -> None:
    assert term_words("NATO-EU") == ["nato", "eu"]
    assert term_words('"') is None and term_words("-") is None  # nothing to look up
    assert term_words("x" * 201) is None  # longer than any indexed word
    assert is_one_word("EU") and is_one_word(" foo_bar ")
    assert not is_one_word("NATO-EU") and not is_one_word("eu's") and not is_one_word("*")
    assert entry_words("A-b", "c", ("d e", "f")) == "a b c d e f"


# -- the store contract -------------------------------------------------------------------


def test_search_finds_whole_words_newest_first(store: StoreType) -> None:
    add(
        store,
        [
            item("NATO-EU talks", date(2024, 1, 3), "On www.nato.int"),
            item("EU summit", date(2024, 1, 2), "foo_bar"),
            item("Europe day", date(2024, 1, 1), "Yıldız speaks"),
        ],
    )
    assert titles(store.search(["EU"], limit=10)) == ["NATO-EU talks", "EU summit"]
    assert titles(store.search(["nato-eu"], limit=10)) == ["NATO-EU talks"]
    assert titles(store.search(["nato.int"], limit=10)) == ["NATO-EU talks"]
    assert titles(store.search(["foo_bar"], limit=10)) == ["EU summit"]
    assert titles(store.search(["bar"], limit=10)) == []
    assert titles(store.search(["YILDIZ"], limit=10)) == ["Europe day"]
    assert titles(store.search(["eu", "summit"], limit=10)) == ["EU summit"]
    assert titles(store.search(["eu"], limit=1)) == ["NATO-EU talks"]
    # Either term (a filtered feed's q=a,b), a phrase of several words among them.
    assert titles(store.search(["summit", "europe day"], limit=10, either=True)) == [
        "EU summit",
        "Europe day",
    ]
    assert titles(store.search(["yildiz", "nato.int"], limit=10, either=True)) == [
        "NATO-EU talks",
        "Europe day",
    ]
    # A term the index cannot look up: it cannot narrow either terms at all.
    assert len(store.search(["summit", "-"], limit=10, either=True)) == 3


@pytest.mark.parametrize("term", ['"', "*", "NEAR", "AND", "-", ":", "'", "\\", "%", "?", "a'b"])
def test_query_syntax_in_a_term_is_text(store: StoreType, term: str) -> None:
    add(
        store, [item(f"Story with {term} in it", date(2024, 1, 1)), item("Other", date(2024, 1, 2))]
    )
    found = titles(store.search([term], limit=10))
    if term_words(term) is None:  # nothing to look up: every entry, newest first
        assert found == ["Other", f"Story with {term} in it"]
    else:
        assert found == [f"Story with {term} in it"]
    # A one-word term leaves its entry out; any other is left to the patterns.
    kept = [] if is_one_word(term) else [f"Story with {term} in it"]
    assert titles(store.search(["story"], exclude=[term], limit=10)) == kept


def test_excluded_words_leave_entries_out(store: StoreType) -> None:
    add(
        store,
        [
            item("Ukraine aid", date(2024, 1, 3)),
            item("NATO-EU talks", date(2024, 1, 2)),
            item("Baltic patrol", date(2024, 1, 1), "foo_ukraine"),
        ],
    )
    assert titles(store.search([], exclude=["ukraine"], limit=10)) == [
        "NATO-EU talks",
        "Baltic patrol",  # foo_ukraine is not the word Ukraine
    ]
    # Not one word: the index cannot tell, so it leaves the entry to the patterns.
    assert len(store.search([], exclude=["NATO-EU"], limit=10)) == 3


def test_search_within_a_topic_and_reading_on(store: StoreType) -> None:
    entries = add(store, [item(f"Baltic story {n}", date(2024, 1, 1 + n)) for n in range(7)])
    store.set_topics([replace(e, topics=("baltic",)) for e in entries if e.title[-1] in "0246"])
    found = store.search(["baltic"], topic="baltic", limit=3)
    assert titles(found) == ["Baltic story 6", "Baltic story 4", "Baltic story 2"]
    rest = store.search(["baltic"], topic="baltic", limit=3, after=found[-1])
    assert titles(rest) == ["Baltic story 0"]
    assert len(store.search(["story"], limit=100, after=rest[-1])) == 0


def test_the_index_follows_changes_and_forgetting(store: StoreType) -> None:
    add(store, [item("Summit", date(2024, 1, 1), "About Kyiv")])
    assert titles(store.search(["kyiv"], limit=10)) == ["Summit"]
    # The same story, told again with a longer summary: the index follows it.
    add(store, [item("Summit", date(2024, 1, 1), "About Vilnius, at length")], NOW)
    assert titles(store.search(["vilnius"], limit=10)) == ["Summit"]
    assert titles(store.search(["kyiv"], limit=10)) == []
    with store.transaction():
        assert store.prune(NOW + timedelta(days=1)) == 1
    assert store.search(["vilnius"], limit=10) == []
    add(store, [item("Summit", date(2024, 1, 1), "Back in Kyiv")], NOW)
    assert titles(store.search(["kyiv"], limit=10)) == ["Summit"]


def _v4_store(settings: StoreSettings) -> None:
    """A version-4 store holding two stories, written as version 4 did."""
    rows = [
        (f"tag:x,2026:entry:{n}", title, title.casefold(), summary, f"2024-09-1{n}")
        for n, (title, summary) in enumerate([("NATO-EU talks", "Kyiv"), ("Baltic", "foo_bar")])
    ]
    insert = (
        "INSERT INTO entries (id, title, title_key, published, summary, categories, "
        "first_seen, last_seen, sort_key) VALUES (?, ?, ?, ?, ?, '[\"Défense\"]', ?, ?, ?)"
    )
    values = [(i, t, k, p, s, NOW.isoformat(), NOW.isoformat(), p) for i, t, k, s, p in rows]
    if settings.url:
        with psycopg.connect(settings.url, autocommit=True) as db, db.transaction():
            for migration in MIGRATIONS[:4]:
                migration(db.execute, POSTGRESQL)
            db.execute("CREATE TABLE schema_version (version INTEGER)")
            db.execute("INSERT INTO schema_version VALUES (4)")
            for row in values:
                db.execute(insert.replace("?", "%s"), row)
    else:
        settings.path.parent.mkdir(parents=True, exist_ok=True)
        create_sqlite_at(str(settings.path), 4)
        with sqlite3.connect(settings.path) as lite:
            lite.executemany(insert, values)


def test_a_version_4_store_is_indexed_when_upgraded(store_settings: StoreSettings) -> None:
    _v4_store(store_settings)
    with open_store(store_settings) as upgraded:
        assert upgraded.schema_version == len(MIGRATIONS) == 10
        assert titles(upgraded.search(["eu"], limit=10)) == ["NATO-EU talks"]
        assert titles(upgraded.search(["foo_bar"], limit=10)) == ["Baltic"]
        assert titles(upgraded.search(["défense"], limit=10)) == ["Baltic", "NATO-EU talks"]
        add(upgraded, [item("Baltic", date(2024, 9, 11), "Now in Riga")])
        assert titles(upgraded.search(["riga"], limit=10)) == ["Baltic"]
        assert upgraded.search(["foo_bar"], limit=10) == []


# -- the same results as the scan ----------------------------------------------------------


def chosen(entries: Iterable[Entry], want: list[str], avoid: list[str]) -> list[str]:
    """A filtered feed's rule (aggregator.server): one q term at least, no exclude term."""
    wanted = [search_pattern(t) for t in want]
    unwanted = [search_pattern(t) for t in avoid]
    return [
        e.id
        for e in entries
        if (not wanted or any(p.search(searched(entry_text(e))) for p in wanted))
        and not any(p.search(searched(entry_text(e))) for p in unwanted)
    ]


def compare(store: StoreType, terms: Sequence[str]) -> None:
    """For each term: the search page, a feed's ``q=`` and its ``exclude=`` find what the
    scan of every entry, newest first, through the patterns found."""
    everything = store.newest(EVERYTHING)
    for term, other in zip(terms, [*terms[1:], terms[0]], strict=True):
        query = Query.parse(term)
        old = titles(search(everything, query, EVERYTHING))
        assert titles(search(candidates(store, query.terms), query, EVERYTHING)) == old, term
        old = chosen(everything, [term], [])
        assert chosen(candidates(store, [term], unindexed=EVERYTHING), [term], []) == old, term
        old = chosen(everything, [], [term])
        assert chosen(candidates(store, [], [term], unindexed=EVERYTHING), [], [term]) == old, term
        # q=term,other: stories with either (found by review: both were asked for).
        both = [term, other]
        old = chosen(everything, both, [])
        assert set(old) == {*chosen(everything, [term], []), *chosen(everything, [other], [])}
        found = candidates(store, both, unindexed=EVERYTHING, either=True)
        assert chosen(found, both, []) == old, both


def seed_items() -> list[SourceEntry]:
    found: list[SourceEntry] = []
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        try:
            found += read_text(
                path.read_text(encoding="utf-8"), source=path.stem, location=path.name
            )
        except AggregatorError:
            continue
    return found


def test_the_index_finds_what_the_scan_found_in_the_seeds(store: StoreType) -> None:
    items = seed_items()
    assert len(items) > 40  # every seed page read
    add(store, items)
    vocabulary = sorted({w for i in items for w in i.title.split()} | set(TRICKY))
    compare(store, vocabulary[::3] + TRICKY)
    pairs = random.Random(3).sample(vocabulary, 40)
    compare(store, [f"{a} {b}" for a, b in zip(pairs[::2], pairs[1::2], strict=True)])


def generated(count: int, seed: int) -> list[SourceEntry]:
    rng = random.Random(seed)
    stories = []
    for n in range(count):
        title = " ".join(rng.choices(PIECES, k=rng.randint(1, 4))) + f" #{n}"
        summary = rng.choice(["", " ", "\n"]).join(rng.choices(PIECES, k=rng.randint(0, 8)))
        day = date(2024, 1, 1) + timedelta(days=rng.randrange(400))
        stories.append(replace(item(title, day, summary), categories=tuple(rng.sample(PIECES, 2))))
    return stories


@pytest.mark.parametrize("few", [1000, 0], ids=["index lists", "common words read newest"])
def test_the_index_finds_what_the_scan_found_in_generated_stories(
    store: StoreType, monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    monkeypatch.setattr(site_search, "BATCH", 7)  # many batches: reading on must not skip
    monkeypatch.setattr(sqlite_store, "FEW", few)  # SQLite reads common words' newest entries
    add(store, generated(300, seed=15))
    compare(store, TRICKY + [f"{a} {b}" for a, b in pairwise(PIECES)])


def test_a_word_is_found_however_its_accents_were_written(store: StoreType) -> None:
    """A feed that writes "é" as "e" and a combining accent (NFD, as some Mac and
    Vietnamese tools do) is stored composed (NFC), and a search typed either way finds
    it, through the index and the scan alike."""
    from aggregator.source import parse_source

    decomposed = unicodedata.normalize("NFD", "Café talks in Hà Nội")
    document = (
        '<rss version="2.0"><channel><title>t</title><link>https://example.org/</link>'
        f"<item><title>{decomposed}</title><link>https://example.org/1</link>"
        "<pubDate>Mon, 02 Dec 2024 10:00:00 GMT</pubDate>"
        f"<description>{decomposed}</description></item></channel></rss>"
    ).encode()
    (parsed,) = parse_source(document, url="https://feeds.example/nfd.xml", kind="feed")
    assert parsed.title == parsed.summary == "Café talks in Hà Nội"  # composed
    add(store, [parsed])
    for typed in ("café", unicodedata.normalize("NFD", "café"), "NỘI", "Nội"):
        query = Query.parse(typed)
        found = search(candidates(store, query.terms), query, EVERYTHING)
        assert titles(found) == ["Café talks in Hà Nội"], ascii(typed)


def test_a_name_is_found_with_or_without_its_accents(store: StoreType) -> None:
    """The search page and a feed's ``q=`` and ``exclude=`` find a name typed without
    the accents of its Latin or Greek letters, or with them, whichever way the story
    wrote it (through the index and the scan alike); letters of their own ("ł") and
    Cyrillic ones ("й") stay themselves."""
    add(
        store,
        [
            item("Siliņa meets Šefčovič in Kraków", date(2024, 5, 1)),
            item("Silina visits Krakow", date(2024, 5, 2)),
            item("Talks in Ελλάδα and Łódź", date(2024, 5, 3)),
            item("Мой край", date(2024, 5, 4)),
        ],
    )
    everything = store.newest(EVERYTHING)
    cases = {
        "Silina": ["Silina visits Krakow", "Siliņa meets Šefčovič in Kraków"],
        "SILIŅA": ["Silina visits Krakow", "Siliņa meets Šefčovič in Kraków"],
        "sefcovic": ["Siliņa meets Šefčovič in Kraków"],
        "Kraków": ["Silina visits Krakow", "Siliņa meets Šefčovič in Kraków"],
        "Ελλαδα": ["Talks in Ελλάδα and Łódź"],
        "Lodz": [],
        "Łodz": ["Talks in Ελλάδα and Łódź"],
        "краи": [],
        "край": ["Мой край"],
    }
    for typed, expected in cases.items():
        query = Query.parse(typed)
        found = titles(search(candidates(store, query.terms), query, EVERYTHING))
        assert found == expected, typed
        assert found == titles(search(everything, query, EVERYTHING)), typed
        as_feed = chosen(candidates(store, [typed], unindexed=EVERYTHING), [typed], [])
        assert as_feed == chosen(everything, [typed], []), typed
        assert len(as_feed) == len(expected), typed
        left = chosen(candidates(store, [], [typed], unindexed=EVERYTHING), [], [typed])
        assert len(left) == 4 - len(expected), typed


def test_a_version_9_store_is_indexed_without_accents_when_upgraded(tmp_path: Path) -> None:
    """Stories stored before the index's words lost their accents are found by a name
    typed without them once the store is upgraded (migrations.v10): those with an
    accented letter, and those with an accent of its own after a letter that has no
    accented form ("Spin̈al", whose words were cut at the accent: found by review),
    and an excluded word leaves out only the stories that hold it."""
    path = tmp_path / "v9.sqlite3"
    create_sqlite_at(str(path), 9)
    stamp = NOW.isoformat()
    stories = [  # (title, the words version 9 cut from it)
        ("Siliņa in Riga", "siliņa in riga"),
        ("Spin\u0308al Tap reunion", "spin al tap reunion"),
        ("Plain news", "plain news"),
    ]
    with sqlite3.connect(path) as db:
        for number, (title, words_then) in enumerate(stories):
            db.execute(
                "INSERT INTO entries (id, title, title_key, summary, categories, first_seen, "
                "last_seen, sort_key, words) VALUES (?, ?, ?, '', '[]', ?, ?, ?, ?)",
                (f"old-{number}", title, title.casefold(), stamp, stamp, stamp, words_then),
            )
    with open_store(StoreSettings(path=path)) as upgraded:
        assert upgraded.schema_version == len(MIGRATIONS)
        everything = upgraded.newest(EVERYTHING)
        for typed, expected in [
            ("Silina", ["Siliņa in Riga"]),
            ("Siliņa", ["Siliņa in Riga"]),
            ("Spinal", ["Spin\u0308al Tap reunion"]),
            ("news", ["Plain news"]),
        ]:
            query = Query.parse(typed)
            assert titles(search(candidates(upgraded, query.terms), query, 10)) == expected
            left = chosen(candidates(upgraded, [], [typed], unindexed=EVERYTHING), [], [typed])
            assert left == chosen(everything, [], [typed]), typed
        # "spin" and "al" are no words of that story now: excluded, it stays.
        for typed in ("spin", "al"):
            left = chosen(candidates(upgraded, [], [typed], unindexed=EVERYTHING), [], [typed])
            assert len(left) == 3, typed


def _pages(store: StoreType, text: str, **options: int) -> tuple[list[str], list[int]]:
    """Every page of a search, read on link by link: the titles, and each page's size."""
    query = Query.parse(text)
    shown: list[str] = []
    sizes: list[int] = []
    after: str | None = None
    while True:
        page = search_page(store, query, after=after, **options)
        assert page.after == after
        shown += titles(page.results)
        sizes.append(len(page.results))
        if not page.more:
            return shown, sizes
        assert page.next is not None
        after = page.next


def test_a_search_reads_on_page_by_page_to_the_last_match(store: StoreType) -> None:
    """The search page shows the newest matches and links to older ones: each page
    reads on from where the one before ended, so that page by page every match is
    shown once, newest first (a day of many stories split across pages too), and the
    last page says nothing older matches."""
    days = [date(2024, 3, 1) + timedelta(days=n // 7) for n in range(123)]
    add(store, [item(f"Zebra crossing {n}", day) for n, day in enumerate(days)])
    add(store, [item(f"Horse {n}", date(2024, 3, 2)) for n in range(20)])
    everything = titles(store.search(["zebra"], limit=500))
    assert len(everything) == 123
    shown, sizes = _pages(store, "zebra", limit=50)
    assert sizes == [50, 50, 23]
    assert shown == everything
    for wrong in ("tag:x,2026:entry:0000", "~", "key~", "~id", "x~" * 201):
        with pytest.raises(QueryError, match="no place"):
            search_page(store, Query.parse("zebra"), after=wrong)


def test_a_search_the_index_cannot_narrow_reads_on_past_each_pages_scan(
    store: StoreType,
) -> None:
    """A search with no word to look up reads a bounded number of stories a page: when
    they run out before the page is full, the page still links on (found by review: it
    said nothing older matched, and older matches could not be reached)."""
    stories = [
        item(
            f"Rates {n} up 5 %" if n % 4 == 0 else f"Quiet day {n}", date(2024, 1, 1) + timedelta(n)
        )
        for n in range(90)
    ]
    add(store, stories)
    assert not site_search.narrows(["%"])
    matching = [s.title for s in reversed(stories) if "%" in s.title]
    shown, _ = _pages(store, "%", limit=15, unindexed=30)
    assert shown == matching


def re_date(store: StoreType, story: Entry) -> None:
    """``story``, a day's, read again from its source with a time of day (23:00 UTC)."""
    assert story.published is not None
    when = datetime.combine(story.published.day, time(23), tzinfo=UTC)
    timed = SourceEntry(
        title=story.title,
        published=Published(when.date(), when),
        summary=story.title,
        provenance=Provenance("a", "a.txt", 1),
    )
    add(store, [timed], now=NOW + timedelta(hours=1))


def test_a_page_reads_on_from_where_the_last_ended_whoever_serves_it(
    store_settings: StoreSettings,
) -> None:
    """The next page reads on from the place the last one ended, as it was then: the
    same on any connection (the server keeps one a thread, which remembered the keys of
    its own last search: found by review), also after the story there was re-dated."""
    query = Query.parse("zebra")
    with open_store(store_settings) as first, open_store(store_settings) as other:
        add(first, [item(f"Zebra crossing {n}", date(2024, 5, 1 + n // 5)) for n in range(40)])
        page = search_page(first, query, limit=12)
        assert page.next is not None
        last = page.results[-1]
        following = titles(search_page(other, query, after=page.next, limit=12).results)
        assert last.title not in following
        # The story the page ended with, given a time of day by its source meanwhile
        # (another connection): its key changes, the place read on from does not.
        re_date(other, last)
        for store in (first, other):
            assert titles(search_page(store, query, after=page.next, limit=12).results) == (
                following
            )


def test_a_page_ends_at_the_place_its_last_story_was_read_at(
    store_settings: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The place a page ends at is its last story's key as that story was read, not as
    stored when the next batch was read (found by review: re-dated in between, the link
    carried the new key, and the next page showed stories again or skipped some)."""
    monkeypatch.setattr(site_search, "BATCH", 3)
    query = Query.parse("zebra")
    with open_store(store_settings) as first, open_store(store_settings) as other:
        add(first, [item(f"Zebra crossing {n}", date(2024, 5, 1 + n)) for n in range(10)])
        newest = other.search(["zebra"], limit=3)
        third = newest[-1]
        as_read = other.position(third)
        reading = first.search
        calls: list[int] = []

        def search(*args: Any, **kwargs: Any) -> list[Entry]:
            found = reading(*args, **kwargs)
            calls.append(len(found))
            if len(calls) == 1:  # between the first batch and the next: re-dated
                re_date(other, third)
            return found

        monkeypatch.setattr(first, "search", search)
        page = search_page(first, query, limit=3)
        assert len(calls) >= 2 and titles(page.results) == titles(newest)
        with open_store(store_settings) as fresh:  # its key changed meanwhile
            assert fresh.position(third) != as_read
        assert page.next == f"{as_read[0]}~{third.id}"
