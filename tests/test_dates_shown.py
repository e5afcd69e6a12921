"""Dates as feeds show them: a date in the future is not believed, and RSS dates avoid
offsets that readers misread (the W3C validator's ImplausibleDate and
ProblematicalRFC822Date; tests/test_feed_rules.py checks the written feeds)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from aggregator.model import Provenance, Published, SourceEntry
from aggregator.pipeline import plausible
from aggregator.render import looks_like_markup, rss_time

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NEPAL = timezone(timedelta(hours=5, minutes=45))


def item(published: Published | None, updated: Published | None = None) -> SourceEntry:
    return SourceEntry(
        title="Allies meet",
        published=published,
        summary="",
        provenance=Provenance("Feed", "https://example.org/feed.xml"),
        updated=updated,
    )


@pytest.mark.parametrize(
    "published",
    [
        Published.at(NOW),
        Published.at(NOW + timedelta(hours=23)),  # a clock a little ahead
        Published.on_day(date(2026, 3, 2)),  # tomorrow somewhere east of UTC
        Published.on_day(date(1972, 1, 1)),  # old stories keep their dates
        None,
    ],
)
def test_dates_up_to_a_day_ahead_are_kept(published: Published | None) -> None:
    given = item(published, published)
    assert plausible(given, NOW) is given


def test_a_date_in_the_future_is_dropped_and_said(caplog: pytest.LogCaptureFixture) -> None:
    future = Published.at(datetime(2036, 1, 1, 9, 0, tzinfo=NEPAL))
    with caplog.at_level(logging.WARNING, logger="aggregator"):
        kept = plausible(item(future, Published.on_day(date(2036, 1, 1))), NOW)
    assert kept.published is None and kept.updated is None
    assert kept.title == "Allies meet"
    assert "Feed: 'Allies meet' is dated 2036-01-01 09:00:00+05:45, in the future" in caplog.text


def test_only_a_future_update_is_dropped() -> None:
    kept = plausible(item(Published.at(NOW), Published.on_day(date(2027, 1, 1))), NOW)
    assert kept.published == Published.at(NOW) and kept.updated is None


def test_rss_times_keep_whole_and_half_hour_offsets_only() -> None:
    india = datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert rss_time(india) is india
    assert rss_time(NOW) is NOW
    nepal = datetime(2026, 3, 1, 9, 0, tzinfo=NEPAL)
    assert rss_time(nepal) == nepal and rss_time(nepal).utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "markup"),
    [
        ("AT&T and R&D", False),
        ("5 < 6 > 4", False),
        ("a <b> without its end", False),
        ("mentions <b>bold</b>", True),
        ("Tom &amp Jerry", True),
        ("&#39;quoted&#39;", True),
        ("&copy 2026", True),
    ],
)
def test_what_atom_declares_as_html(text: str, markup: bool) -> None:
    assert looks_like_markup(text) is markup
