"""The entry model: what a source adapter read from one source.

Every adapter, whether it reads a saved page or a live feed, returns
:class:`SourceEntry` values. They are frozen and hold only timezone-aware
datetimes. A date keeps its precision: an exact instant, or a calendar day
(for pages that print only a day). An item whose source gives no date has
``published = None``; no adapter invents a date or a time of day.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

T = TypeVar("T")

# The newest entries read from one feed document by default ([fetch] max_entries_per_feed's
# default; aggregator.live.newest picks them). Here, where every reader finds it without
# importing the parsers.
MAX_ENTRIES = 1000


def pickled_by_fields(cls: type[T]) -> type[T]:
    """Have a dataclass pickled as its class and its fields' values, rebuilt by its
    constructor (which checks them again). Pickle's own way for a dataclass with slots
    looks its fields up for every object, and took twice as long each way for the
    stories a run hands its workers to render (a large publish)."""
    names = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not field.init or field.kw_only:
            raise TypeError(f"{cls.__name__}.{field.name} is not given to the constructor in order")
        names.append(field.name)
    values: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*names)

    def reduce(self: T) -> tuple[type[T], tuple[Any, ...]]:
        return cls, values(self)

    setattr(cls, "__reduce__", reduce)  # noqa: B010 (mypy refuses assigning a method)
    return cls


def set_through_slots(cls: type[T]) -> type[T]:
    """Give a frozen dataclass with slots an ``__init__`` that sets each field through its
    slot (the field's member descriptor), not through ``object.__setattr__``, the
    dataclass's own way past its frozen ``__setattr__``: 2.2 µs for a story's 13 fields
    instead of 4.9. A run makes several of these for each of its 10,000 stories, in the
    workers and in the run's process. The parameters, their defaults and
    ``__post_init__`` are the dataclass's; the object stays frozen."""
    params: list[str] = []
    lines: list[str] = []
    namespace: dict[str, Any] = {}  # what the constructor's code is given: its closure
    for number, field in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        slot: Any = vars(cls).get(field.name)
        if (
            not field.init
            or field.kw_only
            or field.default_factory is not dataclasses.MISSING
            or not hasattr(slot, "__set__")
        ):
            raise TypeError(f"{cls.__name__}.{field.name} is not a slot given in order")
        # (Names no field has: a field may be called "self", as in a dataclass.)
        namespace[f"__set_{number}__"] = slot.__set__
        if field.default is dataclasses.MISSING:
            params.append(field.name)
        else:
            namespace[f"__default_{number}__"] = field.default
            params.append(f"{field.name}=__default_{number}__")
        lines.append(f"        __set_{number}__(__made__, {field.name})")
    if hasattr(cls, "__post_init__"):
        lines.append("        __made__.__post_init__()")
    # Made in the class's module, as dataclasses makes its own (its annotations are read
    # there), and given the slots and defaults by a closure (quicker than globals).
    source = (
        f"def make({', '.join(namespace)}):\n"
        f"    def __init__(__made__, {', '.join(params)}):\n" + "\n".join(lines) + "\n"
        "    return __init__\n"
    )
    made_here: dict[str, Any] = {}
    exec(source, sys.modules[cls.__module__].__dict__, made_here)
    init = made_here["make"](**namespace)
    made: Any = cls.__init__
    init.__module__ = cls.__module__
    init.__qualname__ = made.__qualname__
    init.__annotations__ = made.__annotations__
    init.__doc__ = made.__doc__
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses assigning a method)
    return cls


class Precision(enum.Enum):
    """How much of a publication date the source actually gave."""

    INSTANT = "instant"
    DAY = "day"


@pickled_by_fields
@set_through_slots
@dataclass(frozen=True, slots=True)
class Published:
    """A publication date: a calendar day, or an exact instant.

    For an instant, ``day`` is its calendar day at the offset the source gave.
    """

    day: date
    instant: datetime | None = None

    def __post_init__(self) -> None:
        if self.instant is not None:
            if self.instant.tzinfo is None or self.instant.utcoffset() is None:
                raise ValueError(f"naive datetime {self.instant!r}: give a time zone")
            if self.instant.date() != self.day:
                raise ValueError(f"day {self.day} does not match instant {self.instant}")

    @classmethod
    def on_day(cls, day: date) -> Published:
        return cls(day=day)

    @classmethod
    def at(cls, instant: datetime) -> Published:
        return cls(day=instant.date(), instant=instant)

    @property
    def precision(self) -> Precision:
        return Precision.DAY if self.instant is None else Precision.INSTANT

    def isoformat(self) -> str:
        """``YYYY-MM-DD`` for a day, a full RFC 3339 timestamp for an instant."""
        return self.day.isoformat() if self.instant is None else self.instant.isoformat()


@pickled_by_fields
@set_through_slots
@dataclass(frozen=True, slots=True)
class Provenance:
    """Where an entry was read: the source's name, its file or URL, and a line.

    ``page_url`` is the web page a saved snapshot was saved from (the source's
    ``page_url`` in the config), so a reader can follow the story to it; None for
    live feeds (their ``location`` is already a URL) and for snapshots that do not
    say.
    """

    source: str
    location: str
    line: int | None = None
    page_url: str | None = None

    def __str__(self) -> str:
        return self.location if self.line is None else f"{self.location}:{self.line}"


@pickled_by_fields
@set_through_slots
@dataclass(frozen=True, slots=True)
class Enclosure:
    """A media file that comes with an item: audio, video, a document or an image.

    ``url`` is an absolute http(s) URL. ``type`` (a MIME type such as ``audio/mpeg``)
    and ``length`` (in bytes, never negative) are None when the source did not give
    them: nothing is guessed here. ``thumbnail`` marks a preview image (Media RSS
    ``media:thumbnail``) rather than the media itself.
    """

    url: str
    type: str | None = None
    length: int | None = None
    thumbnail: bool = False

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"enclosure URL {self.url!r} is not http(s)")
        if self.length is not None and self.length < 0:
            raise ValueError(f"negative enclosure length {self.length}")


@pickled_by_fields
@set_through_slots
@dataclass(frozen=True, slots=True)
class SourceEntry:
    """One news item as a source presented it.

    ``title`` and ``summary`` are plain text; ``content_html`` is sanitised HTML
    when the source gave HTML (live feeds). ``guid`` is the source's own id for
    the item, if it has one; ``link`` is an absolute http(s) URL or None.
    ``enclosures`` are its media files, in the order the source gave them.
    """

    title: str
    published: Published | None
    summary: str
    provenance: Provenance
    link: str | None = None
    author: str | None = None
    guid: str | None = None
    updated: Published | None = None
    categories: tuple[str, ...] = ()
    content_html: str | None = None
    enclosures: tuple[Enclosure, ...] = ()

    @property
    def source(self) -> str:
        return self.provenance.source


@pickled_by_fields
@set_through_slots
@dataclass(frozen=True, slots=True)
class Entry:
    """One story as the aggregator keeps and republishes it.

    It may merge several :class:`SourceEntry` values that told the same story;
    ``sources`` lists where each was read. ``id`` is stable: it is derived from
    the story (title and day), not from the source or the run.
    """

    id: str
    title: str
    published: Published | None
    summary: str
    sources: tuple[Provenance, ...]
    first_seen: datetime
    last_seen: datetime
    link: str | None = None
    author: str | None = None
    topics: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    content_html: str | None = None
    enclosures: tuple[Enclosure, ...] = ()

    def __post_init__(self) -> None:
        if self.first_seen.tzinfo is None:
            raise ValueError("first_seen must be timezone-aware")

    def labelled(self, topics: tuple[str, ...]) -> Entry:
        """This entry in ``topics``. The constructor, not dataclasses.replace (three
        times slower, and every stored story is labelled again when the rules change),
        given every field in order (named, it took 3.6 µs instead of 2.4; the order is
        the fields', which tests/test_store_speed_equivalence.py checks). Itself when
        its topics are these already (it is frozen)."""
        if topics == self.topics:
            return self
        return Entry(
            self.id,
            self.title,
            self.published,
            self.summary,
            self.sources,
            self.first_seen,
            self.last_seen,
            self.link,
            self.author,
            topics,
            self.categories,
            self.content_html,
            self.enclosures,
        )
