"""``aggregator sources add``: a site, a feed or a saved page, checked, into config.toml.

A web address is looked at first (:mod:`aggregator.live.discover`): a feed is taken as
it is; a page's feeds are found, each fetched and parsed, and the best (or the one
``pick`` names) is added. A local file is read as a run would read it: a feed file
is parsed, a saved page has its layout recognised. Either way what was read is
reported (the feed's title and entry count, or the page's layout), and only a
source that can be read is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.config import Config, load_config
from aggregator.errors import AggregatorError, CaptureTimeError, ConfigError, SourceError
from aggregator.live.discover import Candidate, Discovery, discover
from aggregator.live.fetch import Limits
from aggregator.live.sandbox import Sandbox
from aggregator.localfile import read_local
from aggregator.sources.configfile import NewSource, SourcesFile


class DiscoveryError(AggregatorError):
    """No usable feed was found at an address (or ``pick`` named none of them)."""

    def __init__(self, message: str, discovery: Discovery | None = None) -> None:
        super().__init__(message)
        self.discovery = discovery


@dataclass(frozen=True, slots=True)
class Added:
    """What ``sources add`` did: the source written, what it holds, what was found."""

    source: NewSource
    key: str  # "sources[7]"
    what: str  # "RSS/Atom feed", "JSON Feed", "saved page (listing layout)"
    title: str | None
    entries: int | None
    discovery: Discovery | None = None
    warning: str | None = None


def _is_url(target: str) -> bool:
    return urlsplit(target).scheme in ("http", "https")


def _choose(discovery: Discovery, pick: str | None) -> Candidate:
    if pick is None:
        best = discovery.best()
        if best is None:
            tried = "; ".join(f"{c.url}: {c.error}" for c in discovery.candidates) or "none"
            raise DiscoveryError(
                f"{discovery.url}: no feed found (tried {tried}); give the feed's own URL",
                discovery,
            )
        return best
    candidates = discovery.candidates
    chosen = None
    if pick.isdigit() and 1 <= int(pick) <= len(candidates):
        chosen = candidates[int(pick) - 1]
    else:
        chosen = next((c for c in candidates if c.url == pick), None)
    if chosen is None:
        raise DiscoveryError(
            f"{discovery.url}: --pick {pick}: no such feed; give a number from 1 to "
            f"{len(candidates)} or one of the URLs listed",
            discovery,
        )
    if not chosen.ok:
        raise DiscoveryError(f"{chosen.url}: {chosen.error}; pick another", discovery)
    return chosen


def _check_topics(config: Config, topics: tuple[str, ...]) -> None:
    slugs = [t.slug for t in config.topics]
    for slug in topics:
        if slug not in slugs:
            raise ConfigError(
                str(config.path),
                f"--topics: no topic {slug!r} (the topics are: {', '.join(slugs) or 'none'})",
            )


def _config_path(config_file: Path, file: Path) -> str:
    """A file as the config should name it: relative to the config's directory when
    it is inside it, else absolute."""
    resolved = file.resolve()
    try:
        return resolved.relative_to(config_file.resolve().parent).as_posix()
    except ValueError:
        return str(resolved)


def _local(
    config: Config, file: Path, sandbox: Sandbox
) -> tuple[str, str | None, int | None, str | None]:
    """(what it is, title, entries, warning) of a local file; SourceError when unreadable."""
    from aggregator.snapshots import choose_layout
    from aggregator.snapshots.page import Page, head
    from aggregator.source import decode, is_feed, parse_source, read_feed

    name = str(file)
    data = read_local(
        file,
        name=name,
        setting="the path",
        limit=config.fetch.max_decoded_mb << 20,
        limit_setting="[fetch] max_decoded_mb",
    )
    if is_feed(data, None):
        document = read_feed(data, url=name, name=name, sandbox=sandbox)
        return "feed file", document.title or None, len(document.entries), None
    text = decode(data, name, name)
    layout = choose_layout(Page.from_text(head(text), source=name, location=name)).name
    try:
        entries = parse_source(data, url=name, kind=layout, name=name)
    except CaptureTimeError as error:
        return f"saved page ({layout} layout)", None, None, f"{error.message}; add captured"
    return f"saved page ({layout} layout)", None, len(entries), None


def add_source(
    config_path: Path,
    target: str,
    *,
    sandbox: Sandbox,
    name: str | None = None,
    topics: tuple[str, ...] = (),
    pick: str | None = None,
) -> Added:
    """Find, check and add the source at ``target`` (a URL or a file) to the config.

    Raises DiscoveryError when no feed is found, SourceError when a file cannot be
    read, ConfigError for a duplicate or a bad topic; the config is then unchanged.
    """
    config = load_config(config_path)
    _check_topics(config, topics)
    discovery: Discovery | None = None
    warning: str | None = None
    if _is_url(target):
        discovery = discover(
            target,
            sandbox,
            limits=Limits.of(config.fetch),
            user_agent=config.fetch.user_agent,
            max_entries=config.fetch.max_entries_per_feed,
        )
        chosen = _choose(discovery, pick)
        what = "feed"
        title, entries = chosen.title, chosen.entries
        default_name = title or urlsplit(chosen.url).netloc
        source = NewSource(name or default_name, url=chosen.url, topics=topics)
    else:
        parts = urlsplit(target)
        file = Path(parts.path if parts.scheme == "file" else target)
        what, title, entries, warning = _local(config, file, sandbox)
        default_name = title or file.stem
        source = NewSource(
            name or default_name, path=_config_path(config_path, file), topics=topics
        )
    edit = SourcesFile(config_path)
    edit.add(source)
    edit.save()
    key = f"sources[{len(edit.tables())}]"
    return Added(source, key, what, title, entries, discovery, warning)


__all__ = ["Added", "DiscoveryError", "SourceError", "add_source"]
