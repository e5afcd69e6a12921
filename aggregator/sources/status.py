"""``aggregator sources list``: each source of the config and how it is doing.

Read from the config and the store only (nothing is fetched, nothing written; a
store that does not exist yet is not created). A live source's last success, last
error, "gone" verdict and requested wait come from its fetch state; for every
source, the stories it showed come from the sightings.

``next_due`` is when ``aggregator serve`` would read it next as far as the store
can tell: one interval after its last success, the time the server asked us to
wait for, or the end of its last answer's freshness, whichever is latest; ``now``
for a source never read (a cron run asks no source before its floors either).
The scheduler's jitter and its backoff after failures live in the running server
only (``/healthz`` shows them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aggregator.config import Config, SourceConfig, StoreSettings
from aggregator.live.state import SourceState
from aggregator.uri import without_credentials


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    key: str  # "sources[3]"
    kind: str  # "feed", "listing", … or "page" (layout recognised when read), "feed?" unknown
    location: str
    enabled: bool
    last_success: datetime | None
    last_error: str | None
    next_due: datetime | None
    entries: int  # stories this source has shown
    contributed: int  # stories no other source told
    gone_since: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "name": self.name,
            "key": self.key,
            "kind": self.kind,
            "location": self.location,
            "enabled": self.enabled,
            "last_success": when(self.last_success),
            "last_error": self.last_error,
            "next_due": when(self.next_due),
            "entries": self.entries,
            "contributed": self.contributed,
            "gone_since": when(self.gone_since),
        }


def _kind(source: SourceConfig) -> str:
    if source.kind is not None:
        return source.kind
    return "feed" if source.url is not None else "file"


def _read_store(
    settings: StoreSettings, urls: list[str]
) -> tuple[dict[str, Any], dict[str, SourceState]]:
    """Sightings by source and fetch states by URL, from the store opened to read only."""
    from aggregator.store import open_store_to_read

    store = open_store_to_read(settings)
    if store is None:
        return {}, {}
    with store:
        summary = store.source_summary()
        states = {}
        for url in urls:
            data = store.fetch_state(url)
            if data is not None:
                states[url] = SourceState.from_json(data)
    return summary, states


def _floors(state: SourceState | None) -> tuple[datetime, ...]:
    """The times before which neither a run nor ``serve`` asks the source again.

    The same floors as :meth:`aggregator.ingest.Ingest._settled` (a cron run: "fresh
    until …; not asked", "the server asked us to wait until …") and as the
    ``not_before`` that ``serve``'s schedule and the shared store's leases plan with:
    the wait a ``Retry-After`` asked for, and the freshness of the last answer
    (Cache-Control max-age, Expires, RSS ``<ttl>``).
    """
    if state is None:
        return ()
    return tuple(f for f in (state.retry_not_before, state.fresh_until) if f is not None)


def source_statuses(config: Config, now: datetime) -> list[SourceStatus]:
    """Every source of the config (disabled ones too), in config order."""
    sources = sorted(
        (*config.sources, *config.disabled_sources),
        key=lambda s: int(s.key.removeprefix("sources[").rstrip("]")),
    )
    urls = [s.url for s in sources if s.url is not None]
    summary, states = _read_store(config.store, urls)
    found = []
    for source in sources:
        entries, contributed, last_seen = summary.get(source.name, (0, 0, None))
        state = states.get(source.url) if source.url is not None else None
        interval = timedelta(minutes=source.interval_minutes or config.schedule.interval_minutes)
        if state is not None:
            last_success, last_error = state.last_success, state.last_error
        else:
            last_success = datetime.fromisoformat(last_seen) if last_seen else None
            last_error = None
        gone = state.gone_since if state is not None else None
        if not source.enabled or gone is not None:
            next_due = None
        else:
            next_due = now if last_success is None else last_success + interval
            next_due = max((next_due, *_floors(state)))
        found.append(
            SourceStatus(
                name=source.name,
                key=source.key,
                kind=_kind(source),
                location=without_credentials(source.location),  # shown to anyone
                enabled=source.enabled,
                last_success=last_success,
                last_error=last_error,
                next_due=next_due,
                entries=entries,
                contributed=contributed,
                gone_since=gone,
            )
        )
    return found
