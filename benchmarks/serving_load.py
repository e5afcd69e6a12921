"""Serving under load: plain-GET latency while searches run, and a cron run's lock wait.

Two figures per archive size (10,000 and 100,000 stories), against ``aggregator serve``
started on a temporary copy:

* plain GET latency, p50 and p99, of ``/feeds/ukraine.rss`` asked one after another,
  first alone (the baseline), then while another process keeps 64 searches in flight
  (``/search?q=…`` and ``?q=`` feeds; those the server turns away with 503 count as
  answered). Goal: p99 under 100 ms while searches run.
* the lock wait of a cron run beside ``serve``: the time to take the write lock as a cron
  run does, sampled while ``serve`` ingests a source that gains a story every half second
  (so each of its jobs writes). Goal: it does not grow with the archive.

Run through the runner (``python -m benchmarks --only serving_load``), or alone:
``python -m benchmarks.serving_load [--quick]``. ``python -m benchmarks.serving_load load
URL SECONDS`` is the search load itself (a process of its own, so that its client work
does not slow the client measuring latency).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent
WORDS = ("Ukraine", "Archived", "story", "summary", "NATO", "Allies", "Kyiv", "Baltic", "7")
SEARCHES_IN_FLIGHT = 64
F = TypeVar("F")


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def search_load(base: str, seconds: float) -> dict[str, Any]:
    """Keep SEARCHES_IN_FLIGHT searches going for ``seconds``; count the answers."""
    counts: dict[str, int] = {}
    rng = random.Random(5)

    async def worker(client: httpx.AsyncClient, until: float) -> None:
        while time.monotonic() < until:
            words = "+".join(rng.sample(WORDS, 2))
            path = f"/search?q={words}" if rng.random() < 0.5 else f"/feeds/all.rss?q={words}"
            try:
                status = str((await client.get(path)).status_code)
            except httpx.HTTPError as error:
                status = type(error).__name__
            counts[status] = counts.get(status, 0) + 1

    async def main() -> None:
        limits = httpx.Limits(max_connections=SEARCHES_IN_FLIGHT)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            until = time.monotonic() + seconds
            await asyncio.gather(*(worker(client, until) for _ in range(SEARCHES_IN_FLIGHT)))

    asyncio.run(main())
    return counts


def plain_latencies(url: str, seconds: float) -> list[float]:
    """Milliseconds of each GET of ``url``, one after another, for ``seconds``."""
    samples = []
    with httpx.Client(timeout=30) as client:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")
    return samples


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(config: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "aggregator", "-q", "--config", str(config), "serve", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("aggregator serve did not come up")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def growing_feed(path: Path, stop: threading.Event) -> None:
    """A feed file that gains a story every half second (so serve's job writes)."""
    number = 0
    while not stop.wait(0.5):
        items = "".join(
            f"<item><title>Fresh story {n} on Ukraine</title>"
            f"<link>https://example.org/fresh/{n}</link>"
            f"<pubDate>Mon, 23 Nov 2026 09:{n % 60:02d}:00 +0000</pubDate></item>"
            for n in range(max(0, number - 20), number + 1)
        )
        temporary = path.with_suffix(".tmp")
        temporary.write_text(f'<rss version="2.0"><channel><title>f</title>{items}</channel></rss>')
        temporary.replace(path)
        number += 1


def lock_waits(config: Path, seconds: float) -> list[float]:
    """Milliseconds a cron run waits for the write lock, sampled every ~0.3 s."""
    from aggregator.config import load_config
    from aggregator.lock import write_lock

    settings = load_config(config).store
    rng = random.Random(3)
    samples = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        started = time.perf_counter()
        with write_lock(settings):
            samples.append((time.perf_counter() - started) * 1000)
        time.sleep(rng.uniform(0.1, 0.5))
    return samples


def measure(work: Path, quick: bool, figure: Callable[..., F]) -> list[F]:
    """The figures, made with ``figure(case, name, unit, samples, ...)`` (the runner's)."""
    from benchmarks.workloads import write_config

    seconds = 5.0 if quick else 20.0
    figures: list[F] = []
    waits: dict[int, list[float]] = {}
    for size in (10_000, 100_000):
        directory = work / f"serving-load-{size}"
        directory.mkdir(parents=True)
        fresh = directory / "fresh.xml"
        fresh.write_text('<rss version="2.0"><channel><title>f</title></channel></rss>')
        config = write_config(directory, [str(fresh)], urls=False)
        text = config.read_text().replace("[feeds]\n", '[feeds]\nbase_url = "http://x/"\n', 1)
        config.write_text(
            "[schedule]\ninterval_minutes = 0.01\njitter_seconds = 0\n" + text, encoding="utf-8"
        )
        subprocess.run(
            [PYTHON, "-m", "benchmarks.probe", "archive", str(config), str(size)],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [PYTHON, "-m", "aggregator", "-q", "--config", str(config), "run"], check=True, cwd=ROOT
        )
        label = f"archive {size:,}"
        with serving(config) as base:
            url = base + "/feeds/ukraine.rss"
            alone = plain_latencies(url, seconds)
            load = subprocess.Popen(
                [PYTHON, "-m", "benchmarks.serving_load", "load", base, str(seconds + 2)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1)  # the searches are under way
            loaded = plain_latencies(url, seconds)
            answers = json.loads(load.communicate(timeout=600)[0].strip().splitlines()[-1])
            stop = threading.Event()
            writer = threading.Thread(target=growing_feed, args=(fresh, stop), daemon=True)
            writer.start()
            try:
                waits[size] = lock_waits(config, seconds)
            finally:
                stop.set()
                writer.join()
        for name, samples in (("alone", alone), ("64 searches in flight", loaded)):
            p99 = percentile(samples, 0.99)
            searched = name != "alone"
            figures.append(
                figure(
                    "serving_load",
                    f"plain GET p50, {name}, {label}",
                    "ms",
                    [percentile(samples, 0.5)],
                )
            )
            figures.append(
                figure(
                    "serving_load",
                    f"plain GET p99, {name}, {label}",
                    "ms",
                    [p99],
                    goal="under 100 ms" if searched else "",
                    met=p99 < 100 if searched else None,
                    note=f"{label}: search answers {answers}" if searched else "",
                )
            )
    small, large = waits[10_000], waits[100_000]
    for size, samples in waits.items():
        figures.append(
            figure(
                "serving_load",
                f"cron lock wait beside serve, p99, archive {size:,}",
                "ms",
                [percentile(samples, 0.99)],
                extra={"median_ms": statistics.median(samples), "samples": len(samples)},
            )
        )
    ratio = percentile(large, 0.99) / max(percentile(small, 0.99), 1.0)
    figures.append(
        figure(
            "serving_load",
            "cron lock wait p99, 100,000 / 10,000",
            "x",
            [ratio],
            goal="does not grow with the archive (under 2)",
            met=ratio < 2,
        )
    )
    return figures


def _figure(case: str, name: str, unit: str, samples: list[float], **extra: Any) -> str:
    goal = extra.get("goal")
    said = f"  goal: {goal} ({'met' if extra.get('met') else 'not met'})" if goal else ""
    note = f"  [{extra['note']}]" if extra.get("note") else ""
    return f"{name}: {samples[0]:.1f} {unit}{said}{note}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["load"]:
        print(json.dumps(search_load(sys.argv[2], float(sys.argv[3]))))
    else:
        with tempfile.TemporaryDirectory(prefix="aggregator-bench-") as work:
            for line in measure(Path(work), "--quick" in sys.argv, _figure):
                print(line)
