"""A cron run with nothing to do imports no more than it needs (issue 14).

When every live source's last answer is still fresh, ``aggregator run`` asks nobody,
parses nothing and renders nothing, so it has no use for an event loop, the HTTP
client, the parser workers, the feed parsers, the page layouts or the templates; and
building the command line imports no command. Each is checked in a new interpreter,
where ``sys.modules`` shows what was imported, so that a change making the no-op path
heavy again fails here rather than only in a benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from aggregator.cli import main
from aggregator.config import StoreSettings
from aggregator.live.state import FetchStates, SourceState
from aggregator.snapshots import LAYOUT_NAMES, layouts
from aggregator.store import open_store
from tests.feedserver import Server

# Not imported by a run that asks nobody and has nothing to write.
NOT_FOR_A_FRESH_RUN = (
    "asyncio",  # no event loop: no source is read
    "aggregator.live.fetch",  # the HTTP client
    "aggregator.live.http",
    "httpx",
    "multiprocessing",  # the parser workers
    "aggregator.live.feedparse",  # the feed parsers
    "aggregator.live.jsonfeed",
    "aggregator.live.newest",
    "feedparser",
    "lxml",
    "aggregator.snapshots.page",  # the saved-page layouts
    "aggregator.dates",
    "re2",  # the config has no topic patterns
    "jinja2",  # the files are current: nothing is rendered
    "aggregator.render",
    "aggregator.site.parts",  # no publish to hand to the workers
    "pickle",
    "aggregator.topics",  # nothing new to judge
    "aggregator.source",  # nothing to read (the package loads it on first use)
    "importlib.resources",  # no template or static file is read
    "tempfile",  # nothing is written
    "aggregator.sources",  # another command
)
# Not imported by building the command line and parsing ``run``'s arguments.
NOT_FOR_THE_PARSER = (
    "aggregator.pipeline",
    "aggregator.ingest",
    "aggregator.site",
    "aggregator.render",
    "aggregator.server",
    "aggregator.schedule",
    "aggregator.config",
    "aggregator.store.sqlite",
    "aggregator.store.postgres",
    "aggregator.sources.add",
    "sqlite3",
)


def _modules(script: str, *args: str, cwd: Path) -> tuple[object, set[str]]:
    """What ``script`` printed last (a JSON pair: a value, the module names), in a new
    interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    value, modules = json.loads(done.stdout.splitlines()[-1])
    return value, set(modules)


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The names, or modules inside them, that were imported."""
    return sorted(m for m in modules for n in names if m == n or m.startswith(n + "."))


def _modules_of_run(config: Path, cwd: Path, *flags: str) -> tuple[object, set[str]]:
    """``aggregator run`` (with ``flags``) in a new interpreter: its status, and the
    modules it imported."""
    script = (
        "import json, sys\n"
        "from aggregator.cli import main\n"
        "status = main(['--config', sys.argv[1], '-q', 'run', *sys.argv[2:]])\n"
        "print(json.dumps([status, sorted(sys.modules)]))\n"
    )
    return _modules(script, str(config), *flags, cwd=cwd)


def _read_once(tmp_path: Path, feedserver: Server) -> Path:
    """A config with one feed (rss20.xml, whose <ttl> keeps it fresh for an hour), run
    once: the feed is read and stored."""
    config = tmp_path / "config.toml"
    config.write_text(
        f"[store]\npath = '{tmp_path / 'store.sqlite3'}'\n"
        f"[feeds]\ndirectory = '{tmp_path / 'feeds'}'\n\n"
        f"[[sources]]\nname = 'nato'\nurl = '{feedserver.base}/feeds/rss20.xml'\n",
        "utf-8",
    )
    assert main(["--config", str(config), "-q", "run"]) == 0
    return config


def test_a_run_with_every_source_fresh_imports_no_reader(
    tmp_path: Path, feedserver: Server
) -> None:
    config = _read_once(tmp_path, feedserver)
    asked = len(feedserver.log)
    status, modules = _modules_of_run(config, tmp_path)
    assert status == 0
    assert len(feedserver.log) == asked  # nobody was asked
    assert "aggregator.pipeline" in modules  # the run did run
    assert _loaded(modules, NOT_FOR_A_FRESH_RUN) == []


def test_building_the_command_line_imports_no_command(tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "from aggregator.cli import build_parser\n"
        "args = build_parser().parse_args(['run'])\n"
        "print(json.dumps([args.command, sorted(sys.modules)]))\n"
    )
    command, modules = _modules(script, cwd=tmp_path)
    assert command == "run"
    assert _loaded(modules, NOT_FOR_THE_PARSER) == []


def test_the_expected_files_are_those_of_the_feeds(tmp_path: Path) -> None:
    from aggregator.config import load_config
    from aggregator.pipeline import expected_files, feed_specs
    from aggregator.site.outputs import fixed_files

    config = load_config(Path(__file__).parent.parent / "config.toml")
    assert len(config.topics) >= 3
    assert expected_files(config) == fixed_files(spec.slug for spec, _ in feed_specs(config))


def test_the_layout_names_are_the_layouts() -> None:
    assert tuple(layouts()) == LAYOUT_NAMES


def test_fetch_states_are_read_at_once(store_settings: StoreSettings) -> None:
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    with open_store(store_settings) as store:
        keys = [f"https://example.org/{i}.xml" for i in range(1203)]  # more than one chunk
        with store.transaction():
            for i, key in enumerate(keys[::2]):
                store.set_fetch_state(key, SourceState(etag=f'"{i}"', fresh_until=now).to_json())
        found = store.fetch_states(keys)
        assert sorted(found) == sorted(keys[::2])
        assert all(found[key] == store.fetch_state(key) for key in keys[::2])
        assert store.fetch_states([]) == {}

        states = FetchStates(store)
        states.load([keys[0], keys[1], keys[0]])
        assert states.get(keys[0]) == SourceState(etag='"0"', fresh_until=now)
        assert states.get(keys[1]) == SourceState()
        changed = SourceState(etag='"new"')
        states.put(keys[0], changed)
        assert states.get(keys[0]) == changed
        with store.transaction():
            states.save()
        assert states.get(keys[0]) == changed  # what was saved, not what load() read
        assert FetchStates(store).get(keys[0]) == changed


def test_a_parser_worker_starts_without_feedparser(tmp_path: Path) -> None:
    """The parser workers' fork server imports what the fast path reads with, not
    feedparser: their start is on the critical path of a run, and feedparser is half of
    it. A document the fast path cannot read still loads feedparser when it comes."""
    script = (
        "import json, sys\n"
        "import aggregator.live.feedparse as feedparse\n"
        "before = sorted(sys.modules)\n"
        "rss = b'<rss version=\"2.0\"><channel><title>t</title>'\n"
        "rss += b'<item><title>a</title><link>https://example.org/a</link></item>'\n"
        "rss += b'</channel></rss>'\n"
        "feedparse.parse_feed(rss, url='https://example.org/feed', name='n')\n"
        "fast = 'feedparser' in sys.modules\n"
        "atom = b'<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title>'\n"
        "atom += b'<entry><title>a</title><id>urn:x</id></entry></feed>'\n"
        "feedparse.parse_feed(atom, url='https://example.org/atom', name='n', fast=False)\n"
        "print(json.dumps([[fast, 'feedparser' in sys.modules], before]))\n"
    )
    (fast, slow), modules = _modules(script, cwd=tmp_path)
    assert _loaded(modules, ("feedparser",)) == []
    assert (fast, slow) == (False, True)


def test_a_run_whose_feeds_answer_304_loads_no_renderer(tmp_path: Path, feedserver: Server) -> None:
    """The renderers are loaded when something is rendered: a run whose every feed
    answers 304 (asked with --force though fresh) loads none."""
    config = _read_once(tmp_path, feedserver)
    asked = len(feedserver.log)
    status, modules = _modules_of_run(config, tmp_path, "--force")
    assert status == 0
    assert len(feedserver.log) == asked + 1  # asked again, and it said 304
    assert _loaded(modules, ("jinja2", "aggregator.site.pages", "aggregator.render")) == []


def test_a_run_reads_http_dates_and_media_types_lazily(tmp_path: Path, feedserver: Server) -> None:
    """A run that reads a feed and renders its files loads neither the email package nor
    the table of media types, and its files are a full render's."""
    config = tmp_path / "config.toml"
    config.write_text(
        f"[store]\npath = '{tmp_path / 'store.sqlite3'}'\n"
        f"[feeds]\ndirectory = '{tmp_path / 'feeds'}'\n\n"
        f"[[sources]]\nname = 'nato'\nurl = '{feedserver.base}/feeds/rss20.xml'\n"
        "[[topics]]\nslug = 'ukraine'\ntitle = 'Ukraine'\ndescription = 'Ukraine'\n"
        "terms = ['Ukraine']\n",
        "utf-8",
    )
    status, modules = _modules_of_run(config, tmp_path)
    assert status == 0
    # Its HTTP dates are read without the email package, and only an enclosure that
    # does not say its type loads the table of media types.
    assert _loaded(modules, ("email", "mimetypes")) == []

    from aggregator.config import load_config
    from aggregator.pipeline import build_files

    settings = load_config(config)
    with open_store(settings.store) as store:
        files = build_files(settings, store)
    assert any(name.startswith("entries/") for name in files)
    for name, data in files.items():
        assert (tmp_path / "feeds" / name).read_bytes() == data, name
