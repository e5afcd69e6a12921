"""Many workers, each source fetched once per interval: claims on a shared store.

With PostgreSQL, every ``serve`` instance and cron ``run`` shares the sources. Before
reading a source a worker claims it (:meth:`StoreType.claim`): only a source that is
due and that no live lease holds can be claimed, and ``SELECT … FOR UPDATE SKIP LOCKED``
gives it to one worker only. After the run the worker releases it with the time it is
next due (its interval, or later when the source asked with Retry-After or max-age);
``run --force`` claims a source due or not, but never one a live lease holds.
A worker that dies keeps its claims until the lease ends (``[store] lease_seconds``);
then the next worker whose schedule comes round reads them. On SQLite (one machine)
nothing is claimed: the scheduler alone decides.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timedelta

from aggregator.config import Config, SourceConfig
from aggregator.ingest import Outcome
from aggregator.store.protocol import StoreType

log = logging.getLogger("aggregator")


# This process, as other workers see it in source_leases.holder.
@functools.cache
def worker() -> str:
    """This process, as a lease's holder: host name and process id."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def claim_sources(
    store: StoreType,
    config: Config,
    sources: Sequence[SourceConfig],
    now: datetime,
    *,
    force: bool = False,
) -> list[SourceConfig]:
    """The sources this worker may read now (all of them on a store of its own);
    ``force``: due or not, but never one another worker is reading (said in a line)."""
    if not store.shared:
        return list(sources)
    names = store.claim(
        [s.name for s in sources],
        holder=worker(),
        now=now,
        lease_seconds=config.store.lease_seconds,
        due_or_not=force,
    )
    claimed = set(names)
    if force and len(claimed) < len(sources):
        others = [s.name for s in sources if s.name not in claimed]
        log.warning("left to the worker reading them now: %s", ", ".join(others))
    return [s for s in sources if s.name in claimed]


# A source is due again one interval after the run that read it began, less this much
# of the interval (at most MAX_SLACK): a cron run every interval finds it due even when
# its interpreter started a moment sooner than the last one's.
SLACK = 0.1
MAX_SLACK = timedelta(minutes=1)


def next_due(config: Config, outcome: Outcome, now: datetime) -> datetime:
    """When a source that was just read is due again: one interval on (less the
    slack), or later if asked."""
    minutes = outcome.source.interval_minutes or config.schedule.interval_minutes
    interval = timedelta(minutes=minutes)
    due = now + interval - min(interval * SLACK, MAX_SLACK)
    if outcome.not_before is not None and outcome.not_before > due:
        due = outcome.not_before
    return due


def release_sources(
    store: StoreType, config: Config, outcomes: Sequence[Outcome], now: datetime
) -> None:
    """Give back the sources read in this run, each with when it is next due."""
    if store.shared:
        for outcome in outcomes:
            store.release(outcome.source.name, holder=worker(), due=next_due(config, outcome, now))


def give_back(
    store: StoreType,
    sources: Sequence[SourceConfig],
    now: datetime,
    outcomes: Sequence[Outcome] = (),
) -> None:
    """Release the claims of a run that failed before it finished: its sources are due
    at once, for the next worker or run (their leases would otherwise hold them until
    they end), or when a server that answered asked us to wait (``outcomes``' Retry-After
    or max-age). Best effort: a store that cannot be written leaves them to the leases."""
    if store.shared:
        waits = {o.source.name: o.not_before for o in outcomes if o.not_before is not None}
        for source in sources:
            due = max(now, waits.get(source.name, now))
            try:
                store.release(source.name, holder=worker(), due=due)
            except Exception:  # the store itself failed: the lease ends in its time
                return
