from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from aggregator.dedupe import matches
from aggregator.dedupe import merge as merge_in
from aggregator.model import Enclosure, Entry, Precision, Provenance, Published, SourceEntry

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BRUSSELS = ZoneInfo("Europe/Brussels")


def merge(items: list[SourceEntry], *, authority: str, now: datetime) -> list[Entry]:
    return merge_in(items, authority=authority, zone=BRUSSELS, now=now)


def item(
    title: str, day: date | None, summary: str = "", source: str = "a", link: str | None = None
) -> SourceEntry:
    return SourceEntry(
        title=title,
        published=None if day is None else Published.on_day(day),
        summary=summary,
        provenance=Provenance(source, f"{source}.txt", 1),
        link=link,
    )


def test_same_story_from_two_sources_is_one_entry_that_remembers_both() -> None:
    stories = merge(
        [
            item("NATO’s new Board meets", date(2023, 12, 12), "short", "a"),
            item("Video: NATO's new  board meets", date(2023, 12, 12), "a longer summary", "b"),
        ],
        authority="example.org,2026",
        now=NOW,
    )
    assert len(stories) == 1
    assert [p.source for p in stories[0].sources] == ["a", "b"]
    assert stories[0].summary == "a longer summary"
    assert stories[0].title == "NATO’s new Board meets"


def test_other_day_or_undated_is_another_story() -> None:
    stories = merge(
        [
            item("Board meets", date(2023, 12, 12)),
            item("Board meets", date(2024, 12, 12)),
            item("Board meets", None),
        ],
        authority="example.org,2026",
        now=NOW,
    )
    assert len(stories) == 3
    assert len({s.id for s in stories}) == 3


def test_merge_keeps_link_and_the_most_precise_date() -> None:
    instant = datetime(2023, 12, 12, 9, 30, tzinfo=UTC)
    precise = SourceEntry(
        title="Board meets",
        published=Published.at(instant),
        summary="",
        provenance=Provenance("feed", "https://example.org/feed", None),
        link="https://example.org/news/1",
    )
    [story] = merge([item("Board meets", date(2023, 12, 12)), precise], authority="x,2026", now=NOW)
    assert story.published is not None
    assert story.published.precision is Precision.INSTANT
    assert story.link == "https://example.org/news/1"


def test_id_does_not_depend_on_source_or_run() -> None:
    first = merge(
        [item("Board meets", date(2023, 12, 12), source="a")], authority="x,2026", now=NOW
    )
    later = merge(
        [item("Board meets", date(2023, 12, 12), source="b")],
        authority="x,2026",
        now=datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert first[0].id == later[0].id
    assert first[0].id.startswith("tag:x,2026:entry:")


def day(y: int, m: int, d: int) -> Published:
    return Published.on_day(date(y, m, d))


def at(text: str) -> Published:
    return Published.at(datetime.fromisoformat(text))


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        pytest.param(day(2023, 10, 12), day(2023, 10, 12), True, id="same day"),
        pytest.param(
            day(2023, 10, 12), at("2023-10-12T09:00:00+02:00"), True, id="day and instant"
        ),
        pytest.param(
            day(2023, 10, 12),
            at("2023-10-11T23:30:00+00:00"),
            True,
            id="instant is that day in Brussels",
        ),
        pytest.param(day(2023, 10, 12), day(2023, 10, 13), True, id="one day apart, day precision"),
        pytest.param(day(2023, 10, 12), day(2023, 10, 14), False, id="two days apart"),
        pytest.param(
            at("2023-10-12T09:00:00+02:00"),
            at("2023-10-13T09:00:00+02:00"),
            False,
            id="two instants a day apart",
        ),
        pytest.param(
            at("2023-10-12T23:30:00+02:00"),
            at("2023-10-12T21:40:00+00:00"),
            True,
            id="instants same Brussels day",
        ),
        pytest.param(
            at("2023-10-12T08:00:00+02:00"),
            at("2023-10-12T16:00:00+02:00"),
            True,
            id="instants hours apart on one day (of two sources: close_enough)",
        ),
        pytest.param(None, None, True, id="both undated"),
        pytest.param(None, day(2023, 10, 12), False, id="undated and dated"),
    ],
)
def test_when_dates_allow_a_match(a: Published | None, b: Published | None, same: bool) -> None:
    assert matches(a, b, BRUSSELS) is same
    assert matches(b, a, BRUSSELS) is same


def test_day_of_an_instant_is_taken_in_the_news_time_zone() -> None:
    late = SourceEntry(
        "Board meets", at("2023-12-12T23:30:00+00:00"), "", Provenance("feed", "https://e.org/f")
    )
    [story] = merge([item("Board meets", date(2023, 12, 13)), late], authority="x,2026", now=NOW)
    assert story.published == late.published
    assert len(story.sources) == 2


def test_merge_keeps_every_distinct_enclosure_first_source_first() -> None:
    audio = Enclosure("https://example.org/a.mp3", "audio/mpeg", 10)
    video = Enclosure("https://example.org/a.mp4", "video/mp4")
    thumbnail = Enclosure("https://example.org/a.jpg", thumbnail=True)
    day = Published.on_day(date(2023, 12, 12))
    first = SourceEntry(
        title="Board meets",
        published=day,
        summary="",
        provenance=Provenance("a", "https://a.example/feed"),
        enclosures=(audio, thumbnail),
    )
    second = SourceEntry(
        title="Board meets",
        published=day,
        summary="",
        provenance=Provenance("b", "https://b.example/feed"),
        # The same audio URL told differently is not kept twice: the first telling wins.
        enclosures=(video, Enclosure("https://example.org/a.mp3", "audio/ogg"), audio),
    )
    [story] = merge([first, second], authority="x,2026", now=NOW)
    assert story.enclosures == (audio, thumbnail, video)
    [story] = merge([second, first], authority="x,2026", now=NOW)
    assert story.enclosures == (
        video,
        Enclosure("https://example.org/a.mp3", "audio/ogg"),
        thumbnail,
    )


def test_an_item_of_a_known_time_joins_the_story_of_the_closest_known_time() -> None:
    """Of the day's stories of its title, an item of a known time joins the one of the
    closest time; a story dated by day alone comes after those of a known time (found by
    review: an 08:05 item took a day-only story over the one of 08:00)."""
    from dataclasses import replace

    from aggregator.dedupe import choose, new_entry

    def story(published: Published, source: str) -> Entry:
        told = replace(item("Press briefing", None, source=source), published=published)
        return new_entry(told, authority="x,2026", zone=BRUSSELS, now=NOW, distinct=False)

    morning = story(at("2026-11-10T08:00:00+01:00"), "hq")
    afternoon = story(at("2026-11-10T16:00:00+01:00"), "hq")
    some_time = story(day(2026, 11, 10), "daily")
    for when, expected in (
        ("2026-11-10T08:05:00+01:00", morning),
        ("2026-11-10T15:00:00+01:00", afternoon),
    ):
        told = replace(item("Press briefing", None, source="wire"), published=at(when))
        assert choose([some_time, afternoon, morning], told, BRUSSELS) is expected, when
    # An item of the day alone: no story is closer; the first seen.
    by_day = replace(item("Press briefing", None, source="wire"), published=day(2026, 11, 10))
    assert choose([some_time, afternoon, morning], by_day, BRUSSELS) is some_time


def test_an_edit_keeps_what_it_leaves_out() -> None:
    """dedupe.retold: a source's edit of the one item a story was told with replaces its
    telling, but what the edit leaves out (media, categories, a date, a summary) stays."""
    from dataclasses import replace

    from aggregator.dedupe import new_entry, retold

    audio = Enclosure("https://e.org/ep1.mp3", "audio/mpeg", 1000)
    first = replace(
        item("Episode 1", date(2026, 11, 10), "First words."),
        categories=("podcast",),
        enclosures=(audio,),
    )
    story = new_entry(first, authority="x,2026", zone=BRUSSELS, now=NOW)
    edit = replace(item("Episode 1", None, "Better words."))
    after = retold(story, edit, NOW)
    assert after.summary == "Better words."
    assert after.enclosures == (audio,) and after.categories == ("podcast",)
    assert after.published == story.published and after.id == story.id
