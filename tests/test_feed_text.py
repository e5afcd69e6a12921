"""What a subscriber reads in the feeds `aggregator run` writes from the shipped seeds.

Text escaped exactly once, every item with a link, and the stylesheet instruction
that lets a browser show RSS and Atom as a page.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import feedparser
from lxml import etree

from aggregator.cli import main

ATOM = "{http://www.w3.org/2005/Atom}"
BASE = "http://127.0.0.1:8080/feeds/"
SLUGS = ("all", "ukraine", "deterrence", "eu-cooperation")


def run(project: Path) -> None:
    assert main(["-q", "--config", str(project / "config.toml"), "run"]) == 0


def _texts(project: Path) -> dict[str, list[str]]:
    """Every text a reader sees in each feed file, read back once (see test_roundtrip)."""
    found: dict[str, list[str]] = {}
    for path in sorted((project / "feeds").glob("*.*")):
        if path.suffix in (".rss", ".atom"):
            texts = []
            for entry in feedparser.parse(path.read_bytes()).entries:
                details = [entry.title_detail, entry.get("summary_detail")]
                for detail in details + list(entry.get("content", [])):
                    if detail:
                        value = detail["value"]
                        texts.append(html.unescape(value) if "html" in detail["type"] else value)
            root = etree.parse(str(path)).getroot()
            for element in root.iter():
                if isinstance(element.tag, str) and element.text:
                    texts.append(element.text)
            found[path.name] = texts
        elif path.suffix == ".json":
            items = json.loads(path.read_text(encoding="utf-8"))["items"]
            found[path.name] = [
                item[key]
                for item in items
                for key in ("title", "summary", "content_text", "content_html")
                if key in item
            ]
    return found


def test_text_is_escaped_exactly_once(project: Path) -> None:
    run(project)
    texts = _texts(project)
    assert sorted(texts) == sorted(f"{s}.{x}" for s in SLUGS for x in ("rss", "atom", "json"))
    for name, values in texts.items():
        assert values, name
        for value in values:
            for bad in ("&amp;#", "&amp;quot;", "&#x27;", "&#39;", "&quot;"):
                assert bad not in value, (name, value)
    # The stories the issue named come back as written.
    atom = feedparser.parse((project / "feeds" / "all.atom").read_bytes())
    summaries = [e.summary for e in atom.entries if "summary" in e]
    assert any("Bavaria's Christian Social Union" in s for s in summaries)
    assert any('saying: "since 1949' in s for s in summaries)


def test_every_item_has_a_link(project: Path) -> None:
    run(project)
    feeds = project / "feeds"
    pages = 0
    for slug in SLUGS:
        rss = feedparser.parse((feeds / f"{slug}.rss").read_bytes())
        atom = feedparser.parse((feeds / f"{slug}.atom").read_bytes())
        items = json.loads((feeds / f"{slug}.json").read_text(encoding="utf-8"))["items"]
        assert rss.entries and len(rss.entries) == len(atom.entries) == len(items)
        for from_rss, from_atom, from_json in zip(rss.entries, atom.entries, items, strict=True):
            assert from_rss.id == from_atom.id == from_json["id"]
            link = from_rss.link
            assert link == from_atom.link == from_json["url"]
            digest = from_rss.id.rsplit(":", 1)[-1]
            if link.startswith(BASE):
                # No link of its own: the story's page on our site.
                assert link == f"{BASE}entries/{digest}.html"
                pages += 1
            else:
                assert link.startswith("https://www.nato.int/") or link.startswith(
                    "http://127.0.0.1"
                )
    assert pages  # the saved pages give no links of their own
    # The live feed's stories keep the source's own link.
    kyiv = next(
        e for e in feedparser.parse((feeds / "all.rss").read_bytes()).entries if "Kyiv:" in e.title
    )
    assert kyiv.link == "https://www.nato.int/cps/en/natohq/news_218172.htm"


def test_rss_and_atom_name_the_stylesheet(project: Path) -> None:
    run(project)
    for slug in SLUGS:
        for extension in ("rss", "atom"):
            data = (project / "feeds" / f"{slug}.{extension}").read_bytes()
            first, second = data.split(b"\n")[:2]
            assert first.startswith(b"<?xml version=")
            assert second == b'<?xml-stylesheet type="text/xsl" href="feed.xsl"?>'
            root = etree.fromstring(data)  # well-formed
            instruction = root.getprevious()
            assert isinstance(instruction, etree._ProcessingInstruction)
            assert instruction.target == "xml-stylesheet"
            assert instruction.get("href") == "feed.xsl" and instruction.get("type") == "text/xsl"
            assert root.tag in ("rss", f"{ATOM}feed")
