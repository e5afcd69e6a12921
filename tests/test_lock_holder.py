"""The write lock's message names who holds it: process id, command and since when (the
lock file beside an SQLite store, PostgreSQL's advisory lock)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator import lock
from aggregator.lock import LockTimeout, advisory, exclusive
from tests.pgcluster import Cluster


@contextlib.contextmanager
def held_by(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A process running ``script`` (which prints "held" once it holds the lock), killed
    when the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()


HOLD = """
import sys, time
from pathlib import Path
from aggregator.lock import exclusive
with exclusive(Path(sys.argv[1]), 0):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_lock_timeout_names_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "store.sqlite3.lock"
    before = datetime.now(UTC).replace(microsecond=0)
    with (
        held_by(HOLD, str(lock), "serve", "--port", "8123") as holder,
        pytest.raises(LockTimeout) as caught,
        exclusive(lock, wait=0.2),
    ):
        pass
    message = str(caught.value)
    prefix = f"{lock}: another aggregator run or server is writing (process {holder.pid}, "
    assert message.startswith(prefix + f"aggregator {lock} serve --port 8123, since ")
    since = message.split(", since ", 1)[1].split(")", 1)[0]
    assert before <= datetime.fromisoformat(since) <= datetime.now(UTC)
    assert message.endswith("did not finish within 0.2 s; nothing was done, try again later")
    with exclusive(lock, wait=5):  # the holder is gone: the kernel released its lock
        pass


HOLD_ADVISORY = """
import sys, time
from aggregator.lock import advisory
url = sys.argv[1]
sys.argv = ["aggregator", "serve", "--port", "8123"]
with advisory(url, 5):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_postgresql_lock_timeout_names_the_holder(postgres: Cluster) -> None:
    """PostgreSQL knows who holds the advisory lock: the holder's connection is named
    after its command, process id and host, and the lock was taken when its last
    statement ended."""
    url = postgres.new_database()
    before = datetime.now(UTC).replace(microsecond=0)
    with (
        held_by(HOLD_ADVISORY, url) as holder,
        pytest.raises(LockTimeout) as caught,
        advisory(url, wait=0.2),
    ):
        pass
    message = str(caught.value)
    who = f"aggregator serve --port 8123 pid {holder.pid} on {socket.gethostname()}"
    prefix = f"{url}: another aggregator run or server is writing ({who}, since "
    assert message.startswith(prefix), message
    since = message[len(prefix) :].split(")", 1)[0]
    assert before <= datetime.fromisoformat(since) <= datetime.now(UTC)
    assert message.endswith("did not finish within 0.2 s; nothing was done, try again later")
    with advisory(url, wait=10):  # the holder is gone: PostgreSQL released its lock
        pass


def test_the_lock_file_shows_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anyone who can read the store's folder reads the lock file: a store URL typed on
    the command line is written there without its password."""
    monkeypatch.setattr(
        sys,
        "argv",
        ["aggregator", "store", "copy", "--to", "postgresql://agg:s3cret@db.example/news"],
    )
    written = lock._me().decode()
    assert "s3cret" not in written
    assert "aggregator store copy --to postgresql://agg@db.example/news" in written
    for typed, shown in [
        ("--to=postgresql://agg:s3cret@db/n", "--to=postgresql://agg@db/n"),
        ("postgresql://agg:s3#c?r/et@db/n", "postgresql://agg@db/n"),
        (
            "postgresql://agg@db/n?password=s3cret&sslmode=require",
            "postgresql://agg@db/n?sslmode=require",
        ),
        ("postgresql://agg@/n?host=/run/pg&sslpassword=s3cret", "postgresql://agg@/n?host=/run/pg"),
    ]:
        monkeypatch.setattr(sys, "argv", ["aggregator", "store", "copy", typed])
        written = lock._me().decode()
        assert "s3" not in written and f"aggregator store copy {shown}\n" in written, written
