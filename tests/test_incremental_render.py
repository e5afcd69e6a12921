"""A publish renders only what changed, and its files equal a full render's, byte for byte.

Runs go through :func:`aggregator.pipeline.publish` with a real SQLite store and real
files; after each one, every file a full render of the same store gives (written into
a second directory) must be in the feeds directory with the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config import Config, load_config
from aggregator.errors import FilesNotWritten
from aggregator.ingest import Outcome
from aggregator.live.state import FetchStates
from aggregator.model import Entry, Provenance, Published, SourceEntry
from aggregator.output import write_files
from aggregator.pipeline import (
    TOKEN,
    RunResult,
    build_files,
    installed_manifest,
    is_current,
    manifest_key,
    publish,
    recorded_manifest,
    rendered_key,
    rendered_version,
)
from aggregator.site import outputs
from aggregator.site.plan import EVERYTHING, Manifest, changes, entry_digest, manifest_of
from aggregator.store import open_store

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
SOURCES = ("alpha", "beta", "gamma")
CONFIG = """
[feeds]
directory = "feeds"
title = "Test news"
base_url = "https://news.example.org/"
max_entries = {max_entries}

[store]
path = "state/store.sqlite3"

{sources}

[[topics]]
slug = "ukraine"
title = "Ukraine"
description = "Ukraine"
terms = ["Ukraine"]
fields = ["summary"]

[[topics]]
slug = "energy"
title = "Energy"
description = "Energy"
terms = ["gas"]
fields = ["summary"]

[[topics]]
slug = "quiet"
title = "Quiet"
description = "Nothing matches"
terms = ["zanzibar-never"]
"""


def make_config(tmp_path: Path, max_entries: int = 4, title: str = "Test news") -> Config:
    sources = "\n".join(
        f'[[sources]]\nname = "{name}"\nurl = "https://{name}.example.org/feed.xml"'
        for name in SOURCES
    )
    text = CONFIG.format(max_entries=max_entries, sources=sources).replace("Test news", title)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def item(
    source: str, title: str, day: int, summary: str = "", line: int | None = None
) -> SourceEntry:
    when = START + timedelta(days=day)
    location = f"https://{source}.example.org/feed.xml"
    return SourceEntry(
        title=title,
        published=Published(when.date(), when),
        summary=summary or title,
        provenance=Provenance(source, location, line),
        link=f"https://{source}.example.org/{title.replace(' ', '-').lower()}",
    )


def run(config: Config, items: Sequence[SourceEntry], now: datetime) -> RunResult:
    by_source = {s.name: s for s in config.sources}
    outcomes = [
        Outcome(by_source[name], tuple(i for i in items if i.source == name))
        for name in sorted({i.source for i in items})
    ]
    with open_store(config.store) as store:
        return publish(config, store, FetchStates(store), outcomes, now)


def assert_as_full_render(config: Config, tmp_path: Path) -> None:
    """Every file of a full render of the store is on disk with the same bytes; what
    else is there is only pages of stories no feed shows any more."""
    with open_store(config.store) as store:
        files = build_files(config, store)
    full = tmp_path / "full"
    write_files(full, files)
    feeds = config.feeds.directory
    for path in sorted(full.rglob("*")):
        if path.is_file():
            name = path.relative_to(full).as_posix()
            assert (feeds / name).read_bytes() == path.read_bytes(), name
    extra = (
        {p.relative_to(feeds).as_posix() for p in feeds.rglob("*") if p.is_file()}
        - files.keys()
        - {TOKEN}
    )
    assert all(outputs.ENTRY_PAGE.match(name) for name in extra), extra


def titles(config: Config, slug: str) -> list[str]:
    document = json.loads((config.feeds.directory / f"{slug}.json").read_bytes())
    return [str(entry["title"]) for entry in document["items"]]


def feeds_rendered(result: RunResult) -> set[str]:
    return {name.rsplit(".", 1)[0] for name in result.rendered if name.endswith(".rss")}


def pages_rendered(result: RunResult) -> int:
    return sum(1 for name in result.rendered if name.startswith("entries/"))


def test_each_publish_equals_a_full_render(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    now = START + timedelta(days=30)
    runs: list[list[SourceEntry]] = [
        # 1: the first run renders everything
        [
            item("alpha", "Ukraine talks open", 1),
            item("alpha", "Ukraine grain deal", 2),
            item("beta", "Gas prices fall", 1),
            item("beta", "Gas storage full", 3),
            item("gamma", "Local election", 2),
        ],
        # 2: one new story in one topic
        [item("alpha", "Ukraine talks continue", 4)],
        # 3: a stored story updated (new summary, same topics)
        [item("beta", "Gas storage full", 3, "Storage is full, says the gas operator")],
        # 4: a story changes topics: its summary now speaks of gas, not of Ukraine
        [item("alpha", "Ukraine grain deal", 2, "The grain deal is off; gas instead")],
        # 5: a story leaves a topic: its summary no longer speaks of gas
        [
            item(
                "beta",
                "Gas storage full",
                3,
                "Storage is full, says the operator of the site, who expects a cold winter",
            )
        ],
        # 6: another source tells a stored story (a new sighting only), and a new story
        [item("gamma", "Gas prices fall", 1), item("gamma", "Town fair", 5)],
        # 7: a line moves in a source's file (a sighting changes), with a new story
        [item("gamma", "Local election", 2, line=7), item("beta", "Gas pipeline", 6)],
        # 8: many new stories push older ones out of every window
        [item("alpha", f"Ukraine report {n}", 7 + n) for n in range(5)],
        # 9: the newest story leaves its topic: an older one comes back into the window
        [item("alpha", "Ukraine report 4", 11, "Nothing to see here")],
        # 10: an older story, outside every window
        [item("gamma", "Old news", -20)],
        # 11: nothing new
        [item("alpha", "Ukraine report 3", 10)],
    ]
    shown: dict[int, dict[str, list[str]]] = {}
    for number, items in enumerate(runs, 1):
        result = run(config, items, now + timedelta(hours=number))
        assert_as_full_render(config, tmp_path / f"run-{number}")
        shown[number] = {slug: titles(config, slug) for slug in ("ukraine", "energy")}
        if number == 1:
            names = {*outputs.fixed_files(["all", "ukraine", "energy", "quiet"])}
            assert names <= set(result.rendered)
        elif number == 11:
            assert result.rendered == () and result.written == ()
        else:
            assert outputs.OPML not in result.rendered, number
            assert outputs.STYLESHEET not in result.rendered, number
    # The runs did what they say: stories joined and left topics, windows moved.
    assert "Ukraine grain deal" in shown[4]["energy"] and "Gas storage full" in shown[4]["energy"]
    assert "Gas storage full" not in shown[5]["energy"]
    assert shown[8]["ukraine"][0] == "Ukraine report 4" and len(shown[8]["ukraine"]) == 4
    assert "Ukraine report 4" not in shown[9]["ukraine"]
    assert (
        "Ukraine report 0" in shown[9]["ukraine"] and "Ukraine report 0" not in shown[8]["ukraine"]
    )


def test_one_source_renders_only_the_feeds_it_changed(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_entries=10)
    now = START + timedelta(days=30)
    run(
        config,
        [
            item("alpha", "Ukraine talks open", 1),
            item("beta", "Gas prices fall", 2),
            item("gamma", "Local election", 3),
        ],
        now,
    )
    # A new story about gas, older than the newest: "all" and "energy" change, and the
    # quiet topic's date does not (the newest story overall is the same).
    result = run(config, [item("beta", "Gas storage full", 2)], now + timedelta(hours=1))
    assert feeds_rendered(result) == {"all", "energy"}
    assert pages_rendered(result) == 1
    assert set(result.rendered) == {
        *outputs.feed_files("all"),
        *outputs.feed_files("energy"),
        outputs.topic_page("all"),
        outputs.topic_page("energy"),
        outputs.INDEX,
        next(n for n in result.rendered if n.startswith("entries/")),
    }
    assert outputs.feed_files("ukraine")[0] not in {p.name for p in result.written}
    # Every file is still reported (written or as it was), for Last-Modified stamps.
    assert len(result.written) + len(result.unchanged) == len(
        [p for p in config.feeds.directory.rglob("*") if p.is_file() and p.name != TOKEN]
    )
    assert_as_full_render(config, tmp_path / "check")
    # A newest story overall: the empty topic shows its date, so it is rendered too.
    result = run(config, [item("alpha", "Ukraine ceasefire", 9)], now + timedelta(hours=2))
    assert feeds_rendered(result) == {"all", "ukraine", "quiet"}
    assert_as_full_render(config, tmp_path / "check-2")


def test_what_is_not_known_for_sure_is_rendered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path)
    now = START + timedelta(days=30)
    everything = {*outputs.fixed_files(["all", "ukraine", "energy", "quiet"])}
    run(config, [item("alpha", "Ukraine talks open", 1)], now)
    # New settings: every file again.
    config = make_config(tmp_path, title="Other news")
    result = run(config, [item("beta", "Gas prices fall", 2)], now + timedelta(hours=1))
    assert everything <= set(result.rendered)
    assert_as_full_render(config, tmp_path / "settings")
    # A crash between the store's commit and the renames: the rendered key names an
    # older version than the manifest, which is not trusted.
    with open_store(config.store) as store, store.transaction():
        store.set_meta(rendered_key(config, store), "crashed 0")
    result = run(config, [item("beta", "Gas storage full", 3)], now + timedelta(hours=2))
    assert everything <= set(result.rendered)
    # A removed entry page: that page is not known to be there, and is rendered again
    # (it alone: the other files are as they were written).
    page = next((config.feeds.directory / "entries").iterdir())
    page.unlink()
    with open_store(config.store) as store:
        trusted = recorded_manifest(config, store)
        installed = installed_manifest(config, store)
    assert trusted is not None and installed is not None
    assert set(installed.entries) - set(trusted.entries) == {
        entry_id for entry_id in installed.entries if outputs.entry_file(entry_id) in str(page)
    }
    result = run(config, [], now + timedelta(hours=3))
    assert page.exists() and f"entries/{page.name}" in result.rendered
    assert not everything & set(result.rendered)
    # An entry page that is a link to nothing is not there either.
    page.unlink()
    page.symlink_to(tmp_path / "nowhere.html")
    with open_store(config.store) as store:
        trusted = recorded_manifest(config, store)
    assert trusted is not None and len(trusted.entries) == len(installed.entries) - 1
    # An unreadable manifest: everything again.
    with open_store(config.store) as store, store.transaction():
        store.set_meta(manifest_key(config, store), "garbage")
    result = run(config, [item("gamma", "Town fair", 5)], now + timedelta(hours=4))
    assert everything <= set(result.rendered)
    # Other rendering code (templates, a library upgrade) under the same version number.
    result = run(config, [item("gamma", "Town fair 2", 6)], now + timedelta(hours=5))
    assert not everything <= set(result.rendered)
    monkeypatch.setattr("aggregator.site.renderer_fingerprint", lambda: "other code")
    result = run(config, [item("gamma", "Town fair 3", 7)], now + timedelta(hours=6))
    assert everything <= set(result.rendered)
    assert_as_full_render(config, tmp_path / "after")


def test_a_story_page_removed_by_hand_is_back_after_a_run_with_nothing_new(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path)
    now = START + timedelta(days=30)
    run(config, [item("alpha", "Ukraine talks open", 1), item("beta", "Gas prices fall", 2)], now)
    pages = sorted((config.feeds.directory / "entries").iterdir())
    kept = {path: path.read_bytes() for path in pages}
    pages[0].unlink()
    # Nothing new: the story's link led to a 404 until a run had something to write.
    result = run(config, [], now + timedelta(hours=1))
    assert {path: path.read_bytes() for path in pages} == kept
    assert set(result.rendered) == {f"entries/{pages[0].name}"}  # it alone
    # With every file there, a run with nothing new writes nothing.
    assert not run(config, [], now + timedelta(hours=2)).rendered
    # A folder where a page should be is no page either; while it is in the way, the
    # publish fails, and what the last install wrote is then not known for sure: once
    # the folder is gone, a run with nothing new still writes the page (found by review).
    pages[1].unlink()
    pages[1].mkdir()
    with open_store(config.store) as store:
        assert not is_current(config, store, rendered_version(config, store))
    with pytest.raises(FilesNotWritten, match="the next run writes the feeds"):
        run(config, [], now + timedelta(hours=3))
    pages[1].rmdir()
    run(config, [], now + timedelta(hours=4))
    assert {path: path.read_bytes() for path in pages} == kept


# -- the plan, pure ---------------------------------------------------------------------------


def entry(title: str, **changes: object) -> Entry:
    base = Entry(
        id=f"tag:example.org,2024:{title}",
        title=title,
        published=Published(date(2024, 5, 1)),
        summary="",
        sources=(Provenance("alpha", "https://alpha.example.org/feed.xml"),),
        first_seen=START,
        last_seen=START,
        topics=("ukraine",),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_an_entry_digest_follows_what_is_shown_but_not_last_seen() -> None:
    one = entry("a")
    assert entry_digest(one) == entry_digest(
        dataclasses.replace(one, last_seen=START.replace(year=2030))
    )
    seen_elsewhere = (*one.sources, Provenance("beta", "https://beta.example.org/feed.xml"))
    for other in (
        dataclasses.replace(one, summary="new"),
        dataclasses.replace(one, topics=()),
        dataclasses.replace(one, sources=seen_elsewhere),
        dataclasses.replace(one, sources=(Provenance("alpha", "x.html", 3),)),
    ):
        assert entry_digest(other) != entry_digest(one)


def test_changes_names_the_feeds_and_pages_whose_inputs_differ() -> None:
    a, b, c = entry("a"), entry("b"), entry("c")
    before = manifest_of({"all": [a, b], "ukraine": [a], "quiet": []}, START)
    assert changes(None, before) == EVERYTHING
    same = changes(before, manifest_of({"all": [a, b], "ukraine": [a], "quiet": []}, START))
    assert not same.everything and not same.feeds and not same.entries and not same.index
    newer = START + timedelta(days=1)
    after = manifest_of({"all": [c, a], "ukraine": [a], "quiet": []}, newer)
    found = changes(before, after)
    assert found.feeds == {"all", "quiet"} and found.entries == {c.id} and found.index
    assert Manifest.loads(after.dumps()) == after
    recoded = manifest_of({"all": [a, b], "ukraine": [a], "quiet": []}, START, code="new")
    assert changes(before, recoded) == EVERYTHING
    assert Manifest.loads("{") is None and Manifest.loads(None) is None


def test_a_store_or_feeds_restored_from_a_backup_get_every_file_again(tmp_path: Path) -> None:
    """The store and the feeds directory each hold the last install's token: when they
    disagree (one of them restored from a backup, or written by another setup), the
    next publish renders every file, as a full render would."""
    import shutil

    config = make_config(tmp_path)
    now = START + timedelta(days=30)
    everything = {*outputs.fixed_files(["all", "ukraine", "energy", "quiet"])}
    run(config, [item("alpha", "Ukraine talks open", 1)], now)
    store_file = config.store.path
    shutil.copy(store_file, tmp_path / "store-backup")
    feeds_backup = tmp_path / "feeds-backup"
    shutil.copytree(config.feeds.directory, feeds_backup)
    run(config, [item("beta", "Gas storage full", 2, "gas")], now + timedelta(hours=1))

    # The store goes back; the files still show the gas story. The next change renders
    # everything, so no file keeps a story the store no longer has.
    for suffix in ("-wal", "-shm"):
        Path(f"{store_file}{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "store-backup", store_file)
    result = run(config, [item("alpha", "Ukraine ceasefire", 3)], now + timedelta(hours=2))
    assert everything <= set(result.rendered)
    assert_as_full_render(config, tmp_path / "store-restored")
    assert "Gas storage full" not in titles(config, "energy")

    # Now the feeds directory goes back instead.
    shutil.rmtree(config.feeds.directory)
    shutil.copytree(feeds_backup, config.feeds.directory)
    result = run(config, [item("gamma", "Gas prices fall", 4, "gas")], now + timedelta(hours=3))
    assert everything <= set(result.rendered)
    assert_as_full_render(config, tmp_path / "feeds-restored")


class _Stopped(Exception):
    """A run stopped between its store's commit and its files' install."""


@pytest.mark.parametrize("stopped", [False, True], ids=["installed", "stopped before install"])
def test_the_page_of_a_story_no_feed_shows_is_redone_when_the_story_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped: bool
) -> None:
    """A story that left every feed's window keeps its page; told since by another
    source, its page says so: rendered again by the run that changed the story or,
    stopped before its install, by the next run (found when a source's own edit of an
    old story came to be shown: the page kept the old text)."""
    from aggregator.output import Staged

    config = make_config(tmp_path, max_entries=2)
    now = START + timedelta(days=10)
    run(config, [item("alpha", f"Gas storage {n}", n) for n in range(2)], now)
    run(config, [item("alpha", f"Gas storage {n}", n) for n in range(2, 4)], now)
    with open_store(config.store) as store:
        [old] = [e for e in store.newest(10) if e.title == "Gas storage 0"]
    page = config.feeds.directory / outputs.entry_file(old.id)
    assert "beta.example.org" not in page.read_text("utf-8")
    told = [item("beta", "Gas storage 0", 0, "Gas storage told again, at more length")]
    if stopped:

        def stop(self: Staged) -> list[Path]:
            raise _Stopped

        with monkeypatch.context() as patched:
            patched.setattr(Staged, "install", stop)
            with pytest.raises(_Stopped):
                run(config, told, now + timedelta(hours=1))
        assert "beta.example.org" not in page.read_text("utf-8")
        run(config, [], now + timedelta(hours=2))
    else:
        run(config, told, now + timedelta(hours=1))
    assert "beta.example.org" in page.read_text("utf-8")
    assert_as_full_render(config, tmp_path / "full")


def _record_document(config: Config, name: str) -> None:
    """Record ``name``'s bytes on disk as the ones its last publish wrote (as if it had
    written them so)."""
    from aggregator.site.plan import document_digest

    with open_store(config.store) as store, store.transaction():
        key = manifest_key(config, store)
        token, _, body = (store.meta(key) or "").partition("\n")
        manifest = Manifest.loads(body)
        assert manifest is not None and name in manifest.documents
        data = (config.feeds.directory / name).read_bytes()
        documents = {**manifest.documents, name: document_digest(data)}
        recorded = dataclasses.replace(manifest, documents=documents)
        store.set_meta(key, f"{token}\n{recorded.dumps()}")


def _a_story_changed_on_disk(tmp_path: Path, *, recorded: bool) -> Config:
    """Two stories published; "Gas prices fall" changed to "FELL" in the documents of
    `all` on disk (and those bytes ``recorded`` as the ones written, or not); then a
    new story published."""
    config = make_config(tmp_path)
    now = START + timedelta(days=30)
    run(config, [item("alpha", "Ukraine talks open", 1), item("beta", "Gas prices fall", 2)], now)
    feeds = config.feeds.directory
    for name in ("all.rss", "all.atom", "all.json"):
        data = (feeds / name).read_bytes()
        assert data.count(b"Gas prices fall") >= 1
        (feeds / name).write_bytes(data.replace(b"Gas prices fall", b"Gas prices FELL"))
        if recorded:
            _record_document(config, name)
    run(config, [item("alpha", "Ukraine talks continue", 3)], now + timedelta(hours=1))
    return config


def test_a_publish_takes_unchanged_items_from_the_documents_as_written(tmp_path: Path) -> None:
    """A feed with a new story keeps the bytes of its other items as its documents
    hold them (aggregator.splice): here, bytes changed on purpose, and recorded as
    written, stay; the new story's item is rendered."""
    config = _a_story_changed_on_disk(tmp_path, recorded=True)
    feeds = config.feeds.directory
    for name in ("all.rss", "all.atom", "all.json"):
        data = (feeds / name).read_bytes()
        assert b"Gas prices FELL" in data and b"Gas prices fall" not in data, name
        assert b"Ukraine talks continue" in data and b"Ukraine talks open" in data, name


def test_a_feed_document_changed_on_disk_is_rendered_whole(tmp_path: Path) -> None:
    """Bytes on disk that are not the ones written (edited by hand, damaged) are never
    taken from: the feed is rendered whole, as a full render gives it."""
    config = _a_story_changed_on_disk(tmp_path, recorded=False)
    assert_as_full_render(config, tmp_path / "full")
    assert b"FELL" not in (config.feeds.directory / "all.rss").read_bytes()


def test_the_render_fingerprint_follows_what_the_bytes_depend_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Items kept from a feed's last documents (aggregator.splice) are kept only while
    the code that made them is the same: Python's version (its mimetypes table, json)
    and libxml2's are in the fingerprint too (found by review)."""
    import sys

    from lxml import etree

    from aggregator.site import renderer_fingerprint

    renderer_fingerprint.cache_clear()
    before = renderer_fingerprint()
    monkeypatch.setattr(etree, "LIBXML_VERSION", (1, 2, 3))
    renderer_fingerprint.cache_clear()
    libxml = renderer_fingerprint()
    monkeypatch.setattr(sys, "version_info", (3, 99, 0, "final", 0))
    renderer_fingerprint.cache_clear()
    python = renderer_fingerprint()
    monkeypatch.undo()
    renderer_fingerprint.cache_clear()
    assert len({before, libxml, python}) == 3 and renderer_fingerprint() == before


def test_the_time_of_a_change_never_goes_back(tmp_path: Path) -> None:
    """The store's "changed" (the files' Last-Modified on a shared store) is when the
    change was written, and never before the last one (found by review: on PostgreSQL,
    a run that began first and wrote last set it back, and a reader asking
    If-Modified-Since the later time was told 304 of a changed feed)."""
    config = make_config(tmp_path)
    now = START + timedelta(days=30)

    def changed() -> str | None:
        with open_store(config.store) as store:
            return store.meta("changed")

    run(config, [item("alpha", "Ukraine talks open", 1)], now)
    assert changed() == now.isoformat()
    # Began a minute before the last change, written after it.
    earlier = now - timedelta(minutes=1)
    run(config, [item("beta", "Gas prices fall", 2)], earlier)
    assert changed() == now.isoformat()
    # Written at the time the writer gives, the lock held.
    by_source = {s.name: s for s in config.sources}
    written = now + timedelta(minutes=5)
    with open_store(config.store) as store:
        outcome = Outcome(by_source["gamma"], (item("gamma", "Town fair", 3),))
        publish(config, store, FetchStates(store), [outcome], earlier, changed_at=written)
    assert changed() == written.isoformat()


QUIET_TOPIC = (
    '\n[[topics]]\nslug = "quiet"\ntitle = "Quiet"\ndescription = "Nothing matches"\n'
    'terms = ["zanzibar-never"]\n'
)


def test_a_topic_added_while_the_store_refuses_its_notes_goes_once_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A run whose store refuses everything after its commit (the disk full by then)
    installs its files all the same, and says so once: a topic it added has its files
    on disk, which a run after the topic is dropped removes (found by review: the files
    it might have left were recorded only with the manifest, which the store refused;
    and the warning came twice, the first before anything was installed)."""
    import sqlite3
    from contextlib import contextmanager
    from typing import Any

    from aggregator.errors import WriteError
    from aggregator.store.sqlite import Store

    path = tmp_path / "config.toml"
    make_config(tmp_path)
    with_quiet = path.read_text(encoding="utf-8")
    without = with_quiet.replace(QUIET_TOPIC, "\n")
    assert without != with_quiet
    path.write_text(without, encoding="utf-8")
    now = START + timedelta(days=10)
    run(load_config(path), [item("alpha", "Ukraine a", 1)], now)
    quiet = tmp_path / "feeds" / "quiet.rss"
    assert not quiet.exists()

    path.write_text(with_quiet, encoding="utf-8")
    opened = Store.transaction
    committed: list[bool] = []

    @contextmanager
    def refusing_after_a_commit(self: Store) -> Any:
        if committed:
            cause = sqlite3.OperationalError("database or disk is full")
            raise WriteError(f"{self.path}: cannot write the store: {cause}") from cause
        with opened(self) as db:
            yield db
        committed.append(True)

    with monkeypatch.context() as patched:
        patched.setattr(Store, "transaction", refusing_after_a_commit)
        run(load_config(path), [item("alpha", "Ukraine b", 2)], now + timedelta(hours=1))
    assert committed == [True]
    assert quiet.exists()
    said = [r.getMessage() for r in caplog.records if "could not note" in r.getMessage()]
    assert len(said) == 1, said

    path.write_text(without, encoding="utf-8")
    run(load_config(path), [], now + timedelta(hours=2))
    assert not quiet.exists()
