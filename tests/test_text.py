"""fold and title_key: their ASCII shortcuts give what the general rule gives."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest

from aggregator import text as text_module
from aggregator.text import fold, title_key, unaccented, windows_1252_references

# The rule as first written: one translation table, NFKC before it.
# ... and the spaces a writer may choose (no-break, typographic, ideographic).
_SPACES = "\u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
_TABLE = str.maketrans(
    {"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", **dict.fromkeys(_SPACES, " ")}
)
_ANNOUNCER = re.compile(
    r"^(?:Video|Videos|Photo|Photos|Photo gallery|Gallery|Podcast|Audio|Live|Interview|"
    r"Infographic|Speech|Opinion)\s*[:–—-]\s+",
    re.IGNORECASE,
)


def reference_key(title: str) -> str:
    text = " ".join(unicodedata.normalize("NFKC", title).translate(_TABLE).casefold().split())
    return _ANNOUNCER.sub("", text)


CASES = [
    "",
    "NATO’s new Board meets",
    "Video: NATO's new  board meets",
    "VIDEO — “Steadfast” exercise – day 2",
    "Straße und STRASSE",
    "ﬁnal ﬂight: Ⅸ ＮＡＴＯ",
    "tab\there\nnewline\u00a0nbsp\u2003em space",
    "Ukraine–NATO Council",
    "Interview:\u00a0the Secretary General",
    "plain ascii title",
    "  leading and trailing  ",
]


@pytest.mark.parametrize("title", CASES)
def test_title_key_is_the_general_rule(title: str) -> None:
    assert title_key(title) == reference_key(title)
    assert fold(title) == title.translate(_TABLE)


def test_title_key_on_random_mixtures() -> None:
    rng = random.Random(14)
    alphabet = "aZ 09:-–—‘’“”\"'ﬁÅé\u00a0\u2003\tßİ"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(16)))
        for title in (text, "Video: " + text, "photo —" + text):
            assert title_key(title) == reference_key(title), repr(title)
            assert fold(title) == title.translate(_TABLE), repr(title)


@pytest.mark.parametrize(
    ("written", "read"),
    [
        (b"Read more&#133;", b"Read more&#8230;"),
        (b"Read more&#x85;", b"Read more&#8230;"),
        (b"&#0146;&#x092;&#x9c;", b"&#8217;&#8217;&#339;"),
        (b"&#128;5 and &#159;", b"&#8364;5 and &#376;"),
        (b"gone: &#129;&#x8d;&#143;&#144;&#x9D;.", b"gone: ."),
        # Not C1 controls, or not references an XML parser reads: as they are.
        (b"&#127;&#160;&#8230;&#1330;&#x9F0;&#x185;&#X85;&amp;#133;&#133", None),
        (b"no references at all", None),
    ],
)
def test_c1_references_read_as_windows_1252(written: bytes, read: bytes | None) -> None:
    assert windows_1252_references(written) == (written if read is None else read)


def test_c1_references_in_text_that_is_no_markup_are_left_as_written() -> None:
    """In a CDATA section, a comment or a processing instruction "&#133;" is text ("how
    to type &#133;"), and in a document not in an ASCII-compatible encoding the bytes
    need not be those characters at all (ISO-2022-JP: found by review)."""
    literal = b"<t><![CDATA[type &#133;]]><!-- &#133; --><?pi &#133;?>&#133;</t>"
    assert windows_1252_references(literal) == (
        b"<t><![CDATA[type &#133;]]><!-- &#133; --><?pi &#133;?>&#8230;</t>"
    )
    unclosed = b"<t>&#150;<![CDATA[&#150;"
    assert windows_1252_references(unclosed) == b"<t>&#8211;<![CDATA[&#150;"
    jis = '<?xml version="1.0" encoding="ISO-2022-JP"?><t>Γ嘘鎧</t>'.encode("iso-2022-jp")
    assert b"&#133;" in jis and windows_1252_references(jis) == jis
    plain = b"<t>&#133;</t>"
    assert windows_1252_references(plain, "iso-2022-jp") == plain
    assert windows_1252_references(plain, "windows-1252") == b"<t>&#8230;</t>"


def _unaccented_in_full(text: str) -> str:
    """unaccented() without its shortcut for text it cannot change."""
    bare = text_module._ACCENTS.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", bare)


def test_the_shortcut_passes_over_no_character_unaccented_changes() -> None:
    """Text with none of the characters the shortcut looks for is left as it is: every
    code point is checked, alone and followed by each accent it may carry."""
    accents = [chr(c) for c in range(0x300, 0x370)]
    for code in range(0x80, 0x110000):
        if 0xD800 <= code < 0xE000:
            continue
        character = chr(code)
        if text_module._MAY_HAVE_ACCENTS.search(character):
            continue
        assert _unaccented_in_full(character) == unicodedata.normalize("NFC", character), hex(code)
    assert all(text_module._MAY_HAVE_ACCENTS.search(accent) for accent in accents)


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Siliņa", "Silina"),
        ("Šefčovič", "Sefcovic"),
        ("Hà Nội", "Ha Noi"),
        ("Ελλάδα", "Ελλαδα"),
        ("Spin\u0308al", "Spinal"),
        ("\u01ee \u01ef", "\u01b7 \u0292"),  # Ǯ ǯ: a case pair stays one
        ("Łódź", "Łodz"),
        ("Мой край, Київ", "Мой край, Київ"),
        ("北京 مرحبا", "北京 مرحبا"),
    ],
)
def test_unaccented(written: str, read: str) -> None:
    assert unaccented(written) == read == _unaccented_in_full(written)
