"""File system faults and odd source files: one line each, and nothing lost.

The faults are real: a full disk is a small tmpfs, a read-only directory is a
read-only bind mount, both made in a private mount namespace (``unshare``) that
disappears with the process, so nothing is left mounted on the machine.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.feedserver import Server

ROOT = Path(__file__).resolve().parent.parent
AGGREGATOR = [sys.executable, "-m", "aggregator"]
SEEDS = sorted((ROOT / "seeds").glob("*.txt"))


def write_project(
    directory: Path, seeds: list[Path], extra: str = "", name: str = "config.toml"
) -> Path:
    """A config reading ``seeds`` (copied beside it), its feeds in ``feeds/``."""
    (directory / "seeds").mkdir(exist_ok=True)
    sources = ""
    for seed in seeds:
        shutil.copy(seed, directory / "seeds" / seed.name)
        sources += f'[[sources]]\npath = "seeds/{seed.name}"\ncaptured = 2023-11-01\n\n'
    config = directory / name
    config.write_text(
        f'{extra}\n{sources}[[topics]]\nslug = "ukraine"\nterms = ["Ukraine"]\n', "utf-8"
    )
    return config


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGGREGATOR, "--config", str(config), *args, "run"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def in_private_mounts(script: str) -> subprocess.CompletedProcess[str]:
    """Run a shell script in its own mount namespace (as root, or as a mapped root).

    Where root may not make a mount namespace of its own (a confined container), a
    user namespace, which maps us to root inside it, is tried next.
    """
    ways = [["unshare", "-rm"]]
    if os.geteuid() == 0:
        ways.insert(0, ["unshare", "-m"])
    for way in ways:
        if subprocess.run([*way, "true"], capture_output=True).returncode == 0:
            break
    return subprocess.run(
        [*way, "sh", "-euc", script], capture_output=True, text=True, timeout=180, cwd=ROOT
    )


def on_a_small_disk(tmp_path: Path, disk: Path) -> str:
    """The start of a script for :func:`in_private_mounts`: ``disk``'s files moved onto a
    4 MB file system mounted at ``disk``, and the shell there."""
    return f"""
        mkdir {tmp_path}/copy
        cp -r {disk}/. {tmp_path}/copy
        mount -t tmpfs -o size=4m tmpfs {disk}
        cp -r {tmp_path}/copy/. {disk}
        cd {disk}
    """


def two_configs(tmp_path: Path, seeds: list[Path]) -> tuple[Path, Path, Path, Path, str]:
    """A config of ``seeds`` and one of every seed (its next run has more to write), the
    feeds' and a report's folders, and the command line to run them with."""
    first = write_project(tmp_path, seeds)
    second = write_project(tmp_path, SEEDS, name="more.toml")
    feeds, report = tmp_path / "feeds", tmp_path / "report"
    feeds.mkdir()
    report.mkdir()
    return first, second, feeds, report, " ".join(shlex.quote(part) for part in AGGREGATOR)


def refused_in_private_mounts(script: str, report: Path) -> str:
    """The one line a run said as it exited 4, in ``script`` run in private mounts (the
    script writes the run's exit code to ``report``/rc and its stderr to
    ``report``/stderr)."""
    result = in_private_mounts(script)
    assert result.returncode == 0, result.stderr
    assert (report / "rc").read_text().strip() == "4"
    return one_line((report / "stderr").read_text())


def digests(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def stored_count(project: Path) -> int:
    with sqlite3.connect(project / "state" / "aggregator.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_file_in_the_way_is_the_one_named(tmp_path: Path) -> None:
    """A file where a folder should be is named itself: the story pages' folder, and
    the store's folder, which is no missing store (found by review: the page or the
    lock that could not be made was named, and a store whose folder was a file was
    "no such store": restore it, or start again)."""
    config = write_project(tmp_path, SEEDS[:1])
    assert run(config).returncode == 0
    shutil.rmtree(tmp_path / "feeds" / "entries")
    (tmp_path / "feeds" / "entries").write_text("in the way", "utf-8")
    (tmp_path / "feeds" / ".rendered").unlink()  # every file is rendered again
    result = run(config)
    assert result.returncode == 4
    line = one_line(result.stderr)
    assert line.startswith(
        f"error: {tmp_path / 'feeds' / 'entries'}: cannot write: a file is in the way"
    ), line
    (tmp_path / "feeds" / "entries").unlink()
    shutil.move(tmp_path / "state", tmp_path / "state.aside")
    (tmp_path / "state").write_text("in the way", "utf-8")
    result = run(config)
    assert result.returncode == 4
    assert one_line(result.stderr) == (
        f"error: {tmp_path / 'state'}: a file is in the way where the store's folder should "
        "be; move it, or set [store] path to another place (nothing was changed)"
    )


def test_a_link_to_nothing_is_no_file_in_the_way(tmp_path: Path) -> None:
    """A folder that is a link to nothing (a volume not mounted) is not "a file in the
    way": that advice (move it) would be wrong (found by review)."""
    from aggregator.errors import file_in_the_way

    (tmp_path / "file").write_text("x", "utf-8")
    (tmp_path / "folder").mkdir()
    (tmp_path / "nowhere").symlink_to(tmp_path / "unmounted" / "state")
    assert file_in_the_way(tmp_path / "file" / "a" / "b.html") == tmp_path / "file"
    assert file_in_the_way(tmp_path / "folder" / "b.html") is None
    assert file_in_the_way(tmp_path / "nowhere" / "store.sqlite3") is None


def test_feeds_path_taken_by_a_file(tmp_path: Path) -> None:
    config = write_project(tmp_path, SEEDS[:1])
    (tmp_path / "feeds").write_text("not a directory", "utf-8")
    result = run(config)
    assert result.returncode == 4
    line = one_line(result.stderr)
    assert line.startswith(f"error: {tmp_path / 'feeds'}: cannot write: a file is in the way")
    # What was read is kept (the next run may not find it at its source any more), and
    # the line says so; the feeds are written once the way is clear, nothing new read.
    stored = stored_count(tmp_path)
    assert stored > 0
    assert line.endswith(
        f"what the sources gave is kept in the store ({stored} new and 0 updated entries) "
        "and the next run writes the feeds"
    ), line
    (tmp_path / "feeds").unlink()
    again = run(config)
    assert again.returncode == 0, again.stderr
    assert stored_count(tmp_path) == stored
    assert (tmp_path / "feeds" / "all.rss").read_text("utf-8").count("<item>") == stored


def test_a_full_feeds_disk_keeps_the_previous_feeds_and_what_was_read(tmp_path: Path) -> None:
    """The feeds' disk full: the files are as the last run left them, no temporary file
    is left, and what the sources gave is kept in the store (a live feed may list a
    story only until the disk has room again); the next run writes the feeds."""
    first, second, feeds, report, command = two_configs(tmp_path, SEEDS[:2])
    script = f"""
        mount -t tmpfs -o size=2m tmpfs {feeds}
        {command} --config {first} run
        cd {feeds}
        find . -type f | sort | xargs sha256sum > {report}/before
        dd if=/dev/zero of={feeds}/.filler bs=4k 2>/dev/null || true
        rc=0; {command} --config {second} run 2> {report}/stderr || rc=$?
        echo $rc > {report}/rc
        rm .filler
        find . -type f | sort | xargs sha256sum > {report}/after
        find . -name '*.tmp' > {report}/temporaries
        {command} --config {second} run 2> {report}/again
        cp all.rss {report}/all.rss
    """
    line = refused_in_private_mounts(script, report)
    assert str(feeds) in line
    assert "the disk is full" in line
    assert "is kept in the store" in line and "the next run writes the feeds" in line
    assert (report / "before").read_text() == (report / "after").read_text()
    assert (report / "temporaries").read_text() == ""
    # The store kept what the second run read, every source's.
    with sqlite3.connect(tmp_path / "state" / "aggregator.sqlite3") as db:
        sources = {row[0] for row in db.execute("SELECT DISTINCT source FROM sightings")}
    assert sources == {f"seeds/{seed.name}" for seed in SEEDS}
    # With room again, the next run (nothing new to read) writes every stored story.
    assert (report / "again").read_text() == ""
    items = (report / "all.rss").read_text("utf-8").count("<item>")
    assert items == min(stored_count(tmp_path), 50), items


def test_full_disk_under_the_store_is_one_line_and_loses_nothing(tmp_path: Path) -> None:
    """The store, its lock file and the feeds on one full file system: the lock is
    still taken (its note of who holds it left out), and the run stops where it writes."""
    disk, report = tmp_path / "disk", tmp_path / "report"
    disk.mkdir()
    report.mkdir()
    write_project(disk, SEEDS[:2])
    write_project(disk, SEEDS, name="more.toml")
    command = " ".join(shlex.quote(part) for part in AGGREGATOR)
    script = (
        on_a_small_disk(tmp_path, disk)
        + f"""
        {command} --config config.toml run
        sha256sum state/aggregator.sqlite3 > {report}/store-before
        dd if=/dev/zero of=.filler bs=4k 2>/dev/null || true
        rc=0; {command} --config more.toml run 2> {report}/stderr || rc=$?
        echo $rc > {report}/rc
        rm .filler
        sha256sum state/aggregator.sqlite3 > {report}/store-after
    """
    )
    line = refused_in_private_mounts(script, report)
    assert "full" in line, line
    assert (report / "store-before").read_text() == (report / "store-after").read_text()


def test_full_disk_under_a_closed_store_says_so_when_opening(tmp_path: Path) -> None:
    """A closed store on a full disk cannot be opened (WAL needs its -shm file), and
    SQLite says only "disk I/O error": the line says the disk is full and what to do."""
    disk, report = tmp_path / "disk", tmp_path / "report"
    disk.mkdir()
    report.mkdir()
    write_project(disk, SEEDS[:1])
    command = " ".join(shlex.quote(part) for part in AGGREGATOR)
    script = (
        on_a_small_disk(tmp_path, disk)
        + f"""
        {command} --config config.toml run
        ls state > {report}/closed
        sha256sum state/aggregator.sqlite3 > {report}/store-before
        dd if=/dev/zero of=.filler bs=4k 2>/dev/null || true
        rc=0; {command} --config config.toml run 2> {report}/run || rc=$?
        echo $rc > {report}/run.rc
        rc=0; {command} --config config.toml sources list 2> {report}/sources || rc=$?
        echo $rc > {report}/sources.rc
        rm .filler
        sha256sum state/aggregator.sqlite3 > {report}/store-after
    """
    )
    result = in_private_mounts(script)
    assert result.returncode == 0, result.stderr
    closed = (report / "closed").read_text().split()
    assert closed == ["aggregator.sqlite3", "aggregator.sqlite3.lock"]  # no -wal, no -shm
    for command in ("run", "sources"):
        assert (report / f"{command}.rc").read_text().strip() == "4"
        line = one_line((report / command).read_text())
        assert str(disk / "state" / "aggregator.sqlite3") in line, line
        assert "the disk is full; free some disk space" in line, line
    assert (report / "store-before").read_text() == (report / "store-after").read_text()


def test_a_damaged_store_is_one_line(tmp_path: Path) -> None:
    """Pages in the middle of the store overwritten (a disk fault, a bad copy): each
    command that meets them says which store is damaged and what to do, and exits 4."""
    config = write_project(tmp_path, SEEDS)
    assert run(config).returncode == 0
    store = tmp_path / "state" / "aggregator.sqlite3"
    with store.open("r+b") as file:
        page = int.from_bytes(file.read(18)[16:18], "big")  # the header's page size
        size = store.stat().st_size
        file.seek(page)
        file.write(bytes(range(256)) * ((size - page) // 256))  # every page past the first
    for args in (["run"], ["explain", "Ukraine"], ["sources", "list"]):
        result = subprocess.run(
            [*AGGREGATOR, "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert result.returncode == 4, (args, result.stderr)
        line = one_line(result.stderr)
        assert f"{store}: the store is damaged" in line and "backup" in line, line


@pytest.mark.parametrize("target", ["feeds", "state"])
def test_read_only_directory_is_one_line_and_loses_nothing(tmp_path: Path, target: str) -> None:
    first = write_project(tmp_path, SEEDS[:2])
    assert run(first).returncode == 0
    before = digests(tmp_path / "feeds")
    count = stored_count(tmp_path)
    write_project(tmp_path, SEEDS)  # more sources: the next run has something to write
    directory = tmp_path / target
    command = " ".join(shlex.quote(part) for part in AGGREGATOR)
    script = f"""
        mount --bind {directory} {directory}
        mount -o remount,bind,ro {directory}
        rc=0; {command} --config {first} run 2> {tmp_path}/stderr || rc=$?
        echo $rc > {tmp_path}/rc
    """
    result = in_private_mounts(script)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rc").read_text().strip() == "4"
    line = one_line((tmp_path / "stderr").read_text())
    assert str(directory) in line
    assert "read-only" in line
    assert digests(tmp_path / "feeds") == before
    if target == "state":  # nothing could be kept
        assert stored_count(tmp_path) == count
        return
    # The feeds' directory refused: what was read is kept, the feeds follow next run.
    assert stored_count(tmp_path) > count
    again = run(first)
    assert again.returncode == 0, again.stderr
    assert digests(tmp_path / "feeds") != before


def test_sources_that_are_not_regular_files(tmp_path: Path) -> None:
    config = write_project(tmp_path, SEEDS[:1])
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "folder.txt").mkdir()
    extra = "".join(
        f'[[sources]]\nname = "{name}"\npath = "{path}"\n\n'
        for name, path in (
            ("a pipe", "pipe.txt"),
            ("a folder", "folder.txt"),
            ("a device", "/dev/zero"),
        )
    )
    config.write_text(extra + config.read_text("utf-8"), "utf-8")
    result = run(config)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors[:3] == [
        f"error: a pipe ({tmp_path / 'pipe.txt'}): is a named pipe (FIFO), not a file; "
        "point sources[1].path in the config at a saved page or feed",
        f"error: a folder ({tmp_path / 'folder.txt'}): is a directory, not a file; "
        "point sources[2].path in the config at a saved page or feed",
        "error: a device (/dev/zero): is a character device, not a file; "
        "point sources[3].path in the config at a saved page or feed",
    ]
    assert "Traceback" not in result.stderr
    assert stored_count(tmp_path) > 0  # the regular source was read all the same


def test_a_source_file_over_the_size_cap(tmp_path: Path) -> None:
    config = write_project(tmp_path, SEEDS[:1], extra="[fetch]\nmax_decoded_mb = 1\n")
    (tmp_path / "huge.txt").write_bytes(b"x" * ((1 << 20) + 1))
    config.write_text('[[sources]]\npath = "huge.txt"\n\n' + config.read_text("utf-8"), "utf-8")
    result = run(config)
    assert result.returncode == 1
    assert (
        f"error: huge.txt ({tmp_path / 'huge.txt'}): larger than 1 MB; raise [fetch] "
        "max_decoded_mb if it really is one page or feed" in result.stderr.splitlines()
    )


def test_a_store_that_cannot_note_the_install_warns_and_the_next_run_writes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The store refuses the note that the files were installed (its disk full by then,
    found by review): the stories are stored and the feeds in place, so the run says so
    in a warning rather than failing with "nothing was changed"; the next run, not
    finding the note, writes the feeds again."""
    from contextlib import contextmanager

    from aggregator.config import load_config
    from aggregator.errors import WriteError
    from aggregator.output import Staged
    from aggregator.pipeline import run as run_once
    from aggregator.store.sqlite import Store

    config = load_config(write_project(tmp_path, SEEDS[:1]))
    installed: list[bool] = []
    install, transaction = Staged.install, Store.transaction

    def install_and_note(self: Staged) -> list[Path]:
        paths = install(self)
        installed.append(True)
        return paths

    @contextmanager
    def refusing(self: Store) -> Any:
        if installed:  # the disk filled up right after the install
            try:
                raise sqlite3.OperationalError("database or disk is full")
            except sqlite3.OperationalError as error:
                raise WriteError(f"{self.path}: cannot write the store: {error}") from error
        with transaction(self) as db:
            yield db

    monkeypatch.setattr(Staged, "install", install_and_note)
    monkeypatch.setattr(Store, "transaction", refusing)
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    result = run_once(config, now)  # no error: the run's work is done
    assert installed and result.report.new == stored_count(tmp_path) > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{tmp_path / 'state' / 'aggregator.sqlite3'}: the feeds and the store were written, "
        "but the store could not note it (database or disk is full); the next run writes "
        "the feeds again"
    ]
    shown = (tmp_path / "feeds" / "all.rss").read_bytes()
    assert shown.count(b"<item>") == result.report.new
    monkeypatch.undo()
    again = run_once(config, now + timedelta(minutes=5))
    # Rendered again (the note was missing), to the very bytes the files hold.
    assert again.report.new == 0 and "all.rss" in again.rendered
    assert (tmp_path / "feeds" / "all.rss").read_bytes() == shown
    assert run_once(config, now + timedelta(minutes=10)).rendered == ()  # noted this time


def test_a_store_companion_left_read_only_is_named(tmp_path: Path) -> None:
    """A run while the store's file was read-only leaves its -shm file so (SQLite makes
    it with the store's permissions); once the store is writable again, every run still
    failed, saying to make the store writable (found by review): the line names the file
    that refuses. (The file is made immutable, which refuses even root.)"""
    config = write_project(tmp_path, SEEDS[:1])
    store = tmp_path / "state" / "aggregator.sqlite3"
    assert run(config).returncode == 0
    shm = Path(f"{store}-shm")
    shm.touch()  # as a run leaves it
    subprocess.run(["chattr", "+i", str(shm)], check=True)
    try:
        write_project(tmp_path, SEEDS[:2])  # something new to write
        result = run(config)
    finally:
        subprocess.run(["chattr", "-i", str(shm)], check=True)
    assert result.returncode == 4
    line = one_line(result.stderr)
    assert line.startswith(f"error: {store}: "), line
    assert line.endswith(
        f"{shm} is not writable by this user (left so by a run while the store was "
        "read-only); make it writable, or remove it while no run or server uses the store"
    ), line
    assert run(config).returncode == 0  # done as it said


def test_a_disk_out_of_inodes_says_so(tmp_path: Path) -> None:
    """A file system with space but no inodes left refuses a new file with "No space
    left on device", where ``df -h`` shows room: the line says what is short."""
    first, second, feeds, report, command = two_configs(tmp_path, SEEDS[:1])
    script = f"""
        mount -t tmpfs -o size=20m,nr_inodes=40 tmpfs {feeds}
        {command} --config {first} run
        rc=0; {command} --config {second} run 2> {report}/stderr || rc=$?
        echo $rc > {report}/rc
    """
    line = refused_in_private_mounts(script, report)
    assert str(feeds) in line
    assert "no room for another file: the file system has no inodes left" in line, line
    assert "df -i" in line


def test_a_folder_that_refuses_new_files_is_named(tmp_path: Path) -> None:
    """The feeds' folder refuses new files (read-only to this user; here immutable,
    which refuses even root): the line names the folder, not a file in it."""
    config = write_project(tmp_path, SEEDS[:1])
    assert run(config).returncode == 0
    feeds = tmp_path / "feeds"
    write_project(tmp_path, SEEDS[:2])  # something new to write
    subprocess.run(["chattr", "+i", str(feeds)], check=True)
    try:
        result = run(config)
    finally:
        subprocess.run(["chattr", "-i", str(feeds)], check=True)
    assert result.returncode == 4
    line = one_line(result.stderr)
    assert line.startswith(f"error: {feeds}: cannot write: not permitted; "), line


def _told_again_by_beta(tmp_path: Path, feedserver: Server) -> tuple[Path, Path]:
    """A project whose story 1 left every feed (its page stays on disk), then told again
    by a new source, Beta: the config and that page (not naming Beta yet)."""
    from tests.test_source_renames import feed, small_project

    feedserver.overrides["x.xml"] = feed("alpha", range(1, 4))
    # Story 1 told again by another source: the same title and day, its own id and link.
    feedserver.overrides["y.xml"] = feed("alpha", range(1, 2)).replace(b"<guid>", b"<guid>b-")
    feedserver.overrides["y.xml"] = feedserver.overrides["y.xml"].replace(
        b"example.org/alpha/1", b"example.org/beta/1"
    )
    config = small_project(tmp_path, feedserver, [("Alpha", "x.xml", True)])
    assert run(config).returncode == 0
    feedserver.overrides["x.xml"] = feed("alpha", range(1, 7))  # stories 1-3 leave
    assert run(config).returncode == 0
    page = next(
        p
        for p in (tmp_path / "feeds" / "entries").glob("*.html")
        if "alpha story 1<" in p.read_text("utf-8")
    )
    small_project(tmp_path, feedserver, [("Alpha", "x.xml", True), ("Beta", "y.xml", True)])
    return config, page


def test_a_run_stopped_after_its_commit_has_its_pages_written_by_the_next(
    tmp_path: Path, feedserver: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store commits while the files render (pipeline.publish): a run stopped
    after its commit, before its files are in place, leaves the next run to write
    every file it changed, the page of a story no feed shows too. Meanwhile `serve`
    reads which story pages are current from the last install, as before the run."""
    from aggregator import pipeline
    from aggregator.cli import main
    from aggregator.config import load_config
    from aggregator.store import open_store_to_read

    def current_pages() -> frozenset[str] | None:
        settings = load_config(config)
        store = open_store_to_read(settings.store)  # another connection
        assert store is not None
        with store:
            return pipeline.installed_pages(settings, store)

    try:
        config, page = _told_again_by_beta(tmp_path, feedserver)
        before = current_pages()
        assert before
        seen: list[frozenset[str] | None] = []

        def stopped(self: pipeline.Rendering, *args: Any, **kwargs: Any) -> Any:
            seen.append(current_pages())  # what serve would read just then
            raise KeyboardInterrupt  # Ctrl-C, or the machine going down, right then

        with monkeypatch.context() as patched:
            patched.setattr(pipeline.Rendering, "finish", stopped)
            assert main(["-q", "--config", str(config), "run"]) == 130
        assert seen == [before]
        with sqlite3.connect(tmp_path / "state" / "aggregator.sqlite3") as db:
            told = db.execute("SELECT count(*) FROM sightings WHERE source = 'Beta'").fetchone()
        assert told == (1,)  # committed
        assert "Beta" not in page.read_text("utf-8")
        again = run(config)
        assert again.returncode == 0, again.stderr
        assert "Beta" in page.read_text("utf-8")
        assert not list(tmp_path.rglob("*.tmp"))
    finally:
        for name in ("x.xml", "y.xml"):
            feedserver.overrides.pop(name, None)


def test_pages_a_failed_publish_changed_are_written_by_the_next_run(
    tmp_path: Path, feedserver: Server
) -> None:
    """A publish whose files could not be written keeps what it read; the next run
    writes every file it changed, the page of a story no feed shows too (found by
    review: that page never named the source that told the story again)."""
    try:
        config, page = _told_again_by_beta(tmp_path, feedserver)
        feeds = tmp_path / "feeds"
        subprocess.run(["chattr", "+i", str(feeds / "entries")], check=True)
        try:
            failed = run(config)
        finally:
            subprocess.run(["chattr", "-i", str(feeds / "entries")], check=True)
        assert failed.returncode == 4
        assert "is kept in the store" in one_line(failed.stderr)
        assert "Beta" not in page.read_text("utf-8")
        again = run(config)
        assert again.returncode == 0, again.stderr
        assert "Beta" in page.read_text("utf-8")
    finally:
        for name in ("x.xml", "y.xml"):
            feedserver.overrides.pop(name, None)


def test_a_store_on_a_disk_out_of_inodes_says_so(tmp_path: Path) -> None:
    """The store cannot make its -wal and -shm files (no inodes left): said as that,
    not as a matter of permissions (found by review)."""
    disk, report = tmp_path / "disk", tmp_path / "report"
    disk.mkdir()
    report.mkdir()
    write_project(disk, SEEDS[:1])
    command = " ".join(shlex.quote(part) for part in AGGREGATOR)
    script = f"""
        cd {disk}
        {command} --config config.toml run
        mkdir {tmp_path}/held && cp -a state/. {tmp_path}/held
        mount -t tmpfs -o size=20m,nr_inodes=12 tmpfs state
        cp -a {tmp_path}/held/. state
        n=0; while touch state/.filler$n 2>/dev/null; do n=$((n+1)); done
        rc=0; {command} --config config.toml run 2> {report}/stderr || rc=$?
        echo $rc > {report}/rc
    """
    line = refused_in_private_mounts(script, report)
    assert str(disk / "state" / "aggregator.sqlite3") in line, line
    assert "no inodes left" in line and "writable" not in line, line
