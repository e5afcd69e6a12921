"""Many workers on one PostgreSQL store: three ``serve`` processes sharing the sources.

Real parts only: a throw-away PostgreSQL, the local feed server (its request log is
the witness of every fetch), and three ``aggregator serve`` processes on one database,
each with its own feeds directory, as behind a load balancer: 300 sources, as the
issue asks, on a 45-second interval with 30-second leases (longer than a read waits for
the write lock). Each source's job publishes under the one write lock, rendering only
what its source changed; 300 of them fit in an interval on 2 busy cores with room.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from aggregator.config import StoreSettings
from aggregator.store import open_store
from aggregator.store.leases import SLACK
from tests.feedserver import Server, serving
from tests.pgcluster import Cluster
from tests.test_serve import free_port

SOURCES = 300
INTERVAL = 45.0  # seconds
SHARED = "Allies agree on a common plan"  # told by every source: one story


def feed(number: int) -> bytes:
    items = "".join(
        f"<item><title>Story {number} {part}</title><guid>w{number}-{part}</guid>"
        f"<pubDate>{day:02d} Jan 2026 10:00:00 GMT</pubDate>"
        f"<description>About {number}.</description></item>"
        for part, day in (("a", 1 + number % 28), ("b", 2 + number % 27))
    )
    shared = f"<item><title>{SHARED}</title><pubDate>30 Jan 2026 09:00:00 GMT</pubDate></item>"
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>w{number}</title>'
        f"<link>https://example.org/{number}</link><description>d</description>"
        f"{items}{shared}</channel></rss>"
    ).encode()


def write_config(directory: Path, server: Server) -> Path:
    lines = [
        "[feeds]",
        'directory = "feeds"',
        'base_url = "https://news.example/feeds/"',  # the load balancer's address
        "[store]",
        "lease_seconds = 30",
        "lock_timeout = 60",
        "[schedule]",
        f"interval_minutes = {INTERVAL / 60}",
        "jitter_seconds = 1",
        "max_backoff_minutes = 1",
    ]
    for number in range(SOURCES):
        path = f"w{number:03d}.xml"
        server.overrides[path] = feed(number)
        lines += ["[[sources]]", f'name = "w{number:03d}"', f'url = "{server.base}/feeds/{path}"']
    config = directory / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.1)


class TimedLog(list[tuple[str, str, str | None]]):
    """The feed server's request log, also noting when each request came."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, request: tuple[str, str, str | None]) -> None:
        self.times.append(time.monotonic())
        super().append(request)


@pytest.fixture
def feeds() -> Iterator[Server]:
    with serving() as server:  # its own server: a request log of this test's fetches only
        server.log = TimedLog()
        yield server


def test_three_instances_share_the_sources_and_serve_the_same_feeds(
    tmp_path: Path, postgres: Cluster, feeds: Server
) -> None:
    url = postgres.new_database()
    env = {**os.environ, "AGGREGATOR_STORE_URL": url, "PYTHONUNBUFFERED": "1"}
    instances: list[tuple[subprocess.Popen[str], str]] = []
    for number in range(3):
        directory = tmp_path / f"instance{number}"
        directory.mkdir()
        config = write_config(directory, feeds)
        port = free_port()
        with (directory / "serve.log").open("w") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aggregator",
                    "--config",
                    str(config),
                    "serve",
                    "--port",
                    str(port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        instances.append((process, f"http://127.0.0.1:{port}"))
    try:

        def hits() -> Counter[str]:
            return Counter(p for _, p, _ in list(feeds.log) if p.startswith("/feeds/w"))

        def up(base: str) -> bool:
            try:
                return httpx.get(f"{base}/feeds/all.rss", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(lambda: all(up(base) for _, base in instances), 120, "three instances up")
        # Round 1: every source read once, by whichever instance claimed it first.
        assert set(hits().values()) == {1} and len(hits()) == SOURCES

        # Round 2, one interval on: each source read once more, by one instance.
        wait_for(lambda: min(hits().values()) >= 2, 3 * INTERVAL, "every source read again")
        log = feeds.log
        assert isinstance(log, TimedLog)
        last: dict[str, float] = {}
        for (_, path, _), when in zip(list(log), list(log.times), strict=False):
            if path.startswith("/feeds/w"):
                # Never read twice within one interval (less its slack, a tenth:
                # leases.next_due), whichever instance read it.
                assert when - last.get(path, -1000.0) >= INTERVAL * (1 - SLACK), path
                last[path] = when

        # Round 3: one instance is killed as it starts reading; the others take over its
        # sources when their leases end.
        wait_for(lambda: sum(hits().values()) > 2 * SOURCES + 5, 3 * INTERVAL, "round 3 under way")
        victim, _ = instances.pop()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        wait_for(
            lambda: min(hits().values()) >= 3, 4 * INTERVAL, "the victim's sources read by others"
        )

        # Nothing lost, each story once, and every instance serves the same bytes.
        with open_store(StoreSettings(path=tmp_path / "unused", url=url)) as store:
            assert store.counts()["all"] == 2 * SOURCES + 1
            assert set(store.counts_by_source().values()) == {3}
            [shared] = store.find(SHARED)
            assert len(shared.sources) == SOURCES

        def same_everywhere() -> bool:
            for name in ("all.rss", "all.atom", "all.json", "index.html"):
                seen = set()
                for _, base in instances:
                    answer = httpx.get(f"{base}/feeds/{name}", timeout=5)
                    headers = answer.headers
                    seen.add((answer.content, headers["etag"], headers["last-modified"]))
                if len(seen) != 1:
                    return False
            return True

        wait_for(same_everywhere, 10, "identical bytes, ETags and Last-Modified")
        body = httpx.get(f"{instances[0][1]}/feeds/all.rss", timeout=5).text
        assert body.count(f"<title>{SHARED}</title>") == 1
    finally:
        for process, _ in instances:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in instances:
            process.wait(timeout=30)


def test_concurrent_cron_runs_read_each_source_once(
    tmp_path: Path, postgres: Cluster, feeds: Server
) -> None:
    """Three cron runs started together on one PostgreSQL store (they take the write
    lock only to publish): all succeed, each source is read once (leases), and every
    story is stored once."""
    env = {**os.environ, "AGGREGATOR_STORE_URL": postgres.new_database()}
    runs = []
    for number in range(3):
        directory = tmp_path / f"run{number}"
        directory.mkdir()
        config = write_config(directory, feeds)
        runs.append(
            subprocess.Popen(
                [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        )
    outputs = [run.communicate(timeout=180)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    reads = Counter(path for _, path, _ in feeds.log if path.startswith("/feeds/w"))
    assert len(reads) == SOURCES
    assert set(reads.values()) == {1}, reads.most_common(3)
    with open_store(StoreSettings(path=tmp_path / "unused", url=env["AGGREGATOR_STORE_URL"])) as s:
        titles = [e.title for e in s.newest(1000)]
    assert len(titles) == 2 * SOURCES + 1
    assert titles.count(SHARED) == 1


def test_a_cron_run_on_a_shared_store_loads_the_renderers_before_the_lock(
    tmp_path: Path, postgres: Cluster, feeds: Server
) -> None:
    """On PostgreSQL a run takes the write lock only to publish: the renderers (Jinja2,
    the templates) are loaded before it, so that other workers' publishes do not wait
    for them: by its parser workers, which render the publish (parts.Prepared), and by
    the run's own process (which renders a page no feed shows, or a part a worker
    failed)."""
    env = {**os.environ, "AGGREGATOR_STORE_URL": postgres.new_database()}
    config = write_config(tmp_path, feeds)
    script = (
        "import json, sys\n"
        "import aggregator.pipeline as pipeline\n"
        "from aggregator.site import parts\n"
        "seen = []\n"
        "made = []\n"
        "preparing = parts.Prepared.__init__\n"
        "def init(self, *args, **kwargs):\n"
        "    made.append(self)\n"
        "    preparing(self, *args, **kwargs)\n"
        "parts.Prepared.__init__ = init\n"
        "taking = pipeline.write_lock\n"
        "names = ('jinja2', 'aggregator.site.pages')\n"
        "def write_lock(*args, **kwargs):\n"
        "    here = sorted(m for m in names if m in sys.modules)\n"
        "    seen.append([here, [p.loaded for p in made]])\n"
        "    return taking(*args, **kwargs)\n"
        "pipeline.write_lock = write_lock\n"
        "from aggregator.cli import main\n"
        "status = main(['--config', sys.argv[1], '-q', 'run'])\n"
        "print(json.dumps([status, seen]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    status, seen = json.loads(done.stdout.splitlines()[-1])
    assert status == 0, done.stderr
    assert seen == [[["aggregator.site.pages", "jinja2"], [True]]]


def small_shared_config(directory: Path, server: Server, url: str, minutes: float) -> Path:
    """Three sources on a PostgreSQL store (claims and leases), read every ``minutes``."""
    lines = [
        "[feeds]",
        'directory = "feeds"',
        "[store]",
        f'url = "{url}"',
        "lease_seconds = 600",  # longer than the test: only giving back frees a claim
        "[schedule]",
        f"interval_minutes = {minutes}",
    ]
    for number in range(3):
        server.overrides[f"g{number}.xml"] = feed(number)
        lines += [
            "[[sources]]",
            f'name = "g{number}"',
            f'url = "{server.base}/feeds/g{number}.xml"',
        ]
    config = directory / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def aggregator_run(config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "run", *options],
        capture_output=True,
        text=True,
        timeout=120,
    )


def reads(server: Server) -> int:
    return sum(1 for _, path, _ in server.log if path.startswith("/feeds/g"))


def test_a_run_that_fails_gives_its_sources_back(
    tmp_path: Path, postgres: Cluster, feeds: Server
) -> None:
    """A run that read its sources and then failed (its feeds directory cannot be made)
    kept nothing: the next run reads them all again, not once their leases end."""
    config = small_shared_config(tmp_path, feeds, postgres.new_database(), 60)
    (tmp_path / "feeds").write_text("a file where the feeds directory should be\n")
    failed = aggregator_run(config)
    assert failed.returncode == 4, failed.stderr
    assert reads(feeds) == 3
    (tmp_path / "feeds").unlink()
    again = aggregator_run(config)
    assert again.returncode == 0, again.stderr
    assert reads(feeds) == 6
    assert (tmp_path / "feeds" / "all.rss").exists()


def test_a_cron_run_every_interval_finds_its_sources_due(
    tmp_path: Path, postgres: Cluster, feeds: Server
) -> None:
    """Released one interval after their reads, sources were not yet due for a cron
    run one interval after the last one started: read every other time."""
    config = small_shared_config(tmp_path, feeds, postgres.new_database(), 0.1)  # 6 s
    started = time.monotonic()
    assert aggregator_run(config).returncode == 0
    assert reads(feeds) == 3
    time.sleep(max(0.0, started + 6.0 - time.monotonic()))  # cron: one interval on
    assert aggregator_run(config).returncode == 0
    assert reads(feeds) == 6


def test_run_force_reads_every_source_even_before_it_is_due(
    tmp_path: Path, postgres: Cluster, feeds: Server
) -> None:
    """On a shared store a source is claimed only when due; --force asks every source
    now, as the README says, due or not (found by review: it asked none)."""
    config = small_shared_config(tmp_path, feeds, postgres.new_database(), 60)
    assert aggregator_run(config).returncode == 0
    assert reads(feeds) == 3
    assert aggregator_run(config).returncode == 0  # none due for an hour
    assert reads(feeds) == 3
    forced = aggregator_run(config, "--force")
    assert forced.returncode == 0, forced.stderr
    assert reads(feeds) == 6
