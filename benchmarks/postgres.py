"""Ingest with 1, 2 and 3 workers on one PostgreSQL store, beside SQLite.

The ingest workload (200 feeds x 50 items on the keep-alive feed host) read cold, by
``aggregator run``: once on SQLite (the baseline), then by 1, 2 and 3 concurrent runs
on one fresh PostgreSQL database each time, each run with its own feeds directory, as
cron runs on different machines would be. Every worker claims the sources it reads
through the leases (aggregator/store/leases.py), so together they must read each feed
once: the feed host logs every request with the worker's User-Agent, and the figures
say how many feeds each worker read; a feed read twice, or never, stops the case.

The cluster is a throw-away one (tests/pgcluster.py: initdb in a temp dir, a unix
socket, fsync and synchronous_commit off, like SQLite's WAL with synchronous=NORMAL
not syncing on commit); it, the feed host and any worker still running are stopped
at the end, also on error.

``python -m benchmarks.postgres host DIRECTORY PORT LOG`` is the counting feed host.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

from benchmarks.workloads import write_config, write_feeds

F = TypeVar("F")
PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent
FEEDS, ITEMS = 200, 50
WORKERS = (1, 2, 3)


def cores() -> tuple[int, int]:
    """The machine's cores, and those this process may run on."""
    total = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = total
    return total, usable


# -- the feed host, counting -----------------------------------------------------------------


def host(directory: Path, port: int, log: Path) -> None:
    """benchmarks.feedhost, with every answer written to ``log`` as
    ``user-agent<TAB>path<TAB>status``: the witness of who read which feed."""
    from benchmarks import feedhost

    out = log.open("a", buffering=1, encoding="utf-8")

    def told(agent: str, path: str, status: int) -> None:
        out.write(f"{agent}\t{path}\t{status}\n")

    feedhost.serve(directory, port, told=told)


def requests_since(log: Path, offset: int) -> list[tuple[str, str, int]]:
    with log.open("rb") as file:
        file.seek(offset)
        text = file.read().decode()
    rows = []
    for line in text.splitlines():
        agent, path, status = line.split("\t")
        rows.append((agent, path, int(status)))
    return rows


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the feed host is not listening on port {port}") from None
            time.sleep(0.05)


@contextmanager
def started(command: list[str], env: dict[str, str] | None = None) -> Iterator[None]:
    """A background process, stopped by its pid at the end."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the workers ----------------------------------------------------------------------------


def worker_config(directory: Path, urls: list[str], agent: str) -> Path:
    directory.mkdir(parents=True)
    config = write_config(directory, urls, urls=True)
    text = config.read_text().replace("[fetch]\n", f'[fetch]\nuser_agent = "{agent}"\n', 1)
    config.write_text(text, encoding="utf-8")
    return config


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def run_together(configs: list[Path], env: dict[str, str]) -> list[float]:
    """Start one ``aggregator run`` per config at once; the seconds until each ended (the
    last of them is the wall time of the whole ingest)."""
    processes: list[subprocess.Popen[bytes]] = []
    begun = time.perf_counter()
    ended: dict[int, float] = {}
    with ExitStack() as stack:
        stack.callback(stop, processes)
        for config in configs:
            processes.append(
                subprocess.Popen(
                    [PYTHON, "-m", "aggregator", "-q", "--config", str(config), "run"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stack.enter_context((config.parent / "run.log").open("wb")),
                )
            )
        while len(ended) < len(processes):
            for index, process in enumerate(processes):
                if index not in ended and process.poll() is not None:
                    ended[index] = time.perf_counter() - begun
            if time.perf_counter() - begun > 900:
                raise RuntimeError("aggregator run took more than 15 minutes")
            time.sleep(0.02)
    failed = [
        f"exit {process.returncode}: "
        + (config.parent / "run.log").read_text(errors="replace").strip()[-1500:]
        for process, config in zip(processes, configs, strict=True)
        if process.returncode != 0
    ]
    if failed:
        raise RuntimeError("aggregator run failed: " + " | ".join(failed))
    return [ended[index] for index in range(len(processes))]


def reads_per_worker(rows: list[tuple[str, str, int]], agents: list[str]) -> list[int]:
    """Feeds read by each worker, after checking every feed was read exactly once."""
    bodies = [(agent, path) for agent, path, status in rows if status == 200]
    per_feed = Counter(path for _, path in bodies)
    twice = sorted(path for path, n in per_feed.items() if n > 1)
    missing = FEEDS - len(per_feed)
    if twice or missing or len(bodies) != FEEDS:
        raise RuntimeError(
            f"each feed must be read once: {len(bodies)} reads, {len(per_feed)} feeds, "
            f"read more than once: {twice[:5]}, never read: {missing}"
        )
    per_agent = Counter(agent for agent, _ in bodies)
    return [per_agent[agent] for agent in agents]


def entries_in_postgres(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as db:
        row = db.execute("SELECT COUNT(*) FROM entries").fetchone()
        return int(row[0]) if row else 0


def entries_in_sqlite(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])


def measure(work: Path, repeat: int, figure: Callable[..., F]) -> list[F]:
    """The figures, made with ``figure(case, name, unit, samples, ...)`` (the runner's)."""
    from tests.pgcluster import INSTALL, binaries, running_cluster

    total, usable = cores()

    def core_figure(note: str = "") -> F:
        return figure(
            "workers",
            f"cores: os.cpu_count() {total}, usable by this process {usable}",
            "cores",
            [float(usable)],
            note=note,
        )

    if binaries() is None:
        return [core_figure(), figure("workers", f"skipped: no PostgreSQL ({INSTALL})", "", [0])]
    base = work / "workers"
    data = base / "feeds"
    write_feeds(data, FEEDS, ITEMS)
    port = free_port()
    urls = [f"http://127.0.0.1:{port}/feed-{i:03d}.xml" for i in range(FEEDS)]
    log = base / "requests.log"
    log.touch()
    entries = FEEDS * ITEMS
    times: dict[int, list[float]] = {}
    ends: dict[int, list[list[float]]] = {}
    splits: dict[int, list[list[int]]] = {}
    host_command = [PYTHON, "-m", "benchmarks.postgres", "host", str(data), str(port), str(log)]
    load_before = os.getloadavg()[0]
    with started(host_command), running_cluster() as cluster:
        wait_port(port)
        env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_STORE_URL"}
        sqlite_times = []
        for sample in range(repeat):
            config = worker_config(base / f"sqlite-{sample}", urls, "sqlite")
            offset = log.stat().st_size
            sqlite_times.append(run_together([config], env)[0])
            reads_per_worker(requests_since(log, offset), ["sqlite"])
            stored = entries_in_sqlite(config.parent / "state" / "store.sqlite3")
            if stored != entries:
                raise RuntimeError(f"SQLite store holds {stored} entries, not {entries}")
        for workers in WORKERS:
            times[workers], splits[workers], ends[workers] = [], [], []
            for sample in range(repeat):
                url = cluster.new_database()
                agents = [f"worker-{n}" for n in range(workers)]
                configs = [
                    worker_config(base / f"pg-{workers}-{sample}-{agent}", urls, agent)
                    for agent in agents
                ]
                offset = log.stat().st_size
                ended = run_together(configs, {**env, "AGGREGATOR_STORE_URL": url})
                times[workers].append(max(ended))
                ends[workers].append(ended)
                splits[workers].append(reads_per_worker(requests_since(log, offset), agents))
                stored = entries_in_postgres(url)
                if stored != entries:
                    raise RuntimeError(f"PostgreSQL store holds {stored} entries, not {entries}")
    load_after = os.getloadavg()[0]
    baseline = statistics.median(entries / t for t in sqlite_times)
    figures = [
        core_figure(
            f"load average {load_before:.1f} before the case, {load_after:.1f} after: "
            f"{usable} cores shared by the workers, their parser processes, PostgreSQL "
            "and the feed host"
        ),
        figure(
            "workers",
            f"SQLite, 1 aggregator run, {FEEDS} feeds x {ITEMS} cold",
            "entries/s",
            [entries / t for t in sqlite_times],
            extra={"seconds": statistics.median(sqlite_times)},
        ),
    ]
    for workers in WORKERS:
        rates = [entries / t for t in times[workers]]
        shares = sorted({"+".join(map(str, split)) for split in splits[workers]})
        figures.append(
            figure(
                "workers",
                f"PostgreSQL, {workers} concurrent aggregator run{'s' * (workers > 1)}"
                f" (feeds read per worker: {', '.join(shares)})",
                "entries/s",
                rates,
                baseline="SQLite run",
                ratio=statistics.median(rates) / baseline,  # throughput: higher is better
                note=(
                    f"{workers} worker(s): every feed read exactly once in each of {repeat} "
                    f"runs, the store holding {entries:,} entries; seconds until each worker "
                    "ended: "
                    + "; ".join(", ".join(f"{t:.1f}" for t in run) for run in ends[workers])
                ),
                extra={
                    "seconds": statistics.median(times[workers]),
                    "splits": splits[workers],
                    "ends": ends[workers],
                },
            )
        )
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["host"]:
        host(Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
    else:
        sys.exit("usage: python -m benchmarks.postgres host DIRECTORY PORT LOG")
