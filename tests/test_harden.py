"""Defusing: declarations go, in time linear in the document, however they are cut off."""

from __future__ import annotations

import pytest

from aggregator.live.harden import defuse

RSS = b'<rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            b'<!DOCTYPE rss [<!ENTITY a "x>y">]>' + RSS, RSS, id="internal subset with a '>'"
        ),
        pytest.param(b"<!ENTITY a 'b'>" + RSS, RSS, id="stray declaration"),
        pytest.param(
            b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN">' + RSS,
            b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN">' + RSS,
            id="external DTD named only: kept",
        ),
        # Hundreds of thousands of unclosed declarations: each used to be scanned to the
        # end of the document, minutes of work; an unclosed one now runs to the end.
        pytest.param(RSS + b"<!ENTITY a " * 200_000, RSS, id="unclosed declarations"),
        pytest.param(RSS + b"<!DOCTYPE a [" * 200_000, RSS, id="unclosed internal subsets"),
    ],
)
def test_defuse(document: bytes, expected: bytes) -> None:
    assert defuse(document) == expected
