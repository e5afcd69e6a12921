"""A source renamed in config.toml is the same source: the stories it told keep it,
under its new name (aggregator.store.renames), with its topic hints, its counts and
one sighting each (found by review: a renamed source's stories left its hinted topic,
its counts began again at nothing, and its stories listed it twice)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import feedparser
import pytest

from aggregator.cli import main

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
