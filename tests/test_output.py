from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

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
        # The file in the way is named, not the page that could not be made there.
        pytest.raises(WriteError, match=r"feeds/taken: cannot write: a file is in the way"),
        Stager(directory) as stager,
    ):
        for i in range(20):
            stager.add(f"page-{i}.html", b"x" * 5000)
        stager.add("taken/page.html", b"y")
    assert sorted(p.name for p in directory.iterdir()) == ["taken"]


def test_files_waiting_to_be_written_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However much quicker rendering is than the disk, at most MAX_WAITING files (and
    their bytes) are handed to the pool and not yet written, and no descriptor is
    held for a file waiting its turn."""
    import threading

    from aggregator import output

    gate = threading.Event()
    done = 0
    lock = threading.Lock()
    real = output._write_temporary

    def slow_write(path: Path, data: bytes, made: set[Path]) -> Path:
        nonlocal done
        gate.wait(timeout=10)
        try:
            return real(path, data, made)
        finally:
            with lock:
                done += 1

    def count_open() -> int:
        return len(list(Path("/proc/self/fd").iterdir()))

    baseline = count_open()
    most = most_open = 0
    monkeypatch.setattr(output, "_write_temporary", slow_write)  # a disk slower than rendering
    with Stager(tmp_path) as stager:
        opener = threading.Timer(1.0, gate.set)
        opener.start()
        for i in range(output.MAX_WAITING * 3):
            stager.add(f"page-{i}.html", b"x")
            with lock:
                most = max(most, i + 1 - done)
            most_open = max(most_open, count_open() - baseline)
        staged = stager.finish()
    assert len(staged.pending) == output.MAX_WAITING * 3
    assert most <= output.MAX_WAITING
    # The pool's threads and the files being written: never the files waiting.
    assert most_open <= output.SYNC_THREADS + 2
    assert count_open() <= baseline + 1
    staged.install()


def test_files_are_staged_in_the_order_added_and_opened_off_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renames follow the order of the adds, however the pool's threads finished;
    the temporary files are created by the pool, not by the thread rendering."""
    import threading

    from aggregator import output

    directory = tmp_path / "feeds"
    openers: set[str] = set()
    real_open = os.open

    def watched_open(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        if output._OURS.match(Path(path).name):
            openers.add(threading.current_thread().name)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", watched_open)
    # Sizes that make the pool finish out of order: big files first, then small ones.
    names = [f"{'entries/' if i % 3 else ''}{i:03d}.html" for i in range(100)]
    files = {name: name.encode() * ((100 - i) * 50) for i, name in enumerate(names)}
    with Stager(directory) as stager:
        for name, data in files.items():
            stager.add(name, data)
        staged = stager.finish()
    assert [path for _, path in staged.pending] == [directory / name for name in names]
    assert openers and threading.main_thread().name not in openers
    assert all(name.startswith("aggregator-sync") for name in openers)
    assert staged.install() == [directory / name for name in names]
    assert all((directory / name).read_bytes() == data for name, data in files.items())
    assert not [p for p in directory.rglob("*") if p.name.endswith(".tmp")]


def _fd_name(handle: int) -> str:
    return Path(f"/proc/self/fd/{handle}").readlink().name


@pytest.mark.parametrize(
    ("step", "errno_"), [("open", errno.EACCES), ("write", errno.ENOSPC), ("fsync", errno.EIO)]
)
def test_a_failure_in_the_pool_names_the_file_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, errno_: int
) -> None:
    """Creating, writing or syncing a temporary file fails in a pool thread: the run
    ends in WriteError naming the first such file added, after every write ended,
    and neither its temporary file nor any other is left behind."""
    directory = tmp_path / "feeds"
    directory.mkdir()
    (directory / "kept.html").write_bytes(b"old")
    failing = {"page-07.html", "page-33.html"}

    def fails(name: str) -> bool:
        return any(name.startswith(f".{page}.") for page in failing)

    real = getattr(os, step)

    def broken(first: Any, *args: Any, **kwargs: Any) -> Any:
        name = Path(first).name if step == "open" else _fd_name(first)
        if fails(name):
            raise OSError(errno_, os.strerror(errno_))
        return real(first, *args, **kwargs)

    monkeypatch.setattr(os, step, broken)
    with (
        pytest.raises(WriteError, match=r"page-07\.html: cannot write") as raised,
        Stager(directory) as stager,
    ):
        for i in range(40):
            stager.add(f"page-{i:02d}.html", b"x" * 70_000)
        stager.add("kept.html", b"new")
        stager.finish()
    assert str(directory / "page-07.html") in str(raised.value)
    assert isinstance(raised.value.__cause__, OSError)
    assert raised.value.__cause__.errno == errno_
    assert sorted(p.name for p in directory.iterdir()) == ["kept.html"]
    assert (directory / "kept.html").read_bytes() == b"old"


def test_a_failed_write_leaves_the_files_written_to_discard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """finish() raises, yet the temporary files of the files that were written are in
    staged.pending (so that Staged.discard, like Stager.discard, finds them)."""
    real = os.write

    def full(handle: int, data: bytes) -> int:
        if _fd_name(handle).startswith(".b.html."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(handle, data)

    monkeypatch.setattr(os, "write", full)
    stager = Stager(tmp_path)
    for name in ("a.html", "b.html", "c.html"):
        stager.add(name, name.encode())
    with pytest.raises(WriteError, match=r"b\.html: "):
        stager.finish()
    assert [path.name for _, path in stager.staged.pending] == ["a.html", "c.html"]
    assert len([p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]) == 2
    stager.discard()
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_the_set_is_finished_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted while it waits for the threads, the set still removes every temporary
    file they made, before and after the interruption (found by review)."""
    import os
    import signal
    import threading
    import time

    from aggregator import output

    real = output._write_temporary

    def slow(path: Path, data: bytes, made: set[Path]) -> Path:
        temporary = real(path, data, made)
        time.sleep(0.5)  # a slow fsync
        return temporary

    monkeypatch.setattr(output, "_write_temporary", slow)
    threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt), Stager(tmp_path) as stager:
        for i in range(6):
            stager.add(f"f{i}.html", b"x" * 10)
        stager.finish()  # Ctrl-C comes here
    assert list(tmp_path.iterdir()) == []


def test_a_failed_hand_over_releases_its_place_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When handing a file to the threads fails after the file was queued (a thread that
    cannot start), its place among the waiting files is given back once, not twice, and
    the temporary file its task still made is removed (found by review)."""
    from concurrent.futures import ThreadPoolExecutor

    calls = 0
    real_submit = ThreadPoolExecutor.submit

    def submit(self: ThreadPoolExecutor, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        future = real_submit(self, *args, **kwargs)  # queued: a thread runs it
        if calls == 2:
            raise RuntimeError("can't start new thread")
        return future

    monkeypatch.setattr(ThreadPoolExecutor, "submit", submit)
    with pytest.raises(RuntimeError), Stager(tmp_path) as stager:
        stager.add("a.html", b"a")
        stager.add("b.html", b"b")
    assert list(tmp_path.iterdir()) == []
    assert stager._waiting._value == output_module().MAX_WAITING  # every place given back


def output_module() -> Any:
    from aggregator import output

    return output


def test_adding_after_the_set_is_finished_is_refused(tmp_path: Path) -> None:
    with Stager(tmp_path) as stager:
        stager.add("a.html", b"a")
        staged = stager.finish()
        with pytest.raises(RuntimeError, match="after the set was finished"):
            stager.add("b.html", b"b")
    staged.install()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html"]
