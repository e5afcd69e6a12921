"""What subscribers get: the feeds written by `aggregator run` on the shipped config."""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from aggregator.cli import main
from tests.feedserver import Server

ATOM = "{http://www.w3.org/2005/Atom}"
BASE = "http://127.0.0.1:8080/feeds/"
SLUGS = ("all", "ukraine", "deterrence", "eu-cooperation")


def run(project: Path) -> None:
    assert main(["-q", "--config", str(project / "config.toml"), "run"]) == 0


def snapshot(project: Path) -> dict[str, bytes]:
    files = sorted(p for p in (project / "feeds").rglob("*") if p.is_file())
    return {str(p.relative_to(project / "feeds")): p.read_bytes() for p in files}


def ids(project: Path, slug: str = "all") -> dict[str, str]:
    parsed = feedparser.parse((project / "feeds" / f"{slug}.atom").read_bytes())
    return {e.title: e.id for e in parsed.entries}


def test_regenerating_with_nothing_new_writes_identical_bytes(project: Path) -> None:
    run(project)
    first = snapshot(project)
    stamps = {p: p.stat().st_mtime_ns for p in (project / "feeds").rglob("*")}
    run(project)
    assert snapshot(project) == first
    assert {p: p.stat().st_mtime_ns for p in (project / "feeds").rglob("*")} == stamps


def test_ids_survive_restarts_and_a_new_source_joining_a_story(
    project: Path, feedserver: Server
) -> None:
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    # First without the live feed: the Kyiv story is known from a saved page only.
    config.write_text(
        text.replace(f"{feedserver.base}/feeds/rss20.xml", f"{feedserver.base}/status/503")
    )
    assert main(["-q", "--config", str(config), "run"]) == 1
    before = ids(project)
    # Then the live feed joins, telling the Kyiv story again (with a link and an exact time).
    config.write_text(text)
    run(project)
    after = ids(project)
    kyiv = "Secretary General in Kyiv: Ukraine is closer to NATO than ever before"
    assert after[kyiv] == before[kyiv]
    assert all(after[title] == before[title] for title in before)
    titles = [
        e.title for e in feedparser.parse((project / "feeds" / "all.atom").read_bytes()).entries
    ]
    assert len(titles) == len(set(titles))


def test_feeds_follow_the_validator_rules(project: Path) -> None:
    run(project)
    feeds = project / "feeds"
    for slug in SLUGS:
        rss = etree.parse(str(feeds / f"{slug}.rss")).getroot()
        channel = rss.find("channel")
        assert channel is not None
        assert channel.findtext("link") == "https://www.nato.int/"
        self_links = channel.findall(f"{ATOM}link[@rel='self']")
        assert [link.get("href") for link in self_links] == [f"{BASE}{slug}.rss"]
        dates = [channel.findtext("lastBuildDate")] + [d.text for d in rss.iter("pubDate")]
        for value in dates:
            assert value is not None and parsedate_to_datetime(value).tzinfo is not None
        for item in rss.iter("item"):
            guid = item.find("guid")
            assert guid is not None and guid.get("isPermaLink") == "false"
            assert guid.text and guid.text.startswith("tag:aggregator.localhost,2026:entry:")
            assert "<" not in (item.findtext("title") or "")
            source = item.find("source")
            if source is not None:
                assert source.get("url", "").startswith("http")

        atom = etree.parse(str(feeds / f"{slug}.atom")).getroot()
        assert atom.find(f"{ATOM}author/{ATOM}name") is not None
        assert [link.get("href") for link in atom.findall(f"{ATOM}link[@rel='self']")] == [
            f"{BASE}{slug}.atom"
        ]
        rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")
        for element in atom.iter(f"{ATOM}updated", f"{ATOM}published"):
            assert element.text and rfc3339.match(element.text), element.text
        for element in atom.iter():
            for name in ("href", "src", "url"):
                value = element.get(name)
                assert value is None or value.startswith(("http://", "https://")), value


def test_undated_entries_have_no_pub_date_and_their_first_seen_time_as_atom_updated(
    project: Path,
) -> None:
    run(project)
    rss = etree.parse(str(project / "feeds" / "all.rss")).getroot()
    undated = [i.findtext("title") for i in rss.iter("item") if i.find("pubDate") is None]
    assert "Resilience, civil preparedness and Article 3" in undated
    atom = feedparser.parse((project / "feeds" / "all.atom").read_bytes())
    resilience = next(e for e in atom.entries if e.title.startswith("Resilience"))
    assert "published" not in resilience
    assert resilience.updated  # when it was first seen; stable across runs (see above)
    # JSON Feed's dates are optional: an undated story has none (none is made up).
    document = json.loads((project / "feeds" / "all.json").read_text(encoding="utf-8"))
    item = next(i for i in document["items"] if i["title"].startswith("Resilience"))
    assert "date_published" not in item and "date_modified" not in item
    dated = [i for i in document["items"] if "date_published" in i]
    assert dated and all("date_modified" not in i for i in document["items"])


def test_json_feed(project: Path) -> None:
    run(project)
    document = json.loads((project / "feeds" / "ukraine.json").read_text(encoding="utf-8"))
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert document["feed_url"] == f"{BASE}ukraine.json"
    assert document["home_page_url"] == "https://www.nato.int/"
    rss_ids = [
        e.id for e in feedparser.parse((project / "feeds" / "ukraine.rss").read_bytes()).entries
    ]
    assert [item["id"] for item in document["items"]] == rss_ids
    for item in document["items"]:
        assert item["title"] and ("content_html" in item or "content_text" in item)
        assert "ukraine" in item["tags"]


def test_opml_and_index_list_every_feed(project: Path) -> None:
    run(project)
    opml = etree.parse(str(project / "feeds" / "topics.opml")).getroot()
    assert [o.get("xmlUrl") for o in opml.iter("outline")] == [f"{BASE}{s}.rss" for s in SLUGS]
    index = (project / "feeds" / "index.html").read_text(encoding="utf-8")
    for slug in SLUGS:
        for kind, mime in (("rss", "rss+xml"), ("atom", "atom+xml"), ("json", "feed+json")):
            assert f'type="application/{mime}"' in index
            assert f'href="{slug}.{kind}"' in index  # relative: works wherever served
    newest = feedparser.parse((project / "feeds" / "ukraine.rss").read_bytes()).entries[0]
    assert newest.title in index


def test_explain(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(project)
    config = str(project / "config.toml")
    assert main(["--config", config, "explain", "support to Ukraine is not charity"]) == 0
    out = capsys.readouterr().out
    assert "yes ukraine: matched by term 'Ukraine' in title: 'Ukraine'" in out
    # Seed 000 is NATO's deterrence listing: hinted deterrence (issue 11).
    assert "yes deterrence: matched by the source hint of 'NATO: deterrence and defence'" in out
    assert "no  eu-cooperation: no rule matched" in out
    assert main(["--config", config, "explain", "no such story anywhere"]) == 1
    assert "no entry with the id or a title like" in capsys.readouterr().err
    # Words of nothing are in every story: not a question explain answers.
    assert main(["--config", config, "explain", "  "]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "give an entry id, a title, or words of one" in captured.err
    # Longer than any title: one line, not a database error (found by review).
    assert main(["--config", config, "explain", "Ukraine " * 7000]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "give at most 1000 characters" in captured.err
