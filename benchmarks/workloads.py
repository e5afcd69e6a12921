"""Synthetic workloads, built the same way every time (seeded), in a temporary directory."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

WORDS = (  # noqa: SIM905
    "NATO Allies defence Ukraine Secretary General ministers meeting security cooperation "
    "partners deterrence summit Brussels exercise support training capability industry "
    "European Union Council Kyiv posture nuclear Baltic Arctic maritime cyber resilience"
).split()
START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def rss_feed(index: int, items: int, rng: random.Random) -> bytes:
    """An RSS 2.0 feed like NATO's: title, link, guid, pubDate, an HTML description."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>Synthetic feed {index}</title><link>https://example.org/{index}/</link>",
        "<description>Benchmark feed</description>",
    ]
    for number in range(items):
        when = START + timedelta(hours=index * items + number)
        title = f"{sentence(rng, 8)} {index}-{number}"
        body = f'<p>{escape(sentence(rng, 40))} <a href="/news/{index}/{number}">more</a></p>'
        parts.append(
            "<item>"
            f"<title>{escape(title)}</title>"
            f"<link>https://example.org/{index}/news/{number}.html</link>"
            f'<guid isPermaLink="false">feed-{index}-item-{number}</guid>'
            f"<pubDate>{format_datetime(when)}</pubDate>"
            f"<description>{escape(body)}</description>"
            "</item>"
        )
    parts.append("</channel></rss>")
    return "\n".join(parts).encode()


def write_feeds(directory: Path, feeds: int, items: int, seed: int = 6) -> list[Path]:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(feeds):
        path = directory / f"feed-{index:03d}.xml"
        path.write_bytes(rss_feed(index, items, rng))
        paths.append(path)
    return paths


TOPICS = """
[[topics]]
slug = "ukraine"
title = "Ukraine"
description = "Ukraine"
terms = ["Ukraine", "Kyiv"]
fields = ["title"]

[[topics]]
slug = "deterrence"
title = "Deterrence"
description = "Deterrence"
terms = ["deterrence", "nuclear"]
fields = ["title"]

[[topics]]
slug = "eu-cooperation"
title = "EU cooperation"
description = "EU"
terms = ["European Union"]
fields = ["title"]
"""


def write_config(directory: Path, sources: list[str], *, urls: bool) -> Path:
    lines = [
        "[feeds]",
        'directory = "out"',
        "[store]",
        'path = "state/store.sqlite3"',
        "[fetch]",
        "workers = 16",
    ]
    for index, source in enumerate(sources):
        key = "url" if urls else "path"
        lines += ["[[sources]]", f'name = "feed {index}"', f'{key} = "{source}"']
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n" + TOPICS, encoding="utf-8")
    return path
