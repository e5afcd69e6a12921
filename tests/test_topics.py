from __future__ import annotations

import pytest

from aggregator.config import RuleConfig, TopicConfig
from aggregator.topics import Topic


def topic(
    terms: tuple[str, ...] = (),
    patterns: tuple[str, ...] = (),
    fields: tuple[str, ...] = ("title", "summary"),
    exclude: tuple[str, ...] = (),
) -> Topic:
    rule = RuleConfig("topics[1]", terms, patterns, fields)
    excluded = RuleConfig("topics[1].exclude", exclude) if exclude else None
    config = TopicConfig("t", "topics[1]", "T", "", rules=(rule,), exclude=excluded)
    return Topic.from_config(config)


@pytest.mark.parametrize(
    ("rules", "title", "summary", "matched"),
    [
        pytest.param({"terms": ("EU",)}, "NATO-EU cooperation", "", True, id="hyphenated word"),
        pytest.param({"terms": ("EU",)}, "European security", "", False, id="not inside a word"),
        pytest.param({"terms": ("ukraine",)}, "UKRAINE", "", True, id="any case"),
        pytest.param({"terms": ("Ukraine",)}, "Ukraine’s air defence", "", True, id="possessive"),
        pytest.param({"terms": ("Russia's war",)}, "", "Russia’s war", True, id="curly quote"),
        pytest.param({"terms": ("air defence",)}, "more air\u00a0 defence", "", True, id="spaces"),
        pytest.param({"patterns": (r"\bKyiv\b",)}, "", "visited Kyiv today", True, id="pattern"),
        pytest.param(
            {"terms": ("Ukraine",), "exclude": ("football",)},
            "Ukraine football match",
            "",
            False,
            id="excluded",
        ),
        pytest.param(
            {"terms": ("Ukraine",), "fields": ("title",)},
            "Summit",
            "Ukraine",
            False,
            id="field not searched",
        ),
    ],
)
def test_rules(rules: dict[str, tuple[str, ...]], title: str, summary: str, matched: bool) -> None:
    assert topic(**rules).matches({"title": title, "summary": summary}) is matched


def test_exclusion_wins_and_says_so() -> None:
    verdict = topic(terms=("Ukraine",), exclude=("football",)).judge(
        {"title": "Ukraine football", "summary": ""}
    )
    assert str(verdict) == "t: excluded by exclude term 'football' in title: 'football'"


def test_verdict_names_rule_field_and_words() -> None:
    verdict = topic(terms=("Kyiv", "Ukraine")).judge({"title": "Visit", "summary": "in Kyiv"})
    assert verdict.matched
    assert (verdict.rule, verdict.field, verdict.words) == ("term 'Kyiv'", "summary", "Kyiv")
    assert str(verdict) == "t: matched by term 'Kyiv' in summary: 'Kyiv'"


def test_shipped_topics_hold_exactly_the_seed_stories_about_them() -> None:
    """tests/data/topics/seeds.expected.json lists, per topic, the seed stories about it
    (read by hand: a passing mention in a summary does not make a story about a topic)."""
    import json
    from pathlib import Path

    from aggregator.config import load_config
    from aggregator.source import parse_source

    root = Path(__file__).resolve().parent.parent
    topics = [Topic.from_config(t) for t in load_config(root / "config.toml").topics]
    found: dict[str, list[str]] = {t.slug: [] for t in topics}
    for path in sorted((root / "seeds").glob("*.txt")):
        for entry in parse_source(path.read_bytes(), url=str(path)):
            for t in topics:
                if t.matches({"title": entry.title, "summary": entry.summary}):
                    found[t.slug].append(entry.title)
    expected = json.loads((root / "tests/data/topics/seeds.expected.json").read_text("utf-8"))
    assert found == expected


@pytest.mark.parametrize(
    "pattern", [pytest.param(r"(a+)+$", id="nested"), pytest.param(r"(\w+\s?)+$", id="words")]
)
def test_patterns_that_backtrack_forever_in_python_re_still_answer(pattern: str) -> None:
    # With a backtracking engine each of these takes exponential time on this text
    # (it would never finish); the linear engine answers at once.
    text = "a" * 5000 + "!" if pattern.startswith("(a") else "word " * 5000 + "!"
    assert topic(patterns=(pattern,)).matches({"title": text, "summary": ""}) is False
    assert topic(patterns=(pattern,)).matches({"title": "aaaa", "summary": ""}) is True
