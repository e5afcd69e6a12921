"""A feed document's entries are capped: the newest by date, then by document order.

Big documents are made here at run time; none is kept in the repository.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.config import FetchSettings, load_config
from aggregator.dates import parse_timestamp
from aggregator.ingest import Ingest
from aggregator.live.feedparse import parse_feed
from aggregator.live.harden import defuse
from aggregator.live.newest import MAX_ENTRIES, date_key, keep_newest, newest_entries, when
from aggregator.live.sandbox import Sandbox
from aggregator.live.state import FetchStates
from aggregator.store import Store
from benchmarks.workloads import large_feed, many_items_feed
from tests.feedserver import Server

FEEDS = Path(__file__).parent / "data" / "feeds"
CORPUS = sorted(
    p
    for p in FEEDS.iterdir()
    if p.suffix in (".xml", ".rdf", ".atom") and p.with_suffix(".expected.json").exists()
)
URL = "https://feeds.example/f.xml"


def rss(*items: tuple[str, str | None]) -> bytes:
    """RSS 2.0 with items of these titles and pubDates (None: no pubDate)."""
    body = "".join(
        f"<item><title>{title}</title>"
        + (f"<pubDate>{date}</pubDate>" if date is not None else "")
        + "</item>"
        for title, date in items
    )
    return f'<rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


def titles(data: bytes, limit: int, **options: Any) -> list[str]:
    return [e.title for e in parse_feed(data, url=URL, max_entries=limit, **options).entries]


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "feedparser"])
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_a_cut_document_reads_as_the_newest_of_the_whole(path: Path, fast: bool) -> None:
    """Every corpus format (RSS 0.91, 1.0, 2.0, Atom 0.3 and 1.0, hostile ones): reading
    the rebuilt document gives the entries that reading it all and keeping the newest
    gives, field for field."""
    data = path.read_bytes()
    whole = parse_feed(data, url=URL, fast=fast, max_entries=10**6).entries
    for limit in range(1, len(whole)):
        cut = parse_feed(data, url=URL, fast=fast, max_entries=limit)
        assert list(cut.entries) == newest_entries(list(whole), limit)
        assert (
            f"kept the newest {limit} of {len(whole)} entries ([fetch] max_entries_per_feed)"
            in cut.warnings
        )


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_a_document_within_the_cap_is_read_untouched(path: Path) -> None:
    assert keep_newest(defuse(path.read_bytes()), 10**6) is None


def test_newest_by_date_then_document_order() -> None:
    data = rss(
        ("old", "Mon, 01 Jan 2024 09:00:00 +0000"),
        ("undated", None),
        ("newest", "Fri, 01 Mar 2024 10:00:00 +0000"),
        ("tie first", "Thu, 01 Feb 2024 12:00:00 +0000"),
        ("tie second", "Thu, 01 Feb 2024 13:00:00 +0100"),  # the same instant
        ("a day", "2024-02-01"),  # counts as noon UTC: the same again, but later in order
    )
    assert titles(data, 3) == ["newest", "tie first", "tie second"]
    assert titles(data, 4) == ["newest", "tie first", "tie second", "a day"]
    assert titles(data, 5) == ["old", "newest", "tie first", "tie second", "a day"]


def test_a_cap_below_one_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_entries must be at least 1, not 0"):
        parse_feed(rss(("a", None), ("b", None)), url=URL, max_entries=0)


def test_undated_items_keep_the_first_in_document_order() -> None:
    data = rss(*((f"item {n}", None) for n in range(10)))
    assert titles(data, 3) == ["item 0", "item 1", "item 2"]
    assert titles(data, 3, fast=False) == ["item 0", "item 1", "item 2"]


def test_atom_published_before_updated() -> None:
    """An entry's date is its published date, else its updated one (as feedparser has it)."""
    entry = "<entry><title>{}</title><id>x:{}</id>{}</entry>"
    data = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        + entry.format(
            "published Jan, updated May",
            1,
            "<published>2024-01-01T00:00:00Z</published><updated>2024-05-01T00:00:00Z</updated>",
        )
        + entry.format("updated April", 2, "<updated>2024-04-01T00:00:00Z</updated>")
        + entry.format("published March", 3, "<published>2024-03-01T00:00:00Z</published>")
        + entry.format("undated", 4, "")
        + "</feed>"
    ).encode()
    assert titles(data, 2) == ["updated April", "published March"]


def test_rss10_items_are_capped_and_their_listing_dropped() -> None:
    item = (
        '<item rdf:about="https://e.org/{n}"><title>item {n}</title>'
        "<link>https://e.org/{n}</link><dc:date>2024-01-{n:02d}T00:00:00Z</dc:date></item>"
    )
    data = (
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://e.org/"><title>t</title><link>https://e.org/</link>'
        "<items><rdf:Seq>"
        + "".join(f'<rdf:li rdf:resource="https://e.org/{n}"/>' for n in range(1, 9))
        + "</rdf:Seq></items></channel>"
        + "".join(item.format(n=n) for n in range(1, 9))
        + "</rdf:RDF>"
    ).encode()
    reduced = keep_newest(data, 2)
    assert reduced is not None and b"rdf:li" not in reduced.data
    assert titles(data, 2) == ["item 7", "item 8"]


def test_a_charset_given_by_http_is_used_to_pick_and_to_read() -> None:
    data = rss(*((f"caf\u00e9 {n}", None) for n in range(5))).decode().encode("latin-1")
    assert titles(data, 2, content_type="text/xml; charset=iso-8859-1") == ["café 0", "café 1"]


def test_a_broken_big_document_is_capped_with_a_warning() -> None:
    data = rss(*((f"a & b {n}", f"Mon, {n + 1:02d} Jan 2024 09:00:00 +0000") for n in range(9)))
    document = parse_feed(data, url=URL, max_entries=2)
    assert [e.title for e in document.entries] == ["a b 7", "a b 8"]
    assert any(w.startswith("feed is not well-formed (line 1:") for w in document.warnings)
    assert "kept the newest 2 of 9 entries ([fetch] max_entries_per_feed)" in document.warnings


def test_a_document_cut_off_midway_keeps_what_came_before() -> None:
    data = rss(*((f"item {n}", None) for n in range(6)))
    document = parse_feed(data[: data.index(b"<item><title>item 4")], url=URL, max_entries=2)
    assert [e.title for e in document.entries] == ["item 0", "item 1"]
    assert "kept the newest 2 of 4 entries ([fetch] max_entries_per_feed)" in document.warnings


RFC822 = [
    "Fri, 19 Nov 2021 07:48:00 +0000",
    "19 Nov 2021 07:48 -0130",
    "  Sat, 29 Feb 2020 23:59:59 +1400 ",
    "Mon, 01 jan 2024 09:00:00 GMT",
    "Mon, 01 Jan 2024 09:00:00 UT",
    "Mon, 01 Jan 2024 09:00:00 Z",
    "Mon, 01 Jan 2024 09:00:00 -0000",
    "Mon, 31 Feb 2021 07:48:00 GMT",
    "Mon, 01 Jan 2024 24:00:00 +0000",
    "Mon, 01 Jan 2024 09:00:60 +0000",
    "Mon, 01 Foo 2024 09:00:00 +0000",
    "Mon, 01 Jan 1000 09:00:00 +0000",
    "Mon, 01 Jan 2024 09:00:00 CEST",
    "2024-02-16T18:00:00+01:00",
    "2024-02-14",
    "13 Oct. 2023 12:00:00 GMT",
    "soon",
    "",
]


@pytest.mark.parametrize("text", RFC822)
def test_the_quick_date_reading_agrees_with_parse_timestamp(text: str) -> None:
    assert date_key(text) == when(parse_timestamp(text))


def test_the_quick_date_reading_agrees_on_many_dates() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        moment = datetime(1990, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**9))
        zone = timezone(timedelta(minutes=rng.randrange(-12 * 60, 14 * 60 + 1, 15)))
        text = format_datetime(moment.astimezone(zone))
        assert date_key(text) == when(parse_timestamp(text)) == moment.timestamp(), text


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    # The default memory limit; time is the benchmarks' business (python -m benchmarks
    # --only bigfeed), and a loaded machine must not fail these.
    with Sandbox(workers=1, timeout=300) as box:
        yield box


def test_a_feed_of_100000_items_reads_as_its_1000_newest(sandbox: Sandbox) -> None:
    data = many_items_feed(100_000)
    document = sandbox.parse(data, url=URL, name="many", max_entries=1000)
    assert len(document.entries) == 1000
    dates = sorted((when(e.published) or 0.0 for e in document.entries), reverse=True)
    every = sorted(
        (date_key(d.decode()) or 0.0 for d in _pub_dates(data)),
        reverse=True,
    )
    assert dates == every[:1000]
    assert "kept the newest 1000 of 100000 entries ([fetch] max_entries_per_feed)" in (
        document.warnings
    )


def test_a_50_mb_feed_is_read_not_stopped(sandbox: Sandbox) -> None:
    data = large_feed(50)
    assert len(data) >= 50_000_000
    document = sandbox.parse(data, url=URL, name="large", max_entries=1000)
    assert len(document.entries) == 1000
    assert all(e.published is not None for e in document.entries)


def _pub_dates(data: bytes) -> list[bytes]:
    return [part.split(b"</pubDate>")[0] for part in data.split(b"<pubDate>")[1:]]


def test_an_item_nested_past_libxml2s_default_depth_is_still_counted() -> None:
    """Past 256 levels libxml2 stops without huge_tree: the pass reads again with it."""
    deep = "<item><title>deep</title><x>" + "<y>" * 300 + "</y>" * 300 + "</x></item>"
    items = "".join(f"<item><title>item {n}</title></item>" for n in range(10))
    data = f'<rss version="2.0"><channel><title>t</title>{deep}{items}</channel></rss>'.encode()
    reduced = keep_newest(data, 3)
    assert reduced is not None and (reduced.total, reduced.kept) == (11, 3)
    assert titles(data, 3) == ["deep", "item 0", "item 1"]


def test_the_configured_cap_reaches_every_parse(tmp_path: Path, feedserver: Server) -> None:
    """[fetch] max_entries_per_feed, through ingest, for a live feed and a local file."""
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        "[fetch]\nmax_entries_per_feed = 2\ndeadline = 5\n\n"
        f'[[sources]]\nname = "live"\nurl = "{feedserver.base}/feeds/rss20.xml"\n\n'
        f'[[sources]]\nname = "file"\npath = "{FEEDS / "cap_newest_atom10.xml"}"\n',
        encoding="utf-8",
    )
    config = load_config(config_path)
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    with Store(config.store.path) as store, Sandbox(workers=1, timeout=60) as box:
        outcomes = Ingest(config, FetchStates(store), box, now).run()
    assert {o.source.name: len(o.entries) for o in outcomes} == {"live": 2, "file": 2}
    assert FetchSettings().max_entries_per_feed == MAX_ENTRIES  # one default, two places


@pytest.mark.parametrize("items", [0, 1, 50, 400, 1500])
def test_the_bound_on_items_is_never_below_their_number(items: int) -> None:
    from aggregator.live.newest import count_bound

    item = b"<item><title>t</title><pubDate>Mon, 01 Jan 2024 09:00:00 +0000</pubDate></item>"
    document = b'<rss version="2.0"><channel><title>x</title>' + item * items + b"</channel></rss>"
    for limit in (1, 100, 1000):
        bound = count_bound(document, limit)
        assert bound >= items or bound > limit
        # Under the limit, only when the items truly are.
        assert (bound <= limit) <= (items <= limit)
