"""Sources renamed in config.toml keep what they told.

The store knows a source by its name: each sighting of a story names the source that
told it, and a source's topic hints name it too. A source given a new name (a nicer one
than its feed's title, say) would otherwise tell nothing it told before: its stories
leave its hinted topics, its counts start again at nothing, and a story it tells again
lists it twice, under both names (found by review). So the store keeps the name each
source location (its URL, or its saved page's path) had when last run; a source whose
location had another name was renamed, and its sightings take the new name (two
sources that swapped names each keep their own).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.config import SourceConfig
    from aggregator.store import StoreType

log = logging.getLogger("aggregator")

# The store's meta key: each source location's name, as of the last run (JSON).
NAMES = "source_names"


def follow_renames(store: StoreType, sources: Sequence[SourceConfig]) -> list[tuple[str, str]]:
    """Give the sightings of each renamed source (see the module) its new name, and note
    the names as they are now; returns the (old, new) names. Call inside a transaction,
    holding the write lock, before the sources' items are folded."""
    known = _names(store.meta(NAMES))
    names = {source.location: source.name for source in sources}
    renamed = [
        (old, new)
        for location, new in names.items()
        if (old := known.get(location)) is not None and old != new
    ]
    # By way of names no source has, so that two sources that swapped names, or one
    # given the name another had, each keep their own.
    for number, (old, _) in enumerate(renamed):
        store.rename_source(old, f"\x00renaming {number}")
    for number, (old, new) in enumerate(renamed):
        store.rename_source(f"\x00renaming {number}", new)
        log.info("source %r is now %r: the stories it told keep it, by its new name", old, new)
    if names != known:
        store.set_meta(NAMES, json.dumps(names, ensure_ascii=False, sort_keys=True))
    return renamed


def names_changed(store: StoreType, sources: Sequence[SourceConfig]) -> bool:
    """Whether the sources' names differ from those noted (:func:`follow_renames` has
    something to do): a read, no transaction."""
    return _names(store.meta(NAMES)) != {source.location: source.name for source in sources}


def _names(text: str | None) -> dict[str, str]:
    """The noted names (none when there is no note, or one this version cannot read)."""
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}
