"""A source renamed in config.toml is the same source: the stories it told keep it,
under its new name (aggregator.store.renames), with its topic hints, its counts and
one sighting each (found by review: a renamed source's stories left its hinted topic,
its counts began again at nothing, and its stories listed it twice)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from aggregator.cli import main
from tests.feedserver import Server
from tests.pgcluster import Cluster

OLD, NEW = "NATO: deterrence and defence", "NATO deterrence listing"
FEED_OLD, FEED_NEW = "NATO news feed", "NATO's own feed"
STORY = "long-planned annual nuclear exercise"


def sightings(project: Path) -> dict[str, int]:
    with sqlite3.connect(project / "state" / "aggregator.sqlite3") as db:
        rows = db.execute("SELECT source, COUNT(*) FROM sightings GROUP BY source")
        return dict(rows.fetchall())


def test_a_renamed_source_keeps_its_stories_hints_and_counts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "config.toml"
    assert main(["--config", str(config), "run"]) == 0
    before = sightings(project)
    deterrence = feedparser.parse((project / "feeds" / "deterrence.rss").read_bytes())
    hinted = {entry.title for entry in deterrence.entries}
    assert any(STORY in title.lower() for title in hinted)
    text = config.read_text(encoding="utf-8")
    for old, new in ((OLD, NEW), (FEED_OLD, FEED_NEW)):
        assert text.count(f'name = "{old}"') == 1
        text = text.replace(f'name = "{old}"', f'name = "{new}"')
    config.write_text(text.replace(f'"{OLD}"', f'"{NEW}"'), encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(config), "run"]) == 0
    after = sightings(project)
    # Every sighting under its new name, none twice; the live feed (unchanged, not
    # folded again) too.
    assert OLD not in after and FEED_OLD not in after
    assert after[NEW] == before[OLD] and after[FEED_NEW] == before[FEED_OLD]
    assert sum(after.values()) == sum(before.values())
    deterrence = feedparser.parse((project / "feeds" / "deterrence.rss").read_bytes())
    assert {entry.title for entry in deterrence.entries} == hinted
    assert main(["--config", str(config), "explain", STORY]) == 0
    out = capsys.readouterr().out
    assert f"source: {NEW} [" in out and OLD not in out
    assert f"yes deterrence: matched by the source hint of '{NEW}'" in out
    assert main(["--config", str(config), "sources", "list"]) == 0
    listed = capsys.readouterr().out
    lines = listed.splitlines()
    said = next(lines[n + 1] for n, line in enumerate(lines) if line.startswith(FEED_NEW))
    assert f"; {before[FEED_OLD]} entries read" in said, listed
    # Its stories' pages name it by its new name only.
    pages = list((project / "feeds" / "entries").glob("*.html"))
    shown = "".join(page.read_text("utf-8") for page in pages)
    assert NEW in shown and OLD not in shown


def test_two_sources_that_swap_names_keep_their_own_stories(project: Path) -> None:
    config = project / "config.toml"
    assert main(["--config", str(config), "run"]) == 0
    first, second = "NATO: relations with the European Union", "NATO: news feed, November 2022"
    before = sightings(project)
    text = config.read_text(encoding="utf-8")
    swapped = (
        text.replace(f'name = "{first}"', 'name = "swap"')
        .replace(f'name = "{second}"', f'name = "{first}"')
        .replace('name = "swap"', f'name = "{second}"')
    )
    assert swapped != text
    config.write_text(swapped, encoding="utf-8")
    assert main(["--config", str(config), "run"]) == 0
    after = sightings(project)
    assert (after[first], after[second]) == (before[second], before[first])
    assert sum(after.values()) == sum(before.values())


def feed(prefix: str, days: range) -> bytes:
    """An RSS feed of one item a day, newest first, titled by ``prefix`` and the day."""
    items = "".join(
        f"<item><title>{prefix} story {day}</title><guid>{prefix}-{day}</guid>"
        f"<link>https://example.org/{prefix}/{day}</link>"
        f"<pubDate>{day:02d} Jan 2026 09:00:00 +0000</pubDate></item>"
        for day in reversed(days)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://example.org/</link><description>d</description>{items}"
        "</channel></rss>"
    ).encode()


def small_project(
    directory: Path, server: Server, sources: list[tuple[str, str, bool]], store: str = ""
) -> Path:
    """A config of live sources, each (name, file under /feeds/, enabled)."""
    lines = ["[feeds]", 'directory = "feeds"', "max_entries = 3", "[store]"]
    lines.append(store or 'path = "state/aggregator.sqlite3"')
    for name, path, enabled in sources:
        lines += [
            "[[sources]]",
            f"name = {json.dumps(name)}",
            f'url = "{server.base}/feeds/{path}"',
        ]
        lines += [] if enabled else ["enabled = false"]
    lines += ["[[topics]]", 'slug = "alpha"', 'terms = ["alpha"]']
    config = directory / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def stored(config: Path) -> dict[str, int]:
    from aggregator.config import load_config
    from aggregator.store import open_store

    with open_store(load_config(config).store) as store:
        counts: dict[str, int] = {}
        for batch in store.all_entries():
            for entry in batch:
                for provenance in entry.sources:
                    counts[provenance.source] = counts.get(provenance.source, 0) + 1
        return counts


@pytest.fixture
def feeds(feedserver: Server) -> Iterator[Server]:
    feedserver.overrides["x.xml"] = feed("alpha", range(1, 4))
    feedserver.overrides["y.xml"] = feed("yankee", range(1, 3))
    yield feedserver
    for name in ("x.xml", "y.xml"):
        feedserver.overrides.pop(name, None)


def test_a_rename_on_postgresql(tmp_path: Path, feeds: Server, postgres: Cluster) -> None:
    """Found by review: the names a rename goes by held a NUL, which PostgreSQL refuses."""
    store = f'url = "{postgres.new_database()}"'
    config = small_project(tmp_path, feeds, [("Old", "x.xml", True)], store)
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("New", "x.xml", True)], store)
    assert main(["--config", str(config), "run"]) == 0
    assert stored(config) == {"New": 3}


def test_names_swapped_with_a_disabled_source_stay_each_its_own(
    tmp_path: Path, feeds: Server
) -> None:
    config = small_project(tmp_path, feeds, [("First", "x.xml", True), ("Second", "y.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("First", "x.xml", True), ("Second", "y.xml", False)])
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("Second", "x.xml", True), ("First", "y.xml", False)])
    assert main(["--config", str(config), "run"]) == 0
    assert stored(config) == {"Second": 3, "First": 2}


def test_a_source_renamed_while_disabled_or_taken_out_gets_its_own_back(
    tmp_path: Path, feeds: Server
) -> None:
    config = small_project(tmp_path, feeds, [("Alpha", "x.xml", True), ("Y", "y.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("Alpha", "x.xml", False), ("Y", "y.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("Alpha again", "x.xml", True), ("Y", "y.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    assert stored(config) == {"Alpha again": 3, "Y": 2}
    # Taken out; its old name given to the other source; put back under another name.
    small_project(tmp_path, feeds, [("Y", "y.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("Alpha again", "y.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("Alpha again", "y.xml", True), ("Back", "x.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    assert stored(config) == {"Back": 3, "Alpha again": 2}


def test_pages_no_feed_shows_name_the_new_name_and_explain_uses_it_before_the_run(
    tmp_path: Path, feeds: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    config = small_project(tmp_path, feeds, [("Old", "x.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    feeds.overrides["x.xml"] = feed("alpha", range(1, 7))  # stories 1 to 3 leave the feeds
    assert main(["--config", str(config), "run"]) == 0
    pages = list((tmp_path / "feeds" / "entries").glob("*.html"))
    assert len(pages) == 6
    # Renamed (nothing else changed): every page names it by its new name.
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('name = "Old"', 'name = "Mid"'), encoding="utf-8")
    assert main(["--config", str(config), "run"]) == 0
    for page in pages:
        shown = page.read_text("utf-8")
        assert "Mid" in shown and "Old" not in shown, page
    # Renamed again, and given the topic by a hint rather than a rule: explain, before
    # the run, judges as the run will.
    text = config.read_text(encoding="utf-8")
    text = text.replace('name = "Mid"', 'name = "New"\ntopics = ["alpha"]')
    config.write_text(text.replace('terms = ["alpha"]', 'terms = ["never"]'), encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(config), "explain", "alpha story 2"]) == 0
    out = capsys.readouterr().out
    assert "source: New [" in out and "matched by the source hint of 'New'" in out, out
    assert "takes it out" not in out


def test_a_source_that_moved_and_is_then_renamed_keeps_all_it_told(
    tmp_path: Path, feeds: Server
) -> None:
    """Found by review: the stories read at its old address stayed under its old name."""
    config = small_project(tmp_path, feeds, [("Feed", "x.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("Feed", "y.xml", True)])  # moved
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("Nice", "y.xml", True)])  # renamed
    assert main(["--config", str(config), "run"]) == 0
    assert stored(config) == {"Nice": 5}


def test_a_moved_source_split_in_two_gives_each_its_own(tmp_path: Path, feeds: Server) -> None:
    """Found by review: X at x.xml, then X moved to y.xml; then Z at x.xml and W at
    y.xml: each is the source of what was read where it reads."""
    config = small_project(tmp_path, feeds, [("X", "x.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("X", "y.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    small_project(tmp_path, feeds, [("Z", "x.xml", True), ("W", "y.xml", True)])
    assert main(["--config", str(config), "run"]) == 0
    assert stored(config) == {"Z": 3, "W": 2}
