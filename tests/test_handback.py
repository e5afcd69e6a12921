"""A parsed document crosses from the parser workers as tuples and comes back equal."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.live.document import FeedDocument, pack, unpack
from aggregator.live.feedparse import parse_feed
from aggregator.live.jsonfeed import parse_json_feed
from aggregator.model import Enclosure, Provenance, Published, SourceEntry

FEEDS = Path(__file__).parent / "data" / "feeds"


def fields(document: FeedDocument) -> tuple[object, ...]:
    """Everything a document holds, the fields equality leaves out too, and every
    date's offset (equal instants at other offsets compare equal)."""
    offsets = [
        (p.instant.utcoffset() if p and p.instant else None)
        for e in document.entries
        for p in (e.published, e.updated)
    ]
    return (document, document.digests, document.unchanged, offsets)


def round_trip(document: FeedDocument) -> FeedDocument:
    return unpack(pickle.loads(pickle.dumps(pack(document), protocol=pickle.HIGHEST_PROTOCOL)))


EVENING = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
HAND_MADE = FeedDocument(
    title="A feed",
    entries=(
        SourceEntry(
            title="Every field",
            published=Published.at(EVENING),
            updated=Published.on_day(date(2026, 3, 2)),
            summary="text",
            provenance=Provenance("feed", "https://e.org/f.xml", 7, "https://e.org/page"),
            link="https://e.org/1",
            author="Someone",
            guid="g-1",
            categories=("a", "b"),
            content_html="<p>text</p>",
            enclosures=(
                Enclosure("https://e.org/a.mp3", "audio/mpeg", 123),
                Enclosure("https://e.org/t.jpg", None, None, True),
            ),
        ),
        SourceEntry(
            title="Nothing else", published=None, summary="", provenance=Provenance("feed", "f")
        ),
        SourceEntry(
            title="A day",
            published=Published.on_day(date(2026, 3, 1)),
            summary="",
            provenance=Provenance("feed", "f"),
            updated=Published.at(datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ),
    ),
    warnings=("entry 4 skipped: no title and no text",),
    ttl_minutes=60,
    digests=("d1", "d2", "d3"),
    unchanged=2,
)


def test_a_hand_made_document_comes_back_equal() -> None:
    assert fields(round_trip(HAND_MADE)) == fields(HAND_MADE)


# The corpus documents that parse (those with an expected result).
DOCUMENTS = sorted(
    p.name
    for p in FEEDS.iterdir()
    if ".expected." not in p.name
    and ".options." not in p.name
    and (FEEDS / f"{p.name.split('.')[0]}.expected.json").exists()
)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_corpus_document_comes_back_equal(name: str) -> None:
    data = (FEEDS / name).read_bytes()
    url = f"https://feeds.example/{name}"
    if name.endswith(".json"):
        document = parse_json_feed(data, url=url)
    else:
        document = parse_feed(data, url=url)
    assert document.entries
    assert fields(round_trip(document)) == fields(document)
