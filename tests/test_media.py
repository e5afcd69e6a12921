"""Media carried through: enclosures and images from live feeds reach RSS, Atom and JSON Feed.

The fixture feeds (tests/data/feeds/enclosures_*.xml) hold RSS enclosures, Atom
``link rel="enclosure"``, Media RSS ``media:content`` and ``media:thumbnail``, a
``javascript:`` and a ``data:`` URL that must be dropped, a negative and a
non-numeric length, and a type that is not a MIME type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest
from lxml import etree

from aggregator.dedupe import merge
from aggregator.live import media
from aggregator.live.feedparse import parse_feed
from aggregator.live.sandbox import Sandbox
from aggregator.model import Enclosure, Entry, Provenance, Published, SourceEntry
from aggregator.render import FeedSpec, render_atom, render_json, render_rss
from aggregator.source import parse_source
from aggregator.store import Store

FEEDS = Path(__file__).parent / "data" / "feeds"
ATOM = "{http://www.w3.org/2005/Atom}"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BRUSSELS = ZoneInfo("Europe/Brussels")
SPEC = FeedSpec(
    slug="all",
    title="All",
    description="Everything",
    base_url="https://aggregator.example/feeds/",
    site_url="https://www.nato.int/",
    author="aggregator",
    id_authority="aggregator.example,2026",
)

PRESS_CONFERENCE = (
    Enclosure("https://www.nato.int/media/press-conference.mp3", "audio/mpeg", 12345678),
    # The same mp3 again as media:content (with another length) is not kept twice.
    Enclosure("https://www.nato.int/media/press-conference.mp4", "video/mp4", 98765432),
    # A relative media:thumbnail, made absolute against the feed's URL.
    Enclosure("https://feeds.example/media/press-conference.jpg", thumbnail=True),
)
HOSTILE = (
    # javascript: and data: dropped; length -5 and type "an image" left out.
    Enclosure("https://www.nato.int/media/report.pdf", "application/pdf"),
    Enclosure("https://www.nato.int/media/photo.jpg"),
)
EPISODE = (
    Enclosure("https://www.nato.int/podcasts/1.mp3", "audio/mpeg", 2048),
    Enclosure("https://www.nato.int/podcasts/1.ogg", "audio/ogg"),  # length "lots"
    Enclosure("https://www.nato.int/podcasts/1.jpg", thumbnail=True),
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=1, timeout=20) as box:
        yield box


def read(name: str, sandbox: Sandbox) -> list[SourceEntry]:
    data = (FEEDS / name).read_bytes()
    return parse_source(data, url=f"https://feeds.example/{name}", kind="feed", sandbox=sandbox)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("enclosures_rss.xml", [PRESS_CONFERENCE, HOSTILE], id="rss and media rss"),
        pytest.param("enclosures_atom.xml", [EPISODE], id="atom enclosure links"),
    ],
)
def test_enclosures_are_read_and_cleaned(
    name: str, expected: list[tuple[Enclosure, ...]], sandbox: Sandbox
) -> None:
    assert [e.enclosures for e in read(name, sandbox)] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("audio/mpeg", "audio/mpeg", id="plain"),
        pytest.param(" Audio/MPEG; charset=x ", "audio/mpeg", id="case and parameters"),
        pytest.param("image/svg+xml", "image/svg+xml", id="suffix"),
        pytest.param("an image", None, id="words"),
        pytest.param("audio", None, id="no subtype"),
        pytest.param("audio/<script>", None, id="markup"),
        pytest.param(None, None, id="missing"),
    ],
)
def test_mime_type(value: object, expected: str | None) -> None:
    assert media.mime_type(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2048", 2048, id="text"),
        pytest.param(" 0 ", 0, id="zero"),
        pytest.param(7, 7, id="int"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("lots", None, id="words"),
        pytest.param("", None, id="empty"),
        pytest.param("١٢", None, id="non-ascii digits"),
        pytest.param(True, None, id="bool"),
        pytest.param(str(2**63), None, id="too large"),
    ],
)
def test_length(value: object, expected: int | None) -> None:
    assert media.length(value) == expected


def test_enclosure_refuses_what_no_feed_may_carry() -> None:
    with pytest.raises(ValueError, match="not http"):
        Enclosure("javascript:alert(1)")
    with pytest.raises(ValueError, match="negative"):
        Enclosure("https://www.nato.int/a.mp3", length=-1)


def _entry(digest: str, enclosures: tuple[Enclosure, ...]) -> Entry:
    return Entry(
        id=f"tag:aggregator.example,2026:entry:{digest}",
        title=f"Story {digest}",
        published=Published.on_day(date(2023, 10, 12)),
        summary="A story with media.",
        sources=(Provenance("feed", "https://feeds.example/enclosures_rss.xml"),),
        first_seen=NOW,
        last_seen=NOW,
        link=f"https://www.nato.int/{digest}.htm",
        enclosures=enclosures,
    )


STORIES = (
    _entry("press", PRESS_CONFERENCE),
    _entry("hostile", HOSTILE),
    _entry("episode", EPISODE),
    _entry("thumbnail-only", (Enclosure("https://www.nato.int/t.png", thumbnail=True),)),
    _entry("none", ()),
)


def test_rss_carries_one_enclosure_per_item_chosen_the_same_way() -> None:
    parsed = feedparser.parse(render_rss(SPEC, STORIES, NOW))
    assert not parsed.bozo
    found = [[dict(e) for e in item.enclosures] for item in parsed.entries]
    assert found == [
        # The first that is not a thumbnail, with its type and length.
        [
            {
                "href": "https://www.nato.int/media/press-conference.mp3",
                "length": "12345678",
                "type": "audio/mpeg",
            }
        ],
        # RSS requires a length (0 when unknown, RSS Best Practices Profile) and a type.
        [
            {
                "href": "https://www.nato.int/media/report.pdf",
                "length": "0",
                "type": "application/pdf",
            }
        ],
        [{"href": "https://www.nato.int/podcasts/1.mp3", "length": "2048", "type": "audio/mpeg"}],
        # Only a thumbnail: that, its type read from the URL.
        [{"href": "https://www.nato.int/t.png", "length": "0", "type": "image/png"}],
        [],
    ]


def test_atom_carries_every_enclosure_with_what_is_known() -> None:
    document = render_atom(SPEC, STORIES, NOW)
    parsed = feedparser.parse(document)
    assert not parsed.bozo
    assert [[link.href for link in item.enclosures] for item in parsed.entries] == [
        [e.url for e in story.enclosures] for story in STORIES
    ]
    # Exactly the attributes that are known (feedparser would report a missing type
    # as text/html, so the document itself is read for this).
    root = etree.fromstring(document)
    found = [
        [dict(link.attrib) for link in entry.iterfind(f"{ATOM}link[@rel='enclosure']")]
        for entry in root.iterfind(f"{ATOM}entry")
    ]

    def atom(enclosure: Enclosure) -> dict[str, str]:
        link = {"rel": "enclosure", "href": enclosure.url}
        if enclosure.type:
            link["type"] = enclosure.type
        if enclosure.length is not None:
            link["length"] = str(enclosure.length)
        return link

    assert found == [[atom(e) for e in story.enclosures] for story in STORIES]


def test_json_feed_has_attachments_and_an_image() -> None:
    items = json.loads(render_json(SPEC, STORIES, NOW))["items"]
    assert [item.get("attachments") for item in items] == [
        [
            {
                "url": "https://www.nato.int/media/press-conference.mp3",
                "mime_type": "audio/mpeg",
                "size_in_bytes": 12345678,
            },
            {
                "url": "https://www.nato.int/media/press-conference.mp4",
                "mime_type": "video/mp4",
                "size_in_bytes": 98765432,
            },
        ],
        [
            {"url": "https://www.nato.int/media/report.pdf", "mime_type": "application/pdf"},
            {"url": "https://www.nato.int/media/photo.jpg", "mime_type": "image/jpeg"},
        ],
        [
            {
                "url": "https://www.nato.int/podcasts/1.mp3",
                "mime_type": "audio/mpeg",
                "size_in_bytes": 2048,
            },
            {"url": "https://www.nato.int/podcasts/1.ogg", "mime_type": "audio/ogg"},
        ],
        None,
        None,
    ]
    assert [item.get("image") for item in items] == [
        "https://feeds.example/media/press-conference.jpg",  # the thumbnail
        "https://www.nato.int/media/photo.jpg",  # no thumbnail: the first image
        "https://www.nato.int/podcasts/1.jpg",
        "https://www.nato.int/t.png",
        None,
    ]


def test_feed_to_feed_end_to_end(sandbox: Sandbox) -> None:
    """Read from the fixture feeds, merged, rendered, read back by feedparser."""
    items = read("enclosures_rss.xml", sandbox) + read("enclosures_atom.xml", sandbox)
    entries = merge(items, authority="aggregator.example,2026", zone=BRUSSELS, now=NOW)
    urls = {e.title: [x.url for x in e.enclosures] for e in entries}
    atom = feedparser.parse(render_atom(SPEC, entries, NOW))
    assert {i.title: [x.href for x in i.enclosures] for i in atom.entries} == urls
    rss = feedparser.parse(render_rss(SPEC, entries, NOW))
    assert {i.title: [x.href for x in i.enclosures] for i in rss.entries} == {
        title: found[:1] for title, found in urls.items()
    }
    for document in (render_rss(SPEC, entries, NOW), render_atom(SPEC, entries, NOW)):
        assert b"javascript:" not in document and b"data:" not in document


def test_the_store_keeps_enclosures(tmp_path: Path) -> None:
    told = SourceEntry(
        title="Episode 1: deterrence",
        published=Published.on_day(date(2023, 10, 12)),
        summary="The first episode.",
        provenance=Provenance("podcasts", "https://feeds.example/enclosures_atom.xml"),
        enclosures=EPISODE,
    )
    again = SourceEntry(
        title="Episode 1: deterrence",
        published=Published.on_day(date(2023, 10, 12)),
        summary="The first episode.",
        provenance=Provenance("mirror", "https://mirror.example/feed.xml"),
        enclosures=(Enclosure("https://mirror.example/1.mp3", "audio/mpeg", 2048), EPISODE[0]),
    )
    path = tmp_path / "store.sqlite3"
    with Store(path) as store, store.transaction():
        store.add([told], authority="a.example,2026", zone=BRUSSELS, now=NOW)
    with Store(path) as store:
        [entry] = store.newest(10)
        assert entry.enclosures == EPISODE
        with store.transaction():
            report, _ = store.add([again], authority="a.example,2026", zone=BRUSSELS, now=NOW)
        assert report.updated == 1
    with Store(path) as store:
        [entry] = store.newest(10)
        assert entry.enclosures == (*EPISODE, again.enclosures[0])


def test_a_relative_thumbnail_is_resolved_against_the_entrys_xml_base() -> None:
    hard = Path(__file__).parent / "data" / "feed_rules" / "hard.atom"
    document = parse_feed(hard.read_bytes(), url="http://127.0.0.1:9/feeds/hard.atom")
    urls = [e.url for entry in document.entries for e in entry.enclosures]
    # Written "media/1.jpg" and "media/1.mp3" under xml:base="https://hard.example/atom/".
    assert "https://hard.example/atom/media/1.jpg" in urls
    assert "https://hard.example/atom/media/1.mp3" in urls
    assert not any(url.startswith("http://127.0.0.1") for url in urls)
