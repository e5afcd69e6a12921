"""Dates as NATO pages print them: pure functions, no clock.

Three kinds of date appear in the snapshots:

* a listing date, ``14 Jun. 2024`` (see :func:`parse_day`);
* dates inside running text, ``on Wednesday (27 September 2023)``,
  ``Brussels, 11-12 October 2023``, ``from 10 to 22 September`` (see :func:`first_date_in`);
* relative ages, ``2 weeks 3 days ago`` (see :func:`parse_age`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from aggregator.model import Published

# Month names and the abbreviations NATO pages use. Capitalised on purpose: "may" the verb
# must not read as a month.
MONTHS: dict[str, int] = {}
_MONTH_NAMES = (
    "January February March April May June July August September October November December"
)
for _number, _name in enumerate(_MONTH_NAMES.split(), start=1):
    MONTHS[_name] = _number
    MONTHS[_name[:3]] = _number
MONTHS["Sept"] = 9

_MONTH = "(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d\d"
_JOIN = r"\s*(?:-|–|—|to|and|until|till)\s*"


def _compiled(pattern: str, flags: int = 0) -> Callable[[], re.Pattern[str]]:
    """A regular expression compiled when first used: the long alternations of month
    names take milliseconds each, which a run that reads no saved page need not spend."""
    return functools.cache(lambda: re.compile(pattern, flags))


# A day-first range: "11-12 October 2023", "24 to 25 October 2023",
# "30 September - 2 October 2023", "30 December 2023 - 2 January 2024".
_day_first_range = _compiled(
    rf"\b(?P<d1>{_DAY})(?:\s+(?P<m1>{_MONTH})(?:\s+(?P<y1>{_YEAR}))?)?{_JOIN}"
    rf"(?P<d2>{_DAY})\s+(?P<m2>{_MONTH})(?:,?\s+(?P<y2>{_YEAR}))?(?!\d)"
)
# A single day-first date: "27 September 2023", "14 Jun. 2024", "13 December".
_day_first = _compiled(rf"\b(?P<d1>{_DAY})\s+(?P<m1>{_MONTH})(?:,?\s+(?P<y1>{_YEAR}))?(?!\d)")
# A month-first date, as English-language wires print it: "October 11, 2023".
_month_first = _compiled(rf"\b(?P<m1>{_MONTH})\s+(?P<d1>{_DAY}),?\s+(?P<y1>{_YEAR})(?!\d)")

# A year-less date more than this far after the page's own date is taken to be from the
# year before ("from 10 to 22 December" on a page of 5 January).
_YEARLESS_LOOKAHEAD = timedelta(days=183)


def _day_number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def _month_number(text: str) -> int:
    return MONTHS[text.rstrip(".")]


def _yearless(month: int, day: int, reference: date) -> date | None:
    """A date printed without a year, placed in the year of ``reference``."""
    try:
        candidate = date(reference.year, month, day)
    except ValueError:
        return None
    if candidate - reference > _YEARLESS_LOOKAHEAD:
        try:
            candidate = date(reference.year - 1, month, day)
        except ValueError:
            return None
    return candidate


def _build(day: int, month: int, year: str | None, reference: date | None) -> date | None:
    if year is None:
        return None if reference is None else _yearless(month, day, reference)
    try:
        return date(int(year), month, day)
    except ValueError:
        return None


def _start_of(match: re.Match[str], reference: date | None) -> date | None:
    """The first day of a matched date or range."""
    groups = match.groupdict()
    month = groups.get("m1") or groups.get("m2")
    if month is None:
        return None
    year = groups.get("y1") or groups.get("y2")
    if groups.get("m1") and groups.get("y1") is None and groups.get("y2") is not None:
        # "30 December - 2 January 2024": the start is in the year before the end.
        start_month, end_month = _month_number(groups["m1"]), _month_number(groups["m2"])
        if start_month > end_month:
            year = str(int(groups["y2"]) - 1)
    return _build(_day_number(groups["d1"]), _month_number(month), year, reference)


def first_date_in(text: str, reference: date | None = None) -> date | None:
    """The first date written in ``text``; for a range, its first day.

    ``reference`` is the page's own date; it supplies the year of a date written
    without one. Without it, such dates are skipped. Impossible dates
    ("31 February 2023") are skipped too.
    """
    found: list[tuple[int, date]] = []
    for pattern in (_day_first_range(), _day_first(), _month_first()):
        for match in pattern.finditer(text):
            value = _start_of(match, reference)
            if value is not None:
                found.append((match.start(), value))
                break
    return min(found)[1] if found else None


def full_dates_in(text: str) -> list[date]:
    """Every date in ``text`` that is written with its year."""
    found = []
    for pattern in (_day_first(), _month_first()):
        for match in pattern.finditer(text):
            value = _start_of(match, None)
            if value is not None:
                found.append(value)
    return found


_whole_day = _compiled(rf"^(?P<d1>{_DAY})\s+(?P<m1>{_MONTH})\s+(?P<y1>{_YEAR})$")


def parse_day(text: str) -> date | None:
    """A line or field that is exactly one date: ``14 Jun. 2024``, ``27 October 2023``."""
    match = _whole_day().match(text.strip())
    return None if match is None else _start_of(match, None)


# Units of a relative age, largest first, with their length. NATO's site (Drupal) prints
# ages with at most two units and drops the rest, a month being 30 days and a year 365.
AGE_UNITS: tuple[tuple[str, timedelta], ...] = (
    ("year", timedelta(days=365)),
    ("month", timedelta(days=30)),
    ("week", timedelta(weeks=1)),
    ("day", timedelta(days=1)),
    ("hour", timedelta(hours=1)),
    ("min", timedelta(minutes=1)),
    ("sec", timedelta(seconds=1)),
)
_UNIT_ALIASES = {"minute": "min", "second": "sec", "hr": "hour"}
# The oldest age read as one: NATO was founded in 1949. "3000 years ago" or
# "99999999999 years ago" is not an age (it overflowed timedelta and date arithmetic).
MAX_AGE = timedelta(days=100 * 365)
_AGE_PART = r"\d+\s+(?:year|month|week|day|hour|hr|minute|min|second|sec)s?"
# "2 weeks 3 days ago", "1 month ago", "3 hours 27 minutes ago", "9 minutes 5 seconds ago"
_age_line = _compiled(rf"^(?P<parts>{_AGE_PART}(?:,?\s+{_AGE_PART})*)\s+ago$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Age:
    """A printed age: at least ``least`` old, less than ``least + slack``.

    "2 weeks 3 days" is 17 days plus less than a day; "1 month" is 30 days plus
    less than a week (a whole week would have been printed as "1 month 1 week").
    """

    least: timedelta
    slack: timedelta

    @property
    def to_the_minute(self) -> bool:
        """Precise enough to stand for an instant ("3 hours 27 minutes", not "2 days")."""
        return self.slack <= timedelta(minutes=1)

    @property
    def to_the_day(self) -> bool:
        return self.slack <= timedelta(days=1)


def parse_age(text: str) -> Age | None:
    """Read ``2 weeks 3 days ago``; None when ``text`` is not an age line, or is an age
    older than :data:`MAX_AGE`."""
    match = _age_line().match(text.strip())
    if match is None:
        return None
    seconds = 0  # an int: a timedelta of "99999999999 years" overflows
    indexes: list[int] = []
    for number, unit in re.findall(r"(\d+)\s+([a-z]+?)s?\b", match["parts"].lower()):
        unit = _UNIT_ALIASES.get(unit, unit)
        index = next(i for i, (name, _) in enumerate(AGE_UNITS) if name == unit)
        if len(number) > 9:  # more than any age; and int() refuses over 4,300 digits
            return None
        seconds += int(number) * int(AGE_UNITS[index][1].total_seconds())
        indexes.append(index)
    if seconds > MAX_AGE.total_seconds():
        return None
    total = timedelta(seconds=seconds)
    smallest = max(indexes)
    if len(indexes) > 1 or smallest + 1 == len(AGE_UNITS):
        # Two units printed: the rest is less than one of the smaller.
        slack = AGE_UNITS[smallest][1]
    else:
        # One unit printed: a whole one of the next unit would have been printed too.
        slack = AGE_UNITS[smallest + 1][1]
    return Age(least=total, slack=slack)


# Time-zone names seen in feeds: RFC 822's, and the European ones NATO's region uses
# (British, Central European in English and German, Eastern, Turkish, Moscow). Names
# that mean several zones (IST, AST) are not guessed.
ZONES: dict[str, int] = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "MEZ": 1,
    "MESZ": 2, "EET": 2, "EEST": 3, "TRT": 3, "MSK": 3,
}  # fmt: skip
_ZONE = r"(?P<zone>[A-Z]{1,4}|[+-]\d\d:?\d\d)"
# "19 Sep. 2025 12:00:00 GMT", "Fri, 19 Sep. 2025 12:00 +0200", "19 September 2025"
_lenient = _compiled(
    rf"^(?:[A-Za-z]+\.?,?\s+)?(?P<d1>{_DAY})\s+(?P<m1>{_MONTH}),?\s+(?P<y1>{_YEAR})"
    rf"(?:,?\s+(?:at\s+)?(?P<h>\d\d?)[:.](?P<mi>\d\d)(?:[:.](?P<s>\d\d))?)?\s*{_ZONE}?$"
)


# A day written month first, as English-language feeds print it: "Oct 2, 2023".
_month_first_day = _compiled(
    rf"^(?:[A-Za-z]+\.?,?\s+)?(?P<m1>{_MONTH})\s+(?P<d1>{_DAY}),?\s+(?P<y1>{_YEAR})$"
)


def _offset(zone: str | None) -> timezone | None:
    if zone is None:
        return None
    if zone in ZONES:
        return timezone(timedelta(hours=ZONES[zone]))
    match = re.fullmatch(r"([+-])(\d\d):?(\d\d)", zone)
    if match is None:
        return None
    minutes = int(match[2]) * 60 + int(match[3])
    if minutes >= 24 * 60:  # no such zone ("+2400", "+9999"): not a date we can read
        return None
    return timezone(timedelta(minutes=-minutes if match[1] == "-" else minutes))


def _instant(value: datetime) -> Published:
    # A time with no zone is taken as UTC, as RFC 822's "-0000" says.
    return Published.at(value if value.tzinfo is not None else value.replace(tzinfo=UTC))


_AFTER_TIME = re.compile(r"\d:\d\d(?::\d\d)?\s*([A-Za-z]+)\b")


def _zoned(parsed: datetime, text: str) -> Published:
    """What the email module read of an RFC 822 date (``text``), with the zone it does
    not know: it knows only RFC 822's names and gives any other without a zone, which
    read as UTC put "23:30:00 CEST" two hours late (found by review). A name of
    :data:`ZONES` is its offset; another name (not a military letter, which RFC 5322
    says to read as "-0000") leaves the day as written, without a time of day."""
    if parsed.tzinfo is not None:
        return Published.at(parsed)
    # The word after the time of day ("23:30:00 CEST (Central European Summer Time)",
    # "23:30 CEST.": found by review, read as UTC when only the last word was looked at).
    after = _AFTER_TIME.search(text)
    name = after[1].upper() if after else ""
    if name.isalpha() and len(name) > 1:
        if name in ZONES:
            return Published.at(parsed.replace(tzinfo=timezone(timedelta(hours=ZONES[name]))))
        return Published.on_day(parsed.date())
    return _instant(parsed)


# An offset after the time of day in a looser form than RFC 822's "+0200": "+2:00",
# "+02", "+2", "UTC+2", "GMT+0200" (as JavaScript's Date prints it). The email parser
# took the first for no zone and "UTC+2" for UTC (both read as UTC), and "+02" for two
# minutes (found by review: hours off, and nothing said).
_LOOSE_OFFSET = re.compile(
    r"(?<=\d:\d\d)(?P<s>:\d\d)?\s*(?:(?P<name>UTC|GMT|UT)\s*)?(?P<sign>[+-])(?P<h>\d\d?)"
    r"(?:(?P<colon>:?)(?P<m>\d\d))?(?!\d)",
    re.IGNORECASE,
)
# Longer than any date written out with a zone's name and a note in brackets.
MAX_DATE_TEXT = 200
# Hours of the day written as 24: the end of the day, the next one's first moment.
_END_OF_DAY = re.compile(r"(?<![\d:])24:00(?::00)?(?![\d:])")
# A time given as seconds since 1970 (9 or 10 digits: 1973 to 2286), or milliseconds (13).
_EPOCH = re.compile(r"[1-9]\d{8,9}|[1-9]\d{12}")
_EPOCH_RANGE = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _epoch(text: str) -> Published | None:
    """A count of seconds (or milliseconds) since 1970, when it reads as a date since
    1990 (feedparser read "1696240800" as a day in 1696)."""
    count = int(text)
    moment = datetime.fromtimestamp(count / 1000 if len(text) == 13 else count, UTC)
    earliest, latest = _EPOCH_RANGE
    return Published.at(moment) if earliest <= moment < latest else None


def _offset_written_out(text: str) -> str | None:
    """``text`` with a loose offset (:data:`_LOOSE_OFFSET`) written as RFC 822 writes
    one ("+0200"); None when it is no offset a place has (as "+2400": no date)."""
    found = _LOOSE_OFFSET.search(text)
    if found is None or not (found["name"] or found["colon"] or found["m"] is None):
        return text  # none, or RFC 822's own "+0200": read as it always was
    hours, minutes = int(found["h"]), int(found["m"] or 0)
    if hours > 14 or minutes >= 60:  # no zone is that far from UTC
        return None
    offset = f"{found['s'] or ''} {found['sign']}{hours:02d}{minutes:02d}"
    return text[: found.start()] + offset + text[found.end() :]


def parse_timestamp(text: str) -> Published | None:
    """A feed's date, keeping the offset it was written with.

    RFC 822 (RSS), RFC 3339 / ISO 8601 (Atom), and the looser forms official feeds
    publish, such as ``19 Sep. 2025 12:00:00 GMT``, ``Oct 2, 2023``, an offset written
    ``+2:00`` or ``UTC+2``, a time of ``24:00`` (the next day's first moment), or seconds
    since 1970. A date with no time of day is a day; a time with no zone is UTC. None
    when the text is not a date.
    """
    if len(text) > MAX_DATE_TEXT:  # no date is written so long (and none is read in it)
        return None
    text = " ".join(text.split())
    if not text:
        return None
    if len(_END_OF_DAY.findall(text)) == 1:  # (more than one: no date)
        start = parse_timestamp(_END_OF_DAY.sub("00:00:00", text))
        if start is None or start.instant is None:
            return start
        return Published.at(start.instant + timedelta(days=1))
    try:
        return Published.on_day(date.fromisoformat(text))
    except ValueError:
        pass
    try:
        return _instant(datetime.fromisoformat(text.replace("z", "Z")))
    except ValueError:
        pass
    if _EPOCH.fullmatch(text):
        return _epoch(text)
    written = _offset_written_out(text)
    if written is None:
        return None
    text = written
    # Loaded here: most dates are ISO 8601 or read by the feed parsers' own RFC 822
    # pattern, and email.utils (base64, charsets) is a tenth of a parser worker's start.
    from email.utils import parsedate_to_datetime

    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        pass
    else:
        return _zoned(parsed, text)
    match = _lenient().match(text) or _month_first_day().match(text)
    if match is None:
        return None
    day = _start_of(match, None)
    if day is None:
        return None
    groups = match.groupdict()
    if groups.get("h") is None:
        return Published.on_day(day) if groups.get("zone") is None else None
    zone = _offset(match["zone"]) if match["zone"] else UTC
    if zone is None:
        # A zone name not known: the day as written, not a time guessed.
        return Published.on_day(day) if match["zone"].isalpha() else None
    try:
        moment = datetime.combine(
            day, time(int(match["h"]), int(match["mi"]), int(match["s"] or 0)), tzinfo=zone
        )
    except ValueError:
        return None
    return Published.at(moment)
