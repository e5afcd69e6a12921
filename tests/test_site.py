"""The site's pages, OPML, stylesheet and XSLT: what `aggregator run` writes beside the feeds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import jinja2
import pytest
from lxml import etree, html

from aggregator.cli import main
from aggregator.config import load_config
from aggregator.model import Entry, Provenance, Published
from aggregator.pipeline import TOKEN, expected_files
from aggregator.render import FeedSpec, entry_page
from aggregator.site import outputs, render_site_files, static_file
from aggregator.site.pages import Site, shown_date

ATOM = "http://www.w3.org/2005/Atom"
BASE = "http://127.0.0.1:8080/feeds/"
SEEN = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def make_entry(number: int, **changes: object) -> Entry:
    fields: dict[str, object] = {
        "id": f"tag:example.org,2026:entry:{number:020x}",
        "title": f"Story {number}",
        "published": Published.on_day(date(2023, 10, number)),
        "summary": f"Summary of story {number}.",
        "sources": (Provenance("Saved page", "/srv/aggregator/seeds/000.txt", 12),),
        "first_seen": SEEN,
        "last_seen": SEEN,
        "topics": ("ukraine",),
    }
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]


def spec(slug: str, title: str) -> FeedSpec:
    return FeedSpec(slug, title, f"About {slug}", BASE, "https://www.nato.int/", "me", "x,2026")


SITE = Site("NATO news", "News by topic.", BASE, {"ukraine": "Ukraine"})
SPECS = [spec("all", "NATO news"), spec("ukraine", "NATO news: Ukraine")]


def text_of(page: bytes) -> str:
    """Roughly what a person reads: the body's text, whitespace folded (the browser
    test reads the real thing)."""
    body = html.fromstring(page).find("body")
    assert body is not None
    return " ".join(" ".join(body.itertext()).split())


def links_of(page: bytes) -> list[str]:
    return [str(a.get("href")) for a in html.fromstring(page).iter("a")]


def render(entries: list[Entry]) -> dict[str, bytes]:
    latest = {"all": entries, "ukraine": [e for e in entries if "ukraine" in e.topics]}
    return render_site_files(SITE, SPECS, latest)


@pytest.mark.parametrize(
    ("published", "shown"),
    [
        pytest.param(Published.on_day(date(2023, 10, 12)), "12 October 2023", id="a day"),
        pytest.param(
            Published.at(datetime(2023, 10, 2, 9, 5, tzinfo=timezone(timedelta(hours=2)))),
            "2 October 2023, 09:05 UTC+02:00",
            id="an instant keeps its offset",
        ),
        pytest.param(
            Published.at(datetime(2024, 1, 31, 23, 59, tzinfo=UTC)),
            "31 January 2024, 23:59 UTC",
            id="an instant in UTC",
        ),
        pytest.param(
            Published.at(datetime(2024, 3, 1, 6, 0, tzinfo=timezone(timedelta(hours=-3.5)))),
            "1 March 2024, 06:00 UTC-03:30",
            id="a negative offset",
        ),
    ],
)
def test_dates_are_shown_with_the_precision_the_source_gave(
    published: Published, shown: str
) -> None:
    assert shown_date(published) == shown


@pytest.mark.parametrize(
    ("published", "shown"),
    [
        pytest.param(Published.on_day(date(2023, 10, 12)), "12 October 2023", id="a day"),
        pytest.param(
            Published.at(datetime(2023, 10, 4, 23, 30, tzinfo=UTC)),
            "5 October 2023, 01:30 CEST",
            id="the next day in Brussels",
        ),
        pytest.param(
            Published.at(datetime(2023, 10, 5, 0, 30, tzinfo=timezone(timedelta(hours=2)))),
            "5 October 2023, 00:30 CEST",
            id="an offset that is Brussels's",
        ),
        pytest.param(
            Published.at(datetime(2024, 1, 31, 9, 0, tzinfo=timezone(timedelta(hours=5.75)))),
            "31 January 2024, 04:15 CET",
            id="winter",
        ),
    ],
)
def test_times_are_shown_in_the_news_time_zone(published: Published, shown: str) -> None:
    """Found by review: each time in its source's offset, a list newest first showed
    "4 October, 23:30 UTC" above "5 October, 00:30 UTC+02:00" above "4 October"."""
    assert shown_date(published, ZoneInfo("Europe/Brussels")) == shown
    kathmandu = ZoneInfo("Asia/Kathmandu")  # a zone whose name is its offset
    if published.instant is not None:
        assert shown_date(published, kathmandu).endswith(" UTC+05:45")


def test_every_output_file_is_written_and_nothing_else() -> None:
    entries = [make_entry(1), make_entry(2, topics=())]
    files = render(entries)
    fixed = set(outputs.fixed_files(["all", "ukraine"])) - {
        name for slug in ("all", "ukraine") for name in outputs.feed_files(slug)
    }
    assert set(files) == fixed | {entry_page(e.id) for e in entries}
    assert files == render(entries)  # no clock: the same bytes every time
    assert files["feed.xsl"] == static_file("feed.xsl")
    assert b"color-scheme" in files["style.css"]


def test_the_index_prints_the_site_heading_once_and_links_every_headline() -> None:
    entries = [make_entry(n) for n in range(7, 0, -1)]  # newest first, as the store gives
    index = render(entries)["index.html"]
    text = text_of(index)
    assert text.count("NATO news") == 1
    assert text.startswith("NATO news News by topic.")
    assert "All stories" in text and "Ukraine" in text
    assert "Story 7 7 October 2023" in text
    assert "Story 2" not in text  # five latest per topic
    links = links_of(index)
    assert "entries/00000000000000000007.html" in links
    assert {"all.rss", "all.atom", "all.json", "ukraine.rss", "topics.opml"} <= set(links)
    assert {"all.html", "ukraine.html"} <= set(links)
    tree = html.fromstring(index)
    assert tree.get("lang") == "en"
    alternates = tree.xpath('//link[@rel="alternate"]/@type')
    assert alternates.count("application/rss+xml") == 2
    assert tree.xpath("//form/@action") == ["../search"]
    # Found by review: a folder of files served as they are has no /search: the form is
    # hidden in the file, and `aggregator serve`, which answers it, shows it.
    [form] = tree.xpath("//form")
    assert "hidden" in form.attrib
    from aggregator.server import _as_served

    served = html.fromstring(_as_served("index.html", index))
    assert served.xpath("//form/@action") == ["../search"]
    [form] = served.xpath("//form")
    assert "hidden" not in form.attrib


def test_a_topic_page_lists_its_stories_newest_first_with_dates() -> None:
    entries = [make_entry(3), make_entry(2, topics=()), make_entry(1)]
    page = render(entries)["ukraine.html"]
    text = text_of(page)
    assert "Story 3 3 October 2023 Story 1 1 October 2023" in text
    assert "Story 2" not in text
    assert [h.text_content() for h in html.fromstring(page).iter("h1")] == ["Ukraine"]
    assert "ukraine.atom" in links_of(page)


def test_an_entry_page_shows_text_as_text_and_html_as_html() -> None:
    plain = make_entry(
        1,
        title="<script>alert('x')</script> & “quotes”",
        summary="First paragraph with <b>not bold</b>.\n\nSecond paragraph.",
        link="https://www.nato.int/story-1",
        sources=(
            Provenance("Saved page", "/srv/aggregator/seeds/000.txt", 12),
            Provenance("NATO news feed", "https://www.nato.int/rss.xml"),
            Provenance("Saved feed", "/srv/aggregator/saved feed.xml"),
        ),
    )
    rich = make_entry(2, content_html="<p>Rich <strong>text</strong></p>", topics=())
    files = render([plain, rich])
    page = files[entry_page(plain.id)]
    tree = html.fromstring(page)
    assert tree.findtext(".//h1") == "<script>alert('x')</script> & “quotes”"
    assert not tree.xpath("//script")
    assert [p.text for p in tree.xpath('//div[@class="text"]/p')] == [
        "First paragraph with <b>not bold</b>.",
        "Second paragraph.",
    ]
    text = text_of(page)
    assert "1 October 2023" in text
    assert "Saved page: saved page 000.txt, line 12" in text
    # A feed file is no saved page (found by review: "saved page saved feed.xml").
    assert "Saved feed: feed file saved feed.xml" in text
    assert "/srv/" not in page.decode()
    links = links_of(page)
    assert "https://www.nato.int/story-1" in links
    assert "https://www.nato.int/rss.xml" in links
    assert "../ukraine.html" in links and "../style.css" in tree.xpath("//link/@href")
    rich_tree = html.fromstring(files[entry_page(rich.id)])
    assert rich_tree.xpath('//div[@class="text"]/p/strong/text()') == ["text"]
    assert "Topics" not in text_of(files[entry_page(rich.id)])


def test_an_undated_entry_says_so_and_invents_nothing() -> None:
    entry = make_entry(1, published=None)
    files = render([entry])
    text = text_of(files[entry_page(entry.id)])
    # (Nor said to be none given when the source's date was in the future, or not a
    # date: found by review.)
    assert "No date: the source gave none, or none that could be used" in text
    assert "2024" not in text  # first_seen is not a publication date
    assert "<time" not in files["all.html"].decode()


def run(project: Path) -> None:
    assert main(["-q", "--config", str(project / "config.toml"), "run"]) == 0


def test_run_writes_the_pages_beside_the_feeds(project: Path) -> None:
    run(project)
    feeds = project / "feeds"
    written = {str(p.relative_to(feeds)) for p in feeds.rglob("*") if p.is_file()}
    config = load_config(project / "config.toml")
    shown = {
        entry_page(e.id)
        for slug in ("all", "ukraine", "deterrence", "eu-cooperation")
        for e in feedparser.parse((feeds / f"{slug}.atom").read_bytes()).entries
    }
    # ... and the install's token, which the store holds too (pipeline.TOKEN).
    assert written == set(expected_files(config)) | shown | {TOKEN}
    assert len(shown) == 46 + 3 - 2


def test_the_xslt_shows_a_feed_as_a_page(project: Path) -> None:
    """lxml runs the same XSLT 1.0 a browser runs (the browser test drives Chromium)."""
    run(project)
    feeds = project / "feeds"
    transform = etree.XSLT(etree.parse(str(feeds / "feed.xsl")))
    for extension, kind in (("rss", "RSS 2.0"), ("atom", "Atom 1.0")):
        document = etree.parse(str(feeds / f"ukraine.{extension}"))
        page = bytes(transform(document))
        text = text_of(page)
        parsed = feedparser.parse((feeds / f"ukraine.{extension}").read_bytes())
        assert text.startswith(f"All topics {parsed.feed.title} ")
        assert f"This is a news feed ({kind})" in text
        assert f"{BASE}ukraine.{extension}" in text
        newest = parsed.entries[0]
        day = newest.published_parsed
        shown = f"{day.tm_mday} {date(2000, day.tm_mon, 1):%B} {day.tm_year}"
        assert f"{newest.title} {shown}" in text
        stories = html.fromstring(page).xpath('//ol[@class="stories"]/li')
        assert len(stories) == len(parsed.entries)
        items = {"rss": "//item", "atom": "//a:entry"}[extension]
        link = {"rss": "link/text()", "atom": "a:link[not(@rel) or @rel='alternate'][1]/@href"}[
            extension
        ]
        linked = [
            str(href)
            for item in document.xpath(items, namespaces={"a": ATOM})
            for href in item.xpath(link, namespaces={"a": ATOM})
        ]
        assert [str(a) for a in html.fromstring(page).xpath("//ol/li/a/@href")] == linked


def test_compiled_templates_are_kept_in_the_users_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator.site.pages import _bytecode_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = _bytecode_cache()
    assert cache is not None
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("aggregator.site", "templates"), bytecode_cache=cache
    )
    environment.get_template("index.html")
    assert list((tmp_path / "cache" / "aggregator" / "templates").iterdir())


def test_no_usable_cache_directory_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator.site.pages import _bytecode_cache

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert _bytecode_cache() is None


def test_the_renderers_fingerprint_follows_the_installed_templates_and_static_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept files are trusted only if rendered by the same code: editing a template or
    the stylesheet where the package is installed changes the fingerprint."""
    import shutil

    import aggregator.site as site

    package = tmp_path / "aggregator"
    shutil.copytree(Path(site.__file__).parent.parent, package)
    monkeypatch.setattr(site, "HERE", package / "site")
    before = site.renderer_fingerprint.__wrapped__()
    assert before == site.renderer_fingerprint()  # the copy is the code running
    (package / "site" / "templates" / "entry.html").write_text("edited", encoding="utf-8")
    edited = site.renderer_fingerprint.__wrapped__()
    assert edited != before
    (package / "site" / "static" / "style.css").write_bytes(b"body {}")
    assert site.renderer_fingerprint.__wrapped__() not in (before, edited)
    assert static_file("style.css") == b"body {}"
