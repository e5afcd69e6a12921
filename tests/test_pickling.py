"""The entry model's classes pickle by their fields (aggregator.model.pickled_by_fields):
what comes back equals what went, through pickle and copy alike."""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from aggregator.model import (
    Enclosure,
    Entry,
    Provenance,
    Published,
    SourceEntry,
    pickled_by_fields,
)

WHEN = datetime(2026, 11, 30, 9, 15, tzinfo=timezone(timedelta(hours=2)))


def stories() -> list[object]:
    source = Provenance("Ministry", "https://news.example/feed.xml", 12, "https://news.example/")
    media = Enclosure("https://news.example/a.mp3", "audio/mpeg", 1234, thumbnail=False)
    return [
        Published.on_day(date(2026, 11, 30)),
        Published.at(WHEN),
        source,
        media,
        SourceEntry(
            "Talks in Brussels",
            Published.at(WHEN),
            "Plain text",
            source,
            link="https://news.example/1",
            guid="urn:1",
            categories=("EU",),
            content_html="<p>Text</p>",
            enclosures=(media,),
        ),
        Entry(
            id="0f" * 20,
            title="Talks in Brussels",
            published=None,
            summary="",
            sources=(source,),
            first_seen=WHEN,
            last_seen=WHEN.astimezone(UTC),
            topics=("eu",),
            enclosures=(media,),
        ),
    ]


@pytest.mark.parametrize("value", stories(), ids=lambda v: type(v).__name__)
def test_a_story_comes_back_equal(value: object) -> None:
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(value, protocol))
        assert back == value and type(back) is type(value)
    assert copy.copy(value) == value
    assert copy.deepcopy(value) == value


def test_a_story_is_checked_again_when_unpickled() -> None:
    """Rebuilt by its constructor: a pickled date with a naive time is refused, as
    made directly it would be."""
    bad = object.__new__(Published)
    object.__setattr__(bad, "day", date(2026, 11, 30))
    object.__setattr__(bad, "instant", WHEN.replace(tzinfo=None))  # naive on purpose
    with pytest.raises(ValueError, match="naive datetime"):
        pickle.loads(pickle.dumps(bad))


def test_a_class_whose_fields_are_not_all_given_in_order_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Later\.made is not given"):

        @pickled_by_fields
        @dataclass(frozen=True)
        class Later:
            name: str
            made: int = field(default=0, init=False)

    with pytest.raises(TypeError, match=r"Named\.name is not given"):

        @pickled_by_fields
        @dataclass(frozen=True, kw_only=True)
        class Named:
            name: str
