"""The words a store indexes for each entry, and the words of a search term.

A search finds whole words, in any case, with Python's regular expressions
(:func:`aggregator.topics.term_pattern`: ``(?<!\\w)EU(?!\\w)``, ``re.IGNORECASE``),
the accents of Latin and Greek letters taken off the term and the text
(:func:`aggregator.site.search.search_pattern`).
The index must never miss an entry such a pattern finds, so its words are cut and
folded here, in Python, by the same rules, rather than by SQLite's or PostgreSQL's
tokenizers (which would split ``foo_bar``, see ``nato.int`` as one host name, fold
case by another Unicode table or a database locale):

- a word is a maximal run of ``\\w`` characters (letters, digits and ``_``, as ``re``
  has them); everything else separates words;
- the accents of Latin and Greek letters are taken off first
  (:func:`aggregator.text.unaccented`), as a search takes them off what is typed and
  what it reads: ``silina`` is a word of "Siliņa";
- each character is folded to one form for all the characters ``re.IGNORECASE``
  takes as equal: its simple lower case, then ``re``'s extra equivalences
  (``ı``/``i``, ``ſ``/``s``, ``ς``/``σ``, …; CPython ``re/_compiler.py``
  ``_equivalences``).

So the word ``eu`` is in an entry's words exactly when the search's pattern for the
term "EU" finds it in the entry's text; a term of several words ("NATO-EU", "North
Atlantic") is found only where its words all are, and the pattern then decides.

One exception, on purpose: U+0345 (combining ypogegrammeni) is not a word character
but ``re`` takes it as equal to ``ι``; here it separates words, so a term with ``ι``
does not find a text that writes it as U+0345.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aggregator.text import unaccented

# Runs longer than this are not indexed (PostgreSQL refuses lexemes over 2,047 bytes);
# no search term is that long (aggregator.site.search.MAX_QUERY is 100 characters).
MAX_WORD = 200

_WORD = re.compile(r"\w+")
_LONG_WORD = re.compile(rf"\S{{{MAX_WORD + 1}}}")
# U+0130's full lower case is "i" + U+0307; re compares simple lower cases ("i").
_DOTTED_CAPITAL_I = str.maketrans({"\u0130": "i"})
# Lower-case characters re.IGNORECASE takes as equal (CPython re/_compiler.py).
_EQUIVALENCES = (
    (0x69, 0x131),  # i ı
    (0x73, 0x17F),  # s ſ
    (0xB5, 0x3BC),  # µ μ
    (0x3B9, 0x1FBE),  # ι ι (U+0345, also in re's list, is no word character)
    (0x390, 0x1FD3),  # ΐ ΐ
    (0x3B0, 0x1FE3),  # ΰ ΰ
    (0x3B2, 0x3D0),  # β ϐ
    (0x3B5, 0x3F5),  # ε ϵ
    (0x3B8, 0x3D1),  # θ ϑ
    (0x3BA, 0x3F0),  # κ ϰ
    (0x3C0, 0x3D6),  # π ϖ
    (0x3C1, 0x3F1),  # ρ ϱ
    (0x3C3, 0x3C2),  # σ ς
    (0x3C6, 0x3D5),  # φ ϕ
    (0x1E61, 0x1E9B),  # ṡ ẛ
    (0xFB05, 0xFB06),  # ﬅ ﬆ
)
_ONE_FORM = str.maketrans({other: first for first, *others in _EQUIVALENCES for other in others})
CATEGORY_SEPARATOR = " | "  # as aggregator.topics joins categories
# ASCII text's words, folded: each ASCII byte re takes for \w in lower case, every other
# one a space (bytes.translate and bytes.split: three times quicker than str.translate,
# which looks each character up in a mapping; ten times quicker than _WORD.findall).
_ASCII_WORDS = bytes(
    ord(chr(c).lower()) if c < 128 and _WORD.fullmatch(chr(c)) else ord(" ") for c in range(256)
)


def _folded(text: str) -> str:
    """``text``'s words, folded, one space apart."""
    if text.isascii():  # the usual case, and much faster: one table does it all
        return b" ".join(text.encode("ascii").translate(_ASCII_WORDS).split()).decode("ascii")
    spaced = " ".join(_WORD.findall(unaccented(text).translate(_DOTTED_CAPITAL_I)))
    return spaced.lower().translate(_ONE_FORM)


def words(text: str) -> list[str]:
    """``text``'s words, folded: ``"NATO-EU's"`` → ``["nato", "eu", "s"]``."""
    return _folded(text).split()


def _may_hold_a_long_word(spaced: bytes) -> bool:
    """Whether ``spaced`` (words folded, spaces between: ``_ASCII_WORDS``) may hold a word
    longer than MAX_WORD; False only when it cannot. A word of MAX_WORD + 1 bytes covers
    one of the stretches of MAX_WORD // 2 + 1 bytes that begin at each multiple of
    MAX_WORD // 2, so when each of those holds a space, none is that long: a few
    searches for a space, where measuring every word took 4 µs an entry."""
    if len(spaced) <= MAX_WORD:
        return False
    step = MAX_WORD // 2
    for start in range(0, len(spaced) - step, step):  # each stretch that fits in it
        if spaced.find(b" ", start, start + step + 1) < 0:
            return True
    return False


def entry_words(title: str, summary: str, categories: Sequence[str]) -> str:
    """What the index holds for an entry: the words of everything a search or a topic
    reads (title, summary, categories), in order, one space apart."""
    text = f"{title}\n{summary}\n{CATEGORY_SEPARATOR.join(categories)}"
    if text.isascii():  # as _folded does, keeping the words to measure them
        spaced = text.encode("ascii").translate(_ASCII_WORDS)
        if _may_hold_a_long_word(spaced):
            found = spaced.split()
            return b" ".join(word for word in found if len(word) <= MAX_WORD).decode("ascii")
        # One space between words: each pass halves the runs of spaces (a comma and a
        # space make two), cheaper than splitting into words and joining them again.
        while b"  " in spaced:
            spaced = spaced.replace(b"  ", b" ")
        return spaced.strip().decode("ascii")
    folded = _folded(text)
    if _LONG_WORD.search(folded) is None:
        return folded
    return " ".join(word for word in folded.split() if len(word) <= MAX_WORD)


def term_words(term: str) -> list[str] | None:
    """The words an entry must hold for ``term`` to be found in it; None when the index
    cannot help (no word character at all, as in ``"-"``, or a word too long)."""
    found = words(term)
    if not found or any(len(word) > MAX_WORD for word in found):
        return None
    return found


def is_one_word(term: str) -> bool:
    """Whether ``term`` is one run of word characters: then the index finds exactly the
    entries its pattern finds, and can leave out those with an excluded term."""
    return re.fullmatch(r"\w+", term.strip()) is not None and term_words(term) is not None
