"""Snapshot test cases as data: ``<case>.txt`` beside ``<case>.expected.json``, in
tests/data/snapshots and tests/data/snapshot_faults.

``<case>.options.json`` may give ``captured`` and ``kind``; ``<case>.error.txt``
replaces the expected entries for a page that must be rejected (first line: the
error class, second: words the message must contain).
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator.config import parse_captured
from aggregator.model import SourceEntry
from aggregator.snapshots.page import Captured

CASES = Path(__file__).parent / "data" / "snapshots"
# Pages that once broke a layout (a control character, an unrecognised date line …),
# each beside what it must read as.
FAULTS = Path(__file__).parent / "data" / "snapshot_faults"


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
        for folder in (CASES, FAULTS)
        for path in sorted(folder.glob("*.txt"))
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


# Generated pages, for sizes no one commits: n items of each layout, every item distinct.
_MONTHS = (
    "Jan.",
    "Feb.",
    "Mar.",
    "Apr.",
    "May.",
    "Jun.",
    "Jul.",
    "Aug.",
    "Sep.",
    "Oct.",
    "Nov.",
    "Dec.",
)


def listing_page(count: int) -> str:
    """A listing of ``count`` items, item i dated day i % 28 + 1 of month i % 12 + 1, 2020."""
    head = f"{count:,} Entries\n\n"
    return head + "".join(
        f"{i % 28 + 1:02d} {_MONTHS[i % 12]} 2020 img-{i}.jpg - Caption {i}, with a comma, "
        f"{i % 900 + 10}.5KB\n\nAllies agree plan number {i}\n\n"
        f"Ministers met in Brussels to agree plan number {i} for the Alliance.\n"
        for i in range(count)
    )


def newsfeed_page(count: int) -> str:
    """A news feed page of ``count`` items, each ``i % 5 + 1`` weeks old."""
    return "".join(
        f"Partners discuss cooperation, item {i}\n\n{i % 5 + 1} weeks ago\n"
        f"Representatives of partner nations met for item {i}.\n\n"
        for i in range(count)
    )


def digest_page(count: int) -> str:
    """A digest announcing ``count`` headlines in bullets, each printed again below."""
    bullets = "".join(f"• Secretary General meets partner {i}\n" for i in range(count))
    items = "".join(
        f"Secretary General meets partner {i}\n\nSecretary General meets partner {i}\n\n"
        f"The Secretary General welcomed partner {i} to NATO Headquarters on 26 October.\n\n"
        "Read more\n\n"
        for i in range(count)
    )
    return f"{bullets}\n27 October 2023\n\n{items}"


def event_page(count: int) -> str:
    """An event page of ``count`` headline and teaser pairs."""
    return "".join(
        f"Meeting of NATO Ministers, part {i}\n\n"
        f"Brussels, 11-12 October 2023 Ministers will meet for part {i} […]\n\n"
        for i in range(count)
    )


def random_text(size: int, seed: int = 9) -> str:
    """About ``size`` characters of random words in lines of random length, blank ones too."""
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 9))) for _ in range(2000)]
    lines: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choices(words, k=rng.choice((0, 1, 3, 12, 40, 400))))
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)
