"""``aggregator sources add``: a site, a feed or a saved page, checked, into config.toml.

A web address is looked at first (:mod:`aggregator.live.discover`): a feed is taken as
it is; a page's feeds are found, each fetched and parsed, and the best (or the one
``pick`` names) is added. A local file is read as a run would read it: a feed file
is parsed, a saved page has its layout recognised. Either way what was read is
reported (the feed's title and entry count, or the page's layout), and only a
source that can be read is added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

from aggregator.config import Config, captured_after, load_config
from aggregator.errors import AggregatorError, CaptureTimeError, ConfigError, SourceError
from aggregator.live.discover import Candidate, Discovery, discover
from aggregator.live.fetch import Limits
from aggregator.live.sandbox import Sandbox
from aggregator.localfile import read_local
from aggregator.sources.configfile import (
    NewSource,
    SourcesFile,
    normalise_url,
    pasted,
    usable_name,
)
from aggregator.uri import as_uri, without_credentials

if TYPE_CHECKING:
    from aggregator.snapshots.page import Captured


class DiscoveryError(AggregatorError):
    """No usable feed was found at an address (or ``pick`` chose one that is not)."""

    def __init__(self, message: str, discovery: Discovery | None = None) -> None:
        super().__init__(message)
        self.discovery = discovery


class PickError(ConfigError):
    """``pick`` names none of the feeds found: a usage error (exit 2), listing them."""


@dataclass(frozen=True, slots=True)
class Added:
    """What ``sources add`` did: the source written, what it holds, what was found."""

    source: NewSource
    key: str  # "sources[7]"
    what: str  # "RSS/Atom feed", "JSON Feed", "saved page (listing layout)"
    title: str | None
    entries: int | None
    discovery: Discovery | None = None


class AlreadyRead(ConfigError):
    """The feed chosen on a page is one the config reads already: a usage error (exit 2)
    with the ``discovery``, so that the page's other feeds are shown."""

    def __init__(self, where: str, message: str, discovery: Discovery) -> None:
        super().__init__(where, message)
        self.discovery = discovery


class TargetError(ConfigError):
    """What was given to add is neither a web address nor an existing file, but looks
    like an address without its scheme: a usage error (exit 2), naming what to give."""


# "host.example/…", "host:8080/…", "[::1]:8080": the start of an address, not of a path.
_HOST = re.compile(r"^(?:[^/\\:\s]*\.[^/\\:\s]*|[^/\\:\s]+:\d+|\[[0-9A-Fa-f:.]+\](?::\d+)?)(?:/|$)")


# The start of a web page: what a browser saves, not a feed or a page saved as text.
_HTML = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
    rb"(?:<!DOCTYPE\s+html|<html[\s>])",
    re.IGNORECASE | re.DOTALL,
)


# Addresses of other kinds than http(s) and file: ("ftp://…", "javascript:…"), told
# from a file's path by their scheme (a path may hold a colon, not start with one).
_OTHER_SCHEME = re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*://|(?:javascript|data|mailto|about|tel):)")


def _file_of(target: str) -> Path:
    """The file a target that is not an http(s) URL names: a path, or a file: URL (its
    %-escapes read, as ``url = "file:…"`` in the config is: "my%20feed.xml"). TargetError
    for another machine's file: URL, or an address of another scheme."""
    parts = urlsplit(target)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise TargetError(
                target, "a file: URL names a file on this machine; give its path here"
            )
        return Path(unquote(parts.path))
    if _OTHER_SCHEME.match(target) and not Path(target).exists():
        scheme = parts.scheme or target.split(":", 1)[0]
        raise TargetError(
            target,
            f"{scheme}: addresses cannot be read; give an http(s) address or a file's path",
        )
    return Path(target)


def _is_url(target: str) -> bool:
    """Whether ``target`` is an http(s) URL; TargetError for one Python cannot split
    ("http://[::1/feed": an IPv6 host not closed)."""
    try:
        return urlsplit(target).scheme.lower() in ("http", "https")
    except ValueError as error:
        advice = f"is not a web address ({error}); check it and try again"
        raise TargetError(target, advice) from error


# What a file given alone ("page.txt", no folder) is named: a file, never a host.
_FILE_SUFFIXES = frozenset({".txt", ".xml", ".html", ".htm", ".json", ".rss", ".atom", ".opml"})


def _looks_like_host(target: str) -> bool:
    """Whether a relative path names a host rather than a file: a dot or a port before
    its first slash (``example.org/feed``, ``localhost:8080/feed``), and not a file's
    name alone (``page.txt``)."""
    if "/" not in target and Path(target).suffix.lower() in _FILE_SUFFIXES:
        return False
    return not target.startswith((".", "~")) and _HOST.match(target) is not None


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
    wanted = pasted(pick)
    # ASCII digits only: "²" and "٣" are digits to str.isdigit, and no number to int().
    if wanted.isascii() and wanted.isdigit():
        if 1 <= int(wanted) <= len(candidates):
            chosen = candidates[int(wanted) - 1]
    else:
        # As a duplicate is told: a trailing slash, the scheme's case, a protocol-
        # relative address (found by review: only the very URL listed was taken). A
        # relative one, as the page's own links may be (against its <base href>): the
        # one feed whose address ends so.
        key = normalise_url(urljoin(discovery.final_url, wanted))
        chosen = next((c for c in candidates if normalise_url(c.url) == key), None)
        if chosen is None and wanted and not urlsplit(wanted).scheme and wanted[0] != "/":
            tail = "/" + wanted.lstrip("./")
            ending = [c for c in candidates if normalise_url(c.url).endswith(tail.rstrip("/"))]
            chosen = ending[0] if len(ending) == 1 else None
    if chosen is None:
        listed = ", ".join(f"{number}. {c.url}" for number, c in enumerate(candidates, start=1))
        raise PickError(
            discovery.url,
            f"--pick {pick}: names none of the feeds found; give a number from 1 to "
            f"{len(candidates)} or one of their URLs ({listed or 'none found'})",
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
    config: Config, file: Path, sandbox: Sandbox, captured: Captured | None = None
) -> tuple[str, str | None, int | None]:
    """(what it is, title, entries) of a local file, a saved page read as
    saved at ``captured`` when given; SourceError when unreadable, ConfigError for a
    capture time given for a feed, or needed by a page and not given."""
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
    if _HTML.search(data[:4096]):
        # A page a browser saved (found by review: said "not a feed", and nothing to do).
        raise ConfigError(
            name,
            "a web page (HTML), which is neither a feed nor a saved page (those are saved "
            "as text); to follow the site, give its address (aggregator sources add "
            "https://…), and its feeds are found; to read its news from a file, save the "
            "page as text (.txt)",
        )
    if is_feed(data, None):
        if captured is not None:
            raise _not_a_page(name, "a feed file")
        document = read_feed(data, url=name, name=name, sandbox=sandbox)
        return "feed file", document.title or None, len(document.entries)
    text = decode(data, name, name)
    layout = choose_layout(Page.from_text(head(text), source=name, location=name)).name
    try:
        entries = parse_source(data, url=name, kind=layout, name=name, captured=captured)
    except CaptureTimeError:
        # Added as it is, every run would fail it until the config says when it was
        # saved: refused, with the option that says so.
        raise ConfigError(
            name,
            "the page dates its stories by age ('2 weeks ago') and when it was saved "
            "cannot be told from it; add it again with --captured YYYY-MM-DD, the day "
            "it was saved; nothing was changed",
        ) from None
    return f"saved page ({layout} layout)", None, len(entries)


def _not_a_page(target: str, what: str) -> ConfigError:
    return ConfigError(
        target,
        f"--captured is for saved pages (their stories' ages, such as '3 weeks ago', count "
        f"back from it); this is {what}, which dates its own items: leave --captured out",
    )


def _check_captured(captured: Captured, now: datetime) -> None:
    """A capture time after ``now`` would date its stories in the future: a mistyped
    year, refused as such (aggregator.config.captured_after)."""
    if captured_after(captured, now):
        raise ConfigError(
            "--captured",
            f"{captured.isoformat()} is after today; give the day it was saved",
        )


def add_source(
    config_path: Path,
    target: str,
    *,
    sandbox: Sandbox,
    name: str | None = None,
    topics: tuple[str, ...] = (),
    pick: str | None = None,
    captured: Captured | None = None,
    now: datetime | None = None,
) -> Added:
    """Find, check and add the source at ``target`` (a URL or a file) to the config.

    ``target`` may be pasted as it comes (:func:`pasted`): surrounding white space and
    ``feed:`` URLs are taken as meant. Raises DiscoveryError when no feed is found,
    SourceError when a file cannot be read, ConfigError for a duplicate or a bad topic,
    or a missing file that looks like an address without its scheme (TargetError),
    or a capture time (``captured``: when a saved page was saved, written with it) given
    for a feed or after ``now``; the config is then unchanged.
    """
    config = load_config(config_path)
    _check_topics(config, topics)
    if captured is not None and now is not None:
        _check_captured(captured, now)
    if name is not None and not name.strip():
        # (Found by review: "" was passed over, and "  " blamed on the config after it.)
        raise ConfigError("--name", "is empty; give the source's name, or leave it out")
    target = pasted(target)
    if not target:
        raise ConfigError("sources add", "nothing to add; give a web address or a file")
    discovery: Discovery | None = None
    if _is_url(target):
        if captured is not None:
            raise _not_a_page(target, "a web address")
        try:
            port = urlsplit(target).port
        except ValueError:
            port = 0
        if port == 0:  # (said without the address's password, as every error is)
            raise ConfigError(without_credentials(target), "its port is no port (1 to 65535)")
        # The address as given, before it is asked: a source that reads it already is
        # the same feed, wherever it now leads (found by review: a feed moved for good
        # was added again under its new address).
        if (reading := SourcesFile(config_path, "sources add").reading(target)) is not None:
            raise ConfigError(str(config_path), f"{reading}; nothing was changed")
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
        netloc = urlsplit(chosen.url).netloc
        default_name = usable_name(title, netloc)
        # As a link is written (aggregator.uri), as import writes it: "my%20feed.xml".
        url = as_uri(chosen.url, netloc) or chosen.url
        source = NewSource(name or default_name, url=url, topics=topics)
    else:
        file = _file_of(target)
        if (
            not target.lower().startswith("file:")
            and _looks_like_host(target)
            and not file.exists()
        ):
            raise TargetError(
                target,
                f"no such file, and no web address without its scheme; if it is a web "
                f"address, give it as https://{target} (or http://{target})",
            )
        what, title, entries = _local(config, file, sandbox, captured)
        default_name = usable_name(title, file.stem)
        source = NewSource(
            name or default_name,
            path=_config_path(config_path, file),
            topics=topics,
            captured=captured,
        )
    edit = SourcesFile(config_path, "sources add")
    others = [] if discovery is None else [c for c in discovery.candidates if c.ok]
    if discovery is not None and len(others) > 1 and (problem := edit.reading(source.url or "")):
        # The page's best feed is read already: its others are shown, and how to take
        # one (found by review: the page's list was not shown at all).
        raise AlreadyRead(
            str(config_path),
            f"{problem}; the page lists {len(others)} feeds: add another with --pick N; "
            "nothing was changed",
            discovery,
        )
    edit.add(source)
    edit.save()
    key = f"sources[{len(edit.tables())}]"
    return Added(source, key, what, title, entries, discovery)


__all__ = [
    "Added",
    "AlreadyRead",
    "DiscoveryError",
    "PickError",
    "SourceError",
    "TargetError",
    "add_source",
    "pasted",
]
