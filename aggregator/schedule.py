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
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.config import Config, SourceConfig
from aggregator.errors import AggregatorError
from aggregator.live.sandbox import Sandbox
from aggregator.pipeline import RunResult, refresh

log = logging.getLogger("aggregator")

Clock = Callable[[], datetime]


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

    def snapshot(self) -> list[SourceHealth]:
        with self.lock:
            return list(self.sources.values())


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

    def interval(self, source: SourceConfig) -> timedelta:
        return timedelta(minutes=source.interval_minutes or self.config.schedule.interval_minutes)

    def _jitter(self) -> timedelta:
        return timedelta(seconds=self.rng.uniform(0, self.config.schedule.jitter_seconds))

    def start(self, *, first_in: timedelta | None = None) -> None:
        """Start every source's job: each after its interval (or ``first_in``), jittered."""
        now = self.clock()
        for source in self.config.sources:
            delay = self.interval(source) if first_in is None else first_in
            self._plan(source.name, now + delay + self._jitter())
        self._scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop planning runs; with ``wait``, let a running one finish first."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def _plan(self, name: str, when: datetime) -> None:
        self.board.update(name, next_run=when)
        self._scheduler.add_job(
            self._run, "date", run_date=when, args=[name], id=name, replace_existing=True
        )

    def _run(self, name: str) -> None:
        source = self._sources[name]
        now = self.clock()
        result: RunResult | None = None
        error: str | None = None
        try:
            result = refresh(self.config, self.sandbox, now, [source], lock_whole_run=False)
        except AggregatorError as problem:  # the lock, the store: this run's failure only
            error = str(problem)
            log.error("%s", problem)
        except Exception as problem:  # never let one job kill the scheduler
            error = f"unexpected {type(problem).__name__}: {problem}"
            log.exception("%s: unexpected error", name)
        outcome = result.outcomes[0] if result and result.outcomes else None
        if outcome is not None and outcome.error is not None:
            error = str(outcome.error)
        health = self.board.sources[name]
        failures = health.failures + 1 if error else 0
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
        self.board.update(
            name,
            last_run=now,
            last_success=health.last_success if error else now,
            last_error=error,
            failures=failures,
        )
        if self._scheduler.running:
            self._plan(name, when)
