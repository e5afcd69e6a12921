"""One ingest pass over live sources served from 127.0.0.1, with the state it keeps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.ingest import Ingest, Outcome
from aggregator.live.feedparse import FeedDocument
from aggregator.live.sandbox import Sandbox
from aggregator.live.state import FetchStates
from aggregator.pipeline import apply
from aggregator.store import Store
from tests.feedserver import Server

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class CountingSandbox(Sandbox):
    """The real sandbox, counting the documents it is asked to parse."""

    def __init__(self) -> None:
        super().__init__(workers=1, timeout=20)
        self.parsed: list[str] = []

    def parse(
        self,
        data: bytes,
        *,
        url: str,
        name: str,
        content_type: str | None = None,
        max_entries: int = 1000,
    ) -> FeedDocument:
        self.parsed.append(url)
        return super().parse(
            data, url=url, name=name, content_type=content_type, max_entries=max_entries
        )


@pytest.fixture
def sandbox() -> Iterator[CountingSandbox]:
    with CountingSandbox() as box:
        yield box


def ingest(
    tmp_path: Path, urls: dict[str, str], sandbox: Sandbox, now: datetime = NOW
) -> dict[str, Outcome]:
    sources = "".join(f'[[sources]]\nname = "{n}"\nurl = "{u}"\n\n' for n, u in urls.items())
    config_path = tmp_path / "config.toml"
    config_path.write_text(f"[fetch]\ndeadline = 2\nread_timeout = 1\n\n{sources}", "utf-8")
    config = load_config(config_path)
    with Store(config.store.path) as store:
        states = FetchStates(store)
        outcomes = Ingest(config, states, sandbox, now).run()
        with store.transaction():
            apply(config, store, states, outcomes, now)
    return {o.source.name: o for o in outcomes}


def stored_titles(tmp_path: Path) -> set[str]:
    with Store(tmp_path / "state" / "aggregator.sqlite3") as store:
        return {e.title for e in store.newest(1000)}


def test_second_run_gets_304_and_parses_nothing(
    tmp_path: Path, feedserver: Server, sandbox: CountingSandbox
) -> None:
    urls = {"nato": f"{feedserver.base}/feeds/rss20.xml"}
    first = ingest(tmp_path, urls, sandbox)["nato"]
    assert first.error is None
    assert len(first.entries) == 3
    assert len(sandbox.parsed) == 1
    second = ingest(tmp_path, urls, sandbox)["nato"]
    assert second.note == "not modified"
    assert second.entries == ()
    assert len(sandbox.parsed) == 1
    assert stored_titles(tmp_path) == {e.title for e in first.entries}
    assert feedserver.log[-1][2] is not None  # If-None-Match was sent


def test_validators_outlive_a_304_that_does_not_repeat_them(
    tmp_path: Path, feedserver: Server, sandbox: CountingSandbox
) -> None:
    urls = {"bare": f"{feedserver.base}/bare-304/rss10.rdf"}
    ingest(tmp_path, urls, sandbox)
    for _ in range(2):
        assert ingest(tmp_path, urls, sandbox)["bare"].not_modified
    assert len(sandbox.parsed) == 1


def test_permanent_redirect_is_remembered(
    tmp_path: Path, feedserver: Server, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    urls = {"moved": f"{feedserver.base}/redirect/2/atom10.xml"}
    assert ingest(tmp_path, urls, sandbox)["moved"].error is None
    assert "moved permanently to" in caplog.text
    before = feedserver.hits("/redirect/2/atom10.xml")
    assert ingest(tmp_path, urls, sandbox)["moved"].error is None
    assert feedserver.hits("/redirect/2/atom10.xml") == before
    assert feedserver.log[-1][1] == "/feeds/atom10.xml"


def test_gone_source_is_disabled_loudly(
    tmp_path: Path, feedserver: Server, sandbox: Sandbox
) -> None:
    urls = {"gone": f"{feedserver.base}/status/410"}
    first = ingest(tmp_path, urls, sandbox)["gone"]
    assert first.error is not None and "410 Gone" in str(first.error)
    hits = feedserver.hits("/status/410")
    second = ingest(tmp_path, urls, sandbox, NOW + timedelta(days=1))["gone"]
    assert second.error is not None
    assert "disabled: the server said HTTP 410 Gone on 2026-11-23" in str(second.error)
    assert feedserver.hits("/status/410") == hits


def test_retry_after_is_honoured(tmp_path: Path, feedserver: Server, sandbox: Sandbox) -> None:
    urls = {"busy": f"{feedserver.base}/status/429"}
    assert ingest(tmp_path, urls, sandbox)["busy"].error is not None
    hits = feedserver.hits("/status/429")
    waiting = ingest(tmp_path, urls, sandbox, NOW + timedelta(seconds=60))["busy"]
    assert waiting.error is None
    assert waiting.note is not None and "wait until" in waiting.note
    assert feedserver.hits("/status/429") == hits
    ingest(tmp_path, urls, sandbox, NOW + timedelta(seconds=121))
    assert feedserver.hits("/status/429") == hits + 1


def test_a_broken_source_keeps_its_last_entries_and_spares_the_others(
    tmp_path: Path, feedserver: Server, sandbox: Sandbox
) -> None:
    feedserver.overrides["changing.xml"] = (
        Path(__file__).parent / "data/feeds/rss10.rdf"
    ).read_bytes()
    urls = {
        "changing": f"{feedserver.base}/feeds/changing.xml",
        "web page": f"{feedserver.base}/html",
        "good": f"{feedserver.base}/feeds/atom03.xml",
    }
    try:
        first = ingest(tmp_path, urls, sandbox)
        assert first["changing"].error is None
        assert str(first["web page"].error).endswith("not a feed: HTML page")
        feedserver.overrides["changing.xml"] = b"<rss><channel><item><title>oops"
        second = ingest(tmp_path, urls, sandbox)
    finally:
        del feedserver.overrides["changing.xml"]
    assert second["changing"].error is not None
    assert second["good"].error is None and second["good"].not_modified
    # The store still holds what the broken source gave before.
    assert {e.title for e in first["changing"].entries} <= stored_titles(tmp_path)


def test_a_slow_source_does_not_hold_up_the_others(
    tmp_path: Path, feedserver: Server, sandbox: Sandbox
) -> None:
    urls = {f"slow {i}": f"{feedserver.base}/slow" for i in range(3)}
    urls["fast"] = f"{feedserver.base}/feeds/rss20.xml"
    started = time.monotonic()
    outcomes = ingest(tmp_path, urls, sandbox)
    assert time.monotonic() - started < 4  # one 2 s deadline, not three in a row
    assert outcomes["fast"].error is None
    assert all(str(outcomes[f"slow {i}"].error).endswith("timeout after 2 s") for i in range(3))


DOCUMENTS = sorted(
    p.name
    for p in (Path(__file__).parent / "data" / "feeds").iterdir()
    # Cases with options (a cap on entries) are read with them in test_feed_documents.
    if p.suffix in (".xml", ".rdf") and not p.with_suffix(".options.json").exists()
)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_fixture_feed_over_http(
    tmp_path: Path, feedserver: Server, sandbox: Sandbox, name: str
) -> None:
    """RSS 0.91/1.0/2.0, Atom 0.3/1.0, the entity bomb, XXE and script-laden content,
    fetched gzip-compressed from the local server and read into the store."""
    import json

    outcome = ingest(tmp_path, {"feed": f"{feedserver.base}/gzip/{name}"}, sandbox)["feed"]
    assert outcome.error is None
    expected = json.loads(
        (Path(__file__).parent / "data" / "feeds" / name)
        .with_suffix(".expected.json")
        .read_text("utf-8")
    )
    assert [e.title for e in outcome.entries] == [e["title"] for e in expected]
    assert stored_titles(tmp_path) == {e["title"] for e in expected}
