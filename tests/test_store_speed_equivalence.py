"""The shortcuts that make storing a large run cheaper give exactly what the plain code did.

Each fast path (ASCII words by a translation table, one search for all of a rule's
terms, a story's title key computed once, a UTC instant as its own sort key, merging
by the constructor) is checked here against the straightforward computation it
replaced, over texts and dates chosen to reach its edges.
"""

from __future__ import annotations

import dataclasses
import inspect
import random
import re
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from aggregator.config import RuleConfig, TopicConfig
from aggregator.dedupe import entry_id, merge_into, new_entry
from aggregator.model import Enclosure, Entry, Provenance, Published, SourceEntry
from aggregator.render import shown_time
from aggregator.store.plan import plan_merge, sort_key, utc_iso
from aggregator.store.sql import _row
from aggregator.store.words import MAX_WORD, entry_words, words
from aggregator.text import title_key
from aggregator.topics import Rule, Topic, any_term_pattern, fields_of, term_pattern

NOW = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
BRUSSELS = ZoneInfo("Europe/Brussels")
AUTHORITY = "example.org,2026"

# What the words of ASCII text were before the translation table: re's \w runs, lower case.
_WORD = re.compile(r"\w+")


def plain_entry_words(title: str, summary: str, categories: tuple[str, ...]) -> str:
    folded = " ".join(_WORD.findall(f"{title}\n{summary}\n{' | '.join(categories)}")).lower()
    return " ".join(word for word in folded.split() if len(word) <= MAX_WORD)


def ascii_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(128)]
    pieces = ["NATO", "EU", "foo_bar", "x" * (MAX_WORD + 1), "y" * MAX_WORD, " ", "-", "\t"]
    return [
        "".join(
            rng.choice(alphabet) if rng.random() < 0.7 else rng.choice(pieces) for _ in range(n)
        )
        for n in (rng.randrange(0, 120) for _ in range(count))
    ]


def test_ascii_words_are_the_regular_expressions_words() -> None:
    for text in [*ascii_texts(2000, 1), "", "   ", "---", "A_b C9", "x" * 500]:
        assert text.isascii()
        assert entry_words(text, "", ()) == plain_entry_words(text, "", ())
        assert words(text) == " ".join(_WORD.findall(text)).lower().split()
    assert entry_words("NATO-EU's", "summit\x1ftalks", ("Défense",)) == (
        "nato eu s summit talks defense"  # (a search reads "Défense" as "Defense")
    )


def test_entry_words_leave_out_only_words_too_long() -> None:
    long = "z" * (MAX_WORD + 1)
    assert entry_words(f"a {long} b", "", ()) == "a b"
    assert entry_words("y" * MAX_WORD, "", ()) == "y" * MAX_WORD
    assert entry_words(long, "", ()) == ""


def test_a_long_word_is_found_wherever_it_is() -> None:
    """entry_words looks for a space in stretches of the text rather than measuring each
    word: a word just too long, or just short enough, at every place in texts of many
    lengths, runs of separators around it, is left out exactly when it is too long."""
    for length in (MAX_WORD - 1, MAX_WORD, MAX_WORD + 1, MAX_WORD + 2, 2 * MAX_WORD + 3):
        for before in range(0, 2 * MAX_WORD + 20, 7):
            for after in (0, 1, 99, 100, 101, 150):
                for gap in (" ", ", ", " -- "):
                    text = f"{'a' * before}{gap}{'w' * length}{gap}{'b' * after}"
                    expected = plain_entry_words(text, "", ())
                    assert entry_words(text, "", ()) == expected
                    assert entry_words("T", text, ("c",)) == plain_entry_words("T", text, ("c",))


TERM_SETS = [
    ("Ukraine", "Kyiv"),
    ("EU", "European Union", "NATO-EU"),
    ("deterrence", "nuclear"),
    ("air defence", "Russia's war"),
    ("ſ", "s"),  # re takes the long s as s in any case
    ("İstanbul", "Kelvin"),
]
TEXTS = [
    "",
    "Ukraine",
    "UKRAINE’s air defence",
    "Kyivan",
    "in Kyiv.",
    "NATO-EU cooperation",
    "European Unionist",
    "the European\u00a0 Union",
    "Russia’s war",
    "Russia's warfare",
    "nuclear_deterrence",
    "deterrence!",
    "ſ and s",
    "\u212aelvin",  # KELVIN SIGN: re takes it as k in any case
    "istanbul",
    "foo EU",
    "ukraine and KYIV",
    "défense de l'EUROPE",
    "european  union",
    "Kelvin's",
]


@pytest.mark.parametrize("terms", TERM_SETS)
def test_one_search_for_all_terms_finds_where_one_of_them_does(terms: tuple[str, ...]) -> None:
    combined = any_term_pattern(terms)
    patterns = [term_pattern(term) for term in terms]
    rng = random.Random(2)
    texts = [*TEXTS, *(" ".join(rng.sample(TEXTS, 3)) for _ in range(300))]
    for text in texts:
        assert (combined.search(text) is not None) == any(p.search(text) for p in patterns)


# Rules of one term have no combined search; the first word of "Défense" is not ASCII,
# so its rule has no substring test either.
RULE_TERMS = [*TERM_SETS, ("Ukraine",), ("European Union",), ("Défense", "EU"), ("kelvin",)]


@pytest.mark.parametrize("terms", RULE_TERMS)
def test_a_rule_finds_what_it_found_one_term_at_a_time(terms: tuple[str, ...]) -> None:
    rule = Rule.from_config(RuleConfig("topics[1]", terms, (), ("title", "summary")))
    assert (rule.any_term is not None) == (len(terms) > 1)
    assert (rule.firsts is not None) == all(term.isascii() for term in terms)

    def plain(texts: dict[str, str]) -> tuple[str, str, str] | None:
        for label, pattern in rule.checks:
            for field in rule.fields:
                if found := pattern.search(texts.get(field, "")):
                    return label, field, found.group()
        return None

    rng = random.Random(3)
    for _ in range(500):
        texts = {"title": rng.choice(TEXTS), "summary": " ".join(rng.sample(TEXTS, 2))}
        assert rule.find(texts) == plain(texts)
        assert rule.holds(texts) == (plain(texts) is not None)


# Rules of terms, of patterns and of both; exclusions; a source's hint.
TOPICS = [
    TopicConfig("ukraine", "topics[0]", "U", "", (RuleConfig("topics[0]", ("Ukraine", "Kyiv")),)),
    TopicConfig(
        "eu",
        "topics[1]",
        "E",
        "",
        (
            RuleConfig("topics[1].rules[0]", ("European Union",), (), ("title",)),
            RuleConfig("topics[1].rules[1]", (), (r"\bNATO[- ]EU\b",), ("summary",)),
        ),
        exclude=RuleConfig("topics[1]", ("Unionist", "ſ"), (r"war\w+",)),
    ),
    TopicConfig(
        "deterrence",
        "topics[2]",
        "D",
        "",
        (RuleConfig("topics[2]", ("deterrence", "Défense"), (r"nuclear_\w+",)),),
        exclude=RuleConfig("topics[2]", ("istanbul",)),
    ),
]


@pytest.mark.parametrize("config", TOPICS, ids=lambda config: config.slug)
def test_a_topic_takes_what_its_verdict_matches(config: TopicConfig) -> None:
    topic = Topic.from_config(config, sources=["hinting source"])
    rng = random.Random(4)
    for _ in range(1000):
        fields = fields_of(rng.choice(TEXTS), " ".join(rng.sample(TEXTS, 2)), rng.sample(TEXTS, 1))
        sources = rng.choice([(), ("other",), ("other", "hinting source")])
        verdict = topic.judge(fields, sources, folded=True)
        assert topic.takes(fields, sources) == verdict.matched, (fields, verdict)


ZONES = [
    UTC,
    timezone(timedelta(0)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-3)),
    ZoneInfo("Europe/London"),  # +00:00 in winter, +01:00 in summer
    BRUSSELS,
]


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_sort_keys_are_the_utc_instants_text(zone: timezone | ZoneInfo) -> None:
    for when in (
        datetime(2024, 1, 5, 23, 30, tzinfo=zone),
        datetime(2024, 7, 5, 0, 15, 1, 5, zone),
    ):
        assert utc_iso(when) == when.astimezone(UTC).isoformat()
        published = Published.at(when)
        assert sort_key(published, NOW) == shown_time(published).astimezone(UTC).isoformat()
        assert sort_key(None, when) == "0 " + when.astimezone(UTC).isoformat()
    # A day's story: its day's noon, then when it was first seen (see plan.sort_key).
    day = Published.on_day(date(2024, 3, 1))
    assert sort_key(day, NOW) == f"{shown_time(day).astimezone(UTC).isoformat()} {utc_iso(NOW)}"


def items() -> list[SourceEntry]:
    """Items reaching every branch of a merge: new titles, the same story from two
    sources, a day and an instant of one story, undated ones, non-ASCII titles, and
    every kind of date."""
    result = []
    rng = random.Random(4)
    titles = ["Board meets", "Video: Board meets", "NATO’s summit", "İstanbul talks", "Ωμέγα"]
    for n in range(400):
        zone = rng.choice(ZONES)
        instant = datetime(2024, 9, 1 + rng.randrange(3), rng.randrange(24), tzinfo=zone)
        published = rng.choice([None, Published.on_day(instant.date()), Published.at(instant)])
        source = f"s{rng.randrange(4)}"
        result.append(
            SourceEntry(
                title=rng.choice(titles) + ("" if rng.random() < 0.5 else f" {n % 37}"),
                published=published,
                summary="summary " * rng.randrange(4),
                provenance=Provenance(source, f"{source}.xml", rng.choice([None, n])),
                link=rng.choice([None, f"https://example.org/{n}"]),
                author=rng.choice([None, "A. Author"]),
                categories=tuple(rng.sample(["Defence", "Ukraine", "EU"], rng.randrange(3))),
                content_html=rng.choice([None, "<p>x</p>", "<p>longer</p>"]),
                enclosures=tuple(
                    Enclosure(f"https://example.org/{k}.mp3") for k in range(rng.randrange(3))
                ),
            )
        )
    return result


def plain_merge_into(entry: Entry, item: SourceEntry, now: datetime) -> Entry:
    """merge_into's merged fields put into ``entry`` by dataclasses.replace, as it was
    written: every other field must stay as it was."""
    merged = merge_into(entry, item, now)
    reference = dataclasses.replace(
        entry,
        published=merged.published,
        summary=merged.summary,
        sources=merged.sources,
        last_seen=merged.last_seen,
        link=merged.link,
        author=merged.author,
        categories=merged.categories,
        content_html=merged.content_html,
        enclosures=merged.enclosures,
    )
    return reference


def test_merging_keeps_every_field_it_does_not_merge() -> None:
    first, *others = items()
    entry = dataclasses.replace(
        new_entry(first, authority=AUTHORITY, zone=BRUSSELS, now=NOW), topics=("ukraine",)
    )
    for other in others:
        merged = merge_into(entry, other, NOW + timedelta(hours=1))
        assert merged == plain_merge_into(entry, other, NOW + timedelta(hours=1))
        entry = merged
    # Every field of Entry is one merge_into names: a new field would be lost otherwise.
    named = {"id", "title", "published", "summary", "sources", "first_seen", "last_seen"}
    named |= {"link", "author", "topics", "categories", "content_html", "enclosures"}
    assert {f.name for f in dataclasses.fields(Entry)} == named


def test_a_new_entrys_id_is_its_title_and_day() -> None:
    for item in items():
        entry = new_entry(item, authority=AUTHORITY, zone=BRUSSELS, now=NOW)
        day = None if item.published is None else entry_day(item.published)
        assert entry.id == entry_id(AUTHORITY, item.title, day)
        assert entry == new_entry(
            item, authority=AUTHORITY, zone=BRUSSELS, now=NOW, key=title_key(item.title)
        )


def entry_day(published: Published) -> date:
    return (
        published.day
        if published.instant is None
        else published.instant.astimezone(BRUSSELS).date()
    )


def test_a_plan_is_the_same_with_its_title_keys_given() -> None:
    batch = items()
    first = plan_merge(batch[:200], {}, authority=AUTHORITY, zone=BRUSSELS, now=NOW)
    stored: dict[str, list[Entry]] = {}
    for entry in first.inserted:
        stored.setdefault(title_key(entry.title), []).append(entry)
    later = NOW + timedelta(days=1)
    plain = plan_merge(batch, stored, authority=AUTHORITY, zone=BRUSSELS, now=later)
    keys = [title_key(item.title) for item in batch]
    given = plan_merge(batch, stored, authority=AUTHORITY, zone=BRUSSELS, now=later, keys=keys)
    assert given == plain
    assert plain.inserted and plain.changed and plain.seen  # every branch was taken
    for entry in plain.inserted:
        assert plain.title_keys[entry.id] == title_key(entry.title)
    # "Changed" is what it was: anything but when and where it was last seen differs.
    for entry in plain.changed:
        before = next(e for e in stored[title_key(entry.title)] if e.id == entry.id)
        assert (
            dataclasses.replace(entry, last_seen=before.last_seen, sources=before.sources) != before
        )


def test_rows_are_the_same_with_what_the_writer_knows_given() -> None:
    later = NOW + timedelta(days=1)
    plan = plan_merge(items(), {}, authority=AUTHORITY, zone=BRUSSELS, now=later)
    stamp = later.isoformat()
    for entry in plan.inserted:
        plain = _row(entry)
        assert _row(entry, plan.title_keys[entry.id], later, stamp) == plain
        published = entry.published
        assert plain[2] == (None if published is None else published.isoformat())
        assert plain[-2] == sort_key(published, entry.first_seen)  # (its place: _rows_of)
    old = dataclasses.replace(plan.inserted[0], first_seen=NOW)
    assert _row(old, None, later, stamp) == _row(old)
    assert _row(plan.inserted[0], None, later) == _row(plan.inserted[0])


def test_labelling_keeps_every_other_field() -> None:
    first, *others = items()
    entry = new_entry(first, authority=AUTHORITY, zone=BRUSSELS, now=NOW)
    for other in others:
        entry = merge_into(entry, other, NOW + timedelta(hours=1))
        labelled = entry.labelled(("ukraine", "deterrence"))
        assert labelled == dataclasses.replace(entry, topics=("ukraine", "deterrence"))
        assert labelled.labelled(("ukraine", "deterrence")) is labelled
        assert labelled.labelled(("deterrence",)).topics == ("deterrence",)
    # Entry.labelled gives every field of Entry, in order: a new field would be lost
    # otherwise, and two fields given in each other's place would be swapped.
    source = inspect.getsource(Entry.labelled)
    given = re.findall(r"^\s+(self\.\w+|topics),$", source, re.MULTILINE)
    assert given == [
        "topics" if f.name == "topics" else f"self.{f.name}" for f in dataclasses.fields(Entry)
    ]


def test_labelling_keeps_each_field_in_its_place() -> None:
    """Every field a value of its own, so that one given in another's place shows."""
    entry = Entry(
        id="tag:example.org,2024:entry:x",
        title="Title",
        published=Published(date(2024, 5, 1)),
        summary="Summary",
        sources=(Provenance("Source", "https://example.org/feed"),),
        first_seen=NOW,
        last_seen=NOW + timedelta(hours=2),
        link="https://example.org/link",
        author="Author",
        topics=("old",),
        categories=("category",),
        content_html="<p>Content</p>",
        enclosures=(Enclosure("https://example.org/a.mp3", "audio/mpeg", 10, None),),
    )
    assert entry.labelled(("new",)) == dataclasses.replace(entry, topics=("new",))
