"""Topic rules: which entries belong in which topic feed.

A topic takes an entry when one of its rules finds one of its terms or
patterns in one of the rule's fields, and its exclusions find nothing. Terms
match whole words, in any case ("EU" does not match "Europe"); curly and
straight quotes and dashes count as the same. Patterns are regular
expressions, case-insensitive, run by a linear-time engine (see
:mod:`aggregator.patterns`), so no pattern can hang a run.

Rules name their fields so that a topic can be strict where it must: a story
that mentions Ukraine in passing in its summary is not about Ukraine, one
with Ukraine in its title is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aggregator.config import RuleConfig, TopicConfig
from aggregator.patterns import Pattern, compile_pattern
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
class Rule:
    """Compiled terms and patterns, each with a label saying where it came from."""

    fields: tuple[str, ...]
    checks: tuple[tuple[str, Pattern], ...]

    @classmethod
    def from_config(cls, config: RuleConfig, *, label: str = "") -> Rule:
        checks: list[tuple[str, Pattern]] = [
            (f"{label}term {term!r}", term_pattern(term)) for term in config.terms
        ]
        checks += [
            (f"{label}pattern {pattern!r}", compile_pattern(pattern)) for pattern in config.patterns
        ]
        return cls(config.fields, tuple(checks))

    def find(self, texts: dict[str, str]) -> tuple[str, str, str] | None:
        """(rule, field, words) of the first match, or None."""
        for label, pattern in self.checks:
            for field in self.fields:
                if found := pattern.search(texts.get(field, "")):
                    return label, field, found.group()
        return None


@dataclass(frozen=True, slots=True)
class Topic:
    slug: str
    title: str
    description: str
    rules: tuple[Rule, ...]
    exclusions: Rule | None = None

    @classmethod
    def from_config(cls, config: TopicConfig) -> Topic:
        return cls(
            slug=config.slug,
            title=config.title,
            description=config.description,
            rules=tuple(Rule.from_config(rule) for rule in config.rules),
            exclusions=None
            if config.exclude is None
            else Rule.from_config(config.exclude, label="exclude "),
        )

    def judge(self, fields: dict[str, str]) -> Verdict:
        texts = {name: fold(text) for name, text in fields.items()}
        if self.exclusions is not None and (found := self.exclusions.find(texts)):
            return Verdict(self.slug, False, *found)
        for rule in self.rules:
            if found := rule.find(texts):
                return Verdict(self.slug, True, *found)
        return Verdict(self.slug, False)

    def matches(self, fields: dict[str, str]) -> bool:
        return self.judge(fields).matched
