"""The site in a real browser: headless Chromium (Debian's), driven by selenium, against
`aggregator serve` on 127.0.0.1. What is asserted is what a person sees
(``document.body.innerText``) and that every link leads somewhere that answers 200.

Chromium and chromedriver must be installed (`.ci/run` installs them): without them
these tests fail, they are not skipped. One browser serves the whole module.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import make_project
from tests.feedserver import Server
from tests.test_serve import Serving, start

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Nothing but 127.0.0.1: a link to the outside world must not be followed by the
    # browser (the tests never reach the internet).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
PHONE = (390, 844)  # CSS pixels of a common phone
DAY = re.compile(
    r"\b\d{1,2} (?:January|February|March|April|May|June|July|August|September|"
    r"October|November|December) \d{4}\b"
)


def find(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: apt-get install chromium chromium-driver")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, feedserver: Server) -> Iterator[Serving]:
    server = start(make_project(tmp_path_factory.mktemp("browser"), feedserver))
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = find("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=options, service=Service(find("chromedriver")))
        try:
            driver.set_page_load_timeout(30)
            driver.set_window_size(*PHONE)
            yield driver
        finally:
            driver.quit()


def seen(browser: webdriver.Chrome) -> str:
    """The page's text as a person reads it, one line per line (blank lines dropped)."""
    text: str = browser.execute_script("return document.body.innerText")
    return re.sub(r"\n\s*\n+", "\n", text)


def links(browser: webdriver.Chrome) -> list[str]:
    hrefs: list[str] = browser.execute_script("return Array.from(document.links, a => a.href)")
    return hrefs


def assert_links_answer(site: Serving, hrefs: list[str]) -> None:
    """Every link on our site answers 200; a story's own link leaves for its source."""
    assert hrefs
    ours = urlsplit(site.base).netloc
    for href in dict.fromkeys(hrefs):
        parts = urlsplit(href)
        if parts.netloc == ours:
            response = httpx.get(href, timeout=10)
            assert response.status_code == 200, href
        else:
            # Sources' own links: NATO's site (not fetched: no internet in tests) or
            # the test's feed server standing in for NATO's feed.
            assert (parts.scheme == "https" and parts.netloc == "www.nato.int") or (
                parts.hostname == "127.0.0.1"
            ), href


def assert_fits_a_phone(browser: webdriver.Chrome) -> None:
    sizes: dict[str, Any] = browser.execute_script(
        "const e = document.documentElement;"
        "return {scroll: e.scrollWidth, client: e.clientWidth,"
        " font: parseFloat(getComputedStyle(document.body).fontSize)}"
    )
    assert sizes["scroll"] <= sizes["client"], sizes  # no sideways scrolling
    assert sizes["font"] >= 16, sizes


def test_the_index(site: Serving, browser: webdriver.Chrome) -> None:
    browser.get(site.base + "/")
    assert urlsplit(browser.current_url).path == "/feeds/"
    text = seen(browser)
    assert browser.title == "NATO news"
    assert text.split("\n").count("NATO news") == 1  # the site heading, once
    assert [h.text for h in browser.find_elements(By.TAG_NAME, "h1")] == ["NATO news"]
    for heading in ("All stories", "Ukraine", "Deterrence and defence", "EU cooperation"):
        assert f"\n{heading}\n" in text
    assert text.count("Subscribe: RSS · Atom · JSON") == 4
    assert "topics.opml" in text
    assert len(DAY.findall(text)) >= 12  # each topic's latest stories, with their dates
    assert browser.execute_script("return document.documentElement.lang") == "en"
    assert browser.execute_script("return document.scripts.length") == 0
    alternates = browser.execute_script(
        "return Array.from(document.querySelectorAll('link[rel=alternate]'), l => l.href)"
    )
    assert f"{site.base}/feeds/ukraine.rss" in alternates and len(alternates) == 12
    assert_fits_a_phone(browser)
    assert_links_answer(site, links(browser))


def test_the_written_index_shows_no_search_form(site: Serving, browser: webdriver.Chrome) -> None:
    """The index as written (opened from disk, or from any plain web server) hides the
    search form: only ``serve`` answers its /search (found by review: the stylesheet's
    ``display`` for the form won over its ``hidden``, and a search was a 404)."""
    browser.get((site.project / "feeds" / "index.html").as_uri())
    assert "Subscribe: RSS · Atom · JSON" in seen(browser)
    form = browser.find_element(By.CSS_SELECTOR, "form[role=search]")
    assert not form.is_displayed()
    assert "Search" not in seen(browser)
    browser.get(site.base + "/feeds/")
    assert browser.find_element(By.CSS_SELECTOR, "form[role=search]").is_displayed()


def test_a_topic_page(site: Serving, browser: webdriver.Chrome) -> None:
    browser.get(site.base + "/feeds/")
    browser.find_element(By.LINK_TEXT, "Ukraine").click()
    assert browser.current_url == f"{site.base}/feeds/ukraine.html"
    text = seen(browser)
    assert text.startswith("NATO news\nUkraine\n")
    assert "Stories, newest first" in text
    stories = browser.find_elements(By.CSS_SELECTOR, "ol.stories li")
    assert len(stories) >= 5
    first = stories[0].text.split("\n")
    assert len(first) == 2 and DAY.fullmatch(first[1]), first
    assert_fits_a_phone(browser)
    assert_links_answer(site, links(browser))


def test_an_entry_page(site: Serving, browser: webdriver.Chrome) -> None:
    browser.get(site.base + "/feeds/ukraine.html")
    story = browser.find_element(By.CSS_SELECTOR, "ol.stories li a")
    title = story.text
    story.click()
    assert re.fullmatch(
        rf"{re.escape(site.base)}/feeds/entries/[0-9a-f]{{20}}\.html", browser.current_url
    )
    text = seen(browser)
    assert text.startswith(f"NATO news\n{title}\n")
    assert DAY.search(text.split("\n")[2])  # the date, right under the title
    assert "\nTopics\n" in text and "\nUkraine\n" in text
    assert "\nSources\n" in text
    assert "/tmp/" not in text  # where the files live is nobody's business
    assert_fits_a_phone(browser)
    assert_links_answer(site, links(browser))
    browser.find_element(By.LINK_TEXT, "Ukraine").click()
    assert browser.current_url == f"{site.base}/feeds/ukraine.html"


def test_a_story_from_the_live_feed_links_to_its_source(
    site: Serving, browser: webdriver.Chrome
) -> None:
    browser.get(site.base + "/search?q=Kyiv")
    browser.find_element(By.PARTIAL_LINK_TEXT, "Kyiv:").click()
    text = seen(browser)
    assert "Read the story where it was published" in text
    original = browser.find_element(By.LINK_TEXT, "Read the story where it was published")
    assert original.get_attribute("href") == "https://www.nato.int/cps/en/natohq/news_218172.htm"
    assert "NATO news feed: http://127.0.0.1:" in text


def test_a_search(site: Serving, browser: webdriver.Chrome) -> None:
    browser.get(site.base + "/feeds/")
    field = browser.find_element(By.NAME, "q")
    field.send_keys("Moldova")
    field.submit()
    # (submit does not wait for the page it asks for)
    WebDriverWait(browser, 10).until(lambda b: "/search" in b.current_url)
    assert browser.current_url == f"{site.base}/search?q=Moldova"
    text = seen(browser)
    found = browser.find_elements(By.CSS_SELECTOR, "ol.stories li a")
    assert found
    assert f"{len(found)} stories with “Moldova”" in text
    hrefs = [a.get_attribute("href") for a in found]
    assert_links_answer(site, links(browser))
    for href in hrefs:
        browser.get(str(href))
        assert "moldova" in seen(browser).lower()
    browser.get(site.base + "/search?q=%3Cb%3Enothing%3C%2Fb%3E")
    assert "No story with “<b>nothing</b>”" in seen(browser)


def test_a_name_typed_without_its_accents_is_found(
    site: Serving, browser: webdriver.Chrome
) -> None:
    """The shipped seeds name Latvia's Prime Minister "Siliņa": typed "Silina", as most
    keyboards give it, the search finds her story, and its page reads "Siliņa"."""
    browser.get(site.base + "/feeds/")
    field = browser.find_element(By.NAME, "q")
    field.send_keys("Silina")
    field.submit()
    WebDriverWait(browser, 10).until(lambda b: "/search" in b.current_url)
    found = browser.find_elements(By.CSS_SELECTOR, "ol.stories li a")
    assert found, seen(browser)
    hrefs = [str(a.get_attribute("href")) for a in found]
    for href in hrefs:
        browser.get(href)
        assert "Siliņa" in seen(browser)


@pytest.mark.parametrize(("extension", "kind"), [("rss", "RSS 2.0"), ("atom", "Atom 1.0")])
def test_a_feed_url_shows_a_page(
    site: Serving, browser: webdriver.Chrome, extension: str, kind: str
) -> None:
    url = f"{site.base}/feeds/ukraine.{extension}"
    browser.get(url)
    # A page made by the server: Chromium runs no XSLT of its own (which it is removing,
    # and warns of over the page when a site uses it).
    assert browser.execute_script("return document.contentType") == "text/html"
    text = seen(browser)
    assert "<rss" not in text and "<feed" not in text  # not the raw XML
    assert text.startswith("All topics\nNATO news: Ukraine\n"), text[:200]
    assert f"This is a news feed ({kind})" in text
    assert f"\n{url}\n" in text  # the address to copy into a feed reader
    assert "\nLatest stories\n" in text
    stories = browser.find_elements(By.CSS_SELECTOR, "ol.stories li")
    assert len(stories) >= 5
    for story in stories:
        assert DAY.search(story.text), story.text
    color = browser.execute_script(
        "return getComputedStyle(document.querySelector('.copy')).fontFamily"
    )
    assert "mono" in color  # style.css applied to the feed's page too
    assert_fits_a_phone(browser)
    assert_links_answer(site, links(browser))


def test_each_paragraph_of_a_story_reads_in_its_own_direction(
    tmp_path: Path, browser: webdriver.Chrome
) -> None:
    """Found by review: a Hebrew story's text (its feed's HTML) was laid out from the
    left, its full stop at the wrong end, though its title read from the right."""
    import random
    from dataclasses import replace

    from aggregator.site import static_file
    from aggregator.site.outputs import STYLESHEET, entry_file
    from aggregator.site.pages import Site, render_entry
    from tests.test_render_direct import random_entry

    hebrew = 'המזכיר הכללי של נאט"ו נפגש היום עם שר ההגנה (NATO) בבריסל.'
    content = (
        f"<p>{hebrew}</p><p>The Secretary General met the Minister of Defence.</p>"
        f'<p dir="ltr">{hebrew}</p><ul><li>{hebrew}</li></ul><div dir="rtl"><p>Said so.</p></div>'
        f"<section>{hebrew}</section>"
        "<table><tr><th>Name</th></tr><tr><td>Ann, who speaks for the Alliance</td></tr></table>"
    )
    entry = replace(random_entry(random.Random(3), 3), content_html=content, enclosures=())
    site = Site("NATO news", "d", "https://agg.example/feeds/")
    page = tmp_path / entry_file(entry.id)
    page.parent.mkdir(parents=True)
    page.write_bytes(render_entry(site, entry, {}))
    (tmp_path / STYLESHEET).write_bytes(static_file(STYLESHEET))
    browser.get(page.as_uri())
    # Where each block's words sit in its box: the gap on their left and on their right.
    gaps: list[list[Any]] = browser.execute_script(
        "return Array.from(document.querySelectorAll('.text :is(p, li, section, th)'),"
        " e => {"
        " const r = document.createRange(); r.selectNodeContents(e);"
        " const t = r.getBoundingClientRect(), b = e.getBoundingClientRect();"
        " return [e.textContent.slice(0, 3), Math.round(t.left - b.left),"
        "         Math.round(b.right - t.right)]; })"
    )

    def side(left: int, right: int) -> str:
        return "middle" if abs(left - right) <= 2 else "right" if left > right else "left"

    sides = [(text, side(left, right)) for text, left, right in gaps]
    assert (
        sides
        == [
            (hebrew[:3], "right"),  # from the right, as it reads
            ("The", "left"),
            (hebrew[:3], "left"),  # the source said left to right: so it is
            (hebrew[:3], "right"),
            ("Sai", "right"),  # inside the source's right-to-left part
            (hebrew[:3], "right"),
            ("Nam", "middle"),  # a table's heading stays in the middle (found by review)
        ]
    ), gaps
    assert (
        browser.execute_script(
            "return getComputedStyle(document.querySelector('.text p')).unicodeBidi"
        )
        == "plaintext"
    )


def test_a_search_with_many_matches_reads_on_page_by_page(
    tmp_path: Path, feedserver: Server, browser: webdriver.Chrome
) -> None:
    """More matches than a page shows: the newest first, then a link to the older ones,
    page by page to the last, each story once; and back to the newest. (It stopped at
    50, "50 or more", with no way on: found by a review in a browser.)"""
    from email.utils import format_datetime

    items = "".join(
        f"<item><title>Zebra crossing number {n}</title><guid isPermaLink='false'>z{n}</guid>"
        f"<link>{feedserver.base}/zebra/{n}</link>"
        f"<pubDate>{format_datetime(datetime(2024, 1, 1, 9, tzinfo=UTC) + timedelta(hours=n))}"
        "</pubDate><description>A striped story.</description></item>"
        for n in range(64)
    )
    feedserver.overrides["zebra.xml"] = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Zebras</title>'
        f"<link>{feedserver.base}/</link><description>d</description>{items}</channel></rss>"
    ).encode()
    project = make_project(tmp_path, feedserver)
    with (project / "config.toml").open("a", encoding="utf-8") as config:
        config.write(f'\n[[sources]]\nname = "Zebras"\nurl = "{feedserver.base}/feeds/zebra.xml"\n')
    server = start(project)
    try:
        browser.get(server.base + "/search?q=zebra")
        assert "The newest 50 stories with “zebra”" in seen(browser)
        shown = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "ol.stories li a")]
        assert_links_answer(server, links(browser))
        browser.find_element(By.LINK_TEXT, "Older stories with “zebra”").click()
        WebDriverWait(browser, 10).until(lambda b: "after=" in b.current_url)
        text = seen(browser)
        assert "14 older stories with “zebra”" in text
        assert "Older stories with" not in text  # the last page
        shown += [a.text for a in browser.find_elements(By.CSS_SELECTOR, "ol.stories li a")]
        assert shown == [f"Zebra crossing number {n}" for n in range(63, -1, -1)]
        assert_links_answer(server, links(browser))
        assert_fits_a_phone(browser)
        browser.find_element(By.LINK_TEXT, "The newest stories with “zebra”").click()
        WebDriverWait(browser, 10).until(lambda b: "after=" not in b.current_url)
        assert "The newest 50 stories with “zebra”" in seen(browser)
    finally:
        assert server.stop() == 0
