"""Sources renamed in config.toml keep what they told.

The store knows a source by its name: each sighting of a story names the source that
told it, and a source's topic hints name it too. A source given a new name (a nicer one
than its feed's title, say) would otherwise tell nothing it told before: its stories
leave its hinted topics, its counts start again at nothing, and a story it tells again
lists it twice, under both names (found by review). So the store notes the name each
source location (its URL, or its saved page's path) had, enabled or not, and keeps the
note of a source taken out of the config; a location that had another name was
renamed, and its sightings take the new name (wherever they were read: a source whose
file or feed moved keeps what it told before). Two sources that swapped names each keep
their own; a source taken out and put back under another name gets its own back, even
when another source has had its old name meanwhile (then its sightings are told apart
by where they were read).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.config import SourceConfig
    from aggregator.store import StoreType

log = logging.getLogger("aggregator")

# The store's meta key: the name each source location had when last run (JSON).
NAMES = "source_names"

# (location, old name, new name)
Renamed = tuple[str, str, str]


def names_changed(store: StoreType, sources: Sequence[SourceConfig]) -> bool:
    """Whether a source's name, or a source, is not as noted (:func:`follow_renames` has
    something to do): a read, no transaction. ``sources``: every source in the config,
    enabled or not."""
    known = _names(store.meta(NAMES))
    return any(known.get(source.location) != source.name for source in sources)


def follow_renames(store: StoreType, sources: Sequence[SourceConfig]) -> list[Renamed]:
    """Give the sightings of each renamed source (see the module) its new name, and note
    the names as they are now; returns what was renamed. Call inside a transaction,
    holding the write lock, before the sources' items are folded. ``sources``: every
    source in the config, enabled or not."""
    known = _names(store.meta(NAMES))
    names = {source.location: source.name for source in sources}
    renamed = [
        (location, old, new)
        for location, new in names.items()
        if (old := known.get(location)) is not None and old != new
    ]
    # By way of names no source has, so that names swapped, or given from one source to
    # another, end where they belong.
    token = os.urandom(6).hex()
    for number, (location, old, _) in enumerate(renamed):
        # The old name's sightings are all this source's (wherever they were read: a
        # source whose file or feed moved, a feed that redirects, found by review), but
        # when another source in the config had that name too (this one was taken out,
        # and its name given to another, before it came back; or one source's name is
        # now two sources'): then only those read where this one reads (or its feed
        # moved to) are its own.
        shared = any(
            other != location and name == old and other in names for other, name in known.items()
        )
        for where in _places(store, location) if shared else [None]:
            store.rename_source(old, f"renaming {token} {number}", where)
    for number, (_, old, new) in enumerate(renamed):
        store.rename_source(f"renaming {token} {number}", new)
        log.info("source %r is now %r: the stories it told keep it, by its new name", old, new)
    now = {**known, **names}  # a source taken out is still noted: it may come back
    if now != known:
        store.set_meta(NAMES, json.dumps(now, ensure_ascii=False, sort_keys=True))
    return renamed


def _places(store: StoreType, location: str) -> list[str]:
    """Where a source's items were read: its location, and the address its feed moved
    to (a permanent redirect, kept in its fetch state)."""
    state = store.fetch_state(location) if "://" in location else None
    moved = state.get("url") if state else None
    return [location, moved] if isinstance(moved, str) and moved != location else [location]


def current_names(store: StoreType, sources: Sequence[SourceConfig]) -> dict[str, str]:
    """The name each name stored in sightings will have once the next run follows the
    renames (for ``explain`` before that run): old name → new name."""
    known = _names(store.meta(NAMES))
    return {
        old: source.name
        for source in sources
        if (old := known.get(source.location)) is not None and old != source.name
    }


def _names(text: str | None) -> dict[str, str]:
    """The noted names (none when there is no note, or one this version cannot read)."""
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}
