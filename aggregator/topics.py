"""Topic rules: which entries belong in which topic feed.

A topic matches an entry when one of its terms or patterns occurs in one of its
fields and none of its exclusions does. Terms are case-insensitive and match
whole words ("EU" does not match "Europe"); curly and straight quotes and
dashes count as the same. Patterns are regular expressions, case-insensitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aggregator.config import TopicConfig
from aggregator.text import fold


def term_pattern(term: str) -> re.Pattern[str]:
    """A whole-word, case-insensitive match of ``term`` (spaces match any whitespace)."""
    words = r"\s+".join(re.escape(word) for word in fold(term).split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a topic took an entry, and the rule, field and words that decided it."""

    topic: str
    matched: bool
    rule: str | None = None
    field: str | None = None
    words: str | None = None

    def __str__(self) -> str:
        if self.rule is None:
            return f"{self.topic}: no rule matched"
        verb = "matched" if self.matched else "excluded"
        return f"{self.topic}: {verb} by {self.rule} in {self.field}: {self.words!r}"


@dataclass(frozen=True, slots=True)
class Topic:
    slug: str
    title: str
    description: str
    fields: tuple[str, ...]
    rules: tuple[tuple[str, re.Pattern[str]], ...]
    exclusions: tuple[tuple[str, re.Pattern[str]], ...]

    @classmethod
    def from_config(cls, config: TopicConfig) -> Topic:
        rules = [(f"term {term!r}", term_pattern(term)) for term in config.terms]
        rules += [
            (f"pattern {pattern!r}", re.compile(pattern, re.IGNORECASE))
            for pattern in config.patterns
        ]
        exclusions = [(f"exclude {term!r}", term_pattern(term)) for term in config.exclude]
        return cls(
            slug=config.slug,
            title=config.title,
            description=config.description,
            fields=config.fields,
            rules=tuple(rules),
            exclusions=tuple(exclusions),
        )

    def judge(self, fields: dict[str, str]) -> Verdict:
        texts = [(name, fold(fields.get(name, ""))) for name in self.fields]
        for rule, pattern in self.exclusions:
            for name, text in texts:
                if found := pattern.search(text):
                    return Verdict(self.slug, False, rule, name, found.group())
        for rule, pattern in self.rules:
            for name, text in texts:
                if found := pattern.search(text):
                    return Verdict(self.slug, True, rule, name, found.group())
        return Verdict(self.slug, False)

    def matches(self, fields: dict[str, str]) -> bool:
        return self.judge(fields).matched
