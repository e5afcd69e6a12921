"""Our XML escaping is the standard library's (xml.sax.saxutils), which it replaces."""

from __future__ import annotations

import random
from xml.sax.saxutils import escape, quoteattr

import pytest

from aggregator.xmlescape import escape_text, quote_attribute

EDGES = [
    "",
    "plain",
    "Tom & Jerry <b>",
    'say "hi"',
    "it's",
    "both \" and '",
    "line\nbreak\r\tand tab",
    "&amp; already",
    "é ü – “curly”",
    "]]>",
]


@pytest.mark.parametrize("text", EDGES)
def test_edge_cases(text: str) -> None:
    assert escape_text(text) == escape(text)
    assert quote_attribute(text) == quoteattr(text)


def test_random_text() -> None:
    rng = random.Random(14)
    alphabet = "ab &<>\"'\n\r\t;é#"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        assert escape_text(text) == escape(text), text
        assert quote_attribute(text) == quoteattr(text), text
