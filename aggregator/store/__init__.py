"""The lasting store: every story ever seen, where it came from, and each feed's fetch state.

One interface (:class:`~aggregator.store.protocol.StoreType`), two backends: SQLite
(:mod:`aggregator.store.sqlite`, one file, the zero-setup default) and PostgreSQL
(:mod:`aggregator.store.postgres`, shared by many workers), selected by ``[store] url``
or ``AGGREGATOR_STORE_URL``. What a run changes is decided once, in
:mod:`aggregator.store.plan`; the SQL is shared (:mod:`aggregator.store.sql`), and so
are the schema's versions (:mod:`aggregator.store.migrations`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from aggregator.errors import StoreError

# The backends and the merge are imported when first used (a name below, or
# open_store): ``aggregator store …``'s help, say, needs none of them.
if TYPE_CHECKING:
    from aggregator.config import StoreSettings
    from aggregator.store.migrations import MIGRATIONS
    from aggregator.store.plan import IngestReport, retention_cutoff, sort_key
    from aggregator.store.protocol import StoreType
    from aggregator.store.sqlite import Store

# Each name of __all__ not defined here, with the module that defines it.
_HOMES = {
    "MIGRATIONS": "migrations",
    "IngestReport": "plan",
    "retention_cutoff": "plan",
    "sort_key": "plan",
    "StoreType": "protocol",
    "Store": "sqlite",
}

__all__ = [
    "MIGRATIONS",
    "IngestReport",
    "Store",
    "StoreError",
    "StoreType",
    "kept_open",
    "open_store",
    "open_store_to_read",
    "retention_cutoff",
    "sort_key",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once
    return value


def open_store(settings: StoreSettings, *, timeout: float = 30.0) -> StoreType:
    """The store the settings name: PostgreSQL when ``url`` is set, else the SQLite file."""
    if settings.url:
        from aggregator.store.postgres import PostgresStore

        return PostgresStore(settings.url, timeout=timeout)
    from aggregator.store.sqlite import Store

    return Store(settings.path, timeout=timeout)


@contextmanager
def kept_open(settings: StoreSettings) -> Iterator[None]:
    """The SQLite store held open by this process meanwhile (``serve`` while it serves):
    another process's run then never writes it out of WAL mode (a new store's first run
    does, when no one else has it open: Store.write_alone), so that this one's reads
    never wait for that run. Nothing is held for PostgreSQL, or when the file cannot be
    read (the server says why when it reads it)."""
    if settings.url:
        yield
        return
    from aggregator.store.sqlite import Store

    try:
        held: Store | None = Store.read_only(settings.path, timeout=1.0)
    except StoreError:
        held = None
    try:
        yield
    finally:
        if held is not None:
            held.close()


def open_store_to_read(settings: StoreSettings, *, timeout: float = 30.0) -> StoreType | None:
    """The store, for reading only; None when the SQLite file does not exist yet, or the
    PostgreSQL database holds no store's tables (neither is made here)."""
    if settings.url:
        from aggregator.store.postgres import PostgresStore

        return PostgresStore.read_only(settings.url, timeout=timeout)
    if not settings.path.exists():
        return None
    from aggregator.store.sqlite import Store

    return Store.read_only(settings.path, timeout=timeout)
