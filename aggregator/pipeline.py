"""One regeneration: read every source, merge stories, match topics, write the feeds.

The middle (:func:`collect`, :func:`build_feeds`) is pure; reading sources and
writing files happen only in :func:`read_sources` and :func:`run`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aggregator.config import Config, SourceConfig
from aggregator.dedupe import merge
from aggregator.errors import SourceError
from aggregator.model import Entry, SourceEntry
from aggregator.output import write_if_changed
from aggregator.render import FeedSpec, newest_first, render_atom, render_rss
from aggregator.source import parse_source
from aggregator.topics import Topic

log = logging.getLogger("aggregator")


@dataclass(frozen=True, slots=True)
class RunResult:
    entries: tuple[Entry, ...]
    failures: tuple[SourceError, ...]
    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]


def read_source(source: SourceConfig) -> list[SourceEntry]:
    """The entries of one configured source; SourceError when it cannot be read."""
    try:
        data = source.path.read_bytes()
    except FileNotFoundError as error:
        raise SourceError(
            source.name, str(source.path), f"no such file; check {source.key}.path in the config"
        ) from error
    except OSError as error:
        raise SourceError(
            source.name, str(source.path), f"cannot read: {error.strerror}"
        ) from error
    return parse_source(
        data, url=str(source.path), kind=source.kind, captured=source.captured, name=source.name
    )


def read_sources(config: Config) -> tuple[list[SourceEntry], list[SourceError]]:
    """Every source's entries; a source that fails is reported and the rest go on."""
    entries: list[SourceEntry] = []
    failures: list[SourceError] = []
    for source in config.sources:
        try:
            found = read_source(source)
        except SourceError as error:
            log.error("%s", error)
            failures.append(error)
            continue
        log.info("%s: %d entries", source.name, len(found))
        entries.extend(found)
    return entries, failures


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


def run(config: Config, now: datetime) -> RunResult:
    """Regenerate every feed from every source."""
    items, failures = read_sources(config)
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
