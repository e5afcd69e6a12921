"""Every snapshot case under tests/data/snapshots, read and compared with its expected data."""

from __future__ import annotations

import json

import pytest

import aggregator
from aggregator import AggregatorError
from tests.snapshot_cases import Case, as_data, cases


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.name)
def test_snapshot(case: Case) -> None:
    data = case.text.read_bytes()
    if case.error.exists():
        error_class, words = case.error.read_text(encoding="utf-8").splitlines()[:2]
        with pytest.raises(AggregatorError) as raised:
            aggregator.parse_source(
                data, url=case.text.name, kind=case.kind, captured=case.captured
            )
        assert type(raised.value).__name__ == error_class
        assert words in str(raised.value)
        assert case.text.name in str(raised.value)
        assert "\n" not in str(raised.value)
        return
    entries = aggregator.parse_source(
        data, url=case.text.name, kind=case.kind, captured=case.captured
    )
    expected = json.loads(case.expected.read_text(encoding="utf-8"))
    assert [as_data(entry) for entry in entries] == expected
    assert all(entry.source == case.text.name for entry in entries)


def test_every_case_has_an_expectation() -> None:
    for case in cases():
        assert case.expected.exists() != case.error.exists(), case.name
