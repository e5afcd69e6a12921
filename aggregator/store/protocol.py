"""What every store backend offers: the interface the pipeline, the server and the CLI use.

Two backends implement it, :class:`aggregator.store.sqlite.Store` (one file, the
zero-setup default) and :class:`aggregator.store.postgres.PostgresStore` (shared by
many workers); ``tests/test_store.py`` runs one contract suite against both.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, tzinfo
from typing import Any, Protocol

from aggregator.model import Entry, SourceEntry
from aggregator.store.plan import IngestReport, MergePlan, WrittenAhead


class StoreType(Protocol):
    @property
    def where(self) -> str:
        """The store's path or URL (without a password), for messages."""

    @property
    def shared(self) -> bool:
        """Whether other machines may use this store at once (leases matter)."""

    @property
    def schema_version(self) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> StoreType: ...

    def __exit__(self, *exc: object) -> None: ...

    def transaction(self) -> AbstractContextManager[object]:
        """All or nothing; writers queue behind each other. A refused write raises
        :class:`~aggregator.errors.WriteError` naming the store."""

    def meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def fetch_state(self, key: str) -> dict[str, Any] | None: ...

    def fetch_states(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored fetch states of ``keys``, by key, read at once."""
        ...

    def set_fetch_state(self, key: str, data: dict[str, Any]) -> None: ...

    def add(
        self,
        items: Sequence[SourceEntry],
        *,
        authority: str,
        zone: tzinfo,
        now: datetime,
        listed: Mapping[str, Iterable[tuple[str, str | None]]] | None = None,
    ) -> tuple[IngestReport, list[Entry]]:
        """Merge items into the stored stories (inside :meth:`transaction`); returns
        counts and the entries that are new or changed (their topics need judging);
        ``listed``: by source, ids of items it lists unchanged (plan.Planner.listing)."""

    def candidates(self, keys: Iterable[str]) -> dict[str, list[Entry]]:
        """The stored stories of these title keys, by key (for a Planner)."""
        ...

    def told(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, Entry]]:
        """The stored story each (source, item id) was sighted with, with its title key
        (for a Planner)."""
        ...

    def item_ids(
        self, entry_ids: Iterable[str]
    ) -> dict[str, dict[str, tuple[str | None, str | None, str | None]]]:
        """The item each source told each of these stories with: its id, link and mark
        (for a Planner: aggregator.store.plan.ItemTold)."""
        ...

    def prepare(self, entries: Iterable[tuple[Entry, str]], now: datetime) -> None:
        """Make ahead what :meth:`write_plan` would write for these new entries (each
        with its title key) at ``now``; used only if they are still the plan's."""
        ...

    def write_plan(
        self, plan: MergePlan, now: datetime, ahead: WrittenAhead | None = None
    ) -> tuple[IngestReport, list[Entry]]:
        """Write a plan made against the store as it was before the transaction (inside
        :meth:`transaction`; ``ahead``: what of it was written ahead in it); returns what
        :meth:`add` returns."""
        ...

    def rename_source(self, old: str, new: str, location: str | None = None) -> None:
        """What the source ``old`` told (read at ``location``, or anywhere) is told by
        ``new`` (renamed in the config)."""
        ...

    def touch_source(
        self,
        source: str,
        now: datetime,
        items: Sequence[tuple[str | None, str | None]] | None = None,
    ) -> None: ...

    def set_topics(self, entries: Iterable[Entry], *, new: Collection[str] = ()) -> None: ...

    def all_entries(self, batch: int = 2000) -> Iterator[list[Entry]]: ...

    def newest(self, limit: int, topic: str | None = None) -> list[Entry]: ...

    def search(
        self,
        terms: Sequence[str],
        *,
        exclude: Sequence[str] = (),
        topic: str | None = None,
        limit: int,
        after: Entry | None = None,
        either: bool = False,
        position: tuple[str, str] | None = None,
    ) -> list[Entry]:
        """Candidates for a whole-word search, newest first, from the store's index: up
        to ``limit`` entries (after ``after``, to read on, or after ``position``, a
        :meth:`position` kept from an earlier read) among which are all those of
        ``topic`` (or of all) holding every term (``either``: one term at least) and no
        excluded term. The caller's exact patterns decide (:mod:`aggregator.store.words`
        says why nothing is missed)."""

    def position(self, entry: Entry) -> tuple[str, str]:
        """Where ``entry`` stands in a search's order, to read on from it later (another
        request, another connection): the key it was last read with, and its id."""
        ...

    def entry(self, entry_id: str) -> Entry | None: ...

    def find(self, text: str, limit: int = 20) -> list[Entry]: ...

    def prune(self, older_than: datetime) -> int: ...

    def counts_by_source(self) -> dict[str, int]: ...

    def source_summary(self) -> dict[str, tuple[int, int, str | None]]: ...

    def last_seen_of(self, sources: Sequence[str]) -> dict[str, datetime]: ...

    def server_time(self) -> datetime | None: ...

    def counts(self) -> dict[str, int]: ...

    def claim(
        self,
        sources: Sequence[str],
        *,
        holder: str,
        now: datetime,
        lease_seconds: float,
        due_or_not: bool = False,
    ) -> list[str]:
        """Of ``sources``, those due (any, with ``due_or_not``) and not held by a live
        lease, now held by ``holder`` until ``now + lease_seconds`` (in their given
        order). Commits at once."""

    def release(self, source: str, *, holder: str, due: datetime) -> None:
        """``holder`` is done with ``source``; nobody fetches it again before ``due``."""

    def due(self, source: str) -> datetime | None:
        """When ``source`` is next due (None: never fetched, due now)."""

    def dump(self, table: str) -> Iterator[tuple[Any, ...]]:
        """Every row of one table (:data:`aggregator.store.copy.TABLES`), in a stable order."""

    def rows(self, table: str) -> int:
        """How many rows one table holds."""

    def load(self, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
        """Insert rows as :meth:`dump` gave them (inside :meth:`transaction`)."""
