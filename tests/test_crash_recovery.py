"""Runs killed at any point never leave the feeds behind the store for good.

A run commits the store, then renames its files into place; a SIGKILL between the
two used to leave stories in the store that no feed showed, until some later story
arrived. Here runs over hundreds of sources are killed at random points, and right
after their store commit (seen from outside, by watching the store's version), and
after one more run every stored story must be in the feeds exactly once.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
from lxml import etree

SOURCES = 200
ROUNDS = 6  # half killed at a random time, half right after the store commit
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def rss(source: int, items: int) -> str:
    parts = []
    for item in range(items):
        when = START + timedelta(days=item, minutes=source)
        parts.append(
            f"<item><title>Story {source}-{item}</title>"
            f"<guid isPermaLink='false'>s{source}-{item}</guid>"
            f"<pubDate>{format_datetime(when)}</pubDate>"
            f"<description>Report {item} from source {source} on Ukraine</description></item>"
        )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Source {source}</title><link>https://example.org/{source}</link>"
        f"<description>d</description>{''.join(parts)}</channel></rss>"
    )


def run(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stored_ids(directory: Path) -> set[str]:
    db = sqlite3.connect(directory / "state" / "aggregator.sqlite3")
    try:
        return {row[0] for row in db.execute("SELECT id FROM entries")}
    finally:
        db.close()


def store_version(db: sqlite3.Connection) -> str:
    row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return "" if row is None else str(row[0])


def ids_in_feeds(feeds: Path, slug: str) -> dict[str, Counter[str]]:
    """Each output's entry ids, counted: read back with feedparser and with lxml."""
    found: dict[str, Counter[str]] = {}
    for extension in ("rss", "atom"):
        parsed = feedparser.parse((feeds / f"{slug}.{extension}").read_bytes())
        found[extension] = Counter(entry.id for entry in parsed.entries)
    document = json.loads((feeds / f"{slug}.json").read_text("utf-8"))
    found["json"] = Counter(item["id"] for item in document["items"])
    tree = etree.parse(str(feeds / f"{slug}.atom"))
    atom = "{http://www.w3.org/2005/Atom}"
    found["atom/lxml"] = Counter(e.text or "" for e in tree.iterfind(f"{atom}entry/{atom}id"))
    return found


def test_killed_runs_are_caught_up_by_the_next(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    lengths = dict.fromkeys(range(SOURCES), 2)
    for source, items in lengths.items():
        (sources / f"{source}.xml").write_text(rss(source, items), "utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        "[feeds]\nmax_entries = 100000\n\n"
        + "".join(
            f'[[sources]]\nname = "s{n}"\npath = "sources/{n}.xml"\nkind = "feed"\n\n'
            for n in range(SOURCES)
        )
        + '[[topics]]\nslug = "ukraine"\nterms = ["Ukraine"]\n',
        "utf-8",
    )
    started = time.monotonic()
    assert run(config).wait(timeout=300) == 0
    duration = time.monotonic() - started

    chance = random.Random(20261129)
    behind = 0
    for round in range(ROUNDS):
        for source in chance.sample(range(SOURCES), 60):  # news on a fifth of the sources
            lengths[source] += 2
            (sources / f"{source}.xml").write_text(rss(source, lengths[source]), "utf-8")
        db = sqlite3.connect(tmp_path / "state" / "aggregator.sqlite3")
        before = store_version(db)
        process = run(config)
        if round % 2:
            time.sleep(chance.uniform(0.1, duration * 1.2))
        else:
            while process.poll() is None and store_version(db) == before:
                time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
        db.close()
        process.wait(timeout=60)
        feeds_now = ids_in_feeds(tmp_path / "feeds", "all")["json"]
        behind += set(feeds_now) != stored_ids(tmp_path)

    print(f"{behind} of {ROUNDS} kills left the feeds behind the store; first run {duration:.1f} s")
    assert run(config).wait(timeout=300) == 0
    stored = stored_ids(tmp_path)
    assert len(stored) == sum(lengths.values())
    for slug in ("all", "ukraine"):
        for output, counts in ids_in_feeds(tmp_path / "feeds", slug).items():
            assert set(counts) == stored, (slug, output, f"{behind} kills left feeds behind")
            assert max(counts.values()) == 1, (slug, output)
    leftovers = [p for p in (tmp_path / "feeds").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "state").iterdir())
