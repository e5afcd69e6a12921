"""A story told again, unchanged, by another source: the feeds follow the store.

Nothing in the story's text changes, so it is not "updated"; but the sources it was
read from are part of what its page shows, and a source's topic hint decides its
topics. Both must reach the files in the same run (real files, a real SQLite store,
``aggregator run`` as a user runs it).
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from aggregator.cli import main

STORY = (
    "<item><title>Allies hold a quiet meeting</title><link>https://a.example/1</link>"
    "<pubDate>Mon, 02 Oct 2023 10:00:00 +0000</pubDate><description>Short.</description></item>"
)


def feed(name: str, items: str) -> str:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
        f"<link>https://{name}.example/</link><description>d</description>{items}"
        "</channel></rss>"
    )


def project(tmp_path: Path) -> Path:
    (tmp_path / "a.xml").write_text(feed("a", STORY), encoding="utf-8")
    (tmp_path / "b.xml").write_text(feed("b", ""), encoding="utf-8")
    (tmp_path / "config.toml").write_text(
        "\n".join(
            [
                "[feeds]",
                'directory = "feeds"',
                "[store]",
                'path = "state/store.sqlite3"',
                "[[sources]]",
                'name = "Source A"',
                'path = "a.xml"',
                "[[sources]]",
                'name = "Source B"',
                'path = "b.xml"',
                'topics = ["deterrence"]',
                "[[topics]]",
                'slug = "deterrence"',
                'title = "Deterrence"',
                'description = "Deterrence and defence"',
                'terms = ["nuclear"]',
                "",
            ]
        ),
        encoding="utf-8",
    )
    return tmp_path


def run(directory: Path) -> None:
    assert main(["-q", "--config", str(directory / "config.toml"), "run"]) == 0


def titles(path: Path) -> list[str]:
    return [t.text or "" for t in etree.parse(str(path)).getroot().iter("title")][1:]


def test_a_story_told_again_by_a_hinted_source_joins_its_topic_and_page(tmp_path: Path) -> None:
    directory = project(tmp_path)
    run(directory)
    feeds = directory / "feeds"
    assert titles(feeds / "deterrence.rss") == []
    [page] = (feeds / "entries").glob("*.html")
    assert "Source B" not in page.read_text(encoding="utf-8")

    # Source B now tells the same story, word for word.
    (directory / "b.xml").write_text(feed("b", STORY), encoding="utf-8")
    run(directory)
    assert titles(feeds / "deterrence.rss") == ["Allies hold a quiet meeting"]
    shown = page.read_text(encoding="utf-8")
    assert "Source A" in shown and "Source B" in shown

    # Nothing new after that: nothing rewritten.
    before = {p: p.stat().st_mtime_ns for p in feeds.rglob("*") if p.is_file()}
    run(directory)
    assert {p: p.stat().st_mtime_ns for p in feeds.rglob("*") if p.is_file()} == before


def test_a_story_keeps_a_hinted_topic_when_another_source_changes_its_text(
    tmp_path: Path,
) -> None:
    directory = project(tmp_path)
    (directory / "b.xml").write_text(feed("b", STORY), encoding="utf-8")
    run(directory)
    feeds = directory / "feeds"
    assert titles(feeds / "deterrence.rss") == ["Allies hold a quiet meeting"]

    # Source A (no hint) gives the story a longer summary: it changes, and is judged
    # again with both its sources, B's hint included.
    longer = STORY.replace("Short.", "Short. And now a longer summary from A.")
    (directory / "a.xml").write_text(feed("a", longer), encoding="utf-8")
    run(directory)
    assert titles(feeds / "deterrence.rss") == ["Allies hold a quiet meeting"]
    assert "longer summary" in (feeds / "deterrence.rss").read_text(encoding="utf-8")
