"""`aggregator serve` applies an edited config.toml by itself (aggregator.reload): a
restart in place, in the same process, on the same socket, refusing no connection."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.feedserver import Server
from tests.test_serve import AGGREGATOR, Serving, start, wait_for


def names(server: Serving) -> list[str]:
    return [source["name"] for source in server.health()["sources"]]


class Hammer:
    """Asks for a page every few milliseconds from a few threads, each on a connection
    of its own, noting every failure."""

    def __init__(self, server: Serving, threads: int = 4) -> None:
        self.server, self.failures, self.answered = server, list[str](), 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                answer = httpx.get(self.server.base + "/feeds/all.rss", timeout=60)
                if answer.status_code != 200:
                    self.failures.append(str(answer.status_code))
                self.answered += 1
            except httpx.TransportError as error:
                self.failures.append(repr(error))
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


def test_a_source_added_while_serving_is_read_after_a_restart_that_refuses_nobody(
    project: Path, feedserver: Server
) -> None:
    server = start(project, interval=60)
    try:
        pid = server.process.pid
        before = names(server)
        hammer = Hammer(server)
        added = subprocess.run(
            [
                *AGGREGATOR,
                "--config",
                str(project / "config.toml"),
                "sources",
                "add",
                f"{feedserver.base}/feeds/atom10.xml",
                "--name",
                "Second feed",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        wait_for(lambda: "Second feed" in names(server), 60)
        wait_for(lambda: server.source("Second feed")["last_success"] is not None, 60)
        time.sleep(0.5)
        hammer.stop()
        assert hammer.failures == [] and hammer.answered > 10
        assert names(server) == [*before, "Second feed"]
        assert server.process.poll() is None and server.process.pid == pid  # in place
        log = (project / "serve.log").read_text()
        assert log.count("config.toml changed: restarting to apply it") == 1, log
        assert "Traceback" not in log
    finally:
        assert server.stop() == 0


def test_a_config_that_does_not_load_is_said_once_and_serve_goes_on(project: Path) -> None:
    server = start(project, interval=60)
    config = project / "config.toml"
    try:
        before = names(server)
        good = config.read_text(encoding="utf-8")
        config.write_text(good + "\n[[sources]]\nname = \n", encoding="utf-8")
        time.sleep(4 * 1.0)
        log = (project / "serve.log").read_text()
        said = [line for line in log.splitlines() if "serve goes on with the configuration" in line]
        assert len(said) == 1, log
        assert said[0].startswith(f"error: {config}:"), said
        assert names(server) == before and server.get("/feeds/all.rss").status_code == 200
        # Mended, with a change: applied.
        config.write_text(good.replace('name = "NATO news feed"', 'name = "NATO live"'), "utf-8")
        wait_for(lambda: "NATO live" in names(server), 30)
        assert "restarting to apply it" in (project / "serve.log").read_text()
    finally:
        assert server.stop() == 0


def test_sighup_looks_at_once_and_an_unchanged_config_restarts_nothing(project: Path) -> None:
    server = start(project, interval=60)
    try:
        server.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "nothing to apply" in (project / "serve.log").read_text(), 10)
        (project / "config.toml").touch()  # touched, not changed
        time.sleep(3)
        log = (project / "serve.log").read_text()
        assert "restarting" not in log and server.process.poll() is None
    finally:
        assert server.stop() == 0


def test_a_config_serve_could_not_start_with_is_said_and_serve_goes_on(project: Path) -> None:
    """Checked before stopping: a store that cannot be opened (here a folder where the
    file should be) is said once, and the server keeps serving as it was."""
    server = start(project, interval=60)
    config = project / "config.toml"
    try:
        (project / "elsewhere.sqlite3").mkdir()
        text = config.read_text(encoding="utf-8")
        assert text.count('path = "state/aggregator.sqlite3"') == 1
        config.write_text(
            text.replace('path = "state/aggregator.sqlite3"', 'path = "elsewhere.sqlite3"'),
            encoding="utf-8",
        )
        wait_for(lambda: "serve goes on" in (project / "serve.log").read_text(), 15)
        time.sleep(2.5)
        log = (project / "serve.log").read_text()
        said = [line for line in log.splitlines() if "serve goes on" in line]
        assert len(said) == 1 and "elsewhere.sqlite3" in said[0], log
        assert "restarting" not in log
        assert server.get("/feeds/all.rss").status_code == 200
    finally:
        assert server.stop() == 0
