"""config.toml: sources, topics and where the feeds go, read and checked in one place.

Every problem is reported as a :class:`~aggregator.errors.ConfigError` naming the
file and the key (``config.toml: sources[3].kind: …``). Relative paths are taken
relative to the config file, so a cron job may run from any directory.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aggregator.errors import ConfigError
from aggregator.patterns import compile_pattern
from aggregator.records import record
from aggregator.snapshots import LAYOUT_NAMES

if TYPE_CHECKING:
    from aggregator.snapshots.page import Captured

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
TOPIC_FIELDS = ("title", "summary", "categories")  # where rules may look
DEFAULT_FIELDS = ("title", "summary")  # where they look when a rule does not say
RESERVED_SLUGS = frozenset({"all", "topics", "index"})
# Bounds on numbers in the config: far above any sensible setting, and below what
# SQLite (64-bit integers), timers and the OS accept, so that a typo such as
# 2**64 or 1e300 is a config error naming its key rather than a crash later.
MAX_NUMBER = 1e6  # seconds or minutes
MAX_INTEGER = 2**31 - 1
MAX_MEGABYTES = 1 << 20  # a terabyte


@record
class FeedSettings:
    directory: Path
    base_url: str
    title: str
    description: str
    site_url: str
    author: str
    id_authority: str
    max_entries: int
    timezone: ZoneInfo


@record
class StoreSettings:
    path: Path
    retention_days: int = 0  # 0: keep everything
    lock_timeout: float = 300.0  # seconds a run waits for another to finish
    # postgresql://…: a PostgreSQL store shared by many workers instead of the file at
    # path ([store] url, or the AGGREGATOR_STORE_URL environment variable, which wins).
    url: str | None = None
    # How long a worker holds a source it claimed before another may fetch it
    # (PostgreSQL): longer than a fetch and its write take, short enough to recover soon.
    lease_seconds: float = 120.0

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")


@record
class ScheduleSettings:
    """How ``aggregator serve`` schedules each source."""

    interval_minutes: float = 15.0
    jitter_seconds: float = 60.0
    max_backoff_minutes: float = 360.0


@record
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_age: int | None = None  # Cache-Control max-age; default: the schedule's interval
    # Connection hygiene: slow, idle, oversized and excess clients are closed.
    header_timeout: float = 10.0  # seconds for a request's line and headers to arrive
    keep_alive_timeout: float = 5.0  # seconds an idle connection stays open between requests
    max_header_bytes: int = 16_384  # request line and headers together
    max_headers: int = 100
    max_connections: int = 1000  # open at once; more are answered 503 and closed
    send_timeout: float = 30.0  # seconds a client may leave what it was sent unread
    # Searches (/search and ?q= feeds) run in their own bounded pool, never on the loop.
    search_workers: int = 4
    search_queue: int = 32  # searches waiting for a worker; more are answered 503
    search_budget: float = 2.0  # seconds one search may take before it is a 503
    shutdown_grace: float = 10.0  # seconds SIGTERM lets a running read finish


@record
class FetchSettings:
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    deadline: float = 30.0
    max_body_mb: int = 10
    max_decoded_mb: int = 40
    workers: int = 8
    parse_timeout: float = 10.0
    parse_memory_mb: int = 1024
    user_agent: str | None = None
    # The newest entries kept from one feed document (by date, then document order).
    max_entries_per_feed: int = 1000


@record
class SourceConfig:
    """A source: a local file (``path``) or a live feed (``url``)."""

    name: str
    key: str  # "sources[2]", for messages
    path: Path | None = None
    url: str | None = None
    kind: str | None = None
    captured: Captured | None = None
    interval_minutes: float | None = None  # default: [schedule] interval_minutes
    page_url: str | None = None  # the web page a local file was saved from
    enabled: bool = True  # false: runs and serve skip it (aggregator sources disable)
    topics: tuple[str, ...] = ()  # source hints: every story read here belongs to these
    path_setting: str = "path"  # the key that gave ``path``: "url" for a file: URL

    @property
    def location(self) -> str:
        return self.url if self.url is not None else str(self.path)


@record
class RuleConfig:
    """Terms and patterns looked for in some fields."""

    key: str  # "topics[1]" or "topics[1].rules[2]", for messages
    terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    fields: tuple[str, ...] = DEFAULT_FIELDS


@record
class TopicConfig:
    slug: str
    key: str
    title: str
    description: str
    rules: tuple[RuleConfig, ...]
    exclude: RuleConfig | None = None


@record
class Config:
    path: Path
    feeds: FeedSettings
    store: StoreSettings
    fetch: FetchSettings
    schedule: ScheduleSettings
    serve: ServeSettings
    sources: tuple[SourceConfig, ...]  # the enabled ones: what runs and serve read
    topics: tuple[TopicConfig, ...]
    disabled_sources: tuple[SourceConfig, ...] = ()  # enabled = false: skipped


class _Table:
    """A TOML table being read: typed getters that name the key when they fail."""

    def __init__(self, file: str, key: str, data: Mapping[str, Any]) -> None:
        self.file, self.key, self.data = file, key, data

    def fail(self, name: str | None, message: str) -> ConfigError:
        where = self.key if name is None else f"{self.key}.{name}" if self.key else name
        return ConfigError(f"{self.file}: {where}", message)

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for name in self.data:
            if name not in allowed:
                raise self.fail(name, f"unknown setting (expected one of: {', '.join(allowed)})")

    def string(self, name: str, default: str | None = None) -> str:
        value = self.data.get(name, default)
        if value is None:
            raise self.fail(name, "missing; it is required")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, f"must be a non-empty string, not {value!r}")
        return value.strip()

    def optional_string(self, name: str) -> str | None:
        return self.string(name) if name in self.data else None

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.data.get(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, f"must be a list of non-empty strings, not {value!r}")
        return tuple(value)

    def number(
        self, name: str, default: float, minimum: float = 0.001, maximum: float = MAX_NUMBER
    ) -> float:
        value = self.data.get(name, default)
        # NaN compares false with everything, so it is refused by name, not by range.
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or not minimum <= value <= maximum
        ):
            raise self.fail(
                name, f"must be a number from {minimum:g} to {maximum:g}, not {value!r}"
            )
        return float(value)

    def integer(self, name: str, default: int, minimum: int = 1, maximum: int = MAX_INTEGER) -> int:
        value = self.data.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
            raise self.fail(
                name, f"must be a whole number from {minimum} to {maximum}, not {value!r}"
            )
        return value

    def tables(self, name: str) -> list[_Table]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(name, f"must be an array of tables ([[{name}]])")
        prefix = f"{self.key}." if self.key else ""
        return [_Table(self.file, f"{prefix}{name}[{i}]", v) for i, v in enumerate(value, start=1)]

    def table(self, name: str) -> _Table:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a table ([{name}])")
        return _Table(self.file, name, value)


# Before the web: no page was saved then (a mistyped year, not a capture).
EARLIEST_CAPTURE = date(1990, 1, 1)
# A capture time written out: a day, or a day and a time with its offset (or Z).
_CAPTURE_TEXT = re.compile(
    r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:?\d\d(?::?\d\d)?)?)?",
    re.IGNORECASE,
)


def captured_after(captured: date, now: datetime) -> bool:
    """Whether a capture time is after ``now`` (a day: after today, with a day's slack for
    a page's day ahead of UTC's; a time: by more than an hour of clock skew): a typo."""
    if isinstance(captured, datetime):
        return captured > now + timedelta(hours=1)
    return captured > (now + timedelta(days=1)).date()


def parse_captured(value: object) -> Captured:
    """A capture time: a day, or an instant with its UTC offset.

    Accepts TOML dates and offset datetimes, and ISO 8601 text (``2022-11-26``,
    ``2022-11-26T09:30:00+01:00``, ``…Z``). Raises ValueError otherwise.
    """
    if isinstance(value, str):
        text = value.strip()
        # Only these forms (Python reads "20231020" and "2023-W42-5" too: found by review).
        if not _CAPTURE_TEXT.fullmatch(text):
            raise ValueError(
                f"{text!r} is not a date; expected YYYY-MM-DD or YYYY-MM-DDTHH:MM+01:00"
            )
        try:
            value = date.fromisoformat(text)
        except ValueError:
            try:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"{text!r} is not a date; expected YYYY-MM-DD or YYYY-MM-DDTHH:MM+01:00"
                ) from None
    if not isinstance(value, date):  # a datetime is a date too
        raise ValueError(f"{value!r} is not a date or a date and time")
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no UTC offset; add one, such as +01:00")
    offset = value.utcoffset() if isinstance(value, datetime) else None
    if offset is not None and offset.total_seconds() % 60:
        # (TOML has no such offset: config.toml could not hold it. Found by review.)
        raise ValueError(f"{value.isoformat()} has an offset of seconds; give hours and minutes")
    day = value.date() if isinstance(value, datetime) else value
    if day < EARLIEST_CAPTURE:
        # Ages ("3 weeks ago") are counted back from it: a date before year 1 is no date.
        raise ValueError(
            f"{day.isoformat()} is before any web page was saved; give the day the page was saved"
        )
    return value


def _feeds(root: _Table, base: Path, serve: ServeSettings) -> FeedSettings:
    table = root.table("feeds")
    table.check_keys(
        (
            "directory",
            "base_url",
            "title",
            "description",
            "site_url",
            "author",
            "id_authority",
            "max_entries",
            "timezone",
        )
    )
    zone_name = table.string("timezone", "Europe/Brussels")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise table.fail(
            "timezone", f"unknown time zone {zone_name!r} (e.g. 'Europe/Brussels')"
        ) from error
    # Unset, the feeds' own links name where `aggregator serve` listens with this config,
    # so that cron runs and the server write the same links (found by review: a run
    # wrote 8080's into the files a server on another port was serving).
    base_url = table.string("base_url", _served_at(serve))
    site_url = table.string("site_url", "https://www.nato.int/")
    for name, url in (("base_url", base_url), ("site_url", site_url)):
        parts = _split(table, name, url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise table.fail(name, f"must be an absolute http(s) URL, not {url!r}")
    authority = table.string("id_authority", "aggregator.localhost,2026")
    if not re.fullmatch(r"[A-Za-z0-9.@-]+,\d{4}(?:-\d\d(?:-\d\d)?)?", authority):
        raise table.fail(
            "id_authority",
            f"must look like 'example.org,2026' (a tag: URI authority), not {authority!r}",
        )
    return FeedSettings(
        directory=base / table.string("directory", "feeds"),
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        title=table.string("title", "NATO news"),
        description=table.string("description", "NATO news, republished by topic."),
        site_url=site_url,
        author=table.string("author", "aggregator"),
        id_authority=authority,
        max_entries=table.integer("max_entries", 100, maximum=1_000_000),
        timezone=zone,
    )


def _store(root: _Table, base: Path) -> StoreSettings:
    table = root.table("store")
    table.check_keys(("path", "retention_days", "lock_timeout", "url", "lease_seconds"))
    from_env = os.environ.get("AGGREGATOR_STORE_URL")
    url = from_env or table.optional_string("url")
    if url is not None and re.match(r"^postgres(ql)?://", url) is None:
        message = "must be a postgresql:// URL (leave it out to use the SQLite file at path)"
        if from_env:
            raise ConfigError("AGGREGATOR_STORE_URL", message)
        raise table.fail("url", message)
    return StoreSettings(
        path=base / table.string("path", "state/aggregator.sqlite3"),
        # Past ~2,700 years the cutoff would fall before year 1.
        retention_days=table.integer("retention_days", 0, minimum=0, maximum=1_000_000),
        lock_timeout=table.number("lock_timeout", 300.0, minimum=0),
        url=url,
        lease_seconds=table.number("lease_seconds", 120.0, minimum=1, maximum=86_400),
    )


def _schedule(root: _Table) -> ScheduleSettings:
    table = root.table("schedule")
    table.check_keys(("interval_minutes", "jitter_seconds", "max_backoff_minutes"))
    defaults = ScheduleSettings()
    interval = table.number("interval_minutes", defaults.interval_minutes, minimum=0.01)
    # Left out, the cap on backing off is never below the interval itself.
    default_backoff = max(defaults.max_backoff_minutes, interval)
    backoff = table.number("max_backoff_minutes", default_backoff, minimum=0.01)
    if backoff < interval:
        raise table.fail("max_backoff_minutes", f"must be at least interval_minutes ({interval:g})")
    return ScheduleSettings(
        interval_minutes=interval,
        jitter_seconds=table.number("jitter_seconds", defaults.jitter_seconds, minimum=0),
        max_backoff_minutes=backoff,
    )


def _served_at(serve: ServeSettings) -> str:
    """The feeds' address under `aggregator serve` with these settings (a wildcard
    address is reached on loopback; port 0, chosen when it starts, is unknown here)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(serve.host, serve.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{serve.port or 8080}/feeds/"


def _serve(root: _Table) -> ServeSettings:
    table = root.table("serve")
    d = ServeSettings()
    table.check_keys(
        (
            *("host", "port", "max_age", "header_timeout", "keep_alive_timeout"),
            *("max_header_bytes", "max_headers", "max_connections", "search_workers"),
            *("search_queue", "search_budget", "shutdown_grace", "send_timeout"),
        )
    )
    port = table.integer("port", 8080, minimum=0, maximum=65535)
    max_age = table.integer("max_age", 0, minimum=0) if "max_age" in table.data else None
    return ServeSettings(
        host=table.string("host", "127.0.0.1"),
        port=port,
        max_age=max_age,
        header_timeout=table.number("header_timeout", d.header_timeout, minimum=0.01),
        keep_alive_timeout=table.number("keep_alive_timeout", d.keep_alive_timeout, minimum=0.01),
        max_header_bytes=table.integer("max_header_bytes", d.max_header_bytes, minimum=256),
        max_headers=table.integer("max_headers", d.max_headers),
        max_connections=table.integer("max_connections", d.max_connections),
        send_timeout=table.number("send_timeout", d.send_timeout, minimum=0.01),
        search_workers=table.integer("search_workers", d.search_workers),
        search_queue=table.integer("search_queue", d.search_queue, minimum=0),
        search_budget=table.number("search_budget", d.search_budget, minimum=0.01),
        shutdown_grace=table.number("shutdown_grace", d.shutdown_grace, minimum=0),
    )


def _header_value(table: _Table, name: str) -> str | None:
    """A setting sent as an HTTP header's value: printable ASCII on one line."""
    value = table.optional_string(name)
    if value is not None and not (value.isascii() and value.isprintable()):
        raise table.fail(
            name, f"must be printable ASCII on one line (it is sent as a header), not {value!r}"
        )
    return value


def _fetch(root: _Table) -> FetchSettings:
    table = root.table("fetch")
    defaults = FetchSettings()
    table.check_keys(
        (
            "connect_timeout",
            "read_timeout",
            "deadline",
            "max_body_mb",
            "max_decoded_mb",
            "workers",
            "parse_timeout",
            "parse_memory_mb",
            "user_agent",
            "max_entries_per_feed",
        )
    )
    return FetchSettings(
        connect_timeout=table.number("connect_timeout", defaults.connect_timeout),
        read_timeout=table.number("read_timeout", defaults.read_timeout),
        deadline=table.number("deadline", defaults.deadline),
        max_body_mb=table.integer("max_body_mb", defaults.max_body_mb, maximum=MAX_MEGABYTES),
        max_decoded_mb=table.integer(
            "max_decoded_mb", defaults.max_decoded_mb, maximum=MAX_MEGABYTES
        ),
        workers=table.integer("workers", defaults.workers, maximum=256),
        parse_timeout=table.number("parse_timeout", defaults.parse_timeout),
        parse_memory_mb=table.integer(
            "parse_memory_mb", defaults.parse_memory_mb, minimum=128, maximum=MAX_MEGABYTES
        ),
        user_agent=_header_value(table, "user_agent"),
        max_entries_per_feed=table.integer(
            "max_entries_per_feed", defaults.max_entries_per_feed, maximum=1_000_000
        ),
    )


SOURCE_KINDS = (*LAYOUT_NAMES, "feed")


# C0 and C1 controls and DEL: a line feed breaks a log line in two, an escape sequence
# rewrites the terminal that shows it.
# What a source's name may not hold: control characters, and the bidirectional
# overrides, which reorder the characters of the rest of a terminal's line (found by
# review: "\u202e" in an imported feed's title turned every line said of it). (Not the
# embeddings and isolates a right-to-left name may hold, which an earlier version wrote.)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202d\u202e]")
# A name that reads as a source's key ("sources[1]"): commands take either.
KEY_LIKE = re.compile(r"sources\[\d+\]")


def _source(table: _Table, base: Path) -> SourceConfig:
    table.check_keys(
        (
            "name",
            "path",
            "url",
            "kind",
            "captured",
            "interval_minutes",
            "page_url",
            "topics",
            "enabled",
        )
    )
    enabled = table.data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise table.fail("enabled", f"must be true or false, not {enabled!r}")
    if ("path" in table.data) == ("url" in table.data):
        raise table.fail(
            None, "give either path (a file) or url (a live feed), not both or neither"
        )
    path = url = None
    path_setting = "path"
    if "path" in table.data:
        path = base / table.string("path")
    else:
        url = table.string("url")
        parts = _split(table, "url", url)
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise table.fail("url", f"a file: URL names a file on this machine, not {url!r}")
            # As Path.as_uri and browsers write it (%20 for a space); relative to the
            # config's folder, as a path is.
            path, url, path_setting = base / unquote(parts.path), None, "url"
        elif parts.scheme not in ("http", "https") or not parts.netloc:
            raise table.fail("url", f"must be an http(s) or file: URL, not {url!r}")
    kind = table.optional_string("kind")
    if kind is not None and kind not in SOURCE_KINDS:
        raise table.fail(
            "kind", f"unknown kind {kind!r} (expected one of: {', '.join(SOURCE_KINDS)})"
        )
    captured = None
    if "captured" in table.data:
        try:
            captured = parse_captured(table.data["captured"])
        except ValueError as error:
            raise table.fail("captured", str(error)) from error
    # "url" already means "fetch this"; where a saved page came from is its own key.
    page_url = table.optional_string("page_url")
    if page_url is not None:
        parts = _split(table, "page_url", page_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise table.fail("page_url", f"must be an absolute http(s) URL, not {page_url!r}")
        if url is not None:
            raise table.fail(
                "page_url", "is for a saved file (path); a live feed's items carry their own links"
            )
    if "name" in table.data:
        name = table.string("name")
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            # A store indexes every story's sources and leases by name: PostgreSQL's
            # index takes at most 2,704 bytes (found by review: every run failed).
            raise table.fail(
                "name",
                f"is {len(name.encode('utf-8')):,} bytes long, over the {MAX_NAME_BYTES} a "
                "source's name may be; give a shorter one",
            )
    else:
        name = default_name(table.string("url" if "url" in table.data else "path"))
    if control := _CONTROL.search(name):
        # Every line a run or `sources list` says of the source starts with its name.
        raise table.fail(
            "name" if "name" in table.data else ("url" if "url" in table.data else "path"),
            f"holds a control character ({control[0]!r}); a source's name is one line of "
            "text (it starts every line said of the source)",
        )
    if KEY_LIKE.fullmatch(name.strip()):
        raise table.fail(
            "name",
            f"{name.strip()!r} reads as a source's key (commands take a name or a key); "
            "choose another name",
        )
    return SourceConfig(
        name=name,
        key=table.key,
        path=path,
        url=url,
        kind=kind,
        captured=captured,
        interval_minutes=table.number("interval_minutes", 0, minimum=0.01)
        if "interval_minutes" in table.data
        else None,
        page_url=page_url,
        topics=table.strings("topics"),
        enabled=enabled,
        path_setting=path_setting,
    )


# The longest name a source may have, in UTF-8 bytes (see _source), and the length an
# address or a path that names a source is cut to when it is longer.
MAX_NAME_BYTES = 500
_NAME_CUT = 200


def default_name(location: str) -> str:
    """A source's name when the config gives none: its address or path, or, when that is
    longer than a name may be, its first 200 bytes (whole characters) and a digest of
    the whole (the same every time, and another for another address)."""
    encoded = location.encode("utf-8")
    if len(encoded) <= MAX_NAME_BYTES:
        return location
    import hashlib

    tail = hashlib.blake2b(encoded, digest_size=4).hexdigest()
    head = encoded[:_NAME_CUT].decode("utf-8", "ignore")  # (bytes: at most 200 of them)
    return f"{head}… ({tail})"


def _split(table: _Table, key: str, url: str) -> SplitResult:
    """``url``'s parts; a URL Python cannot split ("http://[::1/feed") is the config's
    mistake, named by its key."""
    try:
        return urlsplit(url)
    except ValueError as error:
        raise table.fail(key, f"{url!r} is not a URL ({error})") from error


# A story's text with no term in it: a pattern that finds nothing in it, and finds it
# here, finds it in every story.
ORDINARY_TEXT = "Allies meet in Brussels."


def _rule(
    table: _Table, key: str, names: tuple[str, str, str], *, required: bool
) -> RuleConfig | None:
    """The rule made of the ``terms``/``patterns``/``fields`` keys named by ``names``."""
    terms_key, patterns_key, fields_key = names
    patterns = table.strings(patterns_key)
    for index, pattern in enumerate(patterns):
        try:
            compiled = compile_pattern(pattern)
        except ValueError as error:
            raise table.fail(
                f"{patterns_key}[{index + 1}]", f"invalid regular expression: {error}"
            ) from error
        # "nuclear|deterrence|": the empty last alternative is found in every text, also
        # where an earlier one is found first ("Allies|"). (An anchored "^\s*$" matches
        # empty text too, but not every story: it stays.)
        if any(not found.group() for found in compiled.finditer(ORDINARY_TEXT)):
            raise table.fail(
                f"{patterns_key}[{index + 1}]",
                f"{pattern!r} matches empty text, so it would match every story; "
                "remove the empty alternative (a '|' at an end or doubled) or the optional part",
            )
    fields = table.strings(fields_key, DEFAULT_FIELDS)
    if not fields:
        raise table.fail(fields_key, "must name at least one field")
    for field in fields:
        if field not in TOPIC_FIELDS:
            raise table.fail(
                fields_key, f"unknown field {field!r} (expected: {', '.join(TOPIC_FIELDS)})"
            )
    terms = table.strings(terms_key)
    for index, term in enumerate(terms):
        if not term.split():  # no word to look for: found everywhere
            raise table.fail(f"{terms_key}[{index + 1}]", "has no word in it, only spaces")
    if not terms and not patterns:
        if required:
            raise table.fail(None, "a rule needs terms or patterns to match")
        return None
    return RuleConfig(key=key, terms=terms, patterns=patterns, fields=fields)


def _topic(table: _Table) -> TopicConfig:
    table.check_keys(
        (
            "slug",
            "title",
            "description",
            "terms",
            "patterns",
            "fields",
            "rules",
            "exclude",
            "exclude_patterns",
            "exclude_fields",
        )
    )
    slug = table.string("slug")
    if not SLUG.match(slug) or slug in RESERVED_SLUGS:
        raise table.fail(
            "slug",
            f"{slug!r} cannot name a feed: use lowercase letters, digits and hyphens "
            f"(and not {', '.join(sorted(RESERVED_SLUGS))})",
        )
    rules: list[RuleConfig] = []
    own = _rule(table, table.key, ("terms", "patterns", "fields"), required=False)
    if own is not None:
        rules.append(own)
    for sub in table.tables("rules"):
        sub.check_keys(("terms", "patterns", "fields"))
        rule = _rule(sub, sub.key, ("terms", "patterns", "fields"), required=True)
        assert rule is not None
        rules.append(rule)
    if not rules:
        raise table.fail(None, "a topic needs terms or patterns to match (or [[...rules]])")
    exclude = _rule(
        table,
        f"{table.key}.exclude",
        ("exclude", "exclude_patterns", "exclude_fields"),
        required=False,
    )
    return TopicConfig(
        slug=slug,
        key=table.key,
        title=table.string("title", slug),
        description=table.string("description", f"News about {slug}"),
        rules=tuple(rules),
        exclude=exclude,
    )


MAX_CONFIG_BYTES = 16 << 20  # far beyond any config, even of thousands of sources


def read_config(path: Path) -> bytes:
    """The bytes of the config file at ``path``; raises ConfigError as load_config does."""
    from aggregator.localfile import NotAFile, read_regular

    file = str(path)
    try:
        # A regular file only: a FIFO would be waited on for ever, /dev/zero never end.
        return read_regular(path, MAX_CONFIG_BYTES)
    except FileNotFoundError as error:
        raise ConfigError(
            file, "no such file; pass --config PATH or run where config.toml is"
        ) from error
    except NotAFile as error:
        raise ConfigError(file, f"is {error.what}, not a file; pass --config PATH") from error
    except OSError as error:
        raise ConfigError(file, f"cannot read: {error}") from error


def load_config(path: Path, raw: bytes | None = None) -> Config:
    """Read and check ``path`` (``raw``: its bytes, read before); raises ConfigError
    naming the key at fault."""
    file = str(path)
    if raw is None:
        raw = read_config(path)
    try:
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(file, f"over {MAX_CONFIG_BYTES >> 20} MB: not a config file")
        # utf-8-sig: Windows Notepad starts a UTF-8 file with a byte-order mark.
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ConfigError(
            f"{file}:{line}", "not UTF-8 text (TOML files are); save it as UTF-8"
        ) from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(file, f"not valid TOML: {error}") from error
    root = _Table(file, "", data)
    root.check_keys(("feeds", "store", "fetch", "schedule", "serve", "sources", "topics"))
    base = path.resolve().parent
    sources = tuple(_source(table, base) for table in root.tables("sources"))
    topics = tuple(_topic(table) for table in root.tables("topics"))
    # A feed read by two sources would be read twice a run, and its answers' validators
    # and item digests (kept by URL) would be each other's: one of them is a mistake.
    for items, attribute, what in (
        (sources, "name", "source name"),
        (sources, "url", "source url"),
        (topics, "slug", "topic slug"),
    ):
        seen: dict[str, str] = {}
        for item in items:
            value = getattr(item, attribute)
            if value is None:
                continue
            if value in seen:
                raise ConfigError(
                    f"{file}: {item.key}.{attribute}",
                    f"{what} {value!r} is already used by {seen[value]}; keep one of them",
                )
            seen[value] = item.key
    # So is a file read by two sources, however its path is spelled ("a.xml", "./a.xml",
    # "sub/../a.xml"): each would take the other's stories (found by review).
    files: dict[Path, str] = {}
    for source in sources:
        if source.path is None:
            continue
        same = source.path.resolve()
        if same in files:
            raise ConfigError(
                f"{file}: {source.key}.{source.path_setting}",
                f"source file {str(source.path)!r} is already read by {files[same]}; keep one "
                "of them",
            )
        files[same] = source.key
    slugs = [topic.slug for topic in topics]
    for source in sources:
        for index, slug in enumerate(source.topics, start=1):
            if slug not in slugs:
                raise ConfigError(
                    f"{file}: {source.key}.topics[{index}]",
                    f"no topic {slug!r} (expected one of: {', '.join(slugs) or 'no topics'})",
                )
    return Config(
        path=path,
        feeds=_feeds(root, base, serve := _serve(root)),
        store=_store(root, base),
        fetch=_fetch(root),
        schedule=_schedule(root),
        serve=serve,
        sources=tuple(source for source in sources if source.enabled),
        topics=topics,
        disabled_sources=tuple(source for source in sources if not source.enabled),
    )
