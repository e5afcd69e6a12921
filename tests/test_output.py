from __future__ import annotations

import os
from pathlib import Path

from aggregator.output import write_if_changed


def test_writes_then_leaves_identical_bytes_alone(tmp_path: Path) -> None:
    path = tmp_path / "feeds" / "all.rss"
    assert write_if_changed(path, b"one")
    os.utime(path, (1_000_000, 1_000_000))
    assert not write_if_changed(path, b"one")
    assert path.stat().st_mtime == 1_000_000
    assert write_if_changed(path, b"two")
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["all.rss"]
