"""Snapshot test cases as data: ``<case>.txt`` beside ``<case>.expected.json``.

``<case>.options.json`` may give ``captured`` and ``kind``; ``<case>.error.txt``
replaces the expected entries for a page that must be rejected (first line: the
error class, second: words the message must contain).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator.config import parse_captured
from aggregator.model import SourceEntry
from aggregator.snapshots.page import Captured

CASES = Path(__file__).parent / "data" / "snapshots"


@dataclass(frozen=True)
class Case:
    name: str
    text: Path

    @property
    def options(self) -> dict[str, Any]:
        path = self.text.with_suffix(".options.json")
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    @property
    def captured(self) -> Captured | None:
        value = self.options.get("captured")
        return None if value is None else parse_captured(value)

    @property
    def kind(self) -> str | None:
        return self.options.get("kind")

    @property
    def expected(self) -> Path:
        return self.text.with_suffix(".expected.json")

    @property
    def error(self) -> Path:
        return self.text.with_suffix(".error.txt")


def cases() -> list[Case]:
    return [
        Case(path.stem, path)
        for path in sorted(CASES.glob("*.txt"))
        if not path.name.endswith(".error.txt")
    ]


def as_data(entry: SourceEntry) -> dict[str, Any]:
    published = entry.published
    return {
        "title": entry.title,
        "published": None if published is None else published.isoformat(),
        "precision": None if published is None else published.precision.value,
        "summary": entry.summary,
        "link": entry.link,
        "author": entry.author,
        "line": entry.provenance.line,
    }
