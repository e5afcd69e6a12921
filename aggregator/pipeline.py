"""One regeneration: read every source, merge stories, match topics, write the feeds.

The middle (:func:`collect`, :func:`build_feeds`) is pure; reading sources and
writing files happen only in :func:`ingest` and :func:`run`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aggregator.config import Config
from aggregator.dedupe import merge
from aggregator.errors import SourceError
from aggregator.ingest import Ingest
from aggregator.live.sandbox import Sandbox
from aggregator.live.state import StateFile
from aggregator.model import Entry, SourceEntry
from aggregator.output import write_if_changed
from aggregator.render import FeedSpec, newest_first, render_atom, render_rss
from aggregator.topics import Topic

log = logging.getLogger("aggregator")


@dataclass(frozen=True, slots=True)
class RunResult:
    entries: tuple[Entry, ...]
    failures: tuple[SourceError, ...]
    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]


def collect(
    items: Sequence[SourceEntry], topics: Sequence[Topic], *, authority: str, now: datetime
) -> list[Entry]:
    """Source entries merged into stories, each labelled with its topics."""
    stories = merge(items, authority=authority, now=now)
    return [
        dataclasses.replace(
            story,
            topics=tuple(
                topic.slug
                for topic in topics
                if topic.matches({"title": story.title, "summary": story.summary})
            ),
        )
        for story in stories
    ]


def build_feeds(
    config: Config, topics: Sequence[Topic], entries: Sequence[Entry], now: datetime
) -> dict[str, bytes]:
    """File name → bytes for ``all`` and every topic, in RSS 2.0 and Atom 1.0."""
    settings = config.feeds
    ordered = newest_first(entries)
    feeds: list[tuple[FeedSpec, list[Entry]]] = [
        (
            FeedSpec(
                "all",
                settings.title,
                settings.description,
                settings.base_url,
                settings.site_url,
                settings.author,
                settings.id_authority,
            ),
            ordered,
        )
    ]
    for topic in topics:
        spec = FeedSpec(
            topic.slug,
            f"{settings.title}: {topic.title}",
            topic.description,
            settings.base_url,
            settings.site_url,
            settings.author,
            settings.id_authority,
        )
        feeds.append((spec, [e for e in ordered if topic.slug in e.topics]))
    files: dict[str, bytes] = {}
    for spec, chosen in feeds:
        chosen = chosen[: settings.max_entries]
        files[f"{spec.slug}.rss"] = render_rss(spec, chosen, now)
        files[f"{spec.slug}.atom"] = render_atom(spec, chosen, now)
    return files


def ingest(config: Config, now: datetime) -> tuple[list[SourceEntry], list[SourceError]]:
    """Every source's entries; a source that fails is reported and the rest go on."""
    state = StateFile(config.fetch.state_file)
    sandbox = Sandbox(
        workers=min(2, os.cpu_count() or 1),
        timeout=config.fetch.parse_timeout,
        memory=config.fetch.parse_memory_mb << 20,
    )
    with sandbox:
        outcomes = Ingest(config, state, sandbox, now).run()
    state.save()
    items: list[SourceEntry] = []
    failures: list[SourceError] = []
    for outcome in outcomes:
        items.extend(outcome.entries)
        if outcome.error is not None:
            log.error("%s", outcome.error)
            failures.append(outcome.error)
        else:
            extra = f" ({outcome.note})" if outcome.note else ""
            log.info("%s: %d entries%s", outcome.source.name, len(outcome.entries), extra)
    return items, failures


def run(config: Config, now: datetime) -> RunResult:
    """Regenerate every feed from every source."""
    items, failures = ingest(config, now)
    topics = [Topic.from_config(topic) for topic in config.topics]
    entries = collect(items, topics, authority=config.feeds.id_authority, now=now)
    written: list[Path] = []
    unchanged: list[Path] = []
    for name, data in build_feeds(config, topics, entries, now).items():
        path = config.feeds.directory / name
        (written if write_if_changed(path, data) else unchanged).append(path)
    log.info(
        "%d entries from %d sources; %d feeds written, %d unchanged",
        len(entries),
        len(config.sources) - len(failures),
        len(written),
        len(unchanged),
    )
    return RunResult(tuple(entries), tuple(failures), tuple(written), tuple(unchanged))
