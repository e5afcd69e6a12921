"""Workloads run in a child process, so that each one's time and peak memory are its own.

``python -m benchmarks.probe NAME ARGS...`` prints one JSON object:
``{"seconds": …, "peak_mb": …, …}``.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    over from the parent across fork and exec, so a runner holding a 50 MB workload would
    lend every probe its peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_aggregator(config: str) -> dict[str, Any]:
    from aggregator.cli import main

    started = time.perf_counter()
    code = main(["-q", "--config", config, "run"])
    return {"seconds": time.perf_counter() - started, "exit": code}


def lxml_loop(directory: str) -> dict[str, Any]:
    """The baseline: a bare lxml loop extracting the fields we read, from the same bytes.

    The loop lasts a fraction of a second, so it runs five times and its fastest pass
    counts: a steadier baseline, and one that can only make our ratio look worse.
    """
    from lxml import etree

    blobs = [p.read_bytes() for p in sorted(Path(directory).glob("*.xml"))]
    passes = []
    count = 0
    for _ in range(5):
        started = time.perf_counter()
        count = 0
        for blob in blobs:
            root = etree.fromstring(blob)
            for item in root.iter("item"):
                fields = (
                    item.findtext("title"),
                    item.findtext("link"),
                    item.findtext("guid"),
                    item.findtext("pubDate"),
                    item.findtext("description"),
                )
                count += fields[0] is not None
        passes.append(time.perf_counter() - started)
    return {"seconds": min(passes), "entries": count}


def _items(count: int, seed: int, repeat: float) -> Iterator[Any]:
    from aggregator.model import Provenance, Published, SourceEntry

    rng = random.Random(seed)
    start = date(2000, 1, 1)
    made = 0
    while made < count:
        number = rng.randrange(max(1, made)) if made and rng.random() < repeat else made
        yield SourceEntry(
            title=f"Synthetic story number {number} about NATO and its partners",
            published=Published.on_day(start + timedelta(days=number // 20)),
            summary=f"Summary of story {number}. " * 4,
            provenance=Provenance(f"source {made % 200}", f"https://example.org/{made % 200}"),
        )
        made += 1


def dedup(count: str) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from aggregator.dedupe import merge

    items = list(_items(int(count), seed=5, repeat=0.2))
    started = time.perf_counter()
    stories = merge(
        items, authority="bench,2026", zone=ZoneInfo("Europe/Brussels"), now=datetime.now(UTC)
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "items": len(items), "stories": len(stories)}


ENTRY_COLUMNS = (
    "id, title, title_key, published, summary, content_html, link, author, categories, "
    "first_seen, last_seen, sort_key"
)


def build_archive(config: str, count: str) -> dict[str, Any]:
    """A store already holding ``count`` stories (one in seven about Ukraine).

    Written with plain SQL in bulk: building the archive is not what is measured.
    """
    from aggregator.config import load_config
    from aggregator.model import Published
    from aggregator.pipeline import topics_fingerprint
    from aggregator.store import Store, sort_key
    from aggregator.text import title_key

    settings = load_config(Path(config))
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    stamp = seen.isoformat()
    started = time.perf_counter()
    with Store(settings.store.path) as store, store.transaction() as db:
        entries: list[tuple[Any, ...]] = []
        sightings: list[tuple[Any, ...]] = []
        topics: list[tuple[Any, ...]] = []
        for number in range(int(count)):
            day = date(1990, 1, 1) + timedelta(days=number // 50)
            about_ukraine = number % 7 == 0
            title = f"Archived story {number}" + (" on Ukraine" if about_ukraine else "")
            key = sort_key(Published.on_day(day), seen)
            entry_id = f"tag:bench,2026:entry:{number:012d}"
            entries.append(
                (entry_id, title, title_key(title), day.isoformat(), "An archived summary. " * 5,
                 None, f"https://example.org/a/{number}", None, "[]", stamp, stamp, key)
            )  # fmt: skip
            sightings.append(
                (entry_id, "archive", "https://example.org/archive", None, stamp, stamp)
            )
            if about_ukraine:
                topics.append(("ukraine", entry_id, key))
            if len(entries) >= 20_000 or number == int(count) - 1:
                db.executemany(
                    f"INSERT INTO entries ({ENTRY_COLUMNS}) VALUES ({','.join('?' * 12)})", entries
                )
                db.executemany(
                    "INSERT INTO sightings "
                    "(entry_id, source, location, line, first_seen, last_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    sightings,
                )
                db.executemany(
                    "INSERT INTO entry_topics (topic, entry_id, sort_key) VALUES (?, ?, ?)", topics
                )
                entries, sightings, topics = [], [], []
        store.set_meta("topics", topics_fingerprint(settings))
    return {"seconds": time.perf_counter() - started}


def add_hundred(config: str) -> dict[str, Any]:
    """The growth case: 100 new stories folded into the store, every feed regenerated."""
    from aggregator.config import load_config
    from aggregator.ingest import Outcome
    from aggregator.live.state import FetchStates
    from aggregator.model import Provenance, Published, SourceEntry
    from aggregator.pipeline import publish
    from aggregator.store import Store

    settings = load_config(Path(config))
    items = tuple(
        SourceEntry(
            title=f"Fresh story {number} about Kyiv",
            published=Published.on_day(date(2026, 1, 1) + timedelta(days=number % 10)),
            summary="A new summary. " * 8,
            provenance=Provenance("feed 0", "https://example.org/new"),
        )
        for number in range(100)
    )
    started = time.perf_counter()
    with Store(settings.store.path) as store:
        outcomes = [Outcome(settings.sources[0], items)]
        result = publish(settings, store, FetchStates(store), outcomes, datetime.now(UTC))
    return {"seconds": time.perf_counter() - started, "new": result.report.new}


def parse_feed_file(path: str) -> dict[str, Any]:
    """aggregator.parse_source on a feed file (in this process, no sandbox)."""
    import aggregator
    import aggregator.live.feedparse  # imported before the clock starts

    data = Path(path).read_bytes()
    started = time.perf_counter()
    entries = aggregator.parse_source(data, url=path)
    return {"seconds": time.perf_counter() - started, "entries": len(entries)}


def feedparser_alone(path: str) -> dict[str, Any]:
    """The baseline: feedparser reading the same bytes, every entry, nothing after."""
    import io

    import feedparser

    data = Path(path).read_bytes()
    started = time.perf_counter()
    parsed = feedparser.parse(io.BytesIO(data), resolve_relative_uris=False, sanitize_html=False)
    return {"seconds": time.perf_counter() - started, "entries": len(parsed.entries)}


def clean_field(kind: str, size: str) -> dict[str, Any]:
    """What an entry's HTML field costs: sanitised HTML and its text (``nested``), or,
    as the baseline, nh3 alone on ordinary markup of the same size (``flat``)."""
    import nh3

    from aggregator.live import clean
    from benchmarks.workloads import flat_html, nested_html

    field = nested_html(int(size)) if kind == "nested" else flat_html(int(size))
    started = time.perf_counter()
    if kind == "nested":
        kept = len(clean.sanitize_html(field, "https://example.org/"))
        kept += len(clean.html_to_text(field))
    else:
        kept = len(nh3.clean(field))
    return {"seconds": time.perf_counter() - started, "kept": kept}


def parse_snapshot(path: str) -> dict[str, Any]:
    """aggregator.parse_source on a saved page; a refusal is reported, not raised."""
    import aggregator

    data = Path(path).read_bytes()
    started = time.perf_counter()
    try:
        entries = aggregator.parse_source(data, url=path)
    except aggregator.AggregatorError as error:
        return {"seconds": time.perf_counter() - started, "refused": str(error)}
    return {"seconds": time.perf_counter() - started, "entries": len(entries)}


def resident_mb(pid: int | None = None) -> tuple[float, float]:
    """Resident memory of a process (default: this one), alone and with its children
    (the parser workers and their fork server)."""
    import psutil

    process = psutil.Process(pid)
    own = process.memory_info().rss
    children = sum(c.memory_info().rss for c in process.children(recursive=True))
    return own / 2**20, (own + children) / 2**20


def reader_update(db: str, urls: str, workers: str = "8") -> dict[str, Any]:
    """The peer: lemon24/reader's update_feeds() over the same feeds, into its SQLite
    store (``db``, kept between calls: a second call is its steady state). Every feed
    is asked (``scheduled=False``), as our run asks every feed that said nothing of
    freshness."""
    from reader import make_reader

    started = time.perf_counter()
    reader = make_reader(db)
    for url in Path(urls).read_text().split():
        reader.add_feed(url, exist_ok=True)
    reader.update_feeds(workers=int(workers), scheduled=False)
    seconds = time.perf_counter() - started
    counts = reader.get_entry_counts()
    reader.close()
    return {"seconds": seconds, "entries": counts.total}


def feedparser_files(directory: str) -> dict[str, Any]:
    """The peer a script would be: feedparser.parse on each feed's bytes, nothing after."""
    import io

    import feedparser

    blobs = [p.read_bytes() for p in sorted(Path(directory).glob("*.xml"))]
    started = time.perf_counter()
    count = sum(len(feedparser.parse(io.BytesIO(blob)).entries) for blob in blobs)
    return {"seconds": time.perf_counter() - started, "entries": count}


def serve_day(config: str, rounds: str) -> dict[str, Any]:
    """What ``serve``'s jobs do in a day, in one process: every source read once per
    scheduled interval (``rounds`` intervals, the clock advanced each time), each read
    on its own as a job does (refresh of one source, the write lock only to write).
    Resident memory after the first round and after the last."""
    from aggregator.config import load_config
    from aggregator.pipeline import make_sandbox, refresh

    settings = load_config(Path(config))
    step = timedelta(minutes=settings.schedule.interval_minutes)
    start = datetime.now(UTC)
    first: tuple[float, float] = (0.0, 0.0)
    started = time.perf_counter()
    polls = 0
    with make_sandbox(settings) as sandbox:
        for round_ in range(int(rounds)):
            now = start + step * round_
            for source in settings.sources:
                refresh(settings, sandbox, now, [source], lock_whole_run=False)
                polls += 1
            if round_ == 0:
                first = resident_mb()
        last = resident_mb()
    return {
        "seconds": time.perf_counter() - started,
        "polls": polls,
        "first_mb": round(first[1], 1),
        "last_mb": round(last[1], 1),
        "last_own_mb": round(last[0], 1),
    }


PROBES: dict[str, Callable[..., dict[str, Any]]] = {
    "reader": reader_update,
    "feedparser_files": feedparser_files,
    "serve_day": serve_day,
    "parse_feed": parse_feed_file,
    "feedparser": feedparser_alone,
    "clean": clean_field,
    "snapshot": parse_snapshot,
    "run": run_aggregator,
    "lxml": lxml_loop,
    "dedup": dedup,
    "archive": build_archive,
    "add100": add_hundred,
}

if __name__ == "__main__":
    name, *args = sys.argv[1:]
    result = PROBES[name](*args)
    result["peak_mb"] = round(peak_mb(), 1)
    print(json.dumps(result))
