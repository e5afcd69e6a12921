"""A run folds each source's items into the stored stories as they are read
(pipeline.Folding): the store, the report and the files are those of folding every item
at once, after the reading."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import pytest

from aggregator.config import Config
from aggregator.ingest import Listed, Outcome
from aggregator.live.state import FetchStates
from aggregator.model import Published, SourceEntry
from aggregator.pipeline import Folding, RunResult, publish
from aggregator.store import open_store
from aggregator.store.plan import Planner, plan_merge
from aggregator.text import item_mark, title_key
from tests.test_incremental_render import START, item, make_config

NOW = START + timedelta(days=60)
TABLES = {
    "entries": "SELECT * FROM entries ORDER BY id",
    "sightings": "SELECT * FROM sightings ORDER BY entry_id, source",
    "entry_topics": "SELECT * FROM entry_topics ORDER BY topic, entry_id",
    "meta": "SELECT key, value FROM meta WHERE key IN ('version', 'topics', 'changed') "
    "ORDER BY key",
}


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
) -> RunResult:
    outcomes = outcomes_of(config, items, listed or {})
    with open_store(config.store) as store:
        folding = None
        if folded:
            folding = Folding(config, store, now)
            for outcome in outcomes:
                folding.add(outcome)
        return publish(config, store, FetchStates(store), outcomes, now, folded=folding)


def dump(config: Config) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(config.store.path) as db:
        return {name: db.execute(query).fetchall() for name, query in TABLES.items()}


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


@pytest.mark.parametrize("seed", range(12))
def test_folding_as_read_gives_the_store_of_folding_at_once(tmp_path: Path, seed: int) -> None:
    (tmp_path / "at-once").mkdir()
    (tmp_path / "as-read").mkdir()
    at_once = make_config(tmp_path / "at-once", max_entries=8)
    as_read = make_config(tmp_path / "as-read", max_entries=8)
    runs = random_runs(seed)
    for number, (run, listed) in enumerate(zip(runs, random_listed(seed, runs), strict=True)):
        now = NOW + timedelta(hours=number)
        one = publish_run(at_once, run, folded=False, now=now, listed=listed)
        other = publish_run(as_read, run, folded=True, now=now, listed=listed)
        assert other.report == one.report, number
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


@pytest.mark.parametrize("seed", range(60))  # 40: the fault found by review, again
def test_awkward_feeds_folded_as_read_give_the_store_of_folding_at_once(
    tmp_path: Path, seed: int
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
        publish_run(as_read, run, folded=True, now=now, listed=lists)
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
