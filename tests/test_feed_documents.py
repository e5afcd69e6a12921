"""Every feed document under tests/data/feeds, parsed (in the sandbox) and compared.

``<case>.<ext>`` sits beside ``<case>.expected.json`` (the entries, as the state
file stores them, without provenance) or ``<case>.error.txt`` (words the one-line
error must contain); ``<case>.options.json`` may give ``max_entries`` (the cap,
default 1,000). Each is parsed as if served at https://feeds.example/<file>.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregator.errors import SourceError
from aggregator.live.sandbox import Sandbox
from aggregator.model import Published, SourceEntry
from aggregator.source import parse_source

FEEDS = Path(__file__).parent / "data" / "feeds"
DOCUMENTS = sorted(p for p in FEEDS.iterdir() if p.suffix in (".xml", ".rdf", ".html", ".atom"))


def _date(value: Published | None) -> dict[str, str] | None:
    if value is None:
        return None
    if value.instant is not None:
        return {"instant": value.instant.isoformat()}
    return {"day": value.day.isoformat()}


def entry_to_json(entry: SourceEntry) -> dict[str, Any]:
    return {
        "title": entry.title,
        "published": _date(entry.published),
        "summary": entry.summary,
        "link": entry.link,
        "author": entry.author,
        "guid": entry.guid,
        "updated": _date(entry.updated),
        "categories": list(entry.categories),
        "content_html": entry.content_html,
        "provenance": {
            "source": entry.provenance.source,
            "location": entry.provenance.location,
            "line": entry.provenance.line,
        },
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=1, timeout=20) as box:
        yield box


def as_data(path: Path, sandbox: Sandbox) -> list[dict[str, Any]]:
    options = path.with_suffix(".options.json")
    settings = json.loads(options.read_text(encoding="utf-8")) if options.exists() else {}
    entries = parse_source(
        path.read_bytes(),
        url=f"https://feeds.example/{path.name}",
        kind="feed",
        sandbox=sandbox,
        max_entries=settings.get("max_entries", 1000),
    )
    found = []
    for entry in entries:
        data = entry_to_json(entry)
        assert data.pop("provenance") == {
            "source": f"https://feeds.example/{path.name}",
            "location": f"https://feeds.example/{path.name}",
            "line": None,
        }
        found.append(data)
    return found


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_feed_document(path: Path, sandbox: Sandbox) -> None:
    error = path.with_suffix(".error.txt")
    if error.exists():
        with pytest.raises(SourceError) as raised:
            as_data(path, sandbox)
        assert error.read_text(encoding="utf-8").strip() in str(raised.value)
        return
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    assert as_data(path, sandbox) == expected


def test_nothing_hostile_survives(sandbox: Sandbox) -> None:
    for path in DOCUMENTS:
        if path.with_suffix(".error.txt").exists():
            continue
        text = json.dumps(as_data(path, sandbox), ensure_ascii=False).lower()
        for bad in (
            "<script",
            "javascript:",
            "onerror",
            "onclick",
            "<iframe",
            "data:text",
            "root:x:",
        ):
            assert bad not in text, (path.name, bad)
        assert "\\u0001" not in text and "\ufffe" not in text
