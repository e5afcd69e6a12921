"""One publish's files as parts that render on their own, and side by side.

What a publish renders (:mod:`aggregator.site.plan` says which files changed) is a list
of units, in the order the files are staged and installed (:func:`units`): the static
files, each changed entry page, each changed feed's three documents and topic page, the
OPML and the index. A part is a run of units; rendering every part in turn is the whole rendering,
and a part needs nothing but the publish's :class:`Inputs`. So the parts can be rendered
in other processes (``aggregator run`` can use its parser workers, idle once the sources
are read) and handed back in order: the same bytes as rendered here, as the tests check.
That pays for a large publish (:data:`WORKERS_FROM`), where the workers must first load the
renderers, and for any publish once they loaded them while this process wrote the store
(:class:`Prepared`): the inputs and files then cross a pipe each way, and that is all.

Pure, like the renderers it calls: the same inputs give the same bytes.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aggregator.records import record
from aggregator.site import outputs

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from aggregator.model import Entry
    from aggregator.render import FeedSpec
    from aggregator.site.pages import Feed, Site
    from aggregator.site.plan import Changes

T = TypeVar("T")

# One file or group of files: ("feed", slug) is the feed's three documents, ("topic",
# slug) its page, ("entry", id) an entry's page, ("opml", ""), ("index", ""), and
# ("static", name) a file shipped with the package.
Unit = tuple[str, str]

# A part is worth rendering apart from the others only above this much work (in entry
# pages, see _weight): below it, pickling its inputs costs more than it spares.
MIN_PART = 40

# Below this much work (in entry pages, see _weight) a publish is rendered here even when
# a runner is given. Measured on the benchmark's 200 feeds and four feeds (docs/benchmarks.md,
# issue 14, eighth pass): a steady run's publish (about 250) rendered here took the same
# time and 0.13 to 0.24 s less CPU in all; a full render of every file (about 850) was
# quicker here in five pairs of five. Each worker loads Jinja2 and the templates (50 to 90
# ms), and the inputs and the files are pickled each way. Two workers halve only the
# rendering itself, about 0.14 ms an entry page: they pay from about 1,500, so from 2,000.
WORKERS_FROM = 2000


@record
class Inputs:
    """Everything a publish's files are rendered from."""

    site: Site
    specs: tuple[FeedSpec, ...]
    latest: Mapping[str, Sequence[Entry]]  # each feed's entries, newest first
    fallback: datetime | None  # a feed's "updated" when it has no entries (feeds only)
    changes: Changes
    # The entries whose pages are rendered, when not all of ``latest`` is given: a part
    # sent elsewhere carries only the feeds its units show (see _for_part).
    pages: tuple[Entry, ...] = ()
    # The changed feeds' documents as last written (file name → bytes, each checked
    # against the digest recorded when it was written): the items of the stories that
    # did not change are taken from them (aggregator.splice).
    before: Mapping[str, bytes] = field(default_factory=dict)


class Runner(Protocol):
    """Where parts may be rendered besides here: ``call(function, *args)`` runs
    ``function(*args)`` elsewhere and returns its result, or raises (the part is then
    rendered here). :meth:`aggregator.live.sandbox.Sandbox.call` is one."""

    size: int

    def call(self, function: Callable[..., T], *args: Any) -> T: ...


def site_units(shown: Sequence[Feed], changes: Changes) -> list[Unit]:
    """The units of the site around the feeds, in order (see :func:`units`)."""
    from aggregator.site.pages import unique_entries

    units: list[Unit] = []
    if changes.everything:
        units += [("static", name) for name in outputs.STATIC_FILES]
    units += [("entry", e.id) for e in unique_entries(shown) if changes.entry(e.id)]
    units += [("topic", feed.slug) for feed in shown if changes.feed(feed.slug)]
    if changes.everything:
        units.append(("opml", ""))
    if changes.index:
        units.append(("index", ""))
    return units


def units(inputs: Inputs) -> list[Unit]:
    """Every unit of a publish, in the order its files are staged and installed: what
    is linked to before what links to it. The stylesheet and the XSLT, then the entry
    pages (many small files, whose writes then start first), the feeds and the topic
    pages that link to them, and the OPML and the index, which link to the feeds."""
    from aggregator.site.pages import feeds

    changes = inputs.changes
    shown = feeds(inputs.site, inputs.specs, inputs.latest)
    site = site_units(shown, changes)
    feed_units = [("feed", s.slug) for s in inputs.specs if changes.feed(s.slug)]
    first = next((i for i, (kind, _) in enumerate(site) if kind == "topic"), None)
    if first is None:
        first = next(
            (i for i, (kind, _) in enumerate(site) if kind in ("opml", "index")), len(site)
        )
    return [*site[:first], *feed_units, *site[first:]]


class _Renderer:
    """Renders units of one publish (the feeds shown, looked up once)."""

    def __init__(self, inputs: Inputs) -> None:
        from aggregator.site.pages import feeds

        self.inputs = inputs
        self.shown = feeds(inputs.site, inputs.specs, inputs.latest)
        self.by_slug = {feed.slug: feed for feed in self.shown}
        self._entries: dict[str, Entry] | None = None

    def files(self, unit: Unit) -> Iterator[tuple[str, bytes]]:
        kind, key = unit
        site = self.inputs.site
        if kind == "feed":
            from aggregator.render import render_feed_files

            spec = next(s for s in self.inputs.specs if s.slug == key)
            entries = self.inputs.latest.get(key, ())
            if self.inputs.fallback is None:
                raise ValueError("a feed is rendered with the time it shows when empty")
            changes = self.inputs.changes
            keep = {e.id for e in entries if not changes.entry(e.id)}
            files = render_feed_files(spec, entries, self.inputs.fallback, self.inputs.before, keep)
            yield from files.items()
        elif kind == "topic":
            from aggregator.site.pages import render_topic

            yield outputs.topic_page(key), render_topic(site, self.by_slug[key])
        elif kind == "entry":
            from aggregator.site.pages import render_entry

            yield outputs.entry_file(key), render_entry(site, self.entry(key), self.by_slug)
        elif kind == "opml":
            from aggregator.site import render_opml

            yield outputs.OPML, render_opml(site, self.inputs.specs)
        elif kind == "index":
            from aggregator.site import LATEST_ON_INDEX
            from aggregator.site.pages import render_index

            yield outputs.INDEX, render_index(site, self.shown, LATEST_ON_INDEX)
        elif kind == "static":
            from aggregator.site import static_file

            yield key, static_file(key)
        else:
            raise ValueError(f"not a unit of a publish: {unit!r}")

    def entry(self, entry_id: str) -> Entry:
        if self._entries is None:
            from aggregator.site.pages import unique_entries

            self._entries = {e.id: e for e in unique_entries(self.shown)}
            for page in self.inputs.pages:
                self._entries.setdefault(page.id, page)
        return self._entries[entry_id]


def render_units(inputs: Inputs, chosen: Sequence[Unit]) -> list[tuple[str, bytes]]:
    """The files of ``chosen`` units, in order."""
    renderer = _Renderer(inputs)
    return [file for unit in chosen for file in renderer.files(unit)]


def render_part(pickled: bytes, chosen: Sequence[Unit]) -> list[tuple[str, bytes]]:
    """:func:`render_units` from pickled inputs (:func:`_for_part`): what another
    process is asked to do."""
    inputs: Inputs = pickle.loads(pickled)
    return render_units(inputs, chosen)


def _for_part(inputs: Inputs, part: Sequence[Unit]) -> bytes:
    """The inputs a part needs, pickled: the entries of the feeds its feeds, topic
    pages and index show, and those whose pages it renders. (An entry's page names the
    feeds it is in, not their entries; pickling every feed's entries for every part
    cost more than rendering some parts.)"""
    kinds = {kind for kind, _ in part}
    if "index" in kinds:
        needed = set(inputs.latest)
    else:
        needed = {key for kind, key in part if kind in ("feed", "topic")}
    pages: tuple[Entry, ...] = ()
    if "entry" in kinds:
        wanted = {key for kind, key in part if kind == "entry"}
        found: dict[str, Entry] = {}
        for slug, entries in inputs.latest.items():
            for entry in entries if slug not in needed else ():
                if entry.id in wanted:
                    found.setdefault(entry.id, entry)
        pages = tuple(found.values())
    latest = {slug: inputs.latest[slug] if slug in needed else () for slug in inputs.latest}
    documents = {name for kind, key in part if kind == "feed" for name in outputs.feed_files(key)}
    before = {name: data for name, data in inputs.before.items() if name in documents}
    trimmed = replace(inputs, latest=latest, pages=pages, before=before)
    return pickle.dumps(trimmed, pickle.HIGHEST_PROTOCOL)


def _weight(inputs: Inputs, unit: Unit) -> float:
    """About how long a unit takes to render, in entry pages (as measured: a feed's three
    documents take 1.5 entry pages per entry, a topic page half of one)."""
    kind, key = unit
    if kind == "feed":
        return 1.5 * len(inputs.latest.get(key, ()))
    if kind == "topic":
        return 0.5 * len(inputs.latest.get(key, ()))
    if kind == "index":
        return 5.0
    return 1.0 if kind == "entry" else 0.1


def split(inputs: Inputs, chosen: Sequence[Unit], parts: int) -> list[list[Unit]]:
    """``chosen`` cut into at most ``parts`` runs of about equal work, in order (fewer
    when there is too little work for that many: see MIN_PART)."""
    weights = [_weight(inputs, unit) for unit in chosen]
    total = sum(weights)
    parts = max(1, min(parts, int(total // MIN_PART)))
    result: list[list[Unit]] = [[]]
    done = 0.0
    for unit, weight in zip(chosen, weights, strict=True):
        if len(result) < parts and done >= total * len(result) / parts and result[-1]:
            result.append([])
        result[-1].append(unit)
        done += weight
    return result


def render(inputs: Inputs, runner: Runner | None = None) -> Iterator[tuple[str, bytes]]:
    """Every file of a publish, in order, each part as soon as it and those before it
    are rendered (:class:`Started`, begun when the first file is asked for)."""
    started = Started(inputs, runner)
    try:
        yield from started
    finally:
        started.close()


class Started:
    """A publish's files, their rendering begun: with a ``runner``, every part is sent
    there at once, to render side by side while this process does something else (a
    run commits its store meanwhile: pipeline.publish); iterating gives every file in
    order, each part as soon as it and those before it are back. A part that fails
    there (a worker gone, out of time) is rendered here. A publish of less than
    :data:`WORKERS_FROM` is rendered here, as it is iterated, unless the runner is
    :class:`Prepared`. :meth:`close` when done: parts not begun are not rendered for
    nothing."""

    def __init__(self, inputs: Inputs, runner: Runner | None = None) -> None:
        self.inputs = inputs
        chosen = units(inputs)
        self._cut: list[list[Unit]] = [chosen]
        self._asked: list[Future[list[tuple[str, bytes]]] | None] = [None]
        self._pool: ThreadPoolExecutor | None = None
        if not chosen or runner is None:
            return
        ready = isinstance(runner, Prepared) and not runner.failed
        if not ready and sum(_weight(inputs, u) for u in chosen) < WORKERS_FROM:
            return
        # A few parts each: the first are back sooner.
        self._cut = split(inputs, chosen, 3 * runner.size)
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(len(self._cut), thread_name_prefix="aggregator-render")
        try:
            self._asked = [
                self._pool.submit(runner.call, render_part, _for_part(inputs, part), part)
                for part in self._cut
            ]
        except BaseException:  # (Ctrl-C while the parts are sent: none is left running)
            self._pool.shutdown(wait=False, cancel_futures=True)
            raise

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        for part, answer in zip(self._cut, self._asked, strict=True):
            files = None
            if answer is not None:
                try:
                    files = answer.result()
                except Exception:  # the part is rendered here instead: the same bytes
                    files = None
            yield from render_units(self.inputs, part) if files is None else files

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def prepare() -> str:
    """Load what rendering here needs: the renderers, their fingerprint, the templates.
    Returns the fingerprint (aggregator.site.renderer_fingerprint)."""
    from aggregator.site import renderer_fingerprint
    from aggregator.site.pages import environment

    fingerprint = renderer_fingerprint()
    for name in ("entry.html", "topic.html", "index.html"):
        environment().get_template(name)
    return fingerprint


class Prepared:
    """A runner whose every worker starts loading the renderers (:func:`prepare`) as this
    is made: a run makes it once its sources are read, and its workers then load Jinja2,
    the templates and the renderers' fingerprint on the other core while this process
    writes the store. Every part of the publish is then rendered there (two workers
    render side by side), and this process, which loads none of it, takes the
    fingerprint from them (:meth:`fingerprint`). Measured on the benchmark's cold run of
    10,000 stories: 3.10 s against 3.21 s (its rendering 0.28 s against 0.38 s); its
    steady run (200 new stories) no quicker, the store's writes slower by about what the
    rendering gained, as the two workers loading take both cores (docs/benchmarks.md,
    issue 14, nineteenth pass).
    """

    def __init__(self, runner: Runner) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.runner = runner
        self.size = runner.size
        # One call per worker, side by side: each holds its worker until loaded, so the
        # next goes to another.
        pool = ThreadPoolExecutor(self.size, thread_name_prefix="aggregator-prepare")
        self._loading = [pool.submit(runner.call, prepare) for _ in range(self.size)]
        pool.shutdown(wait=False)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        return self.runner.call(function, *args)

    def wait(self) -> None:
        """Return once every worker has loaded the renderers, or failed to."""
        from concurrent.futures import wait

        wait(self._loading)

    @property
    def loaded(self) -> bool:
        """Whether every worker has loaded the renderers (and none failed to)."""
        return all(loading.done() and loading.exception() is None for loading in self._loading)

    @property
    def failed(self) -> bool:
        """Whether every worker failed to load the renderers (gone, out of time): a
        publish is then left to the rule for any runner (:data:`WORKERS_FROM`)."""
        return all(loading.done() and loading.exception() is not None for loading in self._loading)

    def fingerprint(self) -> str:
        """The renderers' fingerprint, as the first worker to load them computed it (the
        same code, forked from this process or started from the same files), or
        computed here when none could."""
        from concurrent.futures import as_completed

        for loading in as_completed(self._loading):
            if loading.exception() is None:
                return loading.result()
        from aggregator.site import renderer_fingerprint

        return renderer_fingerprint()
