from __future__ import annotations

import pytest

from aggregator.config import TopicConfig
from aggregator.topics import Topic


def topic(**rules: tuple[str, ...]) -> Topic:
    return Topic.from_config(
        TopicConfig(slug="t", key="topics[1]", title="T", description="", **rules)
    )


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


def test_verdict_names_rule_field_and_words() -> None:
    verdict = topic(terms=("Kyiv", "Ukraine")).judge({"title": "Visit", "summary": "in Kyiv"})
    assert verdict.matched
    assert (verdict.rule, verdict.field, verdict.words) == ("term 'Kyiv'", "summary", "Kyiv")
    assert str(verdict) == "t: matched by term 'Kyiv' in summary: 'Kyiv'"
