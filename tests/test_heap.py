"""The collector's settings for a batch (aggregator.heap): set while it runs, put back
after, whatever happens inside."""

from __future__ import annotations

import gc

import pytest

from aggregator.heap import YOUNG, batch


def test_a_batch_collects_less_often_and_leaves_what_existed_alone() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    kept = [object() for _ in range(3)]  # noqa: F841 (exists before the batch)
    with batch():
        young, middle, old = gc.get_threshold()
        assert young == max(before[0], YOUNG)
        assert (middle, old) == before[1:]
        assert gc.get_freeze_count() > frozen  # what existed is out of every collection
        # Garbage in cycles made during the batch is still collected.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


def test_a_batch_that_fails_puts_the_settings_back() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), batch():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
