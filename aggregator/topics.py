"""Topic rules: which entries belong in which topic feed.

A topic takes an entry when a source that told the story names the topic (a
source hint: ``topics = [...]`` on the source), or when one of its rules finds
one of its terms or patterns in one of the rule's fields and its exclusions find
nothing. A source hint wins over exclusions: a story on NATO's own "deterrence and
defence" listing is about deterrence, whatever its words.

Terms match whole words, in any case ("EU" does not match "Europe"); curly and
straight quotes and dashes count as the same. Patterns are regular expressions,
case-insensitive, run by a linear-time engine (see :mod:`aggregator.patterns`), so
no pattern can hang a run.

Rules name their fields so that a topic can be strict where it must: a story
that mentions Ukraine in passing in its summary is not about Ukraine, one
with Ukraine in its title is. The text of each field is built in one place,
:func:`entry_fields`, for the pipeline, ``explain``, the evaluation and the
server's ad-hoc filter alike.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aggregator.config import Config, RuleConfig, TopicConfig
from aggregator.model import Entry
from aggregator.patterns import Pattern, compile_pattern
from aggregator.records import record
from aggregator.text import fold

# Categories are joined with this, so that a phrase never runs from one into the next.
CATEGORY_SEPARATOR = " | "


def term_pattern(term: str) -> re.Pattern[str]:
    """A whole-word, case-insensitive match of ``term`` (spaces match any whitespace)."""
    return re.compile(rf"(?<!\w){_words(term)}(?!\w)", re.IGNORECASE)


def any_term_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    """What finds a match wherever one of the terms' :func:`term_pattern` does (and only
    there): one search for all of them instead of one each."""
    either = "|".join(_words(term) for term in terms)
    return re.compile(rf"(?<!\w)(?:{either})(?!\w)", re.IGNORECASE)


def _words(term: str) -> str:
    return r"\s+".join(re.escape(word) for word in fold(term).split())


def fields_of(title: str, summary: str, categories: Sequence[str] = ()) -> dict[str, str]:
    """The text a topic sees, by field (config.TOPIC_FIELDS), quotes and dashes folded."""
    return {
        "title": fold(title),
        "summary": fold(summary),
        "categories": fold(CATEGORY_SEPARATOR.join(categories)),
    }


def entry_fields(entry: Entry) -> dict[str, str]:
    """The text a topic sees in a stored entry, by field."""
    return fields_of(entry.title, entry.summary, entry.categories)


def entry_text(entry: Entry) -> str:
    """All of an entry's text topics see, in one string (for whole-word searches)."""
    return "\n".join(entry_fields(entry).values())


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a topic took an entry, and the source hint or the rule, field and words
    that decided it."""

    topic: str
    matched: bool
    rule: str | None = None
    field: str | None = None
    words: str | None = None
    key: str | None = None  # the rule's place in the config: "topics[2].rules[3]"
    source: str | None = None  # the source whose hint decided it

    def __str__(self) -> str:
        if self.source is not None:
            return f"{self.topic}: matched by the source hint of {self.source!r}"
        if self.rule is None:
            return f"{self.topic}: no rule matched"
        verb = "matched" if self.matched else "excluded"
        where = "" if self.key is None else f" ({self.key})"
        return f"{self.topic}: {verb} by {self.rule} in {self.field}: {self.words!r}{where}"


@record
class Rule:
    """Compiled terms and patterns, each with a label saying where it came from."""

    key: str
    fields: tuple[str, ...]
    checks: tuple[tuple[str, Pattern], ...]
    # The first ``terms`` checks are terms; ``any_term`` finds a match where one of them
    # does (any_term_pattern), so that a text none of them is in is searched once, not
    # once per term. None when there are fewer than two terms.
    terms: int = 0
    any_term: re.Pattern[str] | None = None
    # The terms' first words, lower-cased, when every one is ASCII: a text that is ASCII
    # too can hold a term only where its lower-cased self holds one of these (between
    # ASCII characters re's IGNORECASE is exactly str.lower), so a title without any is
    # passed over by a substring test instead of a regular expression tried at each of
    # its characters. None when a term's first word is not ASCII.
    firsts: tuple[str, ...] | None = None

    @classmethod
    def from_config(cls, config: RuleConfig, *, label: str = "") -> Rule:
        checks: list[tuple[str, Pattern]] = [
            (f"{label}term {term!r}", term_pattern(term)) for term in config.terms
        ]
        checks += [
            (f"{label}pattern {pattern!r}", compile_pattern(pattern)) for pattern in config.patterns
        ]
        terms = len(config.terms)
        any_term = any_term_pattern(config.terms) if terms > 1 else None
        firsts = tuple(next(iter(fold(term).split()), "").lower() for term in config.terms)
        ascii_firsts = all(first and first.isascii() for first in firsts)
        return cls(
            config.key,
            config.fields,
            tuple(checks),
            terms,
            any_term,
            firsts if ascii_firsts else None,
        )

    def find(self, texts: Mapping[str, str]) -> tuple[str, str, str] | None:
        """(rule, field, words) of the first match, or None."""
        checks = self.checks
        if self.terms and not self._may_hold_a_term(texts):
            checks = checks[self.terms :]  # only the patterns may match
        for label, pattern in checks:
            for field in self.fields:
                if found := pattern.search(texts.get(field, "")):
                    return label, field, found.group()
        return None

    def holds(self, texts: Mapping[str, str]) -> bool:
        """Whether :meth:`find` finds a match, without making its label and words: what
        a run asks of every story. (Plain loops: generators would double its cost.)"""
        checks = self.checks
        if self.terms:
            if not self._may_hold_a_term(texts):
                checks = checks[self.terms :]
            elif self.any_term is not None:
                return True  # it found one of the terms
        for _, pattern in checks:
            for field in self.fields:
                if pattern.search(texts.get(field, "")):
                    return True
        return False

    def _may_hold_a_term(self, texts: Mapping[str, str]) -> bool:
        """False only when none of the terms is in any of the rule's fields; True when
        ``any_term`` found one, or (one term) the text may hold it."""
        firsts, any_term = self.firsts, self.any_term
        for field in self.fields:
            text = texts.get(field, "")
            if firsts is not None and text.isascii():
                lowered = text.lower()
                for first in firsts:
                    if first in lowered:
                        break
                else:
                    continue  # none of the terms' first words: none of the terms
            if any_term is None or any_term.search(text):
                return True
        return False


@record
class Topic:
    slug: str
    title: str
    description: str
    rules: tuple[Rule, ...]
    exclusions: Rule | None = None
    sources: tuple[str, ...] = ()  # names of the sources whose stories all belong here
    # The verdict on most stories, made once: a Verdict is frozen, so one can be shared.
    unmatched: Verdict = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "unmatched", Verdict(self.slug, False))

    @classmethod
    def from_config(cls, config: TopicConfig, sources: Sequence[str] = ()) -> Topic:
        return cls(
            slug=config.slug,
            title=config.title,
            description=config.description,
            rules=tuple(Rule.from_config(rule) for rule in config.rules),
            exclusions=None
            if config.exclude is None
            else Rule.from_config(config.exclude, label="exclude "),
            sources=tuple(sources),
        )

    def judge(
        self, fields: Mapping[str, str], sources: Iterable[str] = (), *, folded: bool = False
    ) -> Verdict:
        """The verdict on a story with these fields, told by the sources named
        (``folded``: the fields come from :func:`fields_of`, already folded)."""
        for source in sources:
            if source in self.sources:
                return Verdict(self.slug, True, source=source)
        texts = fields if folded else {name: fold(text) for name, text in fields.items()}
        if self.exclusions is not None and (found := self.exclusions.find(texts)):
            return Verdict(self.slug, False, *found, key=self.exclusions.key)
        for rule in self.rules:
            if found := rule.find(texts):
                return Verdict(self.slug, True, *found, key=rule.key)
        return self.unmatched

    def takes(self, fields: Mapping[str, str], sources: Iterable[str] = ()) -> bool:
        """``judge(fields, sources, folded=True).matched``, without making the verdict:
        what a run asks of every story, where the rule and words that decided are not
        wanted."""
        if self.sources:
            for source in sources:
                if source in self.sources:
                    return True
        if self.exclusions is not None and self.exclusions.holds(fields):
            return False
        for rule in self.rules:  # noqa: SIM110 (with any(), judging takes 1.3x as long)
            if rule.holds(fields):
                return True
        return False

    def judge_entry(self, entry: Entry) -> Verdict:
        return self.judge(entry_fields(entry), (p.source for p in entry.sources), folded=True)

    def matches(self, fields: Mapping[str, str], sources: Iterable[str] = ()) -> bool:
        return self.judge(fields, sources).matched


def topics_from_config(config: Config) -> tuple[Topic, ...]:
    """The configured topics, each knowing the sources that hint it.

    Disabled sources count too: the stories they told stay in the store.
    """
    sources = (*config.sources, *config.disabled_sources)
    return tuple(
        Topic.from_config(t, [s.name for s in sources if t.slug in s.topics]) for t in config.topics
    )
