"""A publish's files rendered in parts, in a run's parser workers, are the files rendered
in one process: the same names, in the same order, with the same bytes. (A run sends only
a large publish to its workers, parts.WORKERS_FROM; the tests of the workers' side lower
that bound to send the small publishes they make.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from aggregator.config import Config
from aggregator.ingest import Outcome
from aggregator.live.sandbox import Sandbox
from aggregator.live.state import FetchStates
from aggregator.model import SourceEntry
from aggregator.pipeline import Rendered, RunResult, publish, render_files
from aggregator.site import outputs, parts
from aggregator.site.parts import Inputs, Runner
from aggregator.site.plan import EVERYTHING, Changes
from aggregator.store import open_store
from tests.feedserver import Server
from tests.test_incremental_render import START, assert_as_full_render, item, make_config

T = TypeVar("T")
NOW = START + timedelta(days=40)


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout=60) as sandbox:
        sandbox.warm()  # started, as a run's are once it has parsed
        yield sandbox


@pytest.fixture
def any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every publish given a runner is rendered there, however small."""
    monkeypatch.setattr(parts, "WORKERS_FROM", 0)


class Recording:
    """A runner that passes each call on, and notes what was called."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.size = runner.size
        self.calls: list[str] = []

    def call(self, function: Callable[..., T], *args: Any) -> T:
        self.calls.append(function.__name__)
        return self.runner.call(function, *args)


class Failing:
    """A runner whose workers fail every call (``every``), or every other one."""

    def __init__(self, size: int = 2, every: bool = True) -> None:
        self.size = size
        self.every = every
        self.calls = 0

    def call(self, function: Callable[..., T], *args: Any) -> T:
        self.calls += 1
        if self.every or self.calls % 2:
            raise RuntimeError("the worker is gone")
        return function(*args)


def stories(count: int, day: int = 0) -> list[SourceEntry]:
    words = ("Ukraine talks", "Gas storage", "Local fair")
    return [
        item(
            ("alpha", "beta", "gamma")[n % 3],
            f"{words[n % 3]} {day}-{n}",
            day + n % 25,
            f"{words[n % 3]}: summary {n} with <b>markup</b> & more",
        )
        for n in range(count)
    ]


def publish_here(config: Config, items: Sequence[SourceEntry], runner: Runner | None) -> RunResult:
    by_source = {s.name: s for s in config.sources}
    outcomes = [
        Outcome(by_source[name], tuple(i for i in items if i.source == name))
        for name in sorted({i.source for i in items})
    ]
    with open_store(config.store) as store:
        return publish(config, store, FetchStates(store), outcomes, NOW, runner)


def both_ways(config: Config, count: int, runner: Runner) -> tuple[Rendered, Rendered]:
    """``count`` stories published, then every file rendered here and with ``runner``."""
    publish_here(config, stories(count), None)
    with open_store(config.store) as store:
        return render_files(config, store), render_files(config, store, runner=runner)


@pytest.mark.usefixtures("any_size")
def test_every_file_rendered_in_workers_is_the_file_rendered_here(
    tmp_path: Path, box: Sandbox
) -> None:
    recording = Recording(box)
    here, there = both_ways(make_config(tmp_path, max_entries=40), 90, recording)
    assert list(there.files.items()) == list(here.files.items())
    assert there.manifest == here.manifest
    assert recording.calls.count("render_part") >= 3  # in parts, side by side


def test_a_small_publish_is_rendered_here_even_with_workers(tmp_path: Path, box: Sandbox) -> None:
    for name in ("inputs", "run"):
        (tmp_path / name).mkdir()
    inputs = _inputs(tmp_path / "inputs")  # every file of 90 stories: all entry pages, three feeds
    units = parts.units(inputs)
    assert sum(parts._weight(inputs, unit) for unit in units) < parts.WORKERS_FROM
    recording = Recording(box)
    assert list(parts.render(inputs, recording)) == parts.render_units(inputs, units)
    # And through a publish given the workers, as a run gives them:
    config = make_config(tmp_path / "run", max_entries=40)
    publish_here(config, stories(90), recording)
    assert_as_full_render(config, tmp_path / "full")
    assert recording.calls == []


def test_a_large_publish_goes_to_the_workers(tmp_path: Path, box: Sandbox) -> None:
    """Above WORKERS_FROM (as it is, not lowered), the parts go to the workers, and come
    back as the files rendered here."""
    recording = Recording(box)
    here, there = both_ways(make_config(tmp_path, max_entries=600), 900, recording)
    assert len(here.files) > 800
    assert recording.calls.count("render_part") >= 2
    assert list(there.files.items()) == list(here.files.items())


def test_a_prepared_runner_renders_even_a_small_publish_there(tmp_path: Path, box: Sandbox) -> None:
    """As a run makes it once its sources are read: every worker loads the renderers at
    once (while the store is written), and then even a small publish goes to them and
    comes back as the files rendered here, with the fingerprint computed there."""
    from aggregator.site import renderer_fingerprint

    (tmp_path / "run").mkdir()
    recording = Recording(box)
    prepared = parts.Prepared(recording)
    config = make_config(tmp_path / "run", max_entries=40)
    publish_here(config, stories(90), prepared)  # below WORKERS_FROM: see above
    assert recording.calls.count("prepare") == box.size
    assert prepared.loaded and not prepared.failed
    assert recording.calls.count("render_part") >= 2
    assert_as_full_render(config, tmp_path / "full")
    assert prepared.fingerprint() == renderer_fingerprint()


@pytest.mark.parametrize("every", [True, False], ids=["every call fails", "every other"])
def test_prepared_workers_that_fail_leave_the_work_here(tmp_path: Path, every: bool) -> None:
    from aggregator.site import renderer_fingerprint

    (tmp_path / "run").mkdir()
    failing = Failing(every=every)
    prepared = parts.Prepared(failing)
    prepared.wait()
    assert prepared.failed is every and not prepared.loaded
    config = make_config(tmp_path / "run", max_entries=40)
    publish_here(config, stories(90), prepared)
    if every:  # no worker is ready: a small publish is rendered here, as without them
        assert failing.calls == 2
    else:  # one is: the parts go there, and those that fail are rendered here
        assert failing.calls >= 3
    assert_as_full_render(config, tmp_path / "full")
    assert prepared.fingerprint() == renderer_fingerprint()


@pytest.mark.usefixtures("any_size")
def test_each_publish_in_workers_equals_a_full_render(tmp_path: Path, box: Sandbox) -> None:
    config = make_config(tmp_path, max_entries=30)
    runs = [
        stories(80),  # everything
        stories(2, day=30),  # two new stories: two pages, the feeds they are in
        [item("alpha", "Ukraine talks 0-0", 0, "A new summary for an old story")],
        [],  # nothing new
        stories(60, day=31),  # a window moves in every feed
    ]
    for number, items in enumerate(runs, 1):
        result = publish_here(config, items, box)
        assert_as_full_render(config, tmp_path / f"run-{number}")
        if number == 4:
            assert result.rendered == ()


@pytest.mark.usefixtures("any_size")
@pytest.mark.parametrize("every", [True, False], ids=["every call fails", "every other"])
def test_a_part_a_worker_fails_is_rendered_here(tmp_path: Path, every: bool) -> None:
    config = make_config(tmp_path, max_entries=40)
    publish_here(config, stories(90), None)
    failing = Failing(every=every)
    with open_store(config.store) as store:
        here = render_files(config, store)
        there = render_files(config, store, runner=failing)
    assert failing.calls >= 3
    assert list(there.files.items()) == list(here.files.items())


@pytest.mark.usefixtures("any_size")
def test_a_part_past_its_time_is_rendered_here(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_entries=40)
    publish_here(config, stories(90), None)
    with open_store(config.store) as store, Sandbox(workers=2, timeout=0.0001) as late:
        late.warm()
        here = render_files(config, store)
        there = render_files(config, store, runner=late)
    assert list(there.files.items()) == list(here.files.items())


def test_the_files_come_in_the_order_they_are_linked(tmp_path: Path) -> None:
    """What is linked to is installed before what links to it: the stylesheet and the
    XSLT, the entry pages, then the feeds and topic pages, then the OPML and index."""
    config = make_config(tmp_path, max_entries=10)
    publish_here(config, stories(30), None)
    with open_store(config.store) as store:
        names = list(render_files(config, store).files)

    def rank(name: str) -> int:
        if name in outputs.STATIC_FILES:
            return 0
        if name.startswith("entries/"):
            return 1
        if name in (outputs.OPML, outputs.INDEX):
            return 3
        return 2

    assert [rank(n) for n in names] == sorted(rank(n) for n in names)
    assert names[-1] == outputs.INDEX


def _inputs(tmp_path: Path, changes: Changes = EVERYTHING) -> Inputs:
    from aggregator.pipeline import feed_specs
    from aggregator.site import site_from_config

    config = make_config(tmp_path, max_entries=40)
    publish_here(config, stories(90), None)
    with open_store(config.store) as store:
        specs = feed_specs(config)
        latest = {spec.slug: store.newest(40, topic) for spec, topic in specs}
    return Inputs(site_from_config(config), tuple(s for s, _ in specs), latest, NOW, changes)


@pytest.mark.parametrize("count", [1, 2, 3, 6, 50])
def test_parts_are_every_unit_once_in_order(tmp_path: Path, count: int) -> None:
    inputs = _inputs(tmp_path)
    units = parts.units(inputs)
    cut = parts.split(inputs, units, count)
    assert [unit for part in cut for unit in part] == units
    assert all(cut) and len(cut) <= count
    rendered = [f for part in cut for f in parts.render_units(inputs, part)]
    assert rendered == parts.render_units(inputs, units)


def test_a_part_carries_only_what_it_shows(tmp_path: Path) -> None:
    import pickle

    inputs = _inputs(tmp_path)
    units = parts.units(inputs)
    pages = [unit for unit in units if unit[0] == "entry"][:5]
    sent: Inputs = pickle.loads(parts._for_part(inputs, pages))
    assert all(not entries for entries in sent.latest.values())
    assert sorted(e.id for e in sent.pages) == sorted(key for _, key in pages)
    assert parts.render_units(sent, pages) == parts.render_units(inputs, pages)
    feed = [("feed", "ukraine"), ("topic", "ukraine")]
    sent = pickle.loads(parts._for_part(inputs, feed))
    assert [slug for slug, entries in sent.latest.items() if entries] == ["ukraine"]
    assert parts.render_units(sent, feed) == parts.render_units(inputs, feed)


def test_parts_stopped_while_being_sent_leave_no_thread_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, any_size: None
) -> None:
    """Ctrl-C while the parts are sent (each pickled in turn): the threads that wait on
    the parts already sent end with them, as when the rendering is closed."""
    import threading

    inputs = _inputs(tmp_path)
    made = parts._for_part
    sent: list[int] = []

    def interrupted(*args: Any) -> bytes:
        sent.append(1)
        if len(sent) == 3:
            raise KeyboardInterrupt
        return made(*args)

    monkeypatch.setattr(parts, "_for_part", interrupted)
    with pytest.raises(KeyboardInterrupt) as stopped:
        parts.Started(inputs, Failing(size=2))
    assert len(sent) == 3
    # (The traceback, held here, holds the pool: only its shutdown ends its threads.)
    assert stopped.traceback
    for thread in threading.enumerate():
        if thread.name.startswith("aggregator-render"):
            thread.join(timeout=5)
    left = [t.name for t in threading.enumerate() if t.name.startswith("aggregator-render")]
    assert left == []


def test_too_little_work_is_one_part(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    few = [unit for unit in parts.units(inputs) if unit[0] == "entry"][:3]
    assert parts.split(inputs, few, 6) == [few]


def test_a_run_renders_in_its_workers_what_a_full_render_gives(
    tmp_path: Path, feedserver: Server
) -> None:
    """``aggregator run`` as cron starts it: its workers, forked from it, load the
    renderers while it writes the store and render the publish; its own process loads
    neither Jinja2 nor lxml, and the files are a full render's. A feed then gains an item: the
    same again."""
    import json
    import random
    import subprocess
    import sys

    from aggregator.config import load_config
    from benchmarks.workloads import rss_feed
    from tests.test_incremental_render import CONFIG

    names = [f"r{n}.xml" for n in range(3)]
    for number, name in enumerate(names):
        feedserver.overrides[name] = rss_feed(number, 30, random.Random(number))
    sources = "\n".join(
        f'[[sources]]\nname = "{name}"\nurl = "{feedserver.base}/feeds/{name}"' for name in names
    )
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(max_entries=20, sources=sources), encoding="utf-8")
    config = load_config(path)
    script = (
        "import json, sys\n"
        "from aggregator.cli import main\n"
        "status = main(['--config', sys.argv[1], '-q', 'run'])\n"
        "names = ('jinja2', 'lxml.etree')\n"
        "print(json.dumps([status, [m for m in names if m in sys.modules]]))\n"
    )
    for number in range(2):
        if number:
            feedserver.overrides[names[1]] = rss_feed(1, 31, random.Random(1))
        done = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
        )
        assert json.loads(done.stdout.splitlines()[-1]) == [0, []], done.stderr
        assert_as_full_render(config, tmp_path / f"run-{number}")
