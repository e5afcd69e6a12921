"""A run folds each source's items into the stored stories as they are read
(pipeline.Folding), and writes its new stories ahead meanwhile (aggregator.store.ahead):
the store (its search index too), the report and the files are those of folding every
item at once, after the reading, and writing it all then."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator import pipeline
from aggregator.config import Config, load_config
from aggregator.errors import WriteError
from aggregator.ingest import Listed, Outcome
from aggregator.live.state import FetchStates
from aggregator.model import Published, SourceEntry
from aggregator.pipeline import Folding, RunResult, publish, rejudge
from aggregator.store import open_store
from aggregator.store.ahead import WritingAhead
from aggregator.store.plan import Planner, plan_merge
from aggregator.store.sqlite import Store
from aggregator.text import item_mark, title_key
from tests.test_incremental_render import CONFIG, START, item, make_config

NOW = START + timedelta(days=60)
TABLES = {
    "entries": "SELECT * FROM entries ORDER BY id",
    "sightings": "SELECT * FROM sightings ORDER BY entry_id, source",
    "entry_topics": "SELECT * FROM entry_topics ORDER BY topic, entry_id",
    "meta": "SELECT key, value FROM meta WHERE key IN ('version', 'topics', 'changed') "
    "ORDER BY key",
}
# Words whose stories the search index must find, in every run's stories.
WORDS = ("ukraine", "gas", "summary", "fair", "talks", "corrected", "weather", "press", "y")


def outcomes_of(
    config: Config, items: Sequence[SourceEntry], listed: Mapping[str, Listed]
) -> list[Outcome]:
    by_source = {s.name: s for s in config.sources}
    return [
        Outcome(
            by_source[name],
            tuple(i for i in items if i.source == name),
            listed=listed.get(name, ()),
        )
        for name in ("alpha", "beta", "gamma")
        if any(i.source == name for i in items) or name in listed
    ]


def publish_run(
    config: Config,
    items: Sequence[SourceEntry],
    folded: bool,
    now: datetime,
    listed: Mapping[str, Listed] | None = None,
    ahead: int | None = None,
) -> RunResult:
    """One run's publish; ``folded``: its items folded as read first, and with
    ``ahead``, its new stories written ahead meanwhile, that many to a statement."""
    outcomes = outcomes_of(config, items, listed or {})
    with open_store(config.store) as store, ExitStack() as stack:
        folding = None
        if folded:
            writing = None
            if ahead is not None:
                assert isinstance(store, Store)
                writing = stack.enter_context(
                    WritingAhead(store, now, begin=lambda: rejudge(config, store), rows=ahead)
                )
            folding = Folding(config, store, now, writing)
            for outcome in outcomes:
                folding.add(outcome)
        return publish(config, store, FetchStates(store), outcomes, now, folded=folding)


def dump(config: Config) -> dict[str, list[tuple[object, ...]]]:
    """The store's tables, and the stories its search index finds for each of WORDS."""
    with sqlite3.connect(config.store.path) as db:
        tables = {name: db.execute(query).fetchall() for name, query in TABLES.items()}
        db.execute("INSERT INTO entry_search (entry_search) VALUES ('integrity-check')")
        tables["index"] = [
            (word, entry_id)
            for word in WORDS
            for (entry_id,) in db.execute(
                "SELECT r.entry_id FROM entry_search JOIN entry_search_rows r "
                "ON r.num = entry_search.rowid WHERE entry_search MATCH ? ORDER BY r.entry_id",
                (word,),
            )
        ]
        return tables


def files(config: Config) -> dict[str, bytes]:
    folder = config.feeds.directory
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".rendered"
    }


def random_runs(seed: int) -> list[list[SourceEntry]]:
    """Runs that tell stories again, from other sources, on nearby days, changed, and
    with headlines corrected under the same item id."""
    rng = random.Random(seed)
    titles = [f"{w} {n}" for n in range(12) for w in ("Ukraine talks", "Gas prices", "Fair")]
    runs = []
    for _ in range(5):
        run = []
        for _ in range(rng.randrange(1, 40)):
            number = rng.randrange(rng.randrange(3, len(titles)))
            title = titles[number]
            summary = rng.choice(["", "a longer summary about gas", "Ukraine: the summary"])
            source = rng.choice(("alpha", "beta", "gamma"))
            told = item(
                source,
                title,
                rng.randrange(0, 6),
                summary,
                line=rng.choice([None, None, rng.randrange(1, 9)]),
            )
            if rng.random() < 0.6:  # an item id, and now and then a corrected headline
                corrected = rng.random() < 0.3
                guid = f"{source}-{number % 9}{rng.choice(['', 'b'])}"
                told = replace(
                    told,
                    guid=guid,
                    title=f"{title} (corrected)" if corrected else title,
                    # (A corrected headline keeps its page; an item of another number
                    # under the same id has its own, now and then.)
                    link=f"https://{source}.example.org/item/{guid}{rng.choice(['', '', 'x'])}",
                )
            run.append(told)
        runs.append(run)
    return runs


def random_listed(seed: int, runs: Sequence[Sequence[SourceEntry]]) -> list[dict[str, Listed]]:
    """For each run, by source, ids of items it lists unchanged (not read again), each
    with its item's mark: items of earlier runs of that source, now and then with a
    mark of another title or link (an id a feed gave since to another item)."""
    rng = random.Random(seed * 7919 + 1)
    listed: list[dict[str, Listed]] = []
    for number in range(len(runs)):
        earlier = [i for run in runs[:number] for i in run if i.guid]
        run_listed: dict[str, Listed] = {}
        for source in ("alpha", "beta", "gamma"):
            theirs = [i for i in earlier if i.source == source]
            if not theirs or rng.random() < 0.3:
                continue
            chosen = rng.sample(theirs, min(len(theirs), rng.randrange(1, 5)))
            run_listed[source] = tuple(
                (
                    i.guid or "",
                    item_mark(title_key(i.title), i.link)
                    if rng.random() < 0.8
                    else rng.choice([None, "another"]),
                )
                for i in chosen
            )
        listed.append(run_listed)
    return listed


@pytest.mark.parametrize("ahead", [None, 1, 3], ids=["no writes ahead", "ahead 1", "ahead 3"])
@pytest.mark.parametrize("seed", range(12))
def test_folding_as_read_gives_the_store_of_folding_at_once(
    tmp_path: Path, seed: int, ahead: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "at-once").mkdir()
    (tmp_path / "as-read").mkdir()
    at_once = make_config(tmp_path / "at-once", max_entries=8)
    as_read = make_config(tmp_path / "as-read", max_entries=8)
    (tmp_path / "plain").mkdir()
    plain = make_config(tmp_path / "plain", max_entries=8)  # folded as read, nothing ahead
    # What each publish's apply says, the stored stories it changed too, whose pages are
    # due (found by review: not the same with writes ahead).
    applied: list[object] = []
    apply = pipeline.apply

    def noting(*args: Any, **named: Any) -> Any:
        applied.append(apply(*args, **named))
        return applied[-1]

    monkeypatch.setattr(pipeline, "apply", noting)
    runs = random_runs(seed)
    for number, (run, listed) in enumerate(zip(runs, random_listed(seed, runs), strict=True)):
        now = NOW + timedelta(hours=number)
        one = publish_run(at_once, run, folded=False, now=now, listed=listed)
        publish_run(plain, run, folded=True, now=now, listed=listed)
        other = publish_run(as_read, run, folded=True, now=now, listed=listed, ahead=ahead)
        assert other.report == one.report, number
        assert applied[-1] == applied[-2], number
        assert dump(as_read) == dump(at_once), number
        assert files(as_read) == files(at_once), number


def awkward_runs(seed: int) -> tuple[list[list[SourceEntry]], list[dict[str, Listed]]]:
    """Runs of a few titles, the same ones every day, told by three sources whose feeds
    are awkward: ids reused, links missing or the same for every item, dates of a day
    only; and what each lists unchanged, with marks, now and then of another item."""
    rng = random.Random(seed)
    titles = ["Press briefing", "Weather", "Press briefing, corrected"]
    runs: list[list[SourceEntry]] = []
    for _ in range(5):
        run = []
        for _ in range(rng.randrange(1, 10)):
            source = rng.choice(("alpha", "beta", "gamma"))
            told = item(source, rng.choice(titles), rng.randrange(3), rng.choice(["", "x", "y z"]))
            assert told.published is not None
            if rng.random() < 0.5:  # a day only
                told = replace(told, published=Published(told.published.day))
            links = [None, "https://site.example/", f"https://site.example/{rng.randrange(3)}"]
            guid = f"{source}-{rng.randrange(4)}" if rng.random() < 0.8 else None
            run.append(replace(told, guid=guid, link=rng.choice(links)))
        runs.append(run)
    return runs, random_listed(seed, runs)


@pytest.mark.parametrize("ahead", [None, 1], ids=["no writes ahead", "ahead 1"])
@pytest.mark.parametrize("seed", range(60))  # 40: the fault found by review, again
def test_awkward_feeds_folded_as_read_give_the_store_of_folding_at_once(
    tmp_path: Path, seed: int, ahead: int | None
) -> None:
    # Found by review: which item was which story depended on folding one source at a
    # time (aggregator run on SQLite) or all at once (serve, PostgreSQL).
    (tmp_path / "at-once").mkdir()
    (tmp_path / "as-read").mkdir()
    at_once = make_config(tmp_path / "at-once", max_entries=8)
    as_read = make_config(tmp_path / "as-read", max_entries=8)
    runs, listed = awkward_runs(seed)
    for number, (run, lists) in enumerate(zip(runs, listed, strict=True)):
        now = NOW + timedelta(hours=number)
        publish_run(at_once, run, folded=False, now=now, listed=lists)
        publish_run(as_read, run, folded=True, now=now, listed=lists, ahead=ahead)
        assert dump(as_read) == dump(at_once), number


@pytest.mark.parametrize("folded", [True, False], ids=["folded as read", "folded at once"])
@pytest.mark.parametrize("still_listed", [True, False])
def test_an_item_listed_unchanged_keeps_its_story_apart_from_a_new_id(
    tmp_path: Path, folded: bool, still_listed: bool
) -> None:
    # The morning's item (id m) is stored; a later run reads the afternoon's (id a), of
    # the same title and day, and lists the morning's unchanged (skipped): two stories.
    # Without the morning's item listed (a feed that gave it a new id), one story.
    config = make_config(tmp_path, max_entries=8)
    morning = replace(item("alpha", "Press briefing", 1, "morning"), guid="m")
    afternoon = replace(item("alpha", "Press briefing", 1, "afternoon"), guid="a")
    publish_run(config, [morning], folded=folded, now=NOW)
    mark = item_mark(title_key(morning.title), morning.link)
    listed: dict[str, Listed] = {"alpha": (("m", mark),)} if still_listed else {}
    publish_run(config, [afternoon], folded=folded, now=NOW + timedelta(hours=8), listed=listed)
    with sqlite3.connect(config.store.path) as db:
        summaries = sorted(row[0] for row in db.execute("SELECT summary FROM entries"))
    assert summaries == (["afternoon", "morning"] if still_listed else ["afternoon"])


def test_a_story_told_by_two_sources_in_one_run_is_one_new_story(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_entries=8)
    run = [
        item("alpha", "Ukraine talks open", 1, "short"),
        item("beta", "Ukraine talks open", 1, "a longer summary of the talks"),
    ]
    result = publish_run(config, run, folded=True, now=NOW)
    assert (result.report.new, result.report.updated) == (1, 0)
    rows = dump(config)
    assert len(rows["entries"]) == 1 and len(rows["sightings"]) == 2


def test_planning_in_batches_is_planning_at_once() -> None:
    zone = make_config_zone()
    rng = random.Random(5)
    items = [
        replace(
            item(source, f"Story {rng.randrange(15)}{rng.choice(['', ' corrected'])}", day),
            guid=rng.choice([None, f"{source}-{rng.randrange(6)}"]),
        )
        for source, day in ((rng.choice(("alpha", "beta")), rng.randrange(4)) for _ in range(120))
    ]
    whole = plan_merge(items, {}, authority="example.org", zone=zone, now=NOW)
    planner = Planner(authority="example.org", zone=zone, now=NOW)
    for start in range(0, len(items), 7):
        planner.add(items[start : start + 7], {})
    assert planner.plan() == whole


def make_config_zone() -> tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Brussels")


def fold_ahead(
    config: Config, store: Store, stack: ExitStack, items: Sequence[SourceEntry]
) -> Folding:
    """``items`` folded as read, their new stories written ahead one to a statement."""
    writing = stack.enter_context(
        WritingAhead(store, NOW, begin=lambda: rejudge(config, store), rows=1)
    )
    folding = Folding(config, store, NOW, writing)
    for outcome in outcomes_of(config, items, {}):
        folding.add(outcome)
    return folding


def wait_for_rows(store: Store, count: int) -> None:
    """Until the thread writing ahead has written ``count`` stories (seen in the run's
    own transaction)."""
    deadline = time.monotonic() + 30
    while store.db.execute("SELECT count(*) FROM entries").fetchone()[0] < count:
        assert time.monotonic() < deadline, "the stories were not written ahead"
        time.sleep(0.01)


STORIES = [
    item(("alpha", "beta")[n % 2], f"Ukraine talks, day {n}", n % 5, "gas") for n in range(6)
]


def one_story_stored(tmp_path: Path) -> tuple[Config, dict[str, list[tuple[object, ...]]]]:
    """A store holding the first of STORIES (told an hour before NOW), and its dump."""
    config = make_config(tmp_path, max_entries=8)
    publish_run(config, STORIES[:1], folded=False, now=NOW - timedelta(hours=1))
    return config, dump(config)


def test_stories_written_ahead_are_seen_by_others_once_committed(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_entries=8)
    with open_store(config.store) as store, ExitStack() as stack:
        assert isinstance(store, Store)
        folding = fold_ahead(config, store, stack, STORIES)
        wait_for_rows(store, len(STORIES))
        with sqlite3.connect(config.store.path) as other:  # the run's transaction is open
            assert other.execute("SELECT count(*) FROM entries").fetchone() == (0,)
        folding.finish()
        assert folding.written is not None and len(folding.written.rows) == len(STORIES)
        outcomes = outcomes_of(config, STORIES, {})
        result = publish(config, store, FetchStates(store), outcomes, NOW, folded=folding)
    assert result.report.new == len(STORIES)
    with sqlite3.connect(config.store.path) as other:
        assert other.execute("SELECT count(*) FROM entries").fetchone() == (len(STORIES),)
    (tmp_path / "at-once").mkdir()
    at_once = make_config(tmp_path / "at-once", max_entries=8)
    publish_run(at_once, STORIES, folded=False, now=NOW)
    assert dump(config) == dump(at_once)


def test_the_log_written_ahead_is_synced_while_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once the thread is done writing ahead, another puts the log on disk, for the
    # commit to find it there; closing the store waits for it. The commit syncs as ever.
    synced: list[tuple[str, str, bool]] = []  # (thread, file, transaction open as it began)
    fsync = os.fsync

    def noting(handle: int) -> None:
        name = str(Path(f"/proc/self/fd/{handle}").readlink())
        synced.append((threading.current_thread().name, name, store.db.in_transaction))
        if name == log:
            time.sleep(1)  # (a slow disk: the publish goes on meanwhile)
        fsync(handle)

    config = make_config(tmp_path, max_entries=8)
    log = f"{config.store.path}-wal"
    with open_store(config.store) as store, ExitStack() as stack:
        assert isinstance(store, Store)
        folding = fold_ahead(config, store, stack, STORIES)
        wait_for_rows(store, len(STORIES))
        monkeypatch.setattr(os, "fsync", noting)
        folding.finish()
        outcomes = outcomes_of(config, STORIES, {})
        publish(config, store, FetchStates(store), outcomes, NOW, folded=folding)
    monkeypatch.undo()
    assert ("aggregator-log-sync", log, True) in synced
    assert not [t for t in threading.enumerate() if t.name == "aggregator-log-sync"]
    # Once per store; never without the thread writing ahead (a run of few stories).
    assert [s for s in synced if s[0] == "aggregator-log-sync"] == [
        ("aggregator-log-sync", log, True)
    ]
    with sqlite3.connect(config.store.path) as other:
        assert other.execute("SELECT count(*) FROM entries").fetchone() == (len(STORIES),)


def test_the_log_of_a_store_reached_by_a_link_is_synced_where_it_is(
    tmp_path: Path, syncs_asked: list[str | Path]
) -> None:
    # SQLite keeps the log beside the file the link leads to, not beside the link.
    (tmp_path / "real").mkdir()
    link = tmp_path / "store.sqlite3"
    link.symlink_to(tmp_path / "real" / "store.sqlite3")
    with Store(link) as store, store.transaction():
        store.set_meta("test", "written")
        store.sync_log_soon()
    assert syncs_asked == [f"{tmp_path / 'real' / 'store.sqlite3'}-wal"]


def test_a_missing_log_is_not_synced_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing to sync: the thread ends quietly (no error in it), and is started once.
    failed: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", failed.append)
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def noting(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", noting)
    config = make_config(tmp_path, max_entries=8)
    with open_store(config.store) as store:
        assert isinstance(store, Store)
        store.path = tmp_path / "elsewhere.sqlite3"  # (no log there)
        store.sync_log_soon()
        store.sync_log_soon()  # once only
    assert [t.name for t in started] == ["aggregator-log-sync"]
    assert not started[0].is_alive()
    assert failed == []


def test_a_run_stopped_after_writing_ahead_keeps_nothing_of_it(tmp_path: Path) -> None:
    config, before = one_story_stored(tmp_path)
    with open_store(config.store) as store:
        assert isinstance(store, Store)
        with pytest.raises(KeyboardInterrupt), ExitStack() as stack:
            fold_ahead(config, store, stack, STORIES)
            wait_for_rows(store, len(STORIES))  # the one stored and five new
            raise KeyboardInterrupt  # Ctrl-C before the publish
        assert not store.db.in_transaction
    assert dump(config) == before
    # And the next run writes them, as it would have.
    publish_run(config, STORIES, folded=True, now=NOW, ahead=1)
    assert len(dump(config)["entries"]) == len(STORIES)


def test_a_write_ahead_that_fails_fails_the_publish_and_keeps_nothing(tmp_path: Path) -> None:
    config, before = one_story_stored(tmp_path)
    with sqlite3.connect(config.store.path) as db:
        db.execute(
            "CREATE TRIGGER refused BEFORE INSERT ON entries WHEN new.title LIKE '%day 4' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    outcomes = outcomes_of(config, STORIES, {})
    with open_store(config.store) as store, ExitStack() as stack:
        assert isinstance(store, Store)
        folding = fold_ahead(config, store, stack, STORIES)
        with pytest.raises(sqlite3.IntegrityError, match="refused by the test"):
            publish(config, store, FetchStates(store), outcomes, NOW, folded=folding)
        assert not store.db.in_transaction
    assert dump(config) == before


def large_feed(path: Path, name: str, count: int) -> None:
    """An RSS feed of ``count`` items, every one a new story, most of a topic."""
    items = "".join(
        f"<item><title>{name} {('Ukraine', 'gas', 'fair')[n % 3]} story {n}</title>"
        f"<link>https://{name}.example.org/{n}</link><guid>{name}-{n}</guid>"
        f"<pubDate>{format_datetime(START + timedelta(minutes=7 * n))}</pubDate>"
        f"<description>&lt;p&gt;About {('Ukraine', 'gas')[n % 2]}, {n}.&lt;/p&gt;</description>"
        "</item>"
        for n in range(count)
    )
    path.write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
        f"<link>https://{name}.example.org/</link>{items}</channel></rss>",
        encoding="utf-8",
    )


def test_a_large_run_writes_ahead_what_it_would_have_written_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1,200 new stories, more than a statement's worth (INSERT_ROWS): a real run, with its
    # parser workers, writes most of them ahead, in a thread. The same run with the
    # transaction refused ahead (so that it writes everything at its end) gives the same
    # store and the same files.
    writers: list[str] = []
    write_entries = Store.write_entries

    def noting(store: Store, rows: Sequence[tuple[object, ...]]) -> None:
        writers.append(threading.current_thread().name)
        write_entries(store, rows)

    monkeypatch.setattr(Store, "write_entries", noting)
    configs = []
    for name in ("ahead", "at-end"):
        folder = tmp_path / name
        folder.mkdir()
        for source in ("alpha", "beta"):
            large_feed(folder / f"{source}.xml", source, 600)
        sources = "\n".join(
            f'[[sources]]\nname = "{s}"\npath = "{s}.xml"' for s in ("alpha", "beta")
        )
        (folder / "config.toml").write_text(
            CONFIG.format(max_entries=50, sources=sources), encoding="utf-8"
        )
        configs.append(load_config(folder / "config.toml"))
    ahead, at_end = configs
    pipeline.run(ahead, NOW)
    assert any(name.startswith("aggregator-ahead") for name in writers), writers
    writers.clear()

    def refused(store: Store) -> None:
        raise sqlite3.OperationalError("refused by the test")

    monkeypatch.setattr(Store, "begin", refused)
    pipeline.run(at_end, NOW)
    assert writers and not any(name.startswith("aggregator-ahead") for name in writers)
    stored = {
        config: repr(dump(config)).replace(str(config.store.path.parent.parent), "…")
        for config in configs
    }
    assert stored[ahead] == stored[at_end]
    assert len(dump(ahead)["entries"]) == 1200
    assert files(ahead) == files(at_end)


def test_a_write_that_ends_the_transaction_keeps_nothing_of_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A disk full or an I/O error can make SQLite roll the transaction back by itself
    # (found by review: the writes still queued then ran on their own, and were kept).
    config, before = one_story_stored(tmp_path)
    write_entries = Store.write_entries
    calls: list[int] = []

    def failing(store: Store, rows: Sequence[tuple[object, ...]]) -> None:
        calls.append(len(rows))
        if len(calls) == 1:
            time.sleep(0.2)  # while the other stories queue behind it
            store.db.execute("ROLLBACK")  # as SQLite does on such an error
            raise sqlite3.OperationalError("disk I/O error")
        write_entries(store, rows)

    monkeypatch.setattr(Store, "write_entries", failing)
    outcomes = outcomes_of(config, STORIES, {})
    with open_store(config.store) as store, ExitStack() as stack:
        assert isinstance(store, Store)
        folding = fold_ahead(config, store, stack, STORIES)
        with pytest.raises(WriteError, match="cannot write the store: disk I/O error"):
            publish(config, store, FetchStates(store), outcomes, NOW, folded=folding)
        assert not store.db.in_transaction
    assert len(calls) == 1  # (the others were not even tried)
    assert dump(config) == before


def test_interrupted_as_the_reading_ends_the_run_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by review: a Ctrl-C as the publish began rolled back beside the thread,
    # whose next statements were then written on their own, and kept.
    config, before = one_story_stored(tmp_path)
    write_entries = Store.write_entries

    def slow(store: Store, rows: Sequence[tuple[object, ...]]) -> None:
        time.sleep(0.05)
        write_entries(store, rows)

    def interrupted(self: Folding) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "write_entries", slow)
    monkeypatch.setattr(Folding, "finish", interrupted)
    outcomes = outcomes_of(config, STORIES, {})
    with open_store(config.store) as store:
        assert isinstance(store, Store)
        with pytest.raises(KeyboardInterrupt), ExitStack() as stack:
            folding = fold_ahead(config, store, stack, STORIES)
            publish(config, store, FetchStates(store), outcomes, NOW, folded=folding)
        assert not store.db.in_transaction
    assert dump(config) == before


class InterruptedOnLeaving:
    """A lock whose ``with`` block is interrupted as it is left, once it has been left
    ``after`` times: a Ctrl-C landing right after the lock is let go."""

    def __init__(self, after: int) -> None:
        self.lock = threading.Lock()
        self.after = after

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
        self.after -= 1
        if self.after == 0:
            raise KeyboardInterrupt


def test_interrupted_as_the_publish_takes_the_transaction_on_rolls_it_back(
    tmp_path: Path,
) -> None:
    # Found by review: the run's writes were left in an open transaction, which only
    # closing the connection rolled back.
    config, before = one_story_stored(tmp_path)
    outcomes = outcomes_of(config, STORIES, {})
    with open_store(config.store) as store, ExitStack() as stack:
        assert isinstance(store, Store)
        folding = fold_ahead(config, store, stack, STORIES)
        folding.finish()
        assert store.db.in_transaction and folding.written is not None
        store._guard = InterruptedOnLeaving(after=1)  # type: ignore[assignment]
        with pytest.raises(KeyboardInterrupt):
            publish(config, store, FetchStates(store), outcomes, NOW, folded=folding)
        assert not store.db.in_transaction
    assert dump(config) == before
