"""User-written regular expressions, matched in time linear in the text.

Topic patterns come from config.toml, which anyone editing it may get wrong: with
Python's backtracking ``re``, a pattern such as ``(a+)+$`` or ``(\\w+\\s?)+$`` takes
exponential time on a long enough story and hangs the run. RE2 (google-re2) never
backtracks, so every search is linear in the text; the price is that it refuses
backreferences and lookaround, which config loading reports as a config error.
Its ``\\w`` and ``\\b`` are ASCII-only; ``\\pL`` matches any letter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

MAX_PATTERN_LENGTH = 1000  # characters; longer is a mistake, not a topic
MAX_PATTERN_MEMORY = 8 << 20  # bytes RE2 may use to compile one pattern


class Match(Protocol):
    def group(self) -> str: ...


class Pattern(Protocol):
    def search(self, text: str) -> Match | None: ...

    def finditer(self, text: str) -> Iterator[Match]: ...


def compile_pattern(pattern: str) -> Pattern:
    """A case-insensitive linear-time pattern; ValueError saying what is wrong with it."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"longer than {MAX_PATTERN_LENGTH} characters")
    import re2  # here: a config without patterns never needs it

    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the error is raised to us; RE2 must not print it too
    options.max_mem = MAX_PATTERN_MEMORY
    try:
        compiled: Pattern = re2.compile(pattern, options)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"{reason} (patterns use RE2 syntax, which has no backreferences or lookaround)"
        ) from error
    return compiled
