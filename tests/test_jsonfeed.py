"""JSON Feed 1.0 and 1.1 documents: each ``tests/data/feeds/<case>.json`` beside
``<case>.expected.json`` (the entries, with their media) or ``<case>.error.txt``
(words the one-line error must contain), parsed in the sandbox as if served at
https://feeds.example/<file>; and JSON Feed sources fetched over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.errors import SourceError
from aggregator.live.jsonfeed import is_json_feed, looks_like_json_feed, parse_json_feed
from aggregator.live.sandbox import Sandbox
from aggregator.model import SourceEntry
from aggregator.source import is_feed, parse_source
from tests.feedserver import Server
from tests.test_feed_documents import entry_to_json, sandbox  # noqa: F401  (a fixture)

FEEDS = Path(__file__).parent / "data" / "feeds"
DOCUMENTS = sorted(
    p for p in FEEDS.glob("*.json") if not p.name.endswith((".expected.json", ".options.json"))
)


def as_json(entry: SourceEntry) -> dict[str, Any]:
    data = entry_to_json(entry)
    data.pop("provenance")
    data["enclosures"] = [
        {"url": e.url, "type": e.type, "length": e.length, "thumbnail": e.thumbnail}
        for e in entry.enclosures
    ]
    return data


def read(path: Path, box: Sandbox) -> list[dict[str, Any]]:
    url = f"https://feeds.example/{path.name}"
    entries = parse_source(path.read_bytes(), url=url, kind="feed", sandbox=box)
    for entry in entries:
        assert (entry.provenance.source, entry.provenance.location) == (url, url)
    return [as_json(e) for e in entries]


def test_there_are_cases() -> None:
    assert len(DOCUMENTS) >= 5


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_json_feed_document(path: Path, sandbox: Sandbox) -> None:  # noqa: F811
    error = path.with_suffix(".error.txt")
    if error.exists():
        with pytest.raises(SourceError) as raised:
            read(path, sandbox)
        assert error.read_text(encoding="utf-8").strip() in str(raised.value)
        assert f"https://feeds.example/{path.name}" in str(raised.value)
        return
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    assert read(path, sandbox) == expected


def test_nothing_hostile_survives(sandbox: Sandbox) -> None:  # noqa: F811
    for path in DOCUMENTS:
        if path.with_suffix(".error.txt").exists():
            continue
        text = json.dumps(read(path, sandbox), ensure_ascii=False).lower()
        for bad in ("<script", "javascript:", "onerror", "onclick", "<iframe", "data:text"):
            assert bad not in text, (path.name, bad)
        assert "\\u0000" not in text and "\\u0007" not in text


def test_bad_items_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    data = (FEEDS / "jsonfeed_bad_items.json").read_bytes()
    document = parse_json_feed(data, url="https://feeds.example/bad.json")
    assert document.title == "Rough feed"
    assert any(w.startswith("item 3 skipped: not a JSON object") for w in document.warnings)
    assert any(w.startswith("item 4 skipped: no title and no text") for w in document.warnings)
    assert any("'last Tuesday' is not a date" in w for w in document.warnings)
    assert any("'2024-02-30T10:00:00Z' is not a date" in w for w in document.warnings)


def test_only_the_newest_items_are_kept() -> None:
    items = [
        {"id": str(n), "title": f"Item {n}", "content_text": "x",
         "date_published": f"2024-01-{n:02d}T00:00:00Z"}
        for n in (3, 1, 5, 2, 4)
    ]  # fmt: skip
    data = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()
    document = parse_json_feed(data, url="https://feeds.example/f.json", max_entries=2)
    assert [e.title for e in document.entries] == ["Item 5", "Item 4"]
    assert "kept the newest 2 of 5 entries" in document.warnings[-1]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    data = b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + b"[" * 100_000
    data += b"]" * 100_000 + b"}"
    with pytest.raises(SourceError, match="not a JSON Feed"):
        parse_json_feed(data, url="https://feeds.example/deep.json")


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        pytest.param(b"[1]", "application/feed+json", True, id="served as feed+json"),
        pytest.param(b' \n{"items": []}', "application/json", True, id="a JSON object"),
        pytest.param(b"\xef\xbb\xbf{}", None, True, id="an object after a BOM"),
        pytest.param(b"<rss/>", "application/json", False, id="XML mislabelled as JSON"),
        pytest.param(b"14 Jun. 2024 photo.jpg", None, False, id="a saved page"),
    ],
)
def test_which_documents_are_read_as_json(
    data: bytes, content_type: str | None, expected: bool
) -> None:
    assert is_json_feed(data, content_type) is expected


def test_a_json_feed_file_is_recognised_without_a_kind() -> None:
    data = (FEEDS / "jsonfeed11.json").read_bytes()
    assert looks_like_json_feed(data) and is_feed(data, None)
    assert not is_feed(b'{"just": "json"}', None)
    entries = parse_source(data, url="feed.json")
    assert [e.title for e in entries] == ["Episode 42: the Washington Summit", "Episode 41"]


def test_a_json_feed_source_is_fetched_and_stored(project: Path, feedserver: Server) -> None:
    from aggregator.config import load_config
    from aggregator.pipeline import run
    from aggregator.store import Store

    config_path = project / "config.toml"
    text = config_path.read_text(encoding="utf-8")
    text += f'\n[[sources]]\nname = "Podcast"\nurl = "{feedserver.base}/feeds/jsonfeed11.json"\n'
    config_path.write_text(text, encoding="utf-8")
    config = load_config(config_path)
    result = run(config, now=datetime(2024, 8, 1, tzinfo=UTC))
    podcast = next(o for o in result.outcomes if o.source.name == "Podcast")
    assert podcast.error is None
    assert [e.title for e in podcast.entries] == ["Episode 42: the Washington Summit", "Episode 41"]
    with Store(config.store.path) as store:
        assert store.counts_by_source()["Podcast"] == 2
        stored = store.find("Episode 42: the Washington Summit")
    assert stored[0].enclosures[0].url == "https://podcast.example/42.mp3"
