"""New entries are written many to a statement: every one arrives, and is found by search,
on both backends, whatever the backend's limit on parameters per statement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aggregator.config import StoreSettings
from aggregator.model import Provenance, Published, SourceEntry
from aggregator.store import StoreType, open_store
from aggregator.store.sql import SQLStore

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Brussels")


@pytest.fixture
def store(store_settings: StoreSettings) -> Iterator[StoreType]:
    with open_store(store_settings) as opened:
        yield opened


def items(count: int) -> list[SourceEntry]:
    return [
        SourceEntry(
            title=f"Story number {n}",
            published=Published.on_day(date(2026, 1, 1) + timedelta(days=n % 300)),
            summary=f"word{n} and the common words",
            provenance=Provenance(f"source {n % 7}", f"https://e.org/{n % 7}.xml"),
            link=f"https://e.org/{n}",
        )
        for n in range(count)
    ]


@pytest.mark.parametrize("limit", [None, 999, 30])
def test_every_new_entry_is_written_and_searchable(
    store: StoreType, limit: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if limit is not None:  # an old SQLite allows 999 parameters; 30 allows 2 rows
        monkeypatch.setattr(SQLStore, "_max_parameters", lambda self: limit)
    with store.transaction():
        report, touched = store.add(items(1203), authority="x,2026", zone=ZONE, now=NOW)
    assert (report.new, report.updated, report.unchanged) == (1203, 0, 0)
    assert store.counts()["all"] == 1203
    assert {e.title for e in store.newest(2000)} == {f"Story number {n}" for n in range(1203)}
    assert {e.id for e in touched} == {e.id for e in store.newest(2000)}
    for n in (0, 499, 500, 1202):
        found = store.search([f"word{n}"], limit=10)
        assert [e.title for e in found] == [f"Story number {n}"]
    assert len(store.search(["common"], limit=2000)) == 1203


def test_the_same_items_again_change_nothing(store: StoreType) -> None:
    with store.transaction():
        store.add(items(600), authority="x,2026", zone=ZONE, now=NOW)
    later = NOW + timedelta(hours=1)
    with store.transaction():
        report, touched = store.add(items(600), authority="x,2026", zone=ZONE, now=later)
    assert (report.new, report.updated, report.unchanged, touched) == (0, 0, 600, [])
    assert store.counts()["all"] == 600
