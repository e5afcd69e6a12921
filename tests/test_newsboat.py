"""A real feed reader: Debian's newsboat reads topic feeds from `aggregator serve`.

newsboat runs without a terminal (``-x reload``) and keeps what it read in its SQLite
cache (table ``rss_item``), which is what a person then reads in it. newsboat must be
installed (`.ci/run` installs it): without it this test fails, it is not skipped.
"""

from __future__ import annotations

import html
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import html as lxml_html

from aggregator.model import Entry
from aggregator.store import Store
from tests.conftest import make_project
from tests.feedserver import Server
from tests.test_serve import Serving, start

RSS20 = (Path(__file__).parent / "data" / "feeds" / "rss20.xml").read_bytes()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, feedserver: Server) -> Iterator[Serving]:
    """The shipped config, its live feed's stories linking to pages the feed server has
    (NATO's own pages cannot be fetched: tests never reach the internet)."""
    feedserver.overrides["newsboat.xml"] = RSS20.replace(
        b"https://www.nato.int/cps/en/natohq/", f"{feedserver.base}/html/".encode()
    ).replace(b"<link>/cps/en/natohq/", b"<link>/html/")
    project = make_project(tmp_path_factory.mktemp("newsboat"), feedserver)
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8").replace("/feeds/rss20.xml", "/feeds/newsboat.xml")
    config.write_text(text, encoding="utf-8")
    server = start(project)
    try:
        yield server
    finally:
        del feedserver.overrides["newsboat.xml"]
        assert server.stop() == 0


def read_with_newsboat(url: str, directory: Path) -> list[sqlite3.Row]:
    newsboat = shutil.which("newsboat")
    if newsboat is None:
        pytest.fail("newsboat is not installed: apt-get install newsboat")
    directory.mkdir()
    (directory / "urls").write_text(url + "\n", encoding="utf-8")
    (directory / "config").write_text("download-retries 1\ndownload-timeout 20\n")
    done = subprocess.run(
        [newsboat, "-u", "urls", "-c", "cache.db", "-C", "config", "-x", "reload"],
        cwd=directory,
        env={"HOME": str(directory), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(directory / "cache.db") as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT title, url, content FROM rss_item").fetchall()


def shown_text(content: str) -> str:
    """The text newsboat shows for an item's content (it renders it as HTML)."""
    if not content.strip():
        return ""
    return lxml_html.fragment_fromstring(content, create_parent="div").text_content()


def stored(project: Path, topic: str) -> dict[str, Entry]:
    with Store(project / "state" / "aggregator.sqlite3") as store:
        return {entry.title: entry for entry in store.newest(100, topic)}


@pytest.mark.parametrize("extension", ["rss", "atom"])
def test_newsboat_reads_every_story_exactly_and_each_one_opens(
    site: Serving, tmp_path: Path, extension: str
) -> None:
    items = read_with_newsboat(f"{site.base}/feeds/ukraine.{extension}", tmp_path / "newsboat")
    entries = stored(site.project, "ukraine")
    assert sorted(item["title"] for item in items) == sorted(entries)  # exactly as stored
    assert any("’" in title or "'" in title for title in entries)  # quotes survive
    for item in items:
        entry = entries[item["title"]]
        if entry.content_html:
            assert shown_text(item["content"]) == shown_text(entry.content_html)
        else:
            assert shown_text(item["content"]) == entry.summary, item["title"]
            assert html.unescape(item["content"]) == entry.summary
        assert item["url"], item["title"]
        response = httpx.get(item["url"], timeout=10)
        assert response.status_code == 200, item["url"]
        if item["url"].startswith(f"{site.base}/feeds/entries/"):
            page = lxml_html.fromstring(response.content)
            assert page.findtext(".//h1") == entry.title  # the story's own page
    assert any(item["url"].startswith(f"{site.base}/feeds/entries/") for item in items)
    assert any("/html/" in item["url"] for item in items)  # the source's own link
