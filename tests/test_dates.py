from __future__ import annotations

from datetime import date, timedelta

import pytest

from aggregator.dates import MAX_AGE, first_date_in, parse_age, parse_day

PAGE = date(2023, 10, 27)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("on Wednesday (27 September 2023) to", date(2023, 9, 27), id="in parentheses"),
        pytest.param("Brussels, 11-12 October 2023 GENERAL", date(2023, 10, 11), id="hyphen range"),
        pytest.param("met on 21–22 May 2024.", date(2024, 5, 21), id="en dash range"),
        pytest.param("From 24 to 25 October 2023, the", date(2023, 10, 24), id="to range"),
        pytest.param("On 20 and 21 October 2023, the", date(2023, 10, 20), id="and range"),
        pytest.param("from 30 September - 2 October 2023", date(2023, 9, 30), id="across months"),
        pytest.param("from 30 December - 2 January 2024", date(2023, 12, 30), id="across years"),
        pytest.param("held from 10 to 22 September.", date(2023, 9, 10), id="range without year"),
        pytest.param(
            "On Wednesday 13 December, senior", date(2023, 12, 13), id="no year, weeks ahead"
        ),
        pytest.param("the 1st of nothing; October 11, 2023", date(2023, 10, 11), id="month first"),
        pytest.param(
            "deadline 28 September 2023, meeting 11-12 October 2023",
            date(2023, 9, 28),
            id="first wins",
        ),
        pytest.param("invest 2% of GDP by 2024 with 60 aircraft", None, id="numbers only"),
        pytest.param("on 31 February 2023", None, id="impossible"),
        pytest.param("they may 4 times", None, id="may the verb"),
    ],
)
def test_first_date_in(text: str, expected: date | None) -> None:
    assert first_date_in(text, PAGE) == expected


def test_year_less_date_months_after_the_page_is_from_the_year_before() -> None:
    assert first_date_in("from 10 to 22 December", date(2024, 1, 5)) == date(2023, 12, 10)


def test_year_less_date_without_reference_is_not_a_date() -> None:
    assert first_date_in("from 10 to 22 September") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14 Jun. 2024", date(2024, 6, 14)),
        ("23 May. 2024", date(2024, 5, 23)),
        ("27 October 2023", date(2023, 10, 27)),
        ("14 Sept. 2024", date(2024, 9, 14)),
        ("27 October 2023 and more", None),
        ("32 October 2023", None),
    ],
)
def test_parse_day(text: str, expected: date | None) -> None:
    assert parse_day(text) == expected


@pytest.mark.parametrize(
    ("text", "least", "slack"),
    [
        pytest.param("2 weeks 3 days ago", timedelta(days=17), timedelta(days=1), id="two units"),
        pytest.param("1 month ago", timedelta(days=30), timedelta(weeks=1), id="one month"),
        pytest.param("2 weeks ago", timedelta(days=14), timedelta(days=1), id="weeks alone"),
        pytest.param("1 year ago", timedelta(days=365), timedelta(days=30), id="one year"),
        pytest.param(
            "3 hours 27 minutes ago", timedelta(hours=3, minutes=27), timedelta(minutes=1), id="h m"
        ),
        pytest.param(
            "9 minutes 5 seconds ago",
            timedelta(minutes=9, seconds=5),
            timedelta(seconds=1),
            id="m s",
        ),
        pytest.param(
            "1 hour 8 min ago", timedelta(hours=1, minutes=8), timedelta(minutes=1), id="min"
        ),
        pytest.param("2 Days ago", timedelta(days=2), timedelta(hours=1), id="any case"),
    ],
)
def test_parse_age(text: str, least: timedelta, slack: timedelta) -> None:
    age = parse_age(text)
    assert age is not None
    assert (age.least, age.slack) == (least, slack)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("ago", id="no number"),
        pytest.param("2 fortnights ago", id="unknown unit"),
        pytest.param("2 weeks", id="no ago"),
        pytest.param("about 2 weeks ago", id="words before"),
        # These raised OverflowError (timedelta, then the date counted back), or ValueError
        # (int() of over 4,300 digits), on any page: sniffing reads every line's age.
        pytest.param("99999999999 years ago", id="beyond timedelta"),
        pytest.param("3000 years ago", id="before year 1"),
        pytest.param("101 years ago", id="older than the oldest age"),
        pytest.param("9" * 5000 + " days ago", id="thousands of digits"),
        pytest.param("60 years " * 3 + "ago", id="too old in parts"),
    ],
)
def test_not_an_age(text: str) -> None:
    assert parse_age(text) is None


def test_oldest_age_is_an_age() -> None:
    age = parse_age("100 years ago")
    assert age is not None
    assert age.least == MAX_AGE
