"""One ingest pass over live sources served from 127.0.0.1, with the state it keeps."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
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
    """The real sandbox, counting the documents it is asked to parse and keeping what
    came back."""

    def __init__(self) -> None:
        super().__init__(workers=1, timeout=20)
        self.parsed: list[str] = []
        self.documents: list[FeedDocument] = []

    def parse(
        self,
        data: bytes,
        *,
        url: str,
        name: str,
        content_type: str | None = None,
        max_entries: int = 1000,
        known: frozenset[str] = frozenset(),
    ) -> FeedDocument:
        self.parsed.append(url)
        document = super().parse(
            data,
            url=url,
            name=name,
            content_type=content_type,
            max_entries=max_entries,
            known=known,
        )
        self.documents.append(document)
        return document


@pytest.fixture
def sandbox() -> Iterator[CountingSandbox]:
    with CountingSandbox() as box:
        yield box


def ingest(
    tmp_path: Path,
    urls: dict[str, str],
    sandbox: Sandbox,
    now: datetime = NOW,
    *,
    force: bool = False,
    statements: list[str] | None = None,
    retention_days: int = 0,
) -> dict[str, Outcome]:
    """One ingest pass and its apply; ``statements`` collects the SQL the store ran."""
    sources = "".join(f'[[sources]]\nname = "{n}"\nurl = "{u}"\n\n' for n, u in urls.items())
    config_path = tmp_path / "config.toml"
    settings = (
        f"[fetch]\ndeadline = 2\nread_timeout = 1\n\n[store]\nretention_days = {retention_days}\n\n"
    )
    config_path.write_text(settings + sources, "utf-8")
    config = load_config(config_path)
    with Store(config.store.path) as store:
        if statements is not None:
            store.db.set_trace_callback(statements.append)
        states = FetchStates(store)
        outcomes = Ingest(config, states, sandbox, now, skip_fresh=True, force=force).run()
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
    # After its <ttl> of 60 minutes: asked again, and answered 304.
    second = ingest(tmp_path, urls, sandbox, NOW + timedelta(minutes=61))["nato"]
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
    assert first.error is not None
    assert "HTTP 410 Gone: the feed was removed; it is not asked again" in str(first.error)
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
    urls = {f"slow {i}": f"{feedserver.base}/slow/{i}" for i in range(3)}  # three feeds
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


# -- Freshness: a source is not asked before its last answer goes stale -----------------


def test_a_fresh_source_is_not_asked_until_its_ttl_ends(
    tmp_path: Path, feedserver: Server, sandbox: CountingSandbox
) -> None:
    """rss20.xml says <ttl>60</ttl>: for an hour, the source is not asked at all."""
    urls = {"nato": f"{feedserver.base}/feeds/rss20.xml"}
    ingest(tmp_path, urls, sandbox)
    hits = feedserver.hits("/feeds/rss20.xml")
    fresh = ingest(tmp_path, urls, sandbox, NOW + timedelta(minutes=30))["nato"]
    assert fresh.error is None and fresh.entries == ()
    assert fresh.note is not None and fresh.note.startswith("fresh until 2026-11-23T13:00:00")
    assert fresh.not_before == NOW + timedelta(minutes=60)
    assert feedserver.hits("/feeds/rss20.xml") == hits
    forced = ingest(tmp_path, urls, sandbox, NOW + timedelta(minutes=31), force=True)["nato"]
    assert forced.not_modified and forced.note == "not modified"
    assert feedserver.hits("/feeds/rss20.xml") == hits + 1
    ingest(tmp_path, urls, sandbox, NOW + timedelta(minutes=61))
    assert feedserver.hits("/feeds/rss20.xml") == hits + 2


def test_force_asks_a_source_that_asked_to_wait(
    tmp_path: Path, feedserver: Server, sandbox: Sandbox
) -> None:
    urls = {"busy": f"{feedserver.base}/status/429"}
    ingest(tmp_path, urls, sandbox)
    hits = feedserver.hits("/status/429")
    ingest(tmp_path, urls, sandbox, NOW + timedelta(seconds=60), force=True)
    assert feedserver.hits("/status/429") == hits + 1


# -- The steady state: items read unchanged cost nothing ----------------------------------


def rss(items: list[tuple[str, str]]) -> bytes:
    """An RSS 2.0 feed of (guid, description) items, titled by guid, dated by position."""
    body = "".join(
        f"<item><title>Story {guid}</title><link>https://example.org/{guid}</link>"
        f'<guid isPermaLink="false">{guid}</guid>'
        f"<pubDate>Mon, {index + 1:02d} Nov 2026 09:00:00 GMT</pubDate>"
        f"<description>&lt;p&gt;{text}&lt;/p&gt;</description></item>"
        for index, (guid, text) in enumerate(items)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.org/</link><description>D</description>{body}</channel></rss>"
    ).encode()


def atom(items: list[tuple[str, str]]) -> bytes:
    """The same as Atom 1.0, which goes through feedparser rather than the fast path."""
    body = "".join(
        f"<entry><title>Story {guid}</title><link href='https://example.org/{guid}'/>"
        f"<id>urn:x:{guid}</id><updated>2026-11-{index + 1:02d}T09:00:00Z</updated>"
        f"<summary type='html'>&lt;p&gt;{text}&lt;/p&gt;</summary></entry>"
        for index, (guid, text) in enumerate(items)
    )
    return (
        "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>T</title>"
        f"<id>urn:x:feed</id><updated>2026-11-20T09:00:00Z</updated>{body}</feed>"
    ).encode()


def stored(tmp_path: Path) -> dict[str, tuple[str, str | None, datetime]]:
    """Title → (summary, content, last_seen) of every stored entry."""
    with Store(tmp_path / "state" / "aggregator.sqlite3") as store:
        return {e.title: (e.summary, e.content_html, e.last_seen) for e in store.newest(1000)}


@pytest.mark.parametrize("build", [rss, atom], ids=["RSS 2.0 (fast path)", "Atom (feedparser)"])
def test_items_read_unchanged_are_not_cleaned_merged_or_written(
    tmp_path: Path,
    feedserver: Server,
    sandbox: CountingSandbox,
    build: Callable[[list[tuple[str, str]]], bytes],
) -> None:
    items = [(f"a{i}", f"text {i}") for i in range(5)]
    name = f"steady-{build.__name__}.xml"
    urls = {"steady": f"{feedserver.base}/feeds/{name}"}
    feedserver.overrides[name] = build(items)
    try:
        first = ingest(tmp_path, urls, sandbox)["steady"]
        assert len(first.entries) == 5 and first.unchanged == 0
        before = stored(tmp_path)
        # One item more, and one item's text changed: only those two are read.
        items[2] = ("a2", "text 2, corrected")
        feedserver.overrides[name] = build([*items, ("a5", "text 5")])
        statements: list[str] = []
        later = NOW + timedelta(hours=1)
        second = ingest(tmp_path, urls, sandbox, later, statements=statements)["steady"]
    finally:
        del feedserver.overrides[name]
    assert second.error is None
    assert sorted(e.title for e in second.entries) == ["Story a2", "Story a5"]
    assert second.unchanged == 4
    assert sandbox.documents[-1].unchanged == 4 and len(sandbox.documents[-1].digests) == 6
    after = stored(tmp_path)
    # The four unchanged stories keep every value, last_seen included (no retention).
    for title in ("Story a0", "Story a1", "Story a3", "Story a4"):
        assert after[title] == before[title]
    # The changed one is updated, the new one added.
    assert after["Story a2"][0] == "text 2, corrected"
    assert after["Story a2"][2] == later
    assert after["Story a5"][0] == "text 5"
    # And the store wrote nothing about the others: one row of entries and one of
    # sightings for each of the two stories read, no UPDATE by source.
    # SQLite's trace repeats a statement once for each trigger it fires (the search
    # index's), so statements are counted once each: every one names its entry.
    writes = list(
        dict.fromkeys(s for s in statements if s.startswith(("INSERT", "UPDATE", "DELETE")))
    )
    assert (
        len([s for s in writes if s.startswith(("INSERT INTO entries (", "UPDATE entries SET"))])
        == 2
    )
    # (Sightings go in one statement of many rows: each row names its story's id.)
    sightings = [s for s in writes if s.startswith("INSERT INTO sightings")]
    assert sum(s.count("'tag:") for s in sightings) == 2
    assert not [s for s in writes if "WHERE source =" in s]


def rss_without_ids(items: list[tuple[str, str]]) -> bytes:
    """:func:`rss` with no guids: items known by their title and link alone."""
    return re.sub(rb"<guid[^>]*>[^<]*</guid>", b"", rss(items))


def json_feed(items: list[tuple[str, str]]) -> bytes:
    """The same as a JSON Feed 1.1, read whole every time (it keeps no digests)."""
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "T",
            "items": [
                {
                    "id": f"urn:x:{guid}",
                    "url": f"https://example.org/{guid}",
                    "title": f"Story {guid}",
                    "content_text": text,
                    "date_published": f"2026-11-{index + 1:02d}T09:00:00Z",
                }
                for index, (guid, text) in enumerate(items)
            ],
        }
    ).encode()


@pytest.mark.parametrize(
    "build",
    [rss, rss_without_ids, atom, json_feed],
    ids=["RSS 2.0 (fast path)", "RSS 2.0 without guids", "Atom (feedparser)", "JSON Feed"],
)
def test_retention_forgets_a_story_its_source_dropped_while_it_lists_others_unchanged(
    tmp_path: Path, feedserver: Server, sandbox: Sandbox, build: Callable[..., bytes]
) -> None:
    """A story its source no longer lists is forgotten after ``retention_days``, though
    the source goes on listing another unchanged (skipped as read before, then
    answering 304): only the stories it lists stay current. (Found by review: every
    story a source ever told was kept current whenever it listed anything unchanged.)"""
    name = f"dropped-{build.__name__}.{'json' if build is json_feed else 'xml'}"
    urls = {"desk": f"{feedserver.base}/feeds/{name}"}
    feedserver.overrides[name] = build([("y", "kept"), ("x", "dropped")])
    try:
        ingest(tmp_path, urls, sandbox, NOW, retention_days=5)
        # A day later the feed lists Y alone, unchanged: skipped, not read again (a JSON
        # Feed is read whole: found by review, its 304s then kept nothing current).
        feedserver.overrides[name] = build([("y", "kept")])
        second = ingest(tmp_path, urls, sandbox, NOW + timedelta(days=1), retention_days=5)
        if build is json_feed:
            assert [e.title for e in second["desk"].entries] == ["Story y"]
        else:
            assert second["desk"].unchanged == 1 and not second["desk"].entries
        # Ten days after X was last listed, the same document: a 304.
        third = ingest(tmp_path, urls, sandbox, NOW + timedelta(days=10), retention_days=5)
        assert third["desk"].not_modified
    finally:
        del feedserver.overrides[name]
    kept = stored(tmp_path)
    assert kept["Story y"][2] == NOW + timedelta(days=10)
    # A JSON Feed's 304 keeps every story of its source current, as before: which items
    # it lists is not kept (it is read whole); the others, only the stories listed.
    assert set(kept) == ({"Story y", "Story x"} if build is json_feed else {"Story y"})


def test_digests_are_void_after_retention_forgot_entries(
    tmp_path: Path, feedserver: Server, sandbox: CountingSandbox
) -> None:
    """Entries forgotten by retention are read again, not skipped as already stored."""
    name = "forgotten.xml"
    urls = {"old": f"{feedserver.base}/feeds/{name}"}
    feedserver.overrides[name] = rss([("b0", "zero"), ("b1", "one")])
    try:
        ingest(tmp_path, urls, sandbox)
        with Store(tmp_path / "state" / "aggregator.sqlite3") as store, store.transaction():
            store.set_meta("pruned", (NOW + timedelta(minutes=1)).isoformat())
        feedserver.overrides[name] = rss([("b0", "zero"), ("b1", "one"), ("b2", "two")])
        again = ingest(tmp_path, urls, sandbox, NOW + timedelta(hours=1))["old"]
    finally:
        del feedserver.overrides[name]
    assert again.unchanged == 0 and len(again.entries) == 3


def test_an_unexpected_error_costs_its_source_only(
    tmp_path: Path, feedserver: Server, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that raises while one source is read (here made to, for one URL) is that
    source's one-line error; the other sources are read and stored."""
    from aggregator.live import fetch

    real = fetch.Fetcher.fetch

    async def fetch_or_fail(self: fetch.Fetcher, url: str, **kwargs: object) -> fetch.Fetched:
        if "atom10" in url:
            raise RuntimeError("a bug")
        return await real(self, url, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fetch.Fetcher, "fetch", fetch_or_fail)
    urls = {
        "buggy": f"{feedserver.base}/feeds/atom10.xml",
        "fine": f"{feedserver.base}/feeds/rss20.xml",
    }
    outcomes = ingest(tmp_path, urls, sandbox)
    assert str(outcomes["buggy"].error).endswith("unexpected RuntimeError: a bug")
    assert outcomes["fine"].error is None and outcomes["fine"].entries
    assert stored_titles(tmp_path) == {e.title for e in outcomes["fine"].entries}


def test_outcomes_are_handed_on_in_the_sources_order_as_soon_as_they_can_be(
    tmp_path: Path, feedserver: Server, sandbox: Sandbox
) -> None:
    """A run folds each source's items in as they come (pipeline.Folding), in the
    sources' order: a slow first source holds the others' outcomes back until it is
    done, and then they come at once, in order."""
    urls = {"slow": f"{feedserver.base}/slow"}
    routes = ("feeds", "gzip", "deflate", "lastmod")
    urls.update({f"fast {i}": f"{feedserver.base}/{r}/rss20.xml" for i, r in enumerate(routes)})
    sources = "".join(f'[[sources]]\nname = "{n}"\nurl = "{u}"\n\n' for n, u in urls.items())
    config_path = tmp_path / "config.toml"
    config_path.write_text(f"[fetch]\ndeadline = 1\nread_timeout = 1\n\n{sources}", "utf-8")
    config = load_config(config_path)
    handed: list[tuple[str, float]] = []
    with Store(config.store.path) as store:
        ingest = Ingest(config, FetchStates(store), sandbox, NOW, skip_fresh=True)
        started = time.monotonic()
        outcomes = ingest.run(
            on_outcome=lambda o: handed.append((o.source.name, time.monotonic() - started))
        )
    assert [name for name, _ in handed] == list(urls) == [o.source.name for o in outcomes]
    assert outcomes[0].error is not None and all(o.error is None for o in outcomes[1:])
    # The fast ones waited for the slow one (its deadline), then came together.
    assert handed[-1][1] - handed[0][1] < 0.5 <= handed[0][1]
