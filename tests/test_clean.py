from __future__ import annotations

import pytest

from aggregator.dates import parse_timestamp
from aggregator.live.clean import plain, safe_url, sanitize_html, title

BASE = "https://www.nato.int/news/"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param("<p>Hello <b>world</b></p>", "<p>Hello <b>world</b></p>", id="kept"),
        pytest.param("<script>alert(1)</script>ok", "ok", id="script and its text"),
        pytest.param(
            '<a href="&#106;avascript:x()">a</a>',
            '<a rel="noopener noreferrer nofollow">a</a>',
            id="encoded js",
        ),
        pytest.param(
            '<a href="1.htm">a</a>',
            '<a href="https://www.nato.int/news/1.htm" rel="noopener noreferrer nofollow">a</a>',
            id="relative",
        ),
        pytest.param(
            '<img src="x.png" onerror="e()">',
            '<img src="https://www.nato.int/news/x.png">',
            id="handler",
        ),
        pytest.param('<p style="position:fixed">x</p>', "<p>x</p>", id="style"),
        pytest.param("<iframe src='https://e.org'>in</iframe>x", "x", id="iframe"),
        pytest.param("a\x00b\x0bc&#1;d\ufffe", "abcd", id="xml-invalid"),
    ],
)
def test_sanitize_html(html: str, expected: str) -> None:
    assert sanitize_html(html, BASE) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.nato.int/a", "https://www.nato.int/a"),
        ("/b", "https://www.nato.int/b"),
        ("javascript:alert(1)", None),
        ("file:///etc/passwd", None),
        ("mailto:press@nato.int", None),
        ("", None),
    ],
)
def test_safe_url_for_links(url: str, expected: str | None) -> None:
    assert safe_url(url, BASE) == expected


def test_titles_are_plain_text() -> None:
    assert title("<img src=x onerror=alert(1)>Innocent &amp; <b>bold</b>") == "Innocent & bold"
    assert title("a < b") == "a < b"
    assert plain("line\nbreak\x07 and  space") == "line break and space"
    assert len(title("x" * 5000)) == 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "19 Sep. 2025 12:00:00 GMT", "2025-09-19T12:00:00+00:00", id="official odd form"
        ),
        pytest.param("Fri, 19 Sep 2025 14:00:00 +0200", "2025-09-19T14:00:00+02:00", id="rfc 822"),
        pytest.param(
            "Mon, 02 Oct 2023 00:30:00 +0200", "2023-10-02T00:30:00+02:00", id="offset kept"
        ),
        pytest.param("2024-02-16T18:00:00+01:00", "2024-02-16T18:00:00+01:00", id="rfc 3339"),
        pytest.param("2024-02-16T17:00:00Z", "2024-02-16T17:00:00+00:00", id="zulu"),
        pytest.param("2024-02-14", "2024-02-14", id="day only"),
        pytest.param("19 Sep. 2025 12:00 CEST", "2025-09-19T12:00:00+02:00", id="named zone"),
        pytest.param("19 Sep. 2025 12:00 XYZ", None, id="unknown zone"),
        pytest.param("soon", None, id="not a date"),
    ],
)
def test_parse_timestamp(text: str, expected: str | None) -> None:
    found = parse_timestamp(text)
    assert (found and found.isoformat()) == expected
