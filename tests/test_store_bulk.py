"""New entries are written many to a statement: every one arrives, and is found by search,
on both backends, whatever the backend's limit on parameters per statement."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aggregator.config import StoreSettings
from aggregator.model import Provenance, Published, SourceEntry
from aggregator.store import StoreType, open_store
from aggregator.store.plan import Planner, plan_merge
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


def test_rows_made_ahead_are_written_only_for_the_entry_they_were_made_from(
    store: StoreType,
) -> None:
    """A run makes the rows of new stories while it still reads (Store.prepare); a story
    another source told later in the run is made again when the plan is written: what
    is stored is the plan's, never the row made ahead."""
    told = items(3)
    planner = Planner(authority="x,2026", zone=ZONE, now=NOW)
    planner.add(told[:2], {})
    early = planner.plan()
    store.prepare([(e, early.title_keys[e.id]) for e in early.inserted], NOW)
    again = replace(
        told[0],
        summary="word0 and the common words, and what another source added later on",
        provenance=Provenance("source 9", "https://e.org/9.xml"),
    )
    planner.add([told[2], again], {})
    plan = planner.plan()
    assert plan == plan_merge([*told, again], {}, authority="x,2026", zone=ZONE, now=NOW)
    by_id = {e.id: e for e in plan.inserted}
    assert by_id[early.inserted[0].id] != early.inserted[0]  # the later source changed it
    assert by_id[early.inserted[1].id] is early.inserted[1]  # its row made ahead is used
    with store.transaction():
        store.write_plan(plan, NOW)
    for entry in plan.inserted:
        stored = store.entry(entry.id)
        assert stored is not None
        assert (stored.title, stored.summary, stored.first_seen) == (
            entry.title,
            entry.summary,
            NOW,
        )
    assert [e.title for e in store.search(["later"], limit=5)] == ["Story number 0"]
