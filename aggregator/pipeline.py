"""One regeneration: read every source, fold it into the store, write the feeds.

Reading (:mod:`aggregator.ingest`) and writing files are the edges; what is
stored is decided by :mod:`aggregator.dedupe`, what goes in which topic by
:mod:`aggregator.topics`, and how feeds look by :mod:`aggregator.render`, all
pure. Everything a run read is applied to the store in one transaction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING

from aggregator.config import Config, SourceConfig
from aggregator.errors import (
    AggregatorError,
    FilesNotWritten,
    SourceError,
    WriteError,
    os_advice,
)
from aggregator.ingest import Ingest, Outcome
from aggregator.live.sandbox import Sandbox
from aggregator.live.state import FetchStates
from aggregator.lock import write_lock
from aggregator.model import Entry, Published, SourceEntry
from aggregator.output import Staged, Stager, remove_stale_temporaries
from aggregator.records import record
from aggregator.site import outputs
from aggregator.store import IngestReport, StoreType, open_store, retention_cutoff
from aggregator.store.leases import claim_sources, give_back, release_sources
from aggregator.store.renames import follow_renames, names_changed

if TYPE_CHECKING:  # the renderers, the plan and the topics load when they are used
    from aggregator.render import FeedSpec
    from aggregator.site.parts import Inputs, Runner
    from aggregator.site.plan import Changes, Manifest
    from aggregator.store.ahead import WritingAhead
    from aggregator.store.plan import WrittenAhead
    from aggregator.topics import Topic

log = logging.getLogger("aggregator")

# When a feed has no entries at all, its "updated" must still not come from the clock.
EMPTY_FEED_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)


@record
class RunResult:
    outcomes: tuple[Outcome, ...]
    report: IngestReport
    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]
    rendered: tuple[str, ...] = ()  # the files rendered (names in the feeds directory)

    @property
    def failures(self) -> tuple[SourceError, ...]:
        return tuple(o.error for o in self.outcomes if o.error is not None)


def judge(
    entries: Iterable[Entry],
    topics: Sequence[Topic],
    judged_before: Mapping[str, tuple[Entry, Entry]] | None = None,
) -> list[Entry]:
    """Entries labelled with the topics they belong to (by rule or by source hint).

    ``judged_before``: by id, an entry judged already and its labelled self; used for
    that very entry (the same object: a story merged since is judged again).
    """
    from aggregator.topics import entry_fields

    judged = []
    for entry in entries:
        if judged_before is not None:
            before = judged_before.get(entry.id)
            if before is not None and before[0] is entry:
                judged.append(before[1])
                continue
        fields = entry_fields(entry)  # folded once for every topic
        sources = tuple(p.source for p in entry.sources)
        chosen = tuple(t.slug for t in topics if t.takes(fields, sources))
        judged.append(entry.labelled(chosen))
    return judged


def topics_fingerprint(config: Config) -> str:
    """Changes whenever the topic rules or the source hints change, so that stored
    verdicts are redone."""
    sources = (*config.sources, *config.disabled_sources)
    hints = [[s.name, list(s.topics)] for s in sources if s.topics]
    rules = [dataclasses.asdict(t) for t in config.topics]
    text = json.dumps(rules if not hints else [rules, hints], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def feed_specs(config: Config) -> list[tuple[FeedSpec, str | None]]:
    """Every feed to write: ``all``, then one per topic (with its slug to select by)."""
    from aggregator.render import FeedSpec

    settings = config.feeds
    common = {
        "base_url": settings.base_url,
        "site_url": settings.site_url,
        "author": settings.author,
        "id_authority": settings.id_authority,
    }
    specs: list[tuple[FeedSpec, str | None]] = [
        (FeedSpec("all", settings.title, settings.description, **common), None)
    ]
    for topic in config.topics:
        title = f"{settings.title}: {topic.title}"
        specs.append((FeedSpec(topic.slug, title, topic.description, **common), topic.slug))
    return specs


@record
class Rendered:
    """One publish's rendering: the files rendered, the manifest of every file the
    site now shows, and the names of those (rendered or kept as they are)."""

    files: dict[str, bytes]
    manifest: Manifest
    names: tuple[str, ...]


def render_files(
    config: Config,
    store: StoreType,
    previous: Manifest | None = None,
    emit: Callable[[str, bytes], None] | None = None,
    runner: Runner | None = None,
    also: Collection[str] = (),
) -> Rendered:
    """Render what changed since the files ``previous`` describes (None: every file).

    Every feed's entries are read (a query each), but only the feeds, topic pages and
    entry pages whose inputs differ from ``previous`` are rendered (the index too when
    any feed changed): aggregator.site.plan says why the files then equal a full render.
    ``emit`` is given each file as soon as it is rendered (publish stages it then).
    With a ``runner`` (a run's parser workers) and a large publish, the files are
    rendered there, in parts side by side (aggregator.site.parts), and come back in the
    same order and bytes. ``also``: ids of stories changed since (a run's), whose pages
    are rendered again if they are on disk though no feed shows them (a feed's own are
    rendered when their digests differ).
    """
    rendering = Rendering(config, store, previous, runner, also)
    try:
        return rendering.finish(emit)
    finally:
        rendering.close()


class Rendering:
    """:func:`render_files` begun: what to render is read from the store as this is
    made, and with a runner the parts are sent there at once (parts.Started), so that
    they render while this process commits the store (publish); :meth:`finish` gives
    the files. (A page no feed shows is read from the store as it is rendered, here:
    the store must be as it was, which the write lock a publish holds sees to.)"""

    def __init__(
        self,
        config: Config,
        store: StoreType,
        previous: Manifest | None = None,
        runner: Runner | None = None,
        also: Collection[str] = (),
    ) -> None:
        from aggregator.render import entry_time

        limit = config.feeds.max_entries
        newest = store.newest(1)
        fallback = entry_time(newest[0]) if newest else EMPTY_FEED_UPDATED
        specs = feed_specs(config)
        latest = {spec.slug: store.newest(limit, topic) for spec, topic in specs}
        from aggregator.site import parts, renderer_fingerprint, site_from_config
        from aggregator.site.plan import changes, manifest_of

        # Loaded in the workers meanwhile (parts.Prepared), the fingerprint is theirs:
        # this process then loads no renderer at all.
        fingerprint = (
            runner.fingerprint() if isinstance(runner, parts.Prepared) else renderer_fingerprint()
        )
        manifest = manifest_of(latest, fallback, fingerprint)
        todo = changes(previous, manifest)
        self.previous = previous
        self.manifest = manifest
        self.names = [*expected_files(config), *map(outputs.entry_file, manifest.entries)]
        before = _documents_before(config.feeds.directory, previous, todo)
        inputs = parts.Inputs(
            site_from_config(config),
            tuple(spec for spec, _ in specs),
            latest,
            fallback,
            todo,
            before=before,
        )
        self._started = parts.Started(inputs, runner)
        self._files: Iterable[tuple[str, bytes]] = self._started
        if previous is None:  # everything again (new settings, templates): these pages too
            self._files = itertools.chain(
                _pages_no_feed_shows(config, store, inputs, manifest), self._files
            )
        elif changed := sorted(set(also) - manifest.entries.keys()):
            self._files = itertools.chain(_pages_of(config, store, inputs, changed), self._files)

    def finish(self, emit: Callable[[str, bytes], None] | None = None) -> Rendered:
        """Every file rendered, each given to ``emit`` as soon as it is."""
        files: dict[str, bytes] = {}
        for name, data in self._files:
            files[name] = data
            if emit is not None:
                emit(name, data)
        return Rendered(
            files, _with_documents(self.manifest, self.previous, files), tuple(self.names)
        )

    def close(self) -> None:
        """Stop what was sent elsewhere and not yet begun (when not finished)."""
        self._started.close()


def _documents_before(
    directory: Path, previous: Manifest | None, todo: Changes
) -> dict[str, bytes]:
    """The documents of the feeds to render again as they are on disk, each only when
    its bytes are those recorded when it was written (aggregator.splice)."""
    from aggregator.site.plan import document_digest

    if previous is None or todo.everything:
        return {}
    found = {}
    for slug in todo.feeds:
        for name in outputs.feed_files(slug):
            recorded = previous.documents.get(name)
            if recorded is None:
                continue
            try:
                data = (directory / name).read_bytes()
            except OSError:
                continue  # rendered whole, as ever
            if document_digest(data) == recorded:
                found[name] = data
    return found


def _with_documents(
    manifest: Manifest, previous: Manifest | None, files: Mapping[str, bytes]
) -> Manifest:
    """``manifest`` with the digest of every feed document as it is now on disk: those
    rendered now, and those of the feeds not rendered again, as recorded before."""
    from aggregator.site.plan import document_digest

    documents = {}
    for slug in manifest.feeds:
        for name in outputs.feed_files(slug):
            if name in files:
                documents[name] = document_digest(files[name])
            elif previous is not None and name in previous.documents:
                documents[name] = previous.documents[name]
    return dataclasses.replace(manifest, documents=documents)


def _pages_of(
    config: Config, store: StoreType, inputs: Inputs, ids: Sequence[str]
) -> Iterator[tuple[str, bytes]]:
    """The pages of these stories that are on disk (no feed shows them), rendered again
    from the store; a story no longer stored keeps its last page."""
    from aggregator.site.pages import feeds, render_entry

    topics = {feed.slug: feed for feed in feeds(inputs.site, inputs.specs, {})}
    for entry_id in ids:
        name = outputs.entry_file(entry_id)
        if not (config.feeds.directory / name).is_file():
            continue
        entry = store.entry(entry_id)
        if entry is not None:
            yield name, render_entry(inputs.site, entry, topics)


def _pages_no_feed_shows(
    config: Config, store: StoreType, inputs: Inputs, shown: Manifest
) -> Iterator[tuple[str, bytes]]:
    """The story pages on disk whose stories no feed shows now (they left every feed's
    newest ``max_entries``), rendered again from the store: a web server serves them
    still (old items in readers link to them), and with new topics or templates they
    would say what is no longer so."""
    try:
        on_disk = sorted(
            f"entries/{p.name}" for p in (config.feeds.directory / "entries").iterdir()
        )
    except OSError:  # no pages yet
        return
    current = {outputs.entry_file(entry_id) for entry_id in shown.entries}
    from aggregator.site.pages import feeds, render_entry

    topics = {feed.slug: feed for feed in feeds(inputs.site, inputs.specs, {})}
    ids = f"tag:{config.feeds.id_authority}:entry:"  # + a page's name (outputs.entry_file)
    for name in on_disk:
        if name in current or not outputs.ENTRY_PAGE.match(name):
            continue
        entry = store.entry(ids + name.removeprefix("entries/").removesuffix(".html"))
        if entry is not None:  # (a story retention forgot keeps its last page)
            yield name, render_entry(inputs.site, entry, topics)


def build_files(config: Config, store: StoreType) -> dict[str, bytes]:
    """File name → bytes for every output (aggregator.site.outputs lists them)."""
    return render_files(config, store).files


class Folding:
    """One run's items folded into the stored stories as each source's are read, in the
    sources' order (:meth:`add`, given each outcome), and the new stories judged: work a
    run does while it waits for its parser workers, not after. What :func:`apply` then
    writes is the plan of folding every item at once (aggregator.store.plan.Planner),
    so only while the store cannot change meanwhile: a run holding the write lock."""

    def __init__(
        self,
        config: Config,
        store: StoreType,
        now: datetime,
        ahead: WritingAhead | None = None,
    ) -> None:
        from aggregator.store.plan import Planner

        self.config = config
        self.store = store
        self.now = now
        # The new stories written while the sources are read (aggregator.store.ahead),
        # and what of them was, once :meth:`finish` says.
        self.ahead = ahead
        self.written: WrittenAhead | None = None
        settings = config.feeds
        self.planner = Planner(authority=settings.id_authority, zone=settings.timezone, now=now)
        self.items = 0
        self.judged: dict[str, tuple[Entry, Entry]] = {}  # see judge(judged_before=)
        self._topics: Sequence[Topic] | None = None

    def add(self, outcome: Outcome) -> None:
        if not outcome.entries:
            return
        from aggregator.store.plan import told_by
        from aggregator.text import title_key

        if outcome.listed:
            self.planner.listing(outcome.source.name, outcome.listed)
        items = [plausible(item, self.now) for item in outcome.entries]
        keys = [title_key(item.title) for item in items]
        unseen = self.planner.unseen(keys)
        untold = self.planner.untold(told_by(items))
        reads = self.store if self.ahead is None else self.ahead.reads
        stored = reads.candidates(unseen) if unseen else {}
        told = reads.told(untold) if untold else {}
        loaded = [e.id for entries in stored.values() for e in entries]
        loaded += [e.id for _, e in told.values()]
        ids = reads.item_ids(loaded) if loaded else {}
        made = self.planner.add(items, stored, keys, told, ids)
        self.items += len(items)
        topics = self._topics
        if topics is None:
            from aggregator.topics import topics_from_config

            topics = self._topics = topics_from_config(self.config)
        stories = [self.planner.inserted[entry_id] for entry_id in dict.fromkeys(made)]
        for entry, labelled in zip(stories, judge(stories, topics), strict=True):
            self.judged[entry.id] = (entry, labelled)
        # Their rows too (a story another source folds into later is made again then).
        title_key_of = self.planner.title_key_of
        self.store.prepare(
            [(e, key) for e in stories if (key := title_key_of(e.id)) is not None], self.now
        )
        if self.ahead is not None:
            self.ahead.add(stories, self.judged, self.planner)

    def finish(self) -> None:
        """Done reading: what was written ahead is done too (call before the publish's
        transaction)."""
        if self.ahead is not None:
            self.written = self.ahead.finish()


def apply(
    config: Config,
    store: StoreType,
    states: FetchStates,
    outcomes: Sequence[Outcome],
    now: datetime,
    folded: Folding | None = None,
    changed_at: datetime | None = None,
) -> tuple[IngestReport, bool, set[str]]:
    """Fold one run's outcomes into the store (call inside its transaction); or, with
    ``folded``, write what was folded from them as they were read. ``changed_at``: when
    this change is written (under the write lock), for the files' Last-Modified
    (default ``now``, when the run began).

    Also says whether anything the feeds show may have changed, and which stored stories
    this run changed (their pages are due, in a feed or not).
    """
    items = (
        []
        if folded is not None
        else [plausible(item, now) for outcome in outcomes for item in outcome.entries]
    )
    written = folded.written if folded is not None else None
    states.save()
    # (Done as the writes ahead began, when they did.)
    rejudged = rejudge(config, store) or (written is not None and written.rejudged)
    report, touched, new = IngestReport(), list[Entry](), set[str]()
    if folded is not None:
        if folded.items:
            plan = folded.planner.plan()
            report, touched = store.write_plan(plan, now, written)
            new = {entry.id for entry in plan.inserted}
    elif items:  # with nothing read, the merge machinery is not even imported
        report, touched = store.add(
            items,
            authority=config.feeds.id_authority,
            zone=config.feeds.timezone,
            now=now,
            listed={o.source.name: o.listed for o in outcomes if o.listed},
        )
    for outcome in outcomes:
        # What a source still shows (a 304, a fresh answer not asked again, items read
        # unchanged) stays current; last_seen only matters to retention, so only then.
        if (outcome.not_modified or outcome.unchanged) and config.store.retention_days > 0:
            store.touch_source(outcome.source.name, now, outcome.kept)
    if touched:
        from aggregator.topics import topics_from_config

        judged = folded.judged if folded is not None else None
        labelled = judge(touched, topics_from_config(config), judged)
        unlabelled = new
        if written is not None:
            # Stories labelled ahead: again only if their topics changed since.
            again = {
                e.id for e in labelled if written.labels.get(e.id, e.topics) != tuple(e.topics)
            }
            labelled = [e for e in labelled if e.id not in written.labels or e.id in again]
            unlabelled = new - again
        store.set_topics(labelled, new=unlabelled)
    forgotten = 0
    cutoff = retention_cutoff(now, config.store.retention_days)
    if cutoff is not None and (forgotten := store.prune(cutoff)):
        log.info("forgot %d entries unseen since %s", forgotten, cutoff.date())
        store.set_meta("pruned", now.isoformat())  # item digests read before: void
    changed = bool(touched or rejudged or forgotten)
    if changed:
        # In the same transaction as the change itself: the files record the version
        # they show, so a crash between this commit and the last rename is caught up.
        store.set_meta("version", str(store_version(store) + 1))
        # The files' Last-Modified, when shared: when written, never before the last
        # change's (found by review: on PostgreSQL a run that began first and wrote last
        # set it back, and a reader's If-Modified-Since missed the change with a 304).
        when = changed_at or now
        before = store.meta("changed")
        with contextlib.suppress(ValueError, TypeError):  # (one not written by us: passed over)
            if before is not None:
                when = max(when, datetime.fromisoformat(before))
        store.set_meta("changed", when.isoformat())
    # (A new story has no page yet: only a stored one's may be on disk, out of the feeds.)
    return report, changed, {entry.id for entry in touched} - new


def rejudge(config: Config, store: StoreType) -> bool:
    """New rules or hints: every stored story is judged again, before a run's stories
    join them (on a new store, none: a run's own are judged once, as they are written).
    Says whether they were (call inside the store's transaction)."""
    fingerprint = topics_fingerprint(config)
    if store.meta("topics") == fingerprint:
        return False
    from aggregator.topics import topics_from_config

    topics = topics_from_config(config)
    for batch in store.all_entries():
        store.set_topics(judge(batch, topics))
    store.set_meta("topics", fingerprint)
    return True


# How far ahead of the run a date may be and still be believed: a day, for a date
# given as a calendar day in a zone ahead of UTC.
FUTURE_SLACK = timedelta(days=1)


def plausible(item: SourceEntry, now: datetime) -> SourceEntry:
    """``item`` without a date that lies in the future (a source's mistake, which would
    keep the story at the top of every feed until that day, and date the feeds
    themselves in the future): such a story is kept as undated, shown as first seen."""
    published = item.published
    updated = item.updated
    if published is not None and _future(published, now):
        log.warning(
            "%s: %r is dated %s, in the future; kept as undated",
            item.source,
            item.title[:80],
            published.instant or published.day,
        )
        published = None
    if updated is not None and _future(updated, now):
        updated = None
    if published is item.published and updated is item.updated:
        return item
    return dataclasses.replace(item, published=published, updated=updated)


def _future(when: Published, now: datetime) -> bool:
    if when.instant is not None:
        return when.instant > now + FUTURE_SLACK
    return when.day > (now + FUTURE_SLACK).date()


def store_version(store: StoreType) -> int:
    """A counter the store bumps with every change the feeds may show."""
    return int(store.meta("version") or 0)


def render_fingerprint(config: Config) -> str:
    """Changes with anything besides the entries that shapes the files."""
    from aggregator import __version__

    settings = dataclasses.asdict(config.feeds)
    settings["directory"] = str(settings["directory"])
    settings["timezone"] = str(settings["timezone"])
    text = json.dumps([__version__, settings, topics_fingerprint(config)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def feed_slugs(config: Config) -> list[str]:
    """The slugs of feed_specs, without building the specs (nor importing the renderers)."""
    return ["all", *(topic.slug for topic in config.topics)]


def expected_files(config: Config) -> list[str]:
    return outputs.fixed_files(feed_slugs(config))


def make_sandbox(config: Config, *, fork_ahead: bool = False) -> Sandbox:
    """The parser workers; ``fork_ahead`` for a run that ends when its reads do (see
    :class:`Sandbox`), not for ``serve``, whose workers live as long as it does."""
    return Sandbox(
        workers=min(2, os.cpu_count() or 1),
        timeout=config.fetch.parse_timeout,
        memory=config.fetch.parse_memory_mb << 20,
        fork_ahead=fork_ahead,
    )


def report_outcomes(outcomes: Sequence[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.error is not None:
            log.error("%s", outcome.error)
        else:
            extra = f" ({outcome.note})" if outcome.note else ""
            log.info("%s: %d entries%s", outcome.source.name, len(outcome.entries), extra)


def publish(
    config: Config,
    store: StoreType,
    states: FetchStates,
    outcomes: Sequence[Outcome],
    now: datetime,
    runner: Runner | None = None,
    folded: Folding | None = None,
    changed_at: datetime | None = None,
) -> RunResult:
    """Apply outcomes to the store and rewrite the files that changed (hold the lock).
    (``folded``: what was folded from them as they were read; see :class:`Folding`;
    ``changed_at``: when this is written, see :func:`apply`.)

    With nothing new, and the files as the last run left them, nothing is rendered;
    with something new, only the files whose inputs changed (:func:`render_files`).
    The store is committed first, the files staged next and renamed into place last:
    a crash between the commit and the last rename leaves the files a version behind,
    which the next run sees (is_current) and catches up, rendering every file, as the
    commit marks the publish under way until its manifest is noted. The files are
    rendered under the write lock, from the store as committed; with workers, they
    render while this process commits. What is cut is how much is rendered.
    """
    directory = config.feeds.directory
    remove_stale_temporaries(directory)
    rendered: Rendered | None = None
    rendering: Rendering | None = None
    staged: Staged | None = None
    shown_before: set[str] = set()
    unwritten: WriteError | None = None
    try:
        if folded is not None:
            folded.finish()  # (the transaction then carries on the one begun ahead)
        with store.transaction():
            _follow_renames(config, store)
            report, changed, touched = apply(
                config, store, states, outcomes, now, folded, changed_at
            )
            wanted = rendered_version(config, store)
            if not is_current(config, store, wanted):
                installed = installed_manifest(config, store)  # read once, used twice
                # The feeds whose files may be on disk: those the last install showed,
                # and those of a run that ended before it removed the dropped ones.
                shown_before = _feeds_on_disk(config, store)
                if installed is not None:
                    shown_before |= set(installed.feeds)
                # With the pages of stories this run changed that no feed shows (a new
                # source, or its own edit, for an old story). With workers, they render
                # from here on, while the store commits.
                rendering = Rendering(
                    config, store, _trusted(config, store, installed), runner, also=touched
                )
                # Until these files are installed and their manifest noted (below), the
                # next run renders every file: stopped before that, what this publish
                # changed is in no manifest (the page of a story no feed shows). The
                # last install's manifest stays as it was meanwhile, for `serve`, which
                # serves the files it names (installed_pages). The feeds whose files may
                # be on disk from now on are recorded now: the files may be installed
                # whether or not the manifest can be noted (found by review: a topic
                # added then, and dropped later, kept its files).
                store.set_meta(_publishing_key(config, store), "publishing")
                _record_feeds_on_disk(config, store, shown_before | set(rendering.manifest.feeds))
        if rendering is not None:
            try:
                # Each file is staged as it is rendered; its fsync runs while the next
                # ones are rendered (output.Stager).
                with Stager(directory) as stager:
                    rendered = rendering.finish(emit=stager.add)
                    # This install's token, written into the directory with the files and
                    # into the store after them: the store and the files each know the
                    # other is the one they were written with (a store or a directory
                    # restored from a backup, or written by another setup, is then
                    # rendered again in full).
                    token = f"{wanted} {os.urandom(8).hex()}"
                    stager.add(TOKEN, token.encode())
                    staged = stager.finish()
            except WriteError as error:
                # The feeds' disk is full or refuses (the Stager removed what it made):
                # what the sources gave is kept all the same (found by review: rolled
                # back, the stories a feed listed only meanwhile were lost for good). The
                # store is then ahead of the files, which still show the last install, as
                # after a crash before the renames: the next run renders them again, every
                # one of them, as the publish is still marked under way.
                unwritten, rendered, staged = error, None, None
            else:
                done = rendered

                def note_manifest() -> None:
                    # What the files will show once installed; trusted only when the
                    # rendered key (set after the install) and the directory's token
                    # name it.
                    store.set_meta(manifest_key(config, store), f"{token}\n{done.manifest.dumps()}")
                    store.set_meta(_publishing_key(config, store), "")

                # Not noted (a store that refuses writes by now): installed all the same,
                # and rendered in full by the next run. Said once, by the note after the
                # install, which the store refuses too.
                _noted(store, note_manifest, said=False)
    except BaseException:
        # What was staged is not installed: the files stay a version behind the store,
        # which the next run renders again (or, when the store rolled back, as it is).
        if staged is not None:
            staged.discard()
        raise
    finally:
        if rendering is not None:
            rendering.close()
    stored = (
        f"what the sources gave is kept in the store ({report.new} new and "
        f"{report.updated} updated entries) and "
        if changed
        else ""
    )
    if unwritten is not None:
        raise FilesNotWritten(f"{unwritten}; {stored}the next run writes the feeds") from unwritten
    if staged is None or rendered is None:
        written, unchanged = [], [directory / name for name in expected_files(config)]
        # Nothing rendered: a dropped topic's files that a run stopped before removing
        # (killed after its install was recorded), or could not remove, go now.
        on_disk = _feeds_on_disk(config, store)
        if stale := on_disk - set(feed_slugs(config)):
            left = _remove_dropped_topics(directory, stale)
            with store.transaction():
                _record_feeds_on_disk(config, store, (on_disk - stale) | left)
    else:
        try:
            written = [path for path in staged.install() if path.name != TOKEN]
        except WriteError as error:
            # A file that could not be put in place (a folder of its name in the way):
            # the store is committed, as when the files could not be written (found by
            # review: in ``serve``, counted as the source's failure, with its back-off).
            raise FilesNotWritten(f"{error}; {stored}the next run writes the feeds") from error
        # The files not rendered are as they were, like those rendered to the same bytes.
        kept = (directory / name for name in rendered.names if name not in rendered.files)
        unchanged = [*staged.unchanged, *kept]
        if _noted(store, lambda: store.set_meta(rendered_key(config, store), token)):
            dropped = shown_before - set(rendered.manifest.feeds)
            if dropped:
                left = _remove_dropped_topics(directory, dropped)  # kept: tried next time
                _noted(
                    store,
                    lambda: _record_feeds_on_disk(
                        config, store, set(rendered.manifest.feeds) | left
                    ),
                )
    if store.shared:
        stamp_files(store, [*written, *unchanged])
    log.info(
        "%d new and %d updated entries; %d files written, %d unchanged (%d rendered)",
        report.new,
        report.updated,
        len(written),
        len(unchanged),
        len(rendered.files) if rendered is not None else 0,
    )
    return RunResult(
        tuple(outcomes),
        report,
        tuple(written),
        tuple(unchanged),
        tuple(rendered.files) if rendered is not None else (),
    )


def _follow_renames(config: Config, store: StoreType) -> None:
    """Sources renamed in the config keep their stories (aggregator.store.renames);
    every page that names them is due: the next publish renders every file, as after
    a crash (call inside a transaction)."""
    every = (*config.sources, *config.disabled_sources)
    if names_changed(store, every) and follow_renames(store, every):
        store.set_meta("version", str(store_version(store) + 1))
        _distrust_manifest(config, store)


def _distrust_manifest(config: Config, store: StoreType) -> None:
    """The next publish renders every file (the pages no feed shows too), not only those
    whose inputs the last install's manifest says changed: what changed is not all in
    the manifest (a source renamed)."""
    store.set_meta(manifest_key(config, store), "")


def _noted(store: StoreType, note: Callable[[], None], *, said: bool = True) -> bool:
    """Note in the store, in a transaction of its own, what a publish did once its store
    was committed and its files installed; a note the store refuses (a disk full by
    now) is a warning, not the run's failure: the feeds and the store agree, and the next
    run, not finding the note, writes the files again (found by review: such a run said
    "nothing was changed" and exited 4 with its stories stored and its feeds in place).
    ``said=False``: no warning (a later note says it)."""
    try:
        with store.transaction():
            note()
    except AggregatorError as error:
        if not said:
            return False
        reason = error.__cause__ if error.__cause__ is not None else error
        log.warning(
            "%s: the feeds and the store were written, but the store could not note it "
            "(%s); the next run writes the feeds again",
            store.where,
            str(reason).strip().splitlines()[0] if str(reason).strip() else reason,
        )
        return False
    return True


def rendered_version(config: Config, store: StoreType) -> str:
    """What the files must have been rendered from: these settings, this store version."""
    return f"{render_fingerprint(config)} {store_version(store)}"


TOKEN = outputs.TOKEN  # the install's token (see publish)


def installed_token(config: Config, store: StoreType) -> str | None:
    """The token of the last install, when the store and the feeds directory agree on it
    (None when they do not, or nothing was installed)."""
    token = store.meta(rendered_key(config, store))
    if not token:
        return None
    try:
        on_disk = (config.feeds.directory / TOKEN).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return token if on_disk == token else None


def is_current(config: Config, store: StoreType, wanted: str) -> bool:
    """Whether the files are those the store and these settings make (``wanted``), each
    one there: the feeds, the pages, and every story page the last install wrote (found
    by review: a story page deleted by hand stayed missing, its story's link a 404, until
    a run had something new to write). Not when what the last install wrote is not
    known (a publish that could not write its files): the next run renders them."""
    token = installed_token(config, store)
    if token is None or token.rsplit(" ", 1)[0] != wanted:
        return False
    manifest = _manifest_of_token(store, config, token)
    if manifest is None:
        return False
    return not _missing(config.feeds.directory, expected_files(config)) and not _missing(
        config.feeds.directory, map(outputs.entry_file, manifest.entries)
    )


def installed_manifest(config: Config, store: StoreType) -> Manifest | None:
    """The manifest of the files installed last, whatever the settings were then: None
    when that is not known for sure (the files and the store disagree)."""
    token = installed_token(config, store)
    return None if token is None else _manifest_of_token(store, config, token)


def _manifest_of_token(store: StoreType, config: Config, token: str) -> Manifest | None:
    """The manifest recorded with the install whose token is ``token``, if it is that
    install's (see installed_manifest)."""
    text = store.meta(manifest_key(config, store))
    if not text:
        return None
    recorded, _, body = text.partition("\n")
    if recorded != token:
        return None
    from aggregator.site.plan import Manifest

    return Manifest.loads(body)


def installed_pages(config: Config, store: StoreType) -> frozenset[str] | None:
    """The story pages the last install wrote (names under the feeds directory): those
    of the stories its feeds show. None when not known."""
    manifest = installed_manifest(config, store)
    if manifest is None:
        return None
    return frozenset(map(outputs.entry_file, manifest.entries))


def _publishing_key(config: Config, store: StoreType) -> str:
    """The meta key set while this instance's publish is between its commit and the note
    of its manifest (see publish): a manifest is then not trusted (:func:`_trusted`)."""
    return "publishing" + rendered_key(config, store).removeprefix("rendered")


def _feeds_key(config: Config, store: StoreType) -> str:
    """The meta key of the feeds whose files may be in this instance's directory."""
    return "feeds on disk" + rendered_key(config, store).removeprefix("rendered")


def _feeds_on_disk(config: Config, store: StoreType) -> set[str]:
    """The slugs of the feeds whose files may be in the directory (see publish)."""
    text = store.meta(_feeds_key(config, store))
    return set(text.split()) if text else set()


def _record_feeds_on_disk(config: Config, store: StoreType, slugs: set[str]) -> None:
    store.set_meta(_feeds_key(config, store), " ".join(sorted(slugs)))


def _remove_dropped_topics(directory: Path, slugs: set[str]) -> set[str]:
    """Remove the feeds and page of topics no longer in the config: left, a web server
    would serve them to their subscribers for ever, frozen. Returns the slugs of those
    with a file that could not be removed (said in a warning)."""
    left = set()
    for slug in sorted(slugs):
        removed = []
        for name in (*outputs.feed_files(slug), outputs.topic_page(slug)):
            try:
                (directory / name).unlink()
            except FileNotFoundError:
                continue
            except OSError as error:  # the run itself is done: said, not raised
                log.warning("%s: cannot remove: %s", directory / name, os_advice(error))
                left.add(slug)
                continue
            removed.append(name)
        if removed:
            log.warning(
                "topic %r is no longer in the config: removed %s (its subscribers now get "
                "404; keep the topic to keep its feeds)",
                slug,
                ", ".join(removed),
            )
    return left


def recorded_manifest(config: Config, store: StoreType) -> Manifest | None:
    """What the files on disk were rendered from, when that is known for sure: the
    manifest recorded with them, if they were installed (the rendered key names its
    version), with these settings, and every file it names is there. Else None (a
    first run, new settings, a crash before the install, files removed): render all."""
    return _trusted(config, store, installed_manifest(config, store))


def _trusted(config: Config, store: StoreType, manifest: Manifest | None) -> Manifest | None:
    """``manifest`` (the installed one) as far as :func:`recorded_manifest` may trust it:
    the files it names that are not there (a story page deleted by hand) left out of it,
    so that they alone are rendered again; None when a feed, page or other file every
    run writes is not there."""
    token = installed_token(config, store)  # not None when there is a manifest
    if manifest is None or token is None or token.split(" ")[0] != render_fingerprint(config):
        return None
    if store.meta(_publishing_key(config, store)):  # a publish stopped before its note
        return None
    directory = config.feeds.directory
    if _missing(directory, expected_files(config)):
        return None
    pages = {outputs.entry_file(entry_id): entry_id for entry_id in manifest.entries}
    gone = {pages[name] for name in _missing(directory, pages, every=True)}
    if not gone:
        return manifest
    kept = {i: digest for i, digest in manifest.entries.items() if i not in gone}
    return dataclasses.replace(manifest, entries=kept)


def _missing(directory: Path, names: Iterable[str], *, every: bool = False) -> list[str]:
    """The files named (relative to ``directory``) that are not there as files (through
    a link too, as a web server serves them: not a folder of the file's name, nor a
    link to nothing): the first one, or ``every`` one. A stat each, not a listing of
    each folder: the entries folder keeps the pages of stories no feed shows any more,
    and a listing of 100,000 took 115 ms of every run (found by review)."""
    base = os.fspath(directory)
    missing = []
    for name in names:
        try:
            found = os.stat(f"{base}/{name}").st_mode  # noqa: PTH116 (a Path each: 3x)
        except (OSError, ValueError):
            found = 0
        if not S_ISREG(found):
            missing.append(name)
            if not every:
                break
    return missing


def refresh(
    config: Config,
    sandbox: Sandbox,
    now: datetime,
    sources: Sequence[SourceConfig] | None = None,
    *,
    lock_whole_run: bool = True,
    force: bool = False,
    render_in_workers: bool = False,
    clock: Callable[[], datetime] | None = None,
) -> RunResult:
    """Read ``sources`` (default: all), fold them into the store, rewrite the feeds.

    The write lock is held for the whole run (a cron run on one machine, so that two
    runs never read the same sources), or only while the store and the files are
    written: for the server, whose sources each have a job, and on a shared store
    (PostgreSQL), where leases already give each source to one worker, so that a run
    reading its sources does not hold up other workers' publishing.
    ``force`` asks every live source, even one whose last answer is still fresh;
    ``render_in_workers``: a large publish is rendered in the sandbox's workers, if
    they were started (to parse), rather than in this process (aggregator.site.parts).
    ``clock``: the time once the write lock is held, when the change is written (the
    files' Last-Modified on a shared store; default ``now``).
    """
    lock_whole_run = lock_whole_run and not config.store.url
    with ExitStack() as stack:
        if lock_whole_run:
            stack.enter_context(write_lock(config.store))
        store = stack.enter_context(open_store(config.store))
        check_store(config, store)
        if lock_whole_run and names_changed(store, (*config.sources, *config.disabled_sources)):
            # Before its items are folded: those of a renamed source are its stories'.
            with store.transaction():
                _follow_renames(config, store)
        # On a shared store, only the sources no other worker is reading (leases).
        claimed = claim_sources(
            store, config, config.sources if sources is None else sources, now, force=force
        )
        states = FetchStates(store)
        ingest = Ingest(
            config,
            states,
            sandbox,
            now,
            skip_fresh=True,
            force=force,
            drive=True,
        )
        # Holding the write lock for the whole run, nothing changes the store while the
        # sources are read: what they give is folded in meanwhile (Folding).
        folding = None
        if lock_whole_run:
            ahead = None
            from aggregator.store.sqlite import Store as SQLiteStore

            if isinstance(store, SQLiteStore):
                from aggregator.store.ahead import WritingAhead

                # A new store's first run: nothing to look up, and written out of WAL
                # mode, each page once (Store.write_alone), when no one else has it open.
                empty = store.is_empty()
                if empty:
                    store.write_alone()
                ahead = stack.enter_context(
                    WritingAhead(store, now, begin=lambda: rejudge(config, store), empty=empty)
                )
            folding = Folding(config, store, now, ahead)
        outcomes: list[Outcome] = []
        try:
            outcomes = ingest.run(claimed, on_outcome=None if folding is None else folding.add)
            # The renderers (Jinja2 and the templates, about 0.1 s) load when the publish
            # first renders: loaded ahead, in a thread while the sources were read, they
            # held the interpreter's lock from the event loop (docs/benchmarks.md, issue
            # 14, eighth pass). With workers, and something new, the workers load them
            # now, while this process writes the store, and render the publish
            # (parts.Prepared). On a shared store, where the lock is taken for the publish
            # alone, they load before it, so that other workers' publishes do not wait:
            # here too (a page no feed shows, or a part a worker failed, is rendered
            # here), while the workers load them.
            runner: Runner | None = None
            new = any(outcome.entries for outcome in outcomes)
            prepared = None
            if render_in_workers and sandbox.started:
                runner = sandbox
                if new:
                    from aggregator.site.parts import Prepared

                    runner = prepared = Prepared(sandbox)
            report_outcomes(outcomes)
            if not lock_whole_run:
                if new:
                    from aggregator.site.parts import prepare

                    prepare()
                if prepared is not None:
                    prepared.wait()
                stack.enter_context(write_lock(config.store))
            if folding is not None:
                folding.finish()  # (the thread writing ahead is done: the store is this one's)
            changed_at = None if clock is None else written_at(store, clock, now)
            result = publish(config, store, states, outcomes, now, runner, folding, changed_at)
        except BaseException:
            # Nothing of this run was kept: on a shared store its sources go back at
            # once, not when their leases end.
            give_back(store, claimed, now, outcomes)
            raise
        # Due one interval (less its slack: leases.next_due) after this run began, as
        # cron runs begin: counted from when the reads ended, a cron run every interval
        # found its sources not yet due, and read them every other time.
        release_sources(store, config, outcomes, now)
        return result


def catch_up(config: Config, now: datetime) -> RunResult | None:
    """Render the files again if another worker changed the shared store since they
    were rendered (None when they are current: no lock taken, nothing written)."""
    with open_store(config.store) as store:
        if is_current(config, store, rendered_version(config, store)):
            return None
        with write_lock(config.store):
            return publish(config, store, FetchStates(store), (), now)


def rendered_key(config: Config, store: StoreType) -> str:
    """The meta key recording what this instance's files show: each instance behind a
    load balancer has its own feeds directory, all sharing one store."""
    if not store.shared:
        return "rendered"
    import socket  # only on a shared store

    return f"rendered {socket.gethostname()} {config.feeds.directory.resolve()}"


def manifest_key(config: Config, store: StoreType) -> str:
    """The meta key of this instance's manifest (aggregator.site.plan), beside its
    rendered key."""
    return "manifest" + rendered_key(config, store).removeprefix("rendered")


def stamp_files(store: StoreType, paths: Sequence[Path]) -> None:
    """Give the files the time of the store's last change, so that every instance
    serving them sends the same Last-Modified (their ETags follow their bytes)."""
    changed = store.meta("changed")
    if changed is None:
        return
    when = datetime.fromisoformat(changed).timestamp()
    for path in paths:
        os.utime(path, (when, when))


def check_setup(config: Config) -> None:
    """What ``run`` and ``serve`` refuse before they change anything, where going on would
    lose what readers see (found by review):

    * a config that names no source at all (an emptied config.toml): a run took every
      topic's feeds and pages away, as topics dropped from the config;
    * an SQLite store file that is empty, or missing, while the feeds were made from a
      store (a copy cut short; a store deleted, moved aside, or on a volume not mounted;
      a mistyped ``[store] path``): the run made a new store, and the feeds lost every
      story no source still shows.
    """
    from aggregator.errors import ConfigError, StoreError, file_in_the_way

    if not config.sources and not config.disabled_sources:
        raise ConfigError(
            str(config.path),
            "names no source ([[sources]]); add one (aggregator sources add URL); "
            "nothing was changed",
        )
    store = config.store.path
    if config.store.url:
        return
    made_from_a_store = (config.feeds.directory / TOKEN).exists()
    if not store.exists() and not store.is_symlink():
        if (blocker := file_in_the_way(store)) is not None:
            # Not a missing store: a file where its folder should be (found by review:
            # told to restore a backup, or to start again).
            raise StoreError(
                f"{blocker}: a file is in the way where the store's folder should be; move "
                "it, or set [store] path to another place (nothing was changed)"
            )
        if made_from_a_store:
            raise StoreError(
                f"{store}: no such store, but the feeds in {config.feeds.directory} were "
                f"made from one: restore it from a backup, or set [store] path to where it "
                f"is; to start again from what the sources show now, remove {TOKEN} in "
                "the feeds directory (nothing was changed)"
            )
        return
    if not store.is_file() or store.stat().st_size:
        return
    if made_from_a_store:
        raise StoreError(
            f"{store}: is empty, but the feeds in {config.feeds.directory} were made from a "
            f"store: restore it from a backup, or remove it and {TOKEN} in the feeds "
            "directory to start again from what the sources show now (nothing was changed)"
        )


def written_at(store: StoreType, clock: Callable[[], datetime], now: datetime) -> datetime:
    """When a change is written, never before ``now`` (its run began): by the database's
    clock on a shared store (found by review: one machine's clock running fast held
    every later change's time back to its own), else by ``clock``."""
    return max(now, store.server_time() or clock())


def check_store(config: Config, store: StoreType) -> None:
    """Refuse a store that holds nothing when the feeds were made from one that held
    stories (the feeds directory's token names the store version it showed): an empty
    database, or the wrong one (found by review: on PostgreSQL, which check_setup cannot
    look at before it connects, a mistyped database name made a new store, and the
    feeds lost every story no source still showed)."""
    from aggregator.errors import StoreError

    try:
        token = (config.feeds.directory / TOKEN).read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return
    shown = token[1] if len(token) == 3 else ""
    if not shown.isdigit() or int(shown) == 0 or store_version(store) or store.counts()["all"]:
        return
    if not _feeds_show_stories(config.feeds.directory):
        return  # (runs whose every source failed: nothing to lose, found by review)
    raise StoreError(
        f"{store.where}: holds no story, but the feeds in {config.feeds.directory} were made "
        f"from a store that did: check that [store] {'url' if store.shared else 'path'} "
        "names it; to start again from what the sources show now, remove "
        f"{TOKEN} in the feeds directory (no story was written)"
    )


def _feeds_show_stories(directory: Path) -> bool:
    """Whether the feeds written in ``directory`` show any story (its all.json's items);
    False when that cannot be read."""
    try:
        document = json.loads((directory / "all.json").read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and bool(document.get("items"))


def run(
    config: Config,
    now: datetime,
    *,
    force: bool = False,
    clock: Callable[[], datetime] | None = None,
) -> RunResult:
    """Regenerate every feed from every source: one cron run (``force``: ask every
    live source, however fresh its last answer; ``clock``: see :func:`refresh`)."""
    check_setup(config)
    with make_sandbox(config, fork_ahead=True) as sandbox:
        return refresh(config, sandbox, now, force=force, render_in_workers=True, clock=clock)
