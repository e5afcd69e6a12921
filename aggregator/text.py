"""Small text helpers shared by the adapters, deduplication and topic rules."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# XML 1.0 forbids C0 controls other than tab, newline and carriage return, lone
# surrogates, U+FFFE and U+FFFF; C1 controls are allowed but never meant in news text.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

# C1 controls in news text are Windows-1252 bytes read as Latin-1 (a document labelled
# ISO-8859-1 holding curly quotes, as most such documents do) or character references
# such as "&#146;" read by an XML parser: read as browsers read both (the WHATWG
# Encoding standard takes the label "iso-8859-1" as windows-1252; HTML maps those
# references so), not dropped. The five bytes windows-1252 leaves undefined map to
# nothing.
_C1 = re.compile("[\x80-\x9f]")
_WINDOWS_1252 = {
    code: bytes([code]).decode("cp1252", errors="ignore") or None for code in range(0x80, 0xA0)
}


def composed(text: str) -> str:
    """``text`` in Unicode's composed form (NFC), as the web's character model asks of
    content: "é" written as "e" and a combining accent is stored as "é", so that a
    search typed either way finds it (the index's words are cut from the stored text)."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


# The accents a Latin or Greek letter decomposes into (NFD: U+0300 to U+036F after it;
# the Latin letters of IPA and of the extensions too: "ǯ" as "Ǯ", found by review).
_LATIN_OR_GREEK = (
    "A-Za-z\u00c0-\u024f\u0250-\u02af\u0370-\u03ff\u1d00-\u1dbf\u1e00-\u1fff"
    "\u2c60-\u2c7f\ua720-\ua7ff"
)
_ACCENTS = re.compile(f"(?<=[{_LATIN_OR_GREEK}])[\u0300-\u036f]+")
# Text without one of these is as unaccented() leaves it (every code point was checked:
# tests/test_text.py): Cyrillic, Chinese or Arabic text skips the normalising (found by
# review: 0.2 ms for 1,000 characters of Russian, on every story a search reads).
_MAY_HAVE_ACCENTS = re.compile("[\u00c0-\u03ff\u1e00-\u1fff\u212b]")


def unaccented(text: str) -> str:
    """``text`` with the accents of its Latin and Greek letters taken off, as a search
    reads both what is typed and what is stored: "Silina" finds "Siliņa", "Šefčovič"
    finds "Sefcovic", "Ελλαδα" finds "Ελλάδα". Only the accents a letter decomposes into
    (NFD) go; letters of their own stay as they are ("ł", "ø", "ß"), and so do Cyrillic
    letters ("й" is not "и") and the marks of other scripts, which tell words apart."""
    if text.isascii() or _MAY_HAVE_ACCENTS.search(text) is None:
        return text
    bare = _ACCENTS.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", bare)


def windows_1252_controls(text: str) -> str:
    """``text`` with each C1 control read as the Windows-1252 character of its byte."""
    return text.translate(_WINDOWS_1252) if _C1.search(text) else text


# A character reference to a C1 control in a feed's XML ("&#133;", "&#x85;"): an XML
# parser reads it as the control itself, which feedparser (and str.strip) takes for
# whitespace at either end of a title or summary: "Read more&#133;" lost its ellipsis.
_C1_REFERENCE = re.compile(rb"&#(?:0*(12[89]|1[3-5][0-9])|x0*([89][0-9A-Fa-f]));")


def _reference_as_windows_1252(found: re.Match[bytes]) -> bytes:
    code = int(found[1]) if found[1] else int(found[2], 16)
    meant = _WINDOWS_1252[code]
    return b"" if meant is None else b"&#%d;" % ord(meant)


# What is no markup, where "&#133;" is text: CDATA sections, comments, processing
# instructions (each to its end, or to the document's end when unclosed).
_LITERAL = re.compile(rb"<!\[CDATA\[.*?(?:\]\]>|\Z)|<!--.*?(?:-->|\Z)|<\?.*?(?:\?>|\Z)", re.DOTALL)
# Encodings in which the bytes "&#133;" need not be those characters (ISO-2022's
# escapes, UTF-7, EBCDIC): a document declared in one is left as it is.
_NOT_ASCII = re.compile(
    rb"^(?:iso-?2022|csiso2022|utf-?7|hz|cp0?37|cp500|cp1140|ibm0?37|ebcdic)", re.I
)
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


def windows_1252_references(data: bytes, charset: str | None = None) -> bytes:
    """An XML document with each character reference to a C1 control written as a
    reference to the Windows-1252 character of its byte ("&#133;" as "&#8230;", the
    ellipsis), as HTML reads such references; the five codes Windows-1252 leaves
    undefined as nothing, as :func:`windows_1252_controls` has them. Only in markup:
    in a CDATA section the same bytes are text ("how to type &#133;"; HTML inside one
    is read as HTML, which maps them itself). A document in an encoding that is not
    ASCII-compatible (declared, or ``charset`` from HTTP) is left as it is."""
    if b"&#" not in data or _C1_REFERENCE.search(data) is None:
        return data
    declared = _DECLARED.match(data[:200])
    for name in (charset.encode("ascii", "replace") if charset else b"", declared and declared[1]):
        if name and _NOT_ASCII.match(name.strip()):
            return data
    parts, at = [], 0
    for literal in _LITERAL.finditer(data):
        parts.append(_C1_REFERENCE.sub(_reference_as_windows_1252, data[at : literal.start()]))
        parts.append(literal[0])
        at = literal.end()
    parts.append(_C1_REFERENCE.sub(_reference_as_windows_1252, data[at:]))
    return b"".join(parts)


# Whitespace that only lays text out (line breaks and indentation from a feed's markup
# or wrapping): a run of it is one space. The spaces a writer chose are kept as they are
# written: no-break, narrow no-break and figure spaces ("10\u00a0km", French "Pourquoi\u00a0?"),
# thin and other typographic spaces, the ideographic space.
_CHOSEN_SPACE = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_LAYOUT_SPACE = re.compile("[ \t\n\r\f\v\x1c-\x1f\x85\u2028\u2029]")
_WHITESPACE = re.compile(r"\s+")  # re's \s: what str.isspace takes, layout or chosen


def one_line(text: str) -> str:
    """``text`` on one line: each run of whitespace that holds layout whitespace is one
    space (``<p>&nbsp;</p>`` between paragraphs too), a run of chosen spaces alone is
    kept, and none is left at the ends."""
    if text.isascii() or not _CHOSEN_SPACE.search(text):
        return " ".join(text.split())  # str.split's whitespace is layout whitespace here
    return _WHITESPACE.sub(_one_space, text).strip()


def _one_space(run: re.Match[str]) -> str:
    return " " if _LAYOUT_SPACE.search(run.group()) else run.group()


# A tag of the sanitiser's own output (aggregator.live.clean). It writes every "<" of
# text as "&lt;", every attribute value in double quotes with '"' as "&quot;", and no
# comments (they are stripped): so every "<" opens a tag, which ends at the first ">"
# outside quotes.
SANITISED_TAG = re.compile(r'<[^>"]*+(?:"[^"]*+"[^>"]*+)*+>')

# Caps, in characters, on a story's title and its text, from any source: longer ones
# are cut (:func:`cap`), so no page or feed makes a story of megabytes.
MAX_TITLE = 1_000
MAX_TEXT = 20_000


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut shown by "…"."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


_FOLDS = (("‘", "'"), ("’", "'"), ("“", '"'), ("”", '"'), ("–", "-"), ("—", "-"))

# "Video: NATO Allies train …": a label for the kind of item, not part of the story's title.
ANNOUNCER = re.compile(
    r"^(?:Video|Videos|Photo|Photos|Photo gallery|Gallery|Podcast|Audio|Live|Interview|"
    r"Infographic|Speech|Opinion)\s*[:–—-]\s+",
    re.IGNORECASE,
)


def fold(text: str) -> str:
    """Curly and straight quotes, dashes, and spaces (no-break and the other spaces a
    writer may choose: see :func:`one_line`) each in one form: topics and search see
    "Secretary\\u00a0General" as "Secretary General" (RE2's ``\\s`` and a pattern's space
    are ASCII only)."""
    # Every character folded is outside ASCII, and most text is ASCII: a test of a few
    # characters, not str.translate's dictionary lookup per character (3 µs a summary).
    if text.isascii():
        return text
    for curly, straight in _FOLDS:
        if curly in text:
            text = text.replace(curly, straight)
    if _CHOSEN_SPACE.search(text):
        text = _CHOSEN_SPACE.sub(" ", text)
    return text


def item_mark(key: str, link: str | None) -> str:
    """A short fingerprint of an item's title key (:func:`title_key`) and link: what
    the fetch state keeps of each item read, to tell, when the item is later skipped as
    unchanged, whether it is the item a stored story was told with (a feed that numbers
    its items by place gives their ids to other items: aggregator.store.plan)."""
    return hashlib.blake2b(f"{key}\n{link or ''}".encode(), digest_size=6).hexdigest()


def title_key(title: str) -> str:
    """A title reduced to what identifies a story: NFKC, case folded, quotes and
    dashes folded, whitespace collapsed, announcer prefix removed."""
    if title.isascii():  # NFKC and the folds leave ASCII as it is; casefold is lower
        text = " ".join(title.lower().split())
    else:
        text = " ".join(fold(unicodedata.normalize("NFKC", title)).casefold().split())
    return ANNOUNCER.sub("", text)
