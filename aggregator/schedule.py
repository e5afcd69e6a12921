"""``aggregator serve``'s scheduler: each source on its own interval, with APScheduler 3.

Every source has one job. After each run the job schedules its own next run:

* after a success, one interval later (the source's ``interval_minutes``, else
  ``[schedule] interval_minutes``);
* after a failure, the interval doubled for each failure in a row, capped at
  ``max_backoff_minutes``;
* never sooner than the source asked: Retry-After, Cache-Control max-age or
  RSS ``<ttl>`` are floors;
* plus a random jitter, so sources do not all fire together.

A job that overruns cannot start twice: the next run is only scheduled when the
current one ends (and APScheduler is told ``max_instances=1`` besides).

A job holds the write lock only to write: it reads its source first, then takes the
lock for :func:`aggregator.pipeline.publish`.

Shutdown is bounded (:meth:`Scheduler.stop`, then :meth:`Scheduler.shutdown`): no job
starts after the signal, queued ones are abandoned (every source runs at the next
start), and running ones get ``[serve] shutdown_grace`` seconds from the signal. A job
still reading then never writes; one already writing is waited for (its store
transaction and renames are short), so the store and the feeds are left consistent.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.config import Config, SourceConfig
from aggregator.errors import AggregatorError, FilesNotWritten, SourceError, WriteError
from aggregator.ingest import Ingest
from aggregator.live.sandbox import Sandbox
from aggregator.live.state import FetchStates
from aggregator.lock import write_lock
from aggregator.pipeline import RunResult, catch_up, publish, report_outcomes, written_at
from aggregator.store import IngestReport, open_store
from aggregator.store.leases import claim_sources, release_sources

log = logging.getLogger("aggregator")

Clock = Callable[[], datetime]
# Seconds between looks at a shared store's change counter (another instance's writes).
WATCH_SECONDS = 2.0

# Seconds between tries to write files a server could not write as it started (see
# Scheduler.catch_up_soon).
RETRY_SECONDS = 10.0


def next_run(
    now: datetime,
    *,
    interval: timedelta,
    failures: int,
    max_backoff: timedelta,
    jitter: timedelta,
    not_before: datetime | None = None,
) -> datetime:
    """When a source's job runs next (see the module's rules). Pure."""
    delay = min(interval * (2**failures), max(max_backoff, interval)) if failures else interval
    when = now + delay + jitter
    if not_before is not None and not_before > when:
        when = not_before + jitter
    return when


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str
    location: str
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    failures: int = 0
    next_run: datetime | None = None


@dataclass(slots=True)
class _Board:
    """Health of every source, shared between job threads and the web server."""

    sources: dict[str, SourceHealth] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, key: str, **changes: object) -> SourceHealth:
        with self.lock:
            health = replace(self.sources[key], **changes)  # type: ignore[arg-type]
            self.sources[key] = health
            return health

    # Why the files could not be written when last tried, until they are: /healthz says
    # so (found by review: a server whose files could not be written said "ok").
    files_error: str | None = None

    def snapshot(self) -> list[SourceHealth]:
        with self.lock:
            return list(self.sources.values())

    def files_written(self, error: str | None) -> None:
        """Whether the files could be written, when last tried: ``None`` when they were,
        else why not."""
        with self.lock:
            self.files_error = error

    def files_problem(self) -> str | None:
        with self.lock:
            return self.files_error


class Scheduler:
    def __init__(
        self,
        config: Config,
        sandbox: Sandbox,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.sandbox = sandbox
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rng = rng or random.Random()
        self.board = _Board({s.name: SourceHealth(s.name, s.location) for s in config.sources})
        self._sources = {s.name: s for s in config.sources}
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max(1, config.fetch.workers))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.changed = threading.Event()  # set whenever a run changed the feeds
        self._stopping = threading.Event()  # set by stop(): no job starts any more
        self._deadline = float("inf")  # time.monotonic() when running jobs are abandoned
        self._jobs = threading.Condition()  # guards the three below
        self._running = 0  # jobs under way
        self._writing = 0  # of which publishing (holding the write lock)
        self._abandoned = False  # the grace period is over: no job may start writing

    def interval(self, source: SourceConfig) -> timedelta:
        return timedelta(minutes=source.interval_minutes or self.config.schedule.interval_minutes)

    def _jitter(self) -> timedelta:
        return timedelta(seconds=self.rng.uniform(0, self.config.schedule.jitter_seconds))

    def record(self, result: RunResult, now: datetime) -> None:
        """What a run made before the scheduler started (``serve``'s first read of every
        source) on the board, as a job's own read is: ``/healthz`` shows its failures."""
        for outcome in result.outcomes:
            name = outcome.source.name
            health = self.board.sources.get(name)
            if health is None or not outcome.asked:
                continue
            failed = outcome.error is not None
            self.board.update(
                name,
                last_run=now,
                last_success=health.last_success if failed else now,
                last_error=str(outcome.error) if failed else None,
                failures=health.failures + 1 if failed else 0,
            )

    def remember(self, states: FetchStates) -> None:
        """What the last reads said of each live source (its last success and error, kept
        in the store's fetch state) and when each saved page last showed its stories, on
        the board before any job runs: a source not
        asked when the server starts (still fresh, or rate-limited) shows that, not an
        unknown health (found by review: a rate-limited source showed as healthy)."""
        live = [s for s in self.config.sources if s.url is not None]
        states.load([s.url for s in live if s.url is not None])
        # A saved page keeps no fetch state: when it last showed its stories, as
        # `sources list` says (found by review: null until its first job).
        pages = [s.name for s in self.config.sources if s.url is None]
        if states.store is not None and pages:
            for name, seen in states.store.last_seen_of(pages).items():
                self.board.update(name, last_run=seen, last_success=seen, failures=0)
        for source in live:
            assert source.url is not None
            state = states.get(source.url)
            if state.last_success is None and state.last_error is None:
                continue
            error = None
            if state.last_error is not None:  # as a job's failure says it
                error = str(SourceError(source.name, state.url or source.url, state.last_error))
            self.board.update(
                source.name,
                last_run=state.last_success,  # (when a failure was is not kept)
                last_success=state.last_success,
                last_error=error,
                failures=0 if error is None else 1,
            )

    def handed(self) -> list[dict[str, object]]:
        """Each source's health and next read, as JSON, for the server a restart starts
        (aggregator.reload; :meth:`adopt` takes it)."""

        def text(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return [
            {
                "name": h.name,
                "location": h.location,
                "last_run": text(h.last_run),
                "last_success": text(h.last_success),
                "last_error": h.last_error,
                "failures": h.failures,
                "next_run": text(h.next_run),
                "interval": self._interval_seconds(h.name),
            }
            for h in self.board.snapshot()
        ]

    def _interval_seconds(self, name: str) -> float | None:
        source = self._sources.get(name)
        return None if source is None else self.interval(source).total_seconds()

    def adopt(self, handed: list[dict[str, object]]) -> None:
        """What the server before a restart knew of each source still configured (the
        same name and location): its health, its failures (the backoff) and when it is
        next due (see :meth:`start`); found by review, a restart forgot a failing
        source's backoff and asked it again at once."""

        def moment(value: object) -> datetime | None:
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        for old in handed:
            name = old.get("name")
            health = self.board.sources.get(name) if isinstance(name, str) else None
            if health is None or health.location != old.get("location"):
                continue
            failures, error = old.get("failures"), old.get("last_error")
            # A source whose interval the edit changed is due an interval after its last
            # success, the new one (see start), not when the old one had it.
            same = old.get("interval") == self._interval_seconds(health.name)
            self.board.update(
                health.name,
                last_run=moment(old.get("last_run")),
                last_success=moment(old.get("last_success")),
                last_error=error if isinstance(error, str) else None,
                failures=failures if isinstance(failures, int) else 0,
                next_run=moment(old.get("next_run")) if same else None,
            )

    def start(self, *, first_in: timedelta | None = None, resume: bool = False) -> None:
        """Start every source's job: each after its interval (or ``first_in``), jittered.
        ``resume``: a source is due when the server before a restart had it due
        (:meth:`adopt`), or one read before (its last success on the board, see
        :meth:`remember`) an interval after it; not sooner than ``first_in`` (a restart
        to apply an edited config, found by review: each restart asked every source
        again)."""
        now = self.clock()
        for source in self.config.sources:
            delay = self.interval(source) if first_in is None else first_in
            when = now + delay
            health = self.board.sources[source.name]
            if resume and health.next_run is not None:  # (adopted: as it was planned)
                self._plan(source.name, max(when, health.next_run))
                continue
            if resume and health.last_success is not None:
                when = max(when, health.last_success + self.interval(source))
            self._plan(source.name, when + self._jitter())
        if self.config.store.url:  # shared: serve what the other instances wrote too
            self._scheduler.add_job(self._catch_up, "interval", seconds=WATCH_SECONDS)
        self._scheduler.start()

    def catch_up_soon(self, error: str) -> None:
        """The files could not be written (as the server started, or by a job: another
        process held the store's lock, a disk full or refusing: ``error`` says): tried
        again every :data:`RETRY_SECONDS` until they are, not only at the next read
        (found by review: a new feeds folder stayed empty for an interval)."""
        self.board.files_written(error)
        self._scheduler.add_job(
            self._catch_up_until_written,
            "interval",
            seconds=RETRY_SECONDS,
            id="catch-up-retry",
            replace_existing=True,
        )

    def _catch_up_until_written(self) -> None:
        if self._stopping.is_set():
            return
        try:
            result = catch_up(self.config, self.clock())
        except AggregatorError as problem:
            self.board.files_written(str(problem))  # (said when the server started)
            return  # tried again
        self.board.files_written(None)
        self._scheduler.remove_job("catch-up-retry")
        log.warning("the files are written now")
        if result is not None and result.written:
            self.changed.set()

    def _catch_up(self) -> None:
        if self._stopping.is_set():
            return
        try:
            result = catch_up(self.config, self.clock())
        except AggregatorError as problem:
            log.error("%s", problem)
            if isinstance(problem, WriteError):
                self.catch_up_soon(str(problem))
            return
        self.board.files_written(None)
        if result is not None and result.written:
            self.changed.set()

    def _plan_when_due(self, name: str) -> None:
        """Another worker holds the source, or read it lately: look again when it is
        due, and not before a quarter of a lease from now (its holder may be reading)."""
        with open_store(self.config.store) as store:
            due = store.due(name)
        soonest = self.clock() + timedelta(seconds=self.config.store.lease_seconds / 4)
        self._plan(name, max(due or soonest, soonest) + self._jitter())

    def stop(self) -> None:
        """No job starts from now on; running ones have ``shutdown_grace`` seconds.

        Only sets a flag and a time, so that a signal handler may call it.
        """
        if not self._stopping.is_set():
            self._deadline = time.monotonic() + self.config.serve.shutdown_grace
            self._stopping.set()

    def shutdown(self) -> bool:
        """Stop, abandon queued jobs, and wait for running ones until the grace period
        ends. True when every job finished; False when some were still reading and are
        abandoned (they will never write: the caller may exit without waiting for them).
        """
        self.stop()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)  # queued jobs return at once (_stopping)
        with self._jobs:
            left = self._deadline - time.monotonic()
            if self._jobs.wait_for(lambda: self._running == 0, timeout=max(0.0, left)):
                return True
            self._abandoned = True
            self._jobs.wait_for(lambda: self._writing == 0)
            if self._running:
                log.info(
                    "shutdown: abandoned %d running reads; they run at the next start",
                    self._running,
                )
            return self._running == 0

    def _plan(self, name: str, when: datetime) -> None:
        self.board.update(name, next_run=when)
        self._scheduler.add_job(
            self._run, "date", run_date=when, args=[name], id=name, replace_existing=True
        )

    def _refresh(self, source: SourceConfig, now: datetime) -> RunResult | None:
        """Read one source, then fold it into the store and write the feeds under the
        write lock. None when shutdown abandoned it before it could write."""
        config = self.config
        with open_store(config.store) as store:
            states = FetchStates(store)
            if not claim_sources(store, config, [source], now):
                return RunResult((), IngestReport(), (), ())  # another worker has it
            # A source whose last answer is still fresh is not asked (a restart reads
            # every source at once: found by review, each was asked again however fresh).
            outcomes = Ingest(config, states, self.sandbox, now, skip_fresh=True).run([source])
            report_outcomes(outcomes)
            with write_lock(config.store):
                with self._jobs:
                    if self._abandoned:
                        return None
                    self._writing += 1
                try:
                    changed_at = written_at(store, self.clock, now)  # (pipeline.apply)
                    result = publish(config, store, states, outcomes, now, changed_at=changed_at)
                    # Due one interval after the read, which came after ``now`` (the
                    # fetch, the wait for the lock): counted from now, a peer could read
                    # the source again sooner than one interval after it was read.
                    release_sources(store, config, outcomes, max(now, self.clock()))
                    return result
                finally:
                    with self._jobs:
                        self._writing -= 1
                        self._jobs.notify_all()

    def _run(self, name: str) -> None:
        with self._jobs:  # the flag is read under the lock shutdown() counts jobs with
            if self._stopping.is_set():
                return  # abandoned: every source runs at the next start
            self._running += 1
        try:
            self._run_job(name)
        finally:
            with self._jobs:
                self._running -= 1
                self._jobs.notify_all()

    def _run_job(self, name: str) -> None:
        source = self._sources[name]
        now = self.clock()
        result: RunResult | None = None
        error: str | None = None
        try:
            result = self._refresh(source, now)
            if result is None:
                return
            if not result.outcomes:  # claimed by another worker (a shared store)
                self._plan_when_due(name)
                return
            # Published: the files are as the store is (whatever stopped them before).
            self.board.files_written(None)
        except FilesNotWritten as problem:
            # The source was read, and what it gave is in the store: its health is
            # good; the files' trouble is the board's (found by review: the source took
            # the error, and backed off, for a full disk).
            log.error("%s", problem)
            self.catch_up_soon(str(problem))
        except AggregatorError as problem:  # the lock, the store: this run's failure only
            error = str(problem)
            log.error("%s", problem)
            if isinstance(problem, WriteError):
                # Tried again shortly, not only at this source's next read (found by
                # review: "degraded" for an interval after the disk was fixed).
                self.catch_up_soon(error)
        except Exception as problem:  # never let one job kill the scheduler
            error = f"unexpected {type(problem).__name__}: {problem}"
            log.error("%s: %s", name, error)  # one line: the log shows no tracebacks
        outcome = result.outcomes[0] if result and result.outcomes else None
        if outcome is not None and outcome.error is not None:
            error = str(outcome.error)
        health = self.board.sources[name]
        # Not asked (still fresh, or its server asked us to wait): its health is what its
        # last read said (found by review: a source rate-limited before a restart showed
        # as healthy after it); only when it is asked next changes.
        asked = outcome is None or outcome.asked or error is not None
        failures = (health.failures + 1 if error else 0) if asked else health.failures
        if result is not None and result.written:
            self.changed.set()
        when = next_run(
            self.clock(),
            interval=self.interval(source),
            failures=failures,
            max_backoff=timedelta(minutes=self.config.schedule.max_backoff_minutes),
            jitter=self._jitter(),
            not_before=outcome.not_before if outcome is not None else None,
        )
        if asked:
            self.board.update(
                name,
                last_run=now,
                last_success=health.last_success if error else now,
                last_error=error,
                failures=failures,
            )
        if self._scheduler.running and not self._stopping.is_set():
            self._plan(name, when)
