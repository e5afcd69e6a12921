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


def _item(index: int, number: int) -> str:
    """Item ``number`` of feed ``index``, the same bytes whichever window shows it."""
    rng = random.Random(f"{index}-{number}")
    # Item n of every feed within the same hour (feed i i seconds in): the feeds publish
    # side by side, so each feed's new item is among the newest of all, as in real
    # polling, and goes to the top of the feeds it belongs to. (It was once dated
    # ``index * 1000 + number`` hours on, which put most feeds decades in the future.)
    when = START + timedelta(hours=number, seconds=index)
    title = f"{sentence(rng, 8)} {index}-{number}"
    body = f'<p>{escape(sentence(rng, 40))} <a href="/news/{index}/{number}">more</a></p>'
    return (
        "<item>"
        f"<title>{escape(title)}</title>"
        f"<link>https://example.org/{index}/news/{number}.html</link>"
        f'<guid isPermaLink="false">feed-{index}-item-{number}</guid>'
        f"<pubDate>{format_datetime(when)}</pubDate>"
        f"<description>{escape(body)}</description>"
        "</item>"
    )


def write_window(directory: Path, feeds: int, items: int, first: int) -> list[Path]:
    """The steady-state workload: each feed shows items ``first`` to ``first + items - 1``,
    newest first, as feeds do; the window moved by one is "one new item, the oldest gone"."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(feeds):
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<rss version="2.0"><channel>',
            f"<title>Synthetic feed {index}</title><link>https://example.org/{index}/</link>",
            "<description>Benchmark feed</description>",
            *(_item(index, n) for n in reversed(range(first, first + items))),
            "</channel></rss>",
        ]
        path = directory / f"feed-{index:03d}.xml"
        path.write_bytes("\n".join(parts).encode())
        paths.append(path)
    return paths


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


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _rfc822(minutes: int) -> str:
    """START + ``minutes`` as RFC 822 (email.utils.format_datetime, ten times quicker)."""
    t = START + timedelta(minutes=minutes)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} +0000"
    )


def many_items_feed(items: int, seed: int = 7) -> bytes:
    """RSS 2.0 with ``items`` small items (about 90 bytes each), dated in shuffled order
    over ten years, so that the newest are spread through the document."""
    rng = random.Random(seed)
    minutes = list(range(0, items * 50, 50))
    rng.shuffle(minutes)
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        "<title>Many items</title><link>https://example.org/</link>\n"
    )
    body = "".join(
        f"<item><title>Story {number}</title><pubDate>{_rfc822(offset)}</pubDate></item>\n"
        for number, offset in enumerate(minutes)
    )
    return (head + body + "</channel></rss>\n").encode()


def large_feed(megabytes: int, seed: int = 8) -> bytes:
    """RSS 2.0 of about ``megabytes`` MB: NATO-like items of about 2 KB each."""
    rng = random.Random(seed)
    words = [sentence(rng, 300) for _ in range(50)]  # reused: generating text is slow
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        "<title>Large feed</title><link>https://example.org/</link>\n"
    ]
    size, number = 0, 0
    while size < megabytes * 1_000_000:
        item = (
            f"<item><title>Story {number} {words[number % 50][:60]}</title>"
            f"<link>https://example.org/news/{number}.html</link>"
            f'<guid isPermaLink="false">large-{number}</guid>'
            f"<pubDate>{_rfc822(rng.randrange(10_000_000))}</pubDate>"
            f"<description>{escape(words[(number * 7) % 50])}</description></item>\n"
        )
        parts.append(item)
        size += len(item)
        number += 1
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


def listing_snapshot(megabytes: int, seed: int = 10) -> bytes:
    """A saved topic listing page (seeds/000_… layout) of about ``megabytes`` MB."""
    rng = random.Random(seed)
    texts = [sentence(rng, 40) for _ in range(50)]
    lines = []
    size, number = 0, 0
    while size < megabytes * 1_000_000:
        when = START - timedelta(days=number // 20)
        block = (
            f"{when.day:02d} {_MONTHS[when.month - 1]}. {when.year} "
            f"{when.year % 100:02d}{when.month:02d}{when.day:02d}-{number}.jpg - Photo {number}, "
            f"{rng.randrange(20, 200)}.00KB\n\n"
            f"Story {number}: {texts[number % 50][:80]}\n\n{texts[(number * 7) % 50]}\n"
        )
        lines.append(block)
        size += len(block)
        number += 1
    return (f"{number:,} Entries\n\n" + "".join(lines) + "Back To Top\n").encode()


def nested_html(size: int) -> str:
    """``size`` characters of <div> nested in <div>, each with a word of text."""
    count = size // len("<div>word </div>")
    return "<div>word " * count + "</div>" * count


def flat_html(size: int, seed: int = 11) -> str:
    """``size`` characters of ordinary news markup: paragraphs with links and emphasis."""
    rng = random.Random(seed)
    parts, length, number = [], 0, 0
    while length < size:
        part = (
            f"<p>{escape(sentence(rng, 12))} <a href='/news/{number}.htm'>more</a> "
            f"<em>{escape(sentence(rng, 3))}</em></p>"
        )
        parts.append(part)
        length += len(part)
        number += 1
    return "".join(parts)[:size]
