"""A feed's user name and password (``https://user:password@host/feed``) are used to
read it and shown nowhere: not in what a run prints (cron mails it), not on the pages
and in the feeds (anyone reads them), not in ``/healthz`` or ``sources list``. Found by
review: the password was in every error line, in /healthz and on every story page."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import NATO_FEED, ROOT, make_project
from tests.feedserver import Server
from tests.test_serve import start

SECRET = "s3cr3t-word"


def with_credentials(project: Path, feedserver: Server) -> tuple[str, str]:
    """The project's live feed and a failing one, both given with a user and password."""
    config = project / "config.toml"
    base = feedserver.base.replace("http://", f"http://reader:{SECRET}@")
    live, failing = f"{base}/feeds/rss20.xml", f"{base}/status/404"
    text = config.read_text(encoding="utf-8").replace(f"{feedserver.base}/feeds/rss20.xml", live)
    text += f'\n[[sources]]\nname = "Members only"\nurl = "{failing}"\n'
    # Moved for good: the warning names both addresses (found by review: with the password).
    text += f'\n[[sources]]\nname = "Moved"\nurl = "{base}/redirect/1/atom10.xml"\n'
    config.write_text(text, encoding="utf-8")
    return live, failing


def aggregator(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(project / "config.toml"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_a_feeds_password_is_shown_nowhere(tmp_path: Path, feedserver: Server) -> None:
    assert NATO_FEED  # (the shipped config's live feed, replaced by make_project)
    project = make_project(tmp_path, feedserver)
    with_credentials(project, feedserver)
    done = aggregator(project, "run")
    assert done.returncode == 1, done.stderr  # one source failed, the others were read
    assert f"error: Members only ({feedserver.base}/status/404): HTTP 404" in done.stderr
    assert SECRET not in done.stderr and "reader" not in done.stderr
    pages = [path for path in (project / "feeds").rglob("*") if path.is_file()]
    assert pages
    for path in pages:
        assert SECRET.encode() not in path.read_bytes(), path
        assert b"reader@" not in path.read_bytes(), path
    # The live feed's stories still name where they came from, as a browser opens it.
    told = [p for p in pages if f"{feedserver.base}/feeds/rss20.xml".encode() in p.read_bytes()]
    assert any(path.parent.name == "entries" for path in told)
    assert "Moved: " in done.stderr and "moved permanently" in done.stderr
    explained = aggregator(project, "explain", "Secretary General")  # (the live feed's)
    assert explained.returncode == 0 and f"[{feedserver.base}/feeds/rss20.xml]" in explained.stdout
    assert SECRET not in explained.stdout + explained.stderr
    listed = aggregator(project, "sources", "list")
    assert listed.returncode == 0 and f"{feedserver.base}/status/404" in listed.stdout
    as_json = aggregator(project, "sources", "list", "--json")
    assert SECRET not in listed.stdout + listed.stderr + as_json.stdout + as_json.stderr
    assert any(s["location"] == f"{feedserver.base}/status/404" for s in json.loads(as_json.stdout))


def test_healthz_shows_no_password(tmp_path: Path, feedserver: Server) -> None:
    project = make_project(tmp_path, feedserver)
    with_credentials(project, feedserver)
    server = start(project, interval=60)
    try:
        answer = server.get("/healthz")
        assert SECRET not in answer.text and "reader@" not in answer.text
        members = next(s for s in answer.json()["sources"] if s["name"] == "Members only")
        assert members["location"] == f"{feedserver.base}/status/404"
        assert members["last_error"] == (
            f"Members only ({feedserver.base}/status/404): HTTP 404 Not Found"
        )
    finally:
        assert server.stop() == 0


def test_links_stored_with_a_password_are_published_without(
    tmp_path: Path, feedserver: Server
) -> None:
    """Found by review: stories read before links were resolved without the feed's
    user name and password kept them in their links, in every file, even after
    ``run --force``: what the store gives is published without them."""
    project = make_project(tmp_path, feedserver)
    live, _ = with_credentials(project, feedserver)
    assert aggregator(project, "run").returncode == 1
    host = live.split("//", 1)[1].split("@", 1)[1].split("/", 1)[0]
    with sqlite3.connect(project / "state" / "aggregator.sqlite3") as db:  # as an older run left it
        rows = db.execute(
            "UPDATE entries SET link = replace(link, ?, ?), "
            "content_html = '<p><a href=\"' || replace(link, ?, ?) || '\">more</a></p>' "
            "WHERE link LIKE ?",
            (host, f"reader:{SECRET}@{host}", host, f"reader:{SECRET}@{host}", f"%{host}%"),
        ).rowcount
        enclosures = db.execute(
            "UPDATE entries SET enclosures = ? WHERE id = (SELECT min(id) FROM entries)",
            (json.dumps([[f"http://reader:{SECRET}@{host}/a.mp3", "audio/mpeg", 1, False]]),),
        ).rowcount
    assert rows and enclosures
    # Written again from the store alone: the feed answers 304, its items are not read.
    shutil.rmtree(project / "feeds")
    again = aggregator(project, "-v", "run")
    assert again.returncode == 1 and "0 new and 0 updated entries" in again.stderr
    for path in (project / "feeds").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    pages = (project / "feeds" / "all.atom").read_text(encoding="utf-8")
    assert f"http://{host}/cps/" in pages  # the links are there, without the user part
