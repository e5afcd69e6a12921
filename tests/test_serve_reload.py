"""`aggregator serve` applies an edited config.toml by itself (aggregator.reload): a
restart in place, in the same process, on the same socket, refusing no connection."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.feedserver import Server
from tests.test_serve import AGGREGATOR, RSS20, Serving, start, wait_for


def names(server: Serving) -> list[str]:
    return [source["name"] for source in server.health()["sources"]]


class Hammer:
    """Asks for a page every few milliseconds from a few threads, each on a connection
    of its own, noting every failure."""

    def __init__(self, server: Serving, threads: int = 4) -> None:
        self.server, self.failures, self.answered = server, list[str](), 0
        self._stop = threading.Event()
        # Half of them on a connection each of their own, kept between requests, as
        # feed readers and browsers keep them.
        self._threads = [
            threading.Thread(target=self._run, args=(n % 2 == 1,), daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, kept: bool) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                try:
                    url = self.server.base + "/feeds/all.rss"
                    answer = client.get(url) if kept else httpx.get(url, timeout=60)
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


def gone(server: Serving) -> None:
    """The server ended, however the test ended (killed if it is still there)."""
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait(timeout=30)


def listen_on(config: Path, host: str) -> None:
    """Edit the config to listen on ``host`` (the port stays the command line's)."""
    text = config.read_text(encoding="utf-8")
    config.write_text(f'[serve]\nhost = "{host}"\n' + text, encoding="utf-8")


def log_of(project: Path) -> str:
    return (project / "serve.log").read_text()


def with_slow_source(project: Path, feedserver: Server) -> None:
    """A source whose read lasts (its body comes a byte every 0.2 s): a restart's stop
    waits for it, up to [serve] shutdown_grace."""
    config = project / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[[sources]]\nname = "Slow"\nurl = "{feedserver.base}/slow"\n',
        encoding="utf-8",
    )


def test_a_stop_while_a_restart_stops_the_server_is_a_stop(
    project: Path, feedserver: Server
) -> None:
    """Found by review: SIGTERM then was taken for the restart's own stop, and the
    server went on serving."""
    with_slow_source(project, feedserver)
    server = start(project, extra="[serve]\nshutdown_grace = 10\n", interval=0.02)
    config = project / "config.toml"
    try:
        wait_for(lambda: feedserver.hits("/slow") > 0, 30)  # a read that lasts is under way
        config.write_text(
            config.read_text(encoding="utf-8").replace('name = "Slow"', 'name = "Slow too"'),
            encoding="utf-8",
        )
        wait_for(lambda: "restarting to apply it" in log_of(project), 15)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        assert log_of(project).count("serving http://") == 1
    finally:
        gone(server)


def test_a_broken_save_during_a_restart_is_said_and_the_approved_config_is_served(
    project: Path, feedserver: Server
) -> None:
    """Found by review: the new server read the file again, found it broken, and ended;
    it starts with the config the restart approved, and says the broken one once."""
    with_slow_source(project, feedserver)
    server = start(project, extra="[serve]\nshutdown_grace = 3\n", interval=0.02)
    config = project / "config.toml"
    try:
        wait_for(lambda: feedserver.hits("/slow") > 0, 30)
        good = config.read_text(encoding="utf-8").replace('name = "Slow"', 'name = "Renamed"')
        config.write_text(good, encoding="utf-8")
        wait_for(lambda: "restarting to apply it" in log_of(project), 15)
        config.write_text(good + "\nbroken = = \n", encoding="utf-8")
        for _ in range(20):  # SIGHUPs meanwhile (a reload asked twice): never the end
            server.process.send_signal(signal.SIGHUP)
            time.sleep(0.05)
        wait_for(lambda: "Renamed" in names(server), 30)
        wait_for(lambda: "serve goes on" in log_of(project), 15)
        assert server.process.poll() is None
        said = [line for line in log_of(project).splitlines() if "serve goes on" in line]
        assert len(said) == 1 and "not valid TOML" in said[0], said
    finally:
        assert server.stop() == 0


def test_a_restart_keeps_the_schedule_reaps_what_it_leaves_and_may_change_the_host(
    project: Path, feedserver: Server
) -> None:
    """A source read a moment ago is not asked again at the restart (found by review:
    every restart asked every source); the stopped server's children are reaped, not
    left as zombies; a host on the same port is no "port in use"."""
    server = start(project, interval=60)
    config = project / "config.toml"
    try:
        asked = feedserver.hits("/feeds/rss20.xml")
        for name in ("NATO live", "NATO live again"):
            text = config.read_text(encoding="utf-8")
            config.write_text(
                re.sub(r'name = "NATO [^"]*"', f'name = "{name}"', text, count=1), "utf-8"
            )
            wait_for(lambda name=name: name in names(server), 30)
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                "[schedule]", '[serve]\nhost = "localhost"\n[schedule]', 1
            ),
            encoding="utf-8",
        )
        wait_for(lambda: log_of(project).count("restarting to apply it") == 3, 30)
        wait_for(lambda: server.get("/healthz").status_code == 200, 30)
        assert "already in use" not in log_of(project)
        time.sleep(2)
        assert feedserver.hits("/feeds/rss20.xml") == asked
        zombies = [
            entry.name
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit()
            and (stat := _stat(entry)) is not None
            and stat[1] == str(server.process.pid)
            and stat[0] == "Z"
        ]
        assert zombies == []
    finally:
        assert server.stop() == 0


def _stat(entry: Path) -> tuple[str, str] | None:
    """A process's state and parent's id, from /proc."""
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], fields[1]


def test_a_kept_connection_has_its_next_request_answered_as_the_server_stops(
    project: Path,
) -> None:
    """Between two requests on a kept connection the server begins to stop (a restart,
    or SIGTERM): the next request, sent a moment later, is answered and the connection
    then closed (found by review: closed at once, the request met a closed socket)."""
    import socket as sockets

    server = start(project, interval=60)
    host, port = server.base.removeprefix("http://").split(":")
    request = f"GET /feeds/all.rss HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    try:
        with sockets.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(request)
            first = read_answer(connection)
            assert first.startswith(b"HTTP/1.1 200") and b"connection: close" not in first
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.4)  # the server has begun to stop
            connection.sendall(request)
            second = read_answer(connection)
            assert second.startswith(b"HTTP/1.1 200"), second[:200]
            assert b"connection: close" in second.lower()
        assert server.process.wait(timeout=30) == 0
    finally:
        gone(server)


def read_answer(connection: Any) -> bytes:
    """One HTTP answer with a Content-Length body, read whole (b"" if the server closed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_half_sent_request_holds_a_stop_no_longer_than_the_drain(project: Path) -> None:
    """Found by review: a client that had sent half a request head held the stop (and
    every restart, and the connections waiting meanwhile) for its header timeout."""
    import socket as sockets

    server = start(project, interval=60)
    host, port = server.base.removeprefix("http://").split(":")
    try:
        with sockets.create_connection((host, int(port)), timeout=30) as connection:
            connection.sendall(b"GET /feeds/all.rss HTTP/1.1\r\nHost: x\r\n")  # no end
            time.sleep(0.2)
            began = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=30) == 0
            assert time.monotonic() - began < 4  # the header timeout is 10 s
    finally:
        gone(server)


def test_a_new_address_it_cannot_listen_on_is_said_and_it_goes_on_where_it_was(
    project: Path,
) -> None:
    """Found by review: a host on the same port that cannot be listened on ended the
    server after its restart (exit 5)."""
    server = start(project, interval=60)
    config = project / "config.toml"
    try:
        listen_on(config, "192.0.2.1")
        wait_for(lambda: "serve goes on at 127.0.0.1:" in log_of(project), 30)
        wait_for(lambda: server.get("/healthz").status_code == 200, 30)
        assert server.process.poll() is None
    finally:
        assert server.stop() == 0


def test_a_restart_whose_files_cannot_be_written_goes_on_serving(project: Path) -> None:
    """Found by review: a restart for a new feeds folder that could not be written (a
    store locked too long, a file in the way) ended the server (exit 4)."""
    server = start(project, interval=60)
    config = project / "config.toml"
    try:
        (project / "in the way").write_text("a file, not a folder", encoding="utf-8")
        text = config.read_text(encoding="utf-8")
        assert 'directory = "feeds"' in text
        config.write_text(
            text.replace('directory = "feeds"', 'directory = "in the way"', 1), "utf-8"
        )
        wait_for(lambda: "(serving the files as they are meanwhile)" in log_of(project), 30)
        wait_for(lambda: server.get("/healthz").status_code == 200, 30)
        assert server.process.poll() is None
        # Found by review: it said "ok" meanwhile, the files a version behind.
        health = server.get("/healthz").json()
        assert health["status"] == "degraded"
        assert "in the way" in health["files"], health
        assert all(source["last_error"] is None for source in health["sources"])
        # Out of the way: written within seconds, not at the next read (an hour away).
        (project / "in the way").unlink()
        wait_for(lambda: "the files are written now" in log_of(project), 30)
        assert server.get("/feeds/all.rss").status_code == 200
        health = server.get("/healthz").json()
        assert (health["status"], "files" in health) == ("ok", False), health
    finally:
        assert server.stop() == 0


def test_a_failing_source_keeps_its_backoff_across_a_restart(
    project: Path, feedserver: Server
) -> None:
    """Found by review: a restart forgot a failing source's failures and asked it again
    at once (and a saved page's health)."""
    config = project / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[[sources]]\nname = "Failing"\nurl = "{feedserver.base}/status/500"\n',
        encoding="utf-8",
    )
    server = start(project, interval=60)
    try:
        wait_for(lambda: server.source("Failing")["failures_in_a_row"] >= 1, 30)
        before = server.source("Failing")
        saved = next(s for s in server.health()["sources"] if s["name"].startswith("NATO:"))
        asked = feedserver.hits("/status/500")
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace('name = "Failing"', 'name = "Failing"\n# edited'), "utf-8")
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace('name = "NATO news feed"', 'name = "NATO"'), "utf-8")
        wait_for(lambda: "NATO" in names(server), 30)
        time.sleep(1.5)
        after = server.source("Failing")
        for key in ("failures_in_a_row", "last_error", "next_run", "last_run"):
            assert after[key] == before[key], key
        assert server.source(saved["name"])["last_success"] == saved["last_success"]
        assert feedserver.hits("/status/500") == asked
    finally:
        assert server.stop() == 0


def test_a_source_whose_interval_the_edit_shortened_is_due_by_the_new_one(
    project: Path, feedserver: Server
) -> None:
    """Kept across a restart, the schedule follows the edit: a source given a shorter
    interval is read by it, not when the old interval had it due."""
    feedserver.overrides["live.xml"] = RSS20.replace(b"<ttl>60</ttl>", b"")
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("/feeds/rss20.xml", "/feeds/live.xml"), encoding="utf-8")
    server = start(project, interval=60)
    try:
        asked = feedserver.hits("/feeds/live.xml")
        assert asked >= 1  # the first read
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace(
                'name = "NATO news feed"', 'name = "NATO news feed"\ninterval_minutes = 0.05'
            ),
            encoding="utf-8",
        )
        wait_for(lambda: feedserver.hits("/feeds/live.xml") > asked, 30)
    finally:
        del feedserver.overrides["live.xml"]
        assert server.stop() == 0


def test_a_host_on_the_same_port_is_taken_after_the_restart(project: Path) -> None:
    """Found by review: 0.0.0.0 on the port the server listened on at 127.0.0.1 was
    refused for the server's own socket, and never applied."""
    server = start(project, interval=60)
    config = project / "config.toml"
    try:
        listen_on(config, "0.0.0.0")
        port = server.base.rsplit(":", 1)[1]
        wait_for(lambda: f"serving http://0.0.0.0:{port}/" in log_of(project), 30)
        assert "serve goes on" not in log_of(project)
        assert server.get("/healthz").status_code == 200
    finally:
        assert server.stop() == 0
