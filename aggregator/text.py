"""Small text helpers shared by the adapters, deduplication and topic rules."""

from __future__ import annotations

import re
import unicodedata

_FOLD = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})

# "Video: NATO Allies train …": a label for the kind of item, not part of the story's title.
ANNOUNCER = re.compile(
    r"^(?:Video|Videos|Photo|Photos|Photo gallery|Gallery|Podcast|Audio|Live|Interview|"
    r"Infographic|Speech|Opinion)\s*[:–—-]\s+",
    re.IGNORECASE,
)


def fold(text: str) -> str:
    """Curly and straight quotes, and dashes, in one form."""
    return text.translate(_FOLD)


def title_key(title: str) -> str:
    """A title reduced to what identifies a story: NFKC, case folded, quotes and
    dashes folded, whitespace collapsed, announcer prefix removed."""
    text = " ".join(fold(unicodedata.normalize("NFKC", title)).casefold().split())
    return ANNOUNCER.sub("", text)
