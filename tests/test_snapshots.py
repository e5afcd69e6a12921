"""Every snapshot case under tests/data/snapshots, read and compared with its expected data."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import aggregator
import aggregator.snapshots.page as page_module
from aggregator import AggregatorError, Published, SourceError, UnknownLayoutError
from aggregator.cli import main
from aggregator.errors import CaptureTimeError
from aggregator.snapshots.page import MAX_WARNINGS, SNIFF_CHARS, Page
from aggregator.source import MAX_SNAPSHOT_BYTES
from aggregator.text import MAX_TEXT, MAX_TITLE, NOT_XML
from tests.snapshot_cases import (
    CASES,
    FAULTS,
    Case,
    as_data,
    cases,
    digest_page,
    event_page,
    listing_page,
    newsfeed_page,
    random_text,
)


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.name)
def test_snapshot(case: Case) -> None:
    data = case.text.read_bytes()
    if case.error.exists():
        error_class, words = case.error.read_text(encoding="utf-8").splitlines()[:2]
        with pytest.raises(AggregatorError) as raised:
            aggregator.parse_source(
                data, url=case.text.name, kind=case.kind, captured=case.captured
            )
        assert type(raised.value).__name__ == error_class
        assert words in str(raised.value)
        assert case.text.name in str(raised.value)
        assert "\n" not in str(raised.value)
        return
    entries = aggregator.parse_source(
        data, url=case.text.name, kind=case.kind, captured=case.captured
    )
    expected = json.loads(case.expected.read_text(encoding="utf-8"))
    assert [as_data(entry) for entry in entries] == expected
    assert all(entry.source == case.text.name for entry in entries)


def test_every_case_has_an_expectation() -> None:
    for case in cases():
        assert case.expected.exists() != case.error.exists(), case.name


def outcome(data: bytes, case: Case) -> list[dict[str, Any]] | str:
    """The entries read from ``data`` as ``case`` says, or the error's class and message."""
    try:
        entries = aggregator.parse_source(
            data, url=case.text.name, kind=case.kind, captured=case.captured
        )
    except AggregatorError as error:
        return f"{type(error).__name__}: {error}"
    return [as_data(entry) for entry in entries]


@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        pytest.param(codecs.BOM_UTF8, "utf-8", id="UTF-8 with BOM"),
        pytest.param(codecs.BOM_UTF16_LE, "utf-16-le", id="UTF-16 LE with BOM"),
        pytest.param(codecs.BOM_UTF16_BE, "utf-16-be", id="UTF-16 BE with BOM"),
    ],
)
@pytest.mark.parametrize("case", cases(), ids=lambda case: case.name)
def test_snapshot_in_another_encoding(case: Case, bom: bytes, codec: str) -> None:
    text = case.text.read_text(encoding="utf-8")
    assert outcome(bom + text.encode(codec), case) == outcome(text.encode("utf-8"), case)


@pytest.mark.parametrize(
    ("data", "words", "where"),
    [
        pytest.param(b"60 Entries\n\n\xe9t\xe9\n", "not UTF-8 text (byte 0xe9", 3, id="Latin-1"),
        pytest.param(
            codecs.BOM_UTF16_LE + "60 Entries\n".encode("utf-16-le") + b"\x00\xdc",
            "not UTF-16 text",
            2,
            id="UTF-16 with a lone surrogate",
        ),
        pytest.param(
            codecs.BOM_UTF16_BE + "60 Entries".encode("utf-16-be") + b"\x00",
            "not UTF-16 text",
            1,
            id="UTF-16 of odd length",
        ),
        pytest.param(
            "60 Entries\nété".encode("utf-16-le"), "not UTF-8 text", 2, id="UTF-16 without BOM"
        ),
    ],
)
def test_text_that_cannot_be_decoded(data: bytes, words: str, where: int) -> None:
    with pytest.raises(SourceError) as raised:
        aggregator.parse_source(data, url="page.txt")
    message = str(raised.value)
    assert words in message
    assert f"page.txt:{where}" in message
    assert "UTF-16 with a byte-order mark" in message
    assert "\n" not in message


def test_snapshot_over_the_size_cap_is_refused_in_one_line() -> None:
    page = listing_page(MAX_SNAPSHOT_BYTES // 150).encode()
    assert len(page) > MAX_SNAPSHOT_BYTES
    with pytest.raises(SourceError) as raised:
        aggregator.parse_source(page, url="huge.txt")
    message = str(raised.value)
    assert message.startswith("huge.txt: saved page is ")
    assert f"{len(page):,} bytes" in message
    assert f"{MAX_SNAPSHOT_BYTES:,}-byte limit" in message
    assert "split it into several sources" in message
    assert "\n" not in message


def test_largest_listing_under_the_cap_is_read_whole() -> None:
    count = MAX_SNAPSHOT_BYTES // 200
    page = listing_page(count).encode()
    assert MAX_SNAPSHOT_BYTES * 0.8 < len(page) <= MAX_SNAPSHOT_BYTES
    entries = aggregator.parse_source(page, url="large.txt")
    assert len(entries) == count
    last = entries[-1]
    assert last.title == f"Allies agree plan number {count - 1}"
    assert last.published == Published.on_day(
        date(2020, (count - 1) % 12 + 1, (count - 1) % 28 + 1)
    )
    assert last.provenance.line == 5 * count  # the title line of the last block


@pytest.mark.parametrize(
    ("page", "captured", "last_title"),
    [
        pytest.param(
            newsfeed_page,
            date(2022, 11, 26),
            "Partners discuss cooperation, item 19999",
            id="newsfeed",
        ),
        pytest.param(digest_page, None, "Secretary General meets partner 19999", id="digest"),
        pytest.param(event_page, None, "Meeting of NATO Ministers, part 19999", id="event-page"),
    ],
)
def test_many_items_of_each_layout(
    page: Callable[[int], str], captured: date | None, last_title: str
) -> None:
    # Each of these once walked the rest of the page again per item (a slice or a
    # list.pop(0) per item): a large page took minutes.
    entries = aggregator.parse_source(page(20_000).encode(), url="many.txt", captured=captured)
    assert len(entries) == 20_000
    assert entries[-1].title == last_title


def test_random_text_fits_no_layout() -> None:
    text = random_text(MAX_SNAPSHOT_BYTES - 1000)
    with pytest.raises(UnknownLayoutError, match="fits no known page layout"):
        aggregator.parse_source(text.encode(), url="random.txt")


@pytest.mark.parametrize("text", [b"", b"\n\n   \n\t\n"])
def test_an_empty_file_is_said_to_be_empty(text: bytes) -> None:
    with pytest.raises(UnknownLayoutError) as raised:
        aggregator.parse_source(text, url="empty.txt")
    assert str(raised.value) == (
        "empty.txt: the file is empty (or only blank lines); save the news page's text into it"
    )


def test_layout_is_recognised_from_the_head_of_the_page() -> None:
    # Sniffing reads SNIFF_CHARS; a page that shows nothing of its layout before is unknown,
    # however many items follow, rather than scanned whole by every layout.
    filler = random_text(SNIFF_CHARS + 1000)
    with pytest.raises(UnknownLayoutError):
        aggregator.parse_source(f"{filler}\n\n{listing_page(10)}".encode(), url="late.txt")
    entries = aggregator.parse_source(
        f"{filler}\n\n{listing_page(10)}".encode(), url="late.txt", kind="listing"
    )
    assert len(entries) == 10


def test_warnings_of_one_page_are_capped(caplog: pytest.LogCaptureFixture) -> None:
    junk = "\n".join(f"junk line {i}" for i in range(1000))
    entries = aggregator.parse_source(
        f"{junk}\n{listing_page(3)}".encode(), url="junk.txt", kind="listing"
    )
    assert len(entries) == 3
    # Only this page's: a thread another test left behind may log too.
    messages = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("junk.txt")
    ]
    assert len(messages) == MAX_WARNINGS + 1
    assert messages[0].startswith("junk.txt:1: text before the first dated item ignored")
    assert messages[-1] == f"junk.txt: more than {MAX_WARNINGS} warnings; the rest are not shown"


def test_a_page_with_a_control_character_still_makes_the_feeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An ESC kept in a title once failed the RSS renderer ("All strings must be XML
    # compatible"), and the run wrote no feed at all.
    page = (FAULTS / "control_characters.txt").read_bytes()
    (tmp_path / "page.txt").write_bytes(page)
    (tmp_path / "config.toml").write_text(
        '[feeds]\ndirectory = "feeds"\n[store]\npath = "state/s.sqlite3"\n'
        '[[sources]]\nname = "page"\npath = "page.txt"\n'
        '[[topics]]\nslug = "t"\ntitle = "T"\nterms = ["NATO"]\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    assert main(["--config", str(tmp_path / "config.toml"), "run"]) == 0
    rss = (tmp_path / "feeds" / "all.rss").read_text(encoding="utf-8")
    assert "NATO title with a stray [0m escape" in rss
    assert NOT_XML.search(rss) is None


def test_blank_lines_are_not_kept_one_by_one() -> None:
    # A 16 MB file of blank lines once took 38 s and 1.6 GB: a Line per blank line.
    blank = "\n" * 1_000_000
    text = f"{blank}{listing_page(2)}{blank}\n"
    page = Page.from_text(text, source="blank.txt", location="blank.txt")
    assert len(page.lines) < 20
    entries = aggregator.parse_source(text.encode(), url="blank.txt", kind="listing")
    assert [entry.provenance.line for entry in entries] == [1_000_005, 1_000_010]


def test_page_of_too_many_lines_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_module, "MAX_LINES", 1_000)
    text = "x\n\n" + "x\n" * 1_000
    with pytest.raises(SourceError) as raised:
        aggregator.parse_source(text.encode(), url="lines.txt", kind="listing")
    message = str(raised.value)
    assert message.startswith("lines.txt:1002: saved page has more than 1,000 ")
    assert "split it into several sources" in message
    assert "\n" not in message


def test_snapshot_entries_are_capped_as_live_entries_are(caplog: pytest.LogCaptureFixture) -> None:
    title = "Allies " * 300  # 2,100 characters
    summary = "Ministers met in Brussels. " * 1_000  # 26,000 characters
    text = f"1 Entries\n\n14 Jun. 2024 photo.jpg, 10KB\n\n{title}\n\n{summary}\n"
    (entry,) = aggregator.parse_source(text.encode(), url="long.txt")
    assert len(entry.title) == MAX_TITLE
    assert entry.title == title[: MAX_TITLE - 1].rstrip() + "…"
    assert len(entry.summary) <= MAX_TEXT
    assert entry.summary == summary[: MAX_TEXT - 1].rstrip() + "…"
    assert "long.txt:5: title over 1,000 or summary over 20,000 characters cut" in caplog.text


@pytest.mark.parametrize(
    ("counter", "warned"),
    [
        pytest.param("5 Entries", True, id="fewer than a page's worth"),
        pytest.param("2 Entries", True, id="more read than counted"),
        pytest.param("3 Entries", False, id="as counted"),
        pytest.param("60 Entries", False, id="one page of many"),
    ],
)
def test_listing_counter_that_disagrees_is_warned(
    counter: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    text = (FAULTS / "listing_date_alone.txt").read_text(encoding="utf-8")
    text = text.replace("3 Entries", counter, 1)
    assert len(aggregator.parse_source(text.encode(), url="count.txt")) == 3
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("count.txt")]
    count = int(counter.split()[0])
    expected = [
        f"count.txt:1: the page counts {count} entries but 3 were found; check the page for "
        "items run together or cut off"
    ]
    assert messages == (expected if warned else [])


def test_capture_time_error_says_what_to_set_for_any_command() -> None:
    # "pass --captured" is an option of `aggregator parse` only; `run` takes the config key.
    data = (CASES / "newsfeed_no_capture.txt").read_bytes()
    with pytest.raises(CaptureTimeError) as raised:
        aggregator.parse_source(data, url="ages.txt")
    message = str(raised.value)
    assert "the page prints no dates to infer it from" in message
    assert "set captured = YYYY-MM-DD for this source in config.toml" in message
    assert "(aggregator parse: --captured YYYY-MM-DD)" in message
    assert "or pass --captured" not in message
