"""What the aggregator remembers about each live source between runs.

Validators for conditional GET, a permanent redirect's new URL, a "gone"
verdict, the time a server asked us not to return before, and the outcome of
the last fetch. Kept in the store's ``fetch_state`` table, keyed by the URL
the source is configured with; changes are held in memory during a run and
written in the run's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aggregator.records import record

if TYPE_CHECKING:  # the HTTP client is imported by a run that asks a source, not before
    from aggregator.live.fetch import Validators
    from aggregator.store import StoreType


@record
class SourceState:
    url: str | None = None  # the URL to fetch now, when a 301 moved it
    etag: str | None = None
    last_modified: str | None = None
    retry_not_before: datetime | None = None
    # Until when the last answer is fresh (Cache-Control max-age, Expires, RSS <ttl>):
    # a cron run does not ask before then (``aggregator run --force`` does).
    fresh_until: datetime | None = None
    gone_since: datetime | None = None
    # The digests of the items of the last read of the feed, and when it was read: an
    # item read again unchanged is skipped (aggregator.live.feedparse.item_digest).
    seen: tuple[str, ...] = ()
    # The id of each of those items (None: it had none), in the same order: what tells,
    # when an item is skipped, which id the source still lists (ingest.listed_ids).
    seen_ids: tuple[str | None, ...] = ()
    seen_marks: tuple[str | None, ...] = ()  # and of its title and link (text.item_mark)
    seen_at: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None

    @property
    def validators(self) -> Validators:
        from aggregator.live.fetch import Validators

        return Validators(self.etag, self.last_modified)

    def to_json(self) -> dict[str, Any]:
        return {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name in _FIELDS
            if (value := getattr(self, name)) is not None and value != ()
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceState:
        def when(name: str) -> datetime | None:
            value = data.get(name)
            return datetime.fromisoformat(value) if value else None

        return cls(
            url=data.get("url"),
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
            retry_not_before=when("retry_not_before"),
            fresh_until=when("fresh_until"),
            gone_since=when("gone_since"),
            seen=_strings(data.get("seen")),
            seen_ids=_strings(data.get("seen_ids"), none=True),
            seen_marks=_strings(data.get("seen_marks"), none=True),
            seen_at=when("seen_at"),
            last_success=when("last_success"),
            last_error=data.get("last_error"),
        )


_FIELDS = tuple(field.name for field in fields(SourceState))  # what to_json writes


_STRINGS = frozenset({str})
_STRINGS_OR_NONE = frozenset({str, type(None)})


def _strings(value: Any, *, none: bool = False) -> tuple[Any, ...]:
    """A stored list of strings (and nulls, with ``none``) as a tuple; anything else (a
    state written by hand, or damaged) as none at all: the items are then read again."""
    if not isinstance(value, list):
        return ()
    if set(map(type, value)) <= (_STRINGS_OR_NONE if none else _STRINGS):  # (one pass in C)
        return tuple(value)
    return ()


class FetchStates:
    """Per-source state read from the store, changed in memory, saved with :meth:`save`."""

    def __init__(self, store: StoreType | None = None) -> None:
        self.store = store
        self.changed: dict[str, SourceState] = {}
        self._read: dict[str, SourceState] = {}  # what load() read, until changed

    def load(self, keys: Iterable[str]) -> None:
        """Read the states of ``keys`` from the store at once, for :meth:`get`."""
        if self.store is None:
            return
        wanted = [key for key in dict.fromkeys(keys) if key not in self.changed]
        found = self.store.fetch_states(wanted)
        for key in wanted:
            data = found.get(key)
            self._read[key] = SourceState() if data is None else SourceState.from_json(data)

    def get(self, key: str) -> SourceState:
        if key in self.changed:
            return self.changed[key]
        if key in self._read:
            return self._read[key]
        data = self.store.fetch_state(key) if self.store is not None else None
        return SourceState() if data is None else SourceState.from_json(data)

    def put(self, key: str, state: SourceState) -> None:
        self.changed[key] = state

    def save(self) -> None:
        """Write the changes (inside the store's transaction)."""
        assert self.store is not None
        for key, state in self.changed.items():
            self.store.set_fetch_state(key, state.to_json())
            self._read.pop(key, None)
        self.changed.clear()
