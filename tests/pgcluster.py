"""A throw-away PostgreSQL cluster for tests: Debian's binaries, initdb in a temp dir.

The server listens only on a unix socket in that directory (no TCP port to collide
with), trusts local connections, and is stopped by its pid at the end. PostgreSQL
refuses to run as root, so under root (CI) the cluster belongs to the ``postgres``
system user that Debian's package creates, and its directory is handed to it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import psycopg

INSTALL = "apt-get install -y --no-install-recommends postgresql (.ci/run does it when run as root)"


def binaries() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, if any."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


@dataclass
class Cluster:
    directory: Path  # holds the data directory and the socket
    user: str  # the superuser (the OS user that ran initdb)
    _names: Iterator[int]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@/{database}?host={self.directory}"

    def new_database(self) -> str:
        """The URL of a new empty database (one per test: nothing leaks between them)."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError(f"PostgreSQL is not installed; install it: {INSTALL}")
    directory = Path(tempfile.mkdtemp(prefix="aggregator-pg-"))
    as_root = os.getuid() == 0
    owner = pwd.getpwnam("postgres") if as_root else pwd.getpwuid(os.getuid())
    if as_root:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    # As root, run the server as the postgres user (subprocess sets the ids in the
    # child before exec, so the pid we hold is the server's own).
    ids = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []} if as_root else {}
    data = directory / "data"
    subprocess.run(
        [
            *(str(bin_dir / "initdb"), "-D", str(data), "-U", owner.pw_name, "--auth=trust"),
            *("--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"),
        ],
        check=True,
        capture_output=True,
        cwd=directory,
        **ids,  # type: ignore[arg-type]
    )
    log = (directory / "server.log").open("wb")
    server = subprocess.Popen(
        [
            *(str(bin_dir / "postgres"), "-D", str(data), "-k", str(directory)),
            *("-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off"),
            *("-c", "full_page_writes=off", "-c", "max_connections=300"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=directory,
        **ids,  # type: ignore[arg-type]
    )
    try:
        cluster = Cluster(directory, owner.pw_name, count(1))
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(cluster.url(), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "the test PostgreSQL did not start: "
                        + (directory / "server.log").read_text(errors="replace")[-2000:]
                    ) from None
                time.sleep(0.1)
        yield cluster
    finally:
        # SIGINT: PostgreSQL's "fast" shutdown (ends sessions, no waiting for clients).
        if server.poll() is None:
            os.kill(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(server.pid, signal.SIGKILL)
                server.wait()
        log.close()
        shutil.rmtree(directory, ignore_errors=True)
