"""The page a browser is shown for an RSS or Atom feed (``aggregator serve`` runs
``feed.xsl`` with lxml: :class:`aggregator.server.FeedPages`): the feed's title and
every story's title as the entries have them, whatever they hold (markup-like text,
references, quotes, scripts, controls), in either format."""

from __future__ import annotations

import random
import re
from dataclasses import replace

import pytest
from lxml import html as lxml_html

from aggregator.render import render_atom, render_rss
from aggregator.server import FeedPages, _variants
from aggregator.site.pages import Site
from tests.test_render_direct import random_feed

XML_SPACE = re.compile(r"[ \t\r\n]+")  # what XPath's normalize-space collapses


def spaced(text: str) -> str:
    return XML_SPACE.sub(" ", text).strip(" ")


@pytest.mark.parametrize("seed", range(60))
def test_a_feed_page_shows_every_title_as_written(seed: int) -> None:
    spec, entries, fallback = random_feed(seed)
    pages = FeedPages()
    for render in (render_rss, render_atom):
        feed, _ = _variants(render(spec, entries, fallback))
        page, _ = pages.page(feed)
        tree = lxml_html.fromstring(page.body)
        assert tree.xpath("string(//h1)") == spaced(spec.title), render.__name__
        assert tree.xpath("string(//title)") == f"{spaced(spec.title)}: feed"
        # Each title takes the direction of its own text (a right-to-left headline put its
        # question mark at the wrong end: found by review).
        assert tree.xpath("//h1/@dir") == ["auto"]
        shown = []
        for story in tree.xpath("//ol[@class='stories']/li"):
            [headline] = story.xpath("*[@dir='auto']")
            assert headline.tag in ("a", "span")
            shown.append(headline.text_content().strip(" "))
        assert shown == [spaced(entry.title) for entry in entries], render.__name__
        assert not tree.xpath("//script | //b | //p[@class='x']")  # text, never a tag
        assert pages.page(feed) is pages.page(feed)  # made once per version of a feed


def test_a_story_page_puts_its_contents_headings_below_its_own() -> None:
    """The page's h1 is the story's title and its sections are h2: the story's own
    headings come two levels down; an attribute that reads like a tag stays as it is."""

    from aggregator.site.pages import render_entry
    from tests.test_render_direct import random_entry

    site = Site("NATO news", "d", "https://agg.example/feeds/")
    content = (
        '<h1>Inner</h1><p>x <img src="https://a.example/i.png" alt="<h1> &amp; <h2>"></p>'
        '<h2>Sub</h2><h6>Deep</h6><h2 dir="rtl" lang="ar">عنوان</h2>'
    )
    entry = replace(random_entry(random.Random(1), 1), content_html=content, enclosures=())
    page = lxml_html.fromstring(render_entry(site, entry, {}))
    assert [h.tag for h in page.iter("h1", "h2", "h3", "h4", "h5", "h6")] == [
        "h1", "h3", "h4", "h6", "h4", "h2",
    ]  # fmt: skip
    # A heading's direction and language go down with it (found by review).
    assert [(h.get("dir"), h.text) for h in page.iter("h4")][1] == ("rtl", "عنوان")
    assert page.xpath("string(//h1)") == entry.title
    assert page.xpath("//img/@alt") == ["<h1> & <h2>"]


def test_a_story_page_lists_its_media_as_the_source_gave_them() -> None:
    # Found by review: a podcast episode's mp3 and mp4 were in all three feeds and on no
    # page a browser opens. Thumbnails are previews, not the media: left out.

    from aggregator.model import Enclosure
    from aggregator.site.pages import render_entry
    from tests.test_render_direct import random_entry

    site = Site("NATO news", "d", "https://agg.example/feeds/")
    media = (
        Enclosure("https://www.nato.int/media/press%20conference.mp3", "audio/mpeg", 12_345_678),
        Enclosure("https://www.nato.int/media/clip.mp4", "video/mp4"),
        Enclosure("https://www.nato.int/media/report.pdf", "application/pdf", 980),
        Enclosure("https://www.nato.int/media/", None, 2_000_000_000),
        Enclosure("https://www.nato.int/media/cover.jpg", "image/jpeg", thumbnail=True),
    )
    entry = replace(random_entry(random.Random(2), 2), enclosures=media)
    page = lxml_html.fromstring(render_entry(site, entry, {}))
    shown = [
        (" ".join(item.text_content().split()), item.xpath("string(a/@href)"))
        for item in page.xpath("//ul[@class='media']/li")
    ]
    assert shown == [
        (
            "press conference.mp3 (audio, MPEG, 12.3 MB)",
            "https://www.nato.int/media/press%20conference.mp3",
        ),
        ("clip.mp4 (video, MP4)", "https://www.nato.int/media/clip.mp4"),
        ("report.pdf (PDF, 980 bytes)", "https://www.nato.int/media/report.pdf"),
        ("https://www.nato.int/media/ (2.0 GB)", "https://www.nato.int/media/"),
    ]
    bare = replace(entry, enclosures=media[-1:])
    assert not lxml_html.fromstring(render_entry(site, bare, {})).xpath("//ul[@class='media']")


def test_a_feed_page_shows_each_day_in_the_news_time_zone() -> None:
    """A story dated 20:00 -04:00 is the next day in Brussels, as its own page says
    ("17 October 2023, 02:00 CEST"): the served feed page says that day too (found by
    review: it showed the day the feed wrote, one day before). A story given by its day
    alone (written at noon UTC) keeps its day, in Auckland too; and the stylesheet run
    without the extension (as a browser runs it) shows the day the feed writes."""
    from datetime import UTC, date, datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from lxml import etree

    from aggregator.model import Published
    from aggregator.site import outputs, static_file
    from aggregator.site.pages import shown_date
    from tests.test_render_direct import random_entry

    spec, _, fallback = random_feed(3)
    rng = random.Random(5)
    evening = datetime(2023, 10, 16, 20, 0, tzinfo=timezone(timedelta(hours=-4)))
    entries = [
        replace(random_entry(rng, 1), published=Published.at(evening)),
        replace(random_entry(rng, 2), published=Published.on_day(date(2023, 10, 16))),
    ]
    brussels, auckland = ZoneInfo("Europe/Brussels"), ZoneInfo("Pacific/Auckland")
    assert shown_date(entries[0].published, brussels) == "17 October 2023, 02:00 CEST"
    browser = etree.XSLT(etree.XML(static_file(outputs.FEED_XSLT)))
    for render in (render_rss, render_atom):
        feed, _ = _variants(render(spec, entries, fallback))
        for zone, days in (
            (brussels, ["17 October 2023", "16 October 2023"]),
            (auckland, ["17 October 2023", "16 October 2023"]),
            (UTC, ["17 October 2023", "16 October 2023"]),
        ):
            page, _ = FeedPages(zone).page(feed)
            tree = lxml_html.fromstring(page.body)
            assert tree.xpath("//span[@class='date']/text()") == days, (render.__name__, zone)
        written = lxml_html.fromstring(bytes(browser(etree.fromstring(feed.body))))
        shown = written.xpath("//span[@class='date']/text()")
        assert shown == ["16 October 2023", "16 October 2023"], render.__name__
