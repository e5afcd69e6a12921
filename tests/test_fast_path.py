"""The lxml fast path for plain RSS 2.0 gives exactly what feedparser gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lxml import etree

from aggregator.live.feedparse import (
    _plain_bytes,
    _unplain_nodes,
    fast_rss,
    item_spans,
    parse_feed,
)
from aggregator.live.harden import defuse
from benchmarks.workloads import rss_feed

FEEDS = Path(__file__).parent / "data" / "feeds"

PLAIN = (FEEDS / "rss20.xml").read_bytes()
VARIANTS = {
    "corpus rss20": PLAIN,
    "synthetic benchmark feed": rss_feed(3, 50, random.Random(1)),
    "html in title": PLAIN.replace(b"<title>An item", b"<title>&lt;b&gt;An&lt;/b&gt; item"),
    "cdata description": PLAIN.replace(
        b"<description>Evergreen", b"<description><![CDATA[<i>Ever</i>]]>green"
    ),
    "no guid, relative link": PLAIN.replace(b'<guid isPermaLink="false">news_219104</guid>', b""),
    "whitespace around text": PLAIN.replace(b"<title>NATO holds", b"<title>\n   NATO  holds"),
    "author and categories": PLAIN.replace(
        b"<category>Ukraine</category>",
        b'<category domain="x">Ukraine</category><author>press@nato.int (Press)</author>',
    ),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("url", ["https://feeds.example/f.xml", "/srv/feeds/f.xml"])
def test_fast_path_gives_what_feedparser_gives(name: str, url: str) -> None:
    data = VARIANTS[name]
    assert fast_rss(defuse(data), url=url) is not None, "the fast path should take this one"
    fast = parse_feed(data, url=url, name="n")
    slow = parse_feed(data, url=url, name="n", fast=False)
    assert fast == slow


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(PLAIN.replace(b'isPermaLink="false"', b""), id="permalink guid"),
        pytest.param(PLAIN.replace(b"<rss ", b'<rss xml:base="https://x.org/" '), id="xml:base"),
        pytest.param(PLAIN.replace(b"<pubDate>Thu", b"<pubDate>Thursday, the 28th"), id="odd date"),
        pytest.param(
            PLAIN.replace(
                b"</item>",
                b"<dc:creator xmlns:dc='http://purl.org/dc/elements/1.1/'>x</dc:creator></item>",
                1,
            ),
            id="namespaced",
        ),
        pytest.param(
            PLAIN.replace(b"</channel>", b"<item><title>unclosed</channel>"), id="malformed"
        ),
        pytest.param(
            PLAIN.replace(b"<title>", b'<title xml:base="https://x.org/">', 2),
            id="xml:base deep",
        ),
        pytest.param(
            PLAIN.replace(b"</item>", b"<?render fast?></item>", 1), id="processing instruction"
        ),
        pytest.param(
            PLAIN.replace(b"<rss ", b'<!DOCTYPE rss [<!ENTITY n "NATO">]>\n<rss ', 1).replace(
                b"</title>", b" &n;</title>", 2
            ),
            id="entity",
        ),
        pytest.param((FEEDS / "atom10.xml").read_bytes(), id="atom"),
        pytest.param((FEEDS / "rss091.xml").read_bytes(), id="rss 0.91"),
    ],
)
def test_anything_unusual_goes_to_feedparser(document: bytes) -> None:
    assert fast_rss(defuse(document), url="https://feeds.example/f.xml") is None


def test_a_charset_from_http_goes_to_feedparser() -> None:
    assert fast_rss(PLAIN, url="https://e.org/f", content_type="text/xml; charset=latin-1") is None


def test_known_items_are_not_read_again_and_a_changed_one_is() -> None:
    url = "https://feeds.example/f.xml"
    data = rss_feed(3, 20, random.Random(5))
    first = parse_feed(data, url=url, name="Feed")
    assert len(first.entries) == 20 and first.unchanged == 0
    assert all(d.startswith("r") for d in first.digests)  # the fast path's own digests
    known = frozenset(first.digests)

    again = parse_feed(data, url=url, name="Feed", known=known)
    assert again.entries == () and again.unchanged == 20 and again.digests == first.digests

    # One item's text changes: that item alone is read, as it reads with nothing known.
    at = data.index(b"</description>", data.index(b"<item>"))
    edited = data[:at] + b" (updated)" + data[at:]
    changed = parse_feed(edited, url=url, name="Feed", known=known)
    assert changed.unchanged == 19
    [entry] = changed.entries
    fresh = parse_feed(edited, url=url, name="Feed")
    assert entry in fresh.entries and entry.summary.endswith("(updated)")

    # Another source, or another URL, knows nothing of these items.
    elsewhere = parse_feed(data, url="https://mirror.example/f.xml", name="Feed", known=known)
    assert elsewhere.unchanged == 0


def test_digests_of_the_two_paths_never_meet() -> None:
    url = "https://feeds.example/f.xml"
    fast = parse_feed(PLAIN, url=url, name="Feed")
    slow = parse_feed(PLAIN, url=url, name="Feed", fast=False)
    assert fast.entries == slow.entries
    assert not set(fast.digests) & set(slow.digests)


# -- where each item's bytes are (item_spans) -----------------------------------------------

TRICKY = {
    "cdata holding item tags": PLAIN.replace(
        b"<description>Evergreen",
        b"<description><![CDATA[a </item> <item> b]]>Evergreen",
        1,
    ),
    "comment holding item tags": PLAIN.replace(b"<item>", b"<!-- <item> </item> --><item>", 2),
    "processing instruction holding item tags": PLAIN.replace(
        b"</channel>", b"<?note <item></item> ?></channel>"
    ),
    "an empty item": PLAIN.replace(b"</channel>", b"<item/></channel>"),
    "attributes with > and quotes": PLAIN.replace(b"<item>", b"<item a=\"x>y\" b='/item>'>", 1),
    "items and item-like names": PLAIN.replace(
        b"</channel>", b"<items><itemx>1</itemx></items></channel>"
    ),
    "space before the closing >": PLAIN.replace(b"</item>", b"</item >", 1),
    "one line": b"".join(PLAIN.split(b"\n")),
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_item_spans_are_the_items_lxml_finds(name: str) -> None:
    data = defuse(TRICKY[name])
    root = etree.fromstring(data)
    spans = item_spans(data)
    assert spans is not None
    items = list(root.iter("item"))
    assert [_shape(etree.fromstring(data[a:b])) for a, b in spans] == [_shape(i) for i in items]


def _shape(element: etree._Element, tail: bool = False) -> object:
    """An element's name, attributes, text and children (not the namespaces in scope)."""
    return (
        element.tag,
        dict(element.attrib),
        element.text,
        [_shape(child, tail=True) for child in element],
        element.tail if tail else None,
    )


def test_item_spans_refuse_an_item_inside_an_item() -> None:
    nested = PLAIN.replace(b"</item>", b"<item><title>x</title></item></item>", 1)
    etree.fromstring(nested)  # well-formed, but not what the scan expects
    assert item_spans(nested) is None
    assert parse_feed(nested, url="https://feeds.example/f.xml").entries  # read another way


def test_an_edit_after_a_closing_tag_in_cdata_is_seen() -> None:
    url = "https://feeds.example/f.xml"
    data = TRICKY["cdata holding item tags"]
    known = frozenset(parse_feed(data, url=url).digests)
    edited = data.replace(b"]]>Evergreen", b"]]>Edited evergreen", 1)
    again = parse_feed(edited, url=url, known=known)
    assert [e.summary for e in again.entries] == [
        e.summary for e in parse_feed(edited, url=url).entries if "Edited" in e.summary
    ]
    assert again.unchanged == len(again.digests) - 1


def test_the_same_item_bytes_in_another_context_are_not_known() -> None:
    url = "https://feeds.example/f.xml"
    one = PLAIN.replace(b"<rss ", b'<rss xmlns:x="urn:one" ', 1)
    other = PLAIN.replace(b"<rss ", b'<rss xmlns:x="urn:two" ', 1)
    latin = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + PLAIN.split(b"?>", 1)[1]
    digests = [set(parse_feed(d, url=url).digests) for d in (PLAIN, one, other, latin)]
    for i, mine in enumerate(digests):
        for theirs in digests[i + 1 :]:
            assert not mine & theirs


def _documents() -> list[Path]:
    return sorted(p for p in (Path(__file__).parent / "data").rglob("*.xml"))


@pytest.mark.parametrize("path", _documents(), ids=lambda p: p.name)
def test_the_byte_test_never_hides_what_the_tree_holds(path: Path) -> None:
    """When the bytes alone clear a document, the tree has no xml:base, processing
    instruction or entity either."""
    data = defuse(path.read_bytes())
    for variant in (data, *(defuse(d) for d in TRICKY.values())):
        if not _plain_bytes(variant):
            continue
        try:
            root = etree.fromstring(variant, etree.XMLParser(resolve_entities=False))
        except etree.XMLSyntaxError:
            continue
        assert not _unplain_nodes()(root)
        assert next(root.iter(etree.Entity), None) is None


DOCTYPE_DECOY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<!DOCTYPE rss SYSTEM "<item/><!--">\n'
    b'<rss version="2.0"><channel><title>t</title>\n'
    b'<item><title>%s</title><guid isPermaLink="false">a</guid></item><!-- x -->\n'
    b'<item><title>B</title><guid isPermaLink="false">b</guid></item>\n'
    b"</channel></rss>\n"
)
DOCTYPE_SHIFT = (
    b'<!DOCTYPE rss SYSTEM "<!--">\n'
    b'<rss version="2.0"><channel><title>t</title>\n'
    b'<item><title>%s</title><guid isPermaLink="false">a</guid></item><!-- x -->\n'
    b'<item><title>B</title><guid isPermaLink="false">b</guid></item>\n'
    b"</channel><item/></rss>\n"
)


@pytest.mark.parametrize("template", [DOCTYPE_DECOY, DOCTYPE_SHIFT], ids=["decoy", "shift"])
def test_markup_in_a_doctype_literal_never_hides_an_edit(template: bytes) -> None:
    """A DOCTYPE's system literal may hold "<item/>" or "<!--": a scan of the bytes
    from the start would take them for markup (found by review)."""
    url = "https://feeds.example/f.xml"
    known = frozenset(parse_feed(template % b"A", url=url).digests)
    again = parse_feed(template % b"A edited", url=url, known=known)
    assert [e.title for e in again.entries] == ["A edited"]
    assert again.unchanged == 1


def test_an_undeclared_default_namespace_is_read() -> None:
    """``xmlns=""`` puts a None prefix in lxml's nsmap, beside named ones."""
    data = (
        b'<rss version="2.0" xmlns="" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        b'<title>t</title><item><title>A</title><guid isPermaLink="false">a</guid></item>'
        b"</channel></rss>"
    )
    url = "https://feeds.example/f.xml"
    assert fast_rss(data, url=url) is not None
    assert parse_feed(data, url=url) == parse_feed(data, url=url, fast=False)
