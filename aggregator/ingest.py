"""Reading every source of a run: local files and live feeds, side by side.

Live feeds are fetched concurrently (a bounded number at once) and parsed in
the sandbox; a source that fails is reported and never stops the others, and
the store keeps every entry it gave before, so a story is not lost because
its source had a bad day.

Work follows what is new. A source whose last answer is still fresh (Cache-Control
max-age, Expires, RSS ``<ttl>``) or that asked us to wait (Retry-After) is not asked
at all, unless the run is forced; one that answers 304 is not parsed; and of a feed
that changed, the items that are the same as in its last read (by digest, see
:func:`aggregator.live.feedparse.item_digest`) are not cleaned, merged or written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aggregator.errors import SourceError
from aggregator.records import record
from aggregator.uri import without_credentials

# A run whose sources are all fresh asks nobody and reads nothing: the event loop, the
# HTTP client, the parsers and the page layouts are imported when a source is read.
if TYPE_CHECKING:
    from aggregator.config import Config, SourceConfig
    from aggregator.live.driver import Driver
    from aggregator.live.feedparse import FeedDocument
    from aggregator.live.fetch import Fetched, Fetcher
    from aggregator.live.sandbox import Sandbox
    from aggregator.live.state import FetchStates, SourceState
    from aggregator.model import SourceEntry

log = logging.getLogger("aggregator")


@record
class Outcome:
    """What one source gave this run."""

    source: SourceConfig
    entries: tuple[SourceEntry, ...]
    error: SourceError | None = None
    note: str | None = None  # "not modified", "waiting until …"
    not_modified: bool = False
    # The earliest time the source asked to be fetched again (Retry-After,
    # Cache-Control max-age, RSS <ttl>); None when it asked nothing.
    not_before: datetime | None = None
    # Items the source showed as in its last read, and so not in ``entries``; the ids
    # of those that have one (see listed_ids).
    unchanged: int = 0
    listed: Listed = ()
    # The items the source lists and this run did not read (a 304, a fresh answer not
    # asked again, items read unchanged), each as its id and mark, for retention to keep
    # them current (and only them); None when not known (see kept_items).
    kept: Kept | None = None
    # False for a source not asked at all (its last answer still fresh, or its server's
    # Retry-After not yet over): what is known of it is what its last read said.
    asked: bool = True


# The ids of items a source lists unchanged, each with its item's title and link in
# short (text.item_mark; None when not known).
Listed = tuple[tuple[str, str | None], ...]
# Items a source lists, each as its id (None: it has none) and mark.
Kept = tuple[tuple[str | None, str | None], ...]


def kept_items(state: SourceState, known: frozenset[str] | None = None) -> Kept | None:
    """The id and mark of each item of the source's last read (``state``) whose digest is
    in ``known``, or of every one (None: the document is the last read's, a 304); None
    when they are not known: a state from before ids and marks were kept, a saved page's
    or a JSON Feed's (no digests), or an item known by neither."""
    if (
        state.seen_at is None
        or not state.seen  # (a JSON Feed's read keeps no digests: found by review)
        or not len(state.seen) == len(state.seen_ids) == len(state.seen_marks)
    ):
        return None
    pairs = zip(state.seen, state.seen_ids, state.seen_marks, strict=True)
    kept = tuple((i, m) for d, i, m in pairs if known is None or d in known)
    if any(i is None and m is None for i, m in kept):
        return None
    return kept


def listed_ids(
    state: SourceState,
    known: frozenset[str],
    document: FeedDocument,
    seen_at: datetime | None = None,
) -> tuple[Listed, SourceState]:
    """The ids of the items ``document`` lists as they were in the source's last read
    (skipped, so not read: their ids are the last read's, kept in ``state``), each with
    its item's mark; and ``state`` with the ids and marks of this read's items, in the
    order of their digests, for the next read (and ``seen_at``, when given, as the time
    they were read: one new state, not two).

    What they are for: an item of a stored story's title and day that comes with an id
    of its own while the source still lists the story's item is another story
    (aggregator.store.plan.Planner.listing)."""
    before: dict[str, tuple[str | None, str | None]] = {}
    if known:
        kept = zip(state.seen_ids, state.seen_marks, strict=True)
        before = dict(zip(state.seen, kept, strict=True))
    digests = document.digests
    read_at = state.seen_at if seen_at is None else seen_at
    if not len(document.item_ids) == len(document.item_marks) == len(digests):
        return (), replace(state, seen=(), seen_ids=(), seen_marks=(), seen_at=read_at)
    listed: dict[str, str | None] = {}
    ids: list[str | None] = []
    marks: list[str | None] = []
    for digest, item_id, mark in zip(digests, document.item_ids, document.item_marks, strict=True):
        if item_id is None and digest in known:
            item_id, mark = before.get(digest, (None, None))
            if item_id is not None:
                listed[item_id] = mark
        ids.append(item_id)
        marks.append(mark)
    read = replace(
        state, seen=digests, seen_ids=tuple(ids), seen_marks=tuple(marks), seen_at=read_at
    )
    return tuple(listed.items()), read


def read_file(
    source: SourceConfig, sandbox: Sandbox | None, limit: int, max_entries: int
) -> list[SourceEntry]:
    """The entries of a local source; SourceError when it cannot be read."""
    from aggregator.localfile import read_local
    from aggregator.source import parse_source

    assert source.path is not None
    data = read_local(
        source.path,
        name=source.name,
        setting=f"{source.key}.{source.path_setting} in the config",
        limit=limit,
        limit_setting="[fetch] max_decoded_mb",
    )
    entries = parse_source(
        data,
        url=str(source.path),
        kind=source.kind,
        captured=source.captured,
        name=source.name,
        sandbox=sandbox,
        max_entries=max_entries,
    )
    if source.page_url is None:
        return entries
    # Each story names the web page its file was saved from (Provenance.page_url).
    return [replace(e, provenance=replace(e.provenance, page_url=source.page_url)) for e in entries]


class Ingest:
    """One pass over the sources of a config."""

    def __init__(
        self,
        config: Config,
        state: FetchStates,
        sandbox: Sandbox,
        now: datetime,
        *,
        skip_fresh: bool = False,
        force: bool = False,
        drive: bool = False,
    ) -> None:
        self.config = config
        self.state = state
        self.sandbox = sandbox
        self.now = now
        # A cron run skips sources whose last answer is still fresh; serve's schedule
        # plans around the same floors itself (Outcome.not_before).
        self.skip_fresh = skip_fresh
        # Ask every live source, however fresh, even one that asked us to wait
        # (``aggregator run --force``).
        self.force = force
        self._pruned: datetime | None = None
        # Hand documents to the parser workers from the event loop itself (a run's:
        # aggregator.live.driver), not through a thread each.
        self.drive = drive
        self._driver: Driver | None = None
        if state.store is not None and (pruned := state.store.meta("pruned")):
            self._pruned = datetime.fromisoformat(pruned)

    def run(
        self,
        sources: Sequence[SourceConfig] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Read ``sources`` (default: all of the config's) concurrently.

        ``on_outcome`` is given each read source's outcome in the sources' order, as soon
        as it and those before it are read (in this thread); what it raises ends the run.

        The live sources' states are read from the store at once; those that are not to
        be asked now (gone, asked us to wait, still fresh) are settled without an event
        loop, and when no source is left to read, none is started.
        """
        sources = self.config.sources if sources is None else sources
        self.state.load(source.url for source in sources if source.url is not None)
        outcomes = [None if source.url is None else self._settled(source) for source in sources]
        waiting = [i for i, outcome in enumerate(outcomes) if outcome is None]
        if waiting:
            import asyncio

            # The parser workers start on another core while the first answers come
            # (saved pages of a named layout are read without them).
            if any(sources[i].kind in (None, "feed") for i in waiting):
                self.sandbox.warm()
            read: list[Outcome] = []

            async def run() -> None:
                # The outcomes handed back beside the task, not as its result: asyncio.run
                # restores the Ctrl-C handler it put in place, and the signal module then
                # writes out that handler's repr, the task's with its result: 12 ms for a
                # cold run's 10,000 items.
                read.extend(await self._all([sources[i] for i in waiting], on_outcome))

            asyncio.run(run())
            for i, outcome in zip(waiting, read, strict=True):
                outcomes[i] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    async def _all(
        self,
        sources: Sequence[SourceConfig],
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        import asyncio
        from contextlib import AsyncExitStack

        from aggregator.live.fetch import Fetcher, Limits

        settings = self.config.fetch
        slots = asyncio.Semaphore(settings.workers)
        async with AsyncExitStack() as stack:
            fetcher: Fetcher | None = None
            if any(source.url is not None for source in sources):
                fetcher = await stack.enter_async_context(
                    Fetcher(Limits.of(settings), settings.user_agent)
                )
            if self.drive and any(s.url is not None and s.kind in (None, "feed") for s in sources):
                from aggregator.live.driver import Driver

                self._driver = await stack.enter_async_context(Driver.attached(self.sandbox))
                stack.callback(setattr, self, "_driver", None)

            read: list[Outcome | None] = [None] * len(sources)
            handed = 0  # how many outcomes on_outcome was given, in order

            async def one(index: int, source: SourceConfig) -> Outcome:
                async with slots:
                    try:
                        if source.url is None:
                            outcome = await self._local(source)
                        else:
                            assert fetcher is not None
                            outcome = await self._live(source, fetcher)
                    except Exception as error:  # a bug costs its source, never the run
                        log.debug("%s: unexpected error", source.name, exc_info=True)
                        problem = f"unexpected {type(error).__name__}: {error}"
                        failure = SourceError(source.name, source.location, problem)
                        outcome = Outcome(source, (), failure)
                read[index] = outcome
                nonlocal handed
                while on_outcome is not None and handed < len(read):
                    ready = read[handed]
                    if ready is None:
                        break
                    handed += 1
                    on_outcome(ready)
                return outcome

            return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(sources))))

    async def _local(self, source: SourceConfig) -> Outcome:
        import asyncio

        try:
            limit = self.config.fetch.max_decoded_mb << 20
            entries = await asyncio.to_thread(
                read_file, source, self.sandbox, limit, self.config.fetch.max_entries_per_feed
            )
        except SourceError as error:
            return Outcome(source, (), error)
        return Outcome(source, tuple(entries))

    def _settled(self, source: SourceConfig) -> Outcome | None:
        """The outcome of a live source not to be asked now; None when it is to be."""
        assert source.url is not None
        state = self.state.get(source.url)
        url = state.url or source.url
        if state.gone_since is not None:
            error = SourceError(
                source.name,
                url,
                f"disabled: the server said HTTP 410 Gone on {state.gone_since:%Y-%m-%d}; "
                f"remove {source.key} from the config",
            )
            return Outcome(source, (), error)
        if (
            not self.force
            and state.retry_not_before is not None
            and self.now < state.retry_not_before
        ):
            until = state.retry_not_before.isoformat()
            note = f"not fetched: the server asked us to wait until {until}"
            log.info("%s: %s", source.name, note)
            return Outcome(source, (), note=note, not_before=state.retry_not_before, asked=False)
        fresh_until = state.fresh_until
        if self.skip_fresh and not self.force and fresh_until and self.now < fresh_until:
            # What ``serve``'s schedule honours as a floor, a cron run honours too.
            note = f"fresh until {fresh_until.isoformat()}; not asked"
            return Outcome(
                source,
                (),
                note=note,
                not_modified=True,
                not_before=fresh_until,
                kept=kept_items(state),
                asked=False,
            )
        return None

    async def _live(self, source: SourceConfig, fetcher: Fetcher) -> Outcome:
        import asyncio

        from aggregator.live.fetch import FetchError, Validators
        from aggregator.source import parse_source

        assert source.url is not None
        key = source.url
        state = self.state.get(key)
        url = state.url or source.url
        try:
            fetched = await fetcher.fetch(
                url, name=source.name, validators=state.validators, now=self.now
            )
        except FetchError as error:
            self.state.put(key, self._failed(state, error))
            failure: SourceError = error
            if error.gone:  # said once, in the source's one line of failure
                failure = SourceError(
                    source.name,
                    url,
                    f"{error.message}; it is not asked again: remove {source.key} from the config",
                )
            return Outcome(source, (), failure, not_before=error.retry_after)
        if fetched.moved_to is not None:
            log.warning(
                "%s: %s moved permanently to %s; using the new URL (update %s.url in the config)",
                source.name,
                without_credentials(url),
                without_credentials(fetched.moved_to),
                source.key,
            )
            state = replace(state, url=fetched.moved_to)
        validators = fetched.validators
        if fetched.not_modified:
            # A 304 need not repeat the validators (RFC 9110 §15.4.5): keep what we had.
            validators = Validators(
                validators.etag or state.etag, validators.last_modified or state.last_modified
            )
        state = replace(
            state,
            etag=validators.etag,
            last_modified=validators.last_modified,
            retry_not_before=None,
            last_success=self.now,
            last_error=None,
        )
        max_age = (
            self.now + timedelta(seconds=fetched.max_age) if fetched.max_age is not None else None
        )
        if fetched.not_modified:
            # A 304 renews the freshness its headers give (RFC 9111 §4.3.4); the <ttl>
            # of the body we hold is not known here, so without headers: none.
            self.state.put(key, replace(state, fresh_until=max_age))
            return Outcome(
                source,
                (),
                note="not modified",
                not_modified=True,
                not_before=max_age,
                kept=kept_items(state),
            )
        unchanged = 0
        listed: Listed = ()
        kept: Kept | None = None
        try:
            if source.kind in (None, "feed"):
                known = self._known(state)
                document = await self._parse(fetched, source.name, known)
                entries = list(document.entries)
                ttl = document.ttl_minutes
                unchanged = document.unchanged
                listed, state = listed_ids(state, known, document, seen_at=self.now)
                kept = kept_items(state, known)
            else:  # a saved-page layout served over HTTP
                entries = await asyncio.to_thread(
                    parse_source, fetched.body, url=fetched.url, kind=source.kind, name=source.name
                )
                ttl = None
        except SourceError as error:
            # Keep the old validators: the next run must fetch the body again.
            self.state.put(key, replace(self._failed(self.state.get(key), error), url=state.url))
            return Outcome(source, (), error)
        floors = [max_age, None if ttl is None else self.now + timedelta(minutes=ttl)]
        fresh_until = max((f for f in floors if f), default=None)
        self.state.put(key, replace(state, fresh_until=fresh_until))
        return Outcome(
            source,
            tuple(entries),
            not_before=fresh_until,
            unchanged=unchanged,
            listed=listed,
            kept=kept,
        )

    def _known(self, state: SourceState) -> frozenset[str]:
        """The digests of the items of the source's last read, when the store still
        holds what they became: not when retention forgot entries since that read."""
        if not state.seen or state.seen_at is None:
            return frozenset()
        if not len(state.seen_ids) == len(state.seen_marks) == len(state.seen):
            # Digests without their items' ids (a state written by hand, or damaged):
            # read every item again, for their ids (see listed_ids).
            return frozenset()
        if self._pruned is not None and state.seen_at <= self._pruned:
            return frozenset()
        return frozenset(state.seen)

    async def _parse(self, fetched: Fetched, name: str, known: frozenset[str]) -> FeedDocument:
        """The fetched document, parsed by a worker: through the driver when there is
        one, else in a thread that waits for the sandbox."""
        import asyncio
        import functools

        options: dict[str, Any] = {
            "url": fetched.url,
            "name": name,
            "content_type": fetched.content_type,
            "max_entries": self.config.fetch.max_entries_per_feed,
            "known": known,
        }
        if self._driver is None:
            parse = functools.partial(self.sandbox.parse, fetched.body, **options)
            document = await asyncio.to_thread(parse)
        else:
            document = await self._driver.parse(fetched.body, **options)
        for warning in document.warnings:
            log.warning("%s (%s): %s", name, without_credentials(fetched.url), warning)
        return document

    def _failed(self, state: SourceState, error: SourceError) -> SourceState:
        from aggregator.live.fetch import FetchError

        if isinstance(error, FetchError):
            if error.gone:
                return replace(state, gone_since=self.now, last_error=error.message)
            if error.retry_after is not None:
                return replace(state, retry_not_before=error.retry_after, last_error=error.message)
        return replace(state, last_error=error.message)
