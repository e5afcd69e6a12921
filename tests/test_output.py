from __future__ import annotations

import os
from pathlib import Path

import pytest

from aggregator.errors import WriteError
from aggregator.output import Stager, write_if_changed


def test_writes_then_leaves_identical_bytes_alone(tmp_path: Path) -> None:
    path = tmp_path / "feeds" / "all.rss"
    assert write_if_changed(path, b"one")
    os.utime(path, (1_000_000, 1_000_000))
    assert not write_if_changed(path, b"one")
    assert path.stat().st_mtime == 1_000_000
    assert write_if_changed(path, b"two")
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["all.rss"]


def test_files_staged_as_they_come_are_whole_readable_and_installed_together(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "feeds"
    (directory / "entries").mkdir(parents=True)
    (directory / "same.html").write_bytes(b"kept")
    files = {f"entries/{i:03d}.html": bytes([i % 256]) * (i * 997) for i in range(60)}
    with Stager(directory) as stager:
        for name, data in files.items():
            stager.add(name, data)
        stager.add("same.html", b"kept")
        staged = stager.finish()
    # Nothing is in place before the install; every temporary file is whole and 0644.
    assert not any((directory / name).exists() for name in files)
    assert staged.unchanged == [directory / "same.html"]
    for temporary, path in staged.pending:
        assert temporary.parent == path.parent
        assert temporary.read_bytes() == files[path.relative_to(directory).as_posix()]
        assert temporary.stat().st_mode & 0o777 == 0o644
    written = staged.install()
    assert sorted(p.relative_to(directory).as_posix() for p in written) == sorted(files)
    assert all((directory / name).read_bytes() == data for name, data in files.items())
    leftovers = [p for p in directory.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_failure_midway_removes_every_temporary_file(tmp_path: Path) -> None:
    directory = tmp_path / "feeds"
    directory.mkdir()
    (directory / "taken").write_bytes(b"a file where a folder should be")
    with (
        pytest.raises(WriteError, match=r"taken/page\.html: cannot write"),
        Stager(directory) as stager,
    ):
        for i in range(20):
            stager.add(f"page-{i}.html", b"x" * 5000)
        stager.add("taken/page.html", b"y")
    assert sorted(p.name for p in directory.iterdir()) == ["taken"]


def test_files_waiting_for_their_fsync_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However much quicker rendering is than the disk, at most MAX_WAITING descriptors
    are held for files waiting for their fsync."""
    import threading

    from aggregator import output

    gate = threading.Event()
    most = 0
    real = output._settle

    def slow_settle(handle: int) -> None:
        gate.wait(timeout=10)
        real(handle)

    def count_open() -> int:
        return len(list(Path("/proc/self/fd").iterdir()))

    baseline = count_open()
    monkeypatch.setattr(output, "_settle", slow_settle)  # a disk slower than rendering
    with Stager(tmp_path) as stager:
        opener = threading.Timer(1.0, gate.set)
        opener.start()
        for i in range(output.MAX_WAITING * 3):
            stager.add(f"page-{i}.html", b"x")
            most = max(most, count_open() - baseline)
        staged = stager.finish()
    assert len(staged.pending) == output.MAX_WAITING * 3
    # The pool's threads and the descriptors waiting: never the whole run's files.
    assert most <= output.MAX_WAITING + 2
    assert count_open() <= baseline + 1
    staged.install()
