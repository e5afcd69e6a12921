"""Moving a store between backends: SQLite to PostgreSQL, and back.

Every table is copied row for row (:data:`aggregator.store.sql.TABLES`): entries keep
their ids, first- and last-seen times and topics; sightings keep every source in the
order it told the story; fetch state, meta (the change counter) and source leases come
along, so feed readers see no change and no source is fetched early. The copy runs in
one transaction of the target, under the source's write lock (no run changes it
meanwhile), into an empty target only, and ends by comparing row counts.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from aggregator.config import StoreSettings
from aggregator.errors import ConfigError, StoreError
from aggregator.lock import write_lock
from aggregator.store import open_store
from aggregator.store.postgres import is_url, redact
from aggregator.store.sql import TABLES


def target_settings(source: StoreSettings, to: str) -> StoreSettings:
    """Settings for the store ``to`` names: a postgresql:// URL, or an SQLite file path."""
    if not to.strip():
        raise ConfigError(
            "--to", "is empty; give a postgresql:// URL or the path of an SQLite file"
        )
    if Path(to).is_dir():
        raise ConfigError(f"--to {to}", "is a folder; give the path of an SQLite file in it")
    if is_url(to):
        return replace(source, url=to)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", to):
        raise ConfigError(
            f"--to {redact(to)}",
            "not a store this aggregator can copy to; give a postgresql:// URL or the "
            "path of an SQLite file",
        )
    if re.match(r"^\s*postgres(?:ql)?(?::|//)", to, re.IGNORECASE) or re.match(
        r"^[^/@:\s]+:[^/@\s]*@[^/@\s]+/", to
    ):
        # A URL mistyped ("postgresql:/user:pw@host/db", "postgresql//…"), taken for a
        # file's path: folders named after it, its password printed (found by review).
        # Not echoed: it may hold a password.
        raise ConfigError(
            "--to",
            "reads as a PostgreSQL URL written wrong (it should start postgresql://, as in "
            "postgresql://user@host/database), not as the path of an SQLite file; nothing "
            "was copied",
        )
    return replace(source, url=None, path=Path(to))


def copy_store(source: StoreSettings, target: StoreSettings) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ``target``; rows copied per table."""
    same = (
        source.url == target.url
        if source.url or target.url
        else source.path.resolve() == target.path.resolve()
    )
    if same:
        where = redact(target.url) if target.url else str(target.path)
        raise ConfigError(f"--to {where}", "is the store being copied; name another store")
    if not source.url and not source.path.exists():
        # Not opened (which would make an empty store there, and "copy" it), nor locked.
        raise ConfigError(
            "store copy",
            f"no store at {source.path}; check [store] path (nothing was copied)",
        )
    with write_lock(source), open_store(source) as origin, open_store(target) as copy:
        filled = {table: n for table in TABLES if (n := copy.rows(table))}
        if filled:
            table, count = next(iter(filled.items()))
            # The target given is the wrong one: a usage error, as a target that is no
            # store is (found by review: exit 4, "could not be written").
            raise ConfigError(
                copy.where,
                f"is not empty ({count} rows in {table}); copy into a new database or file "
                "(nothing was copied)",
            )
        copied: dict[str, int] = {}
        with copy.transaction():
            for table in TABLES:
                copy.load(table, origin.dump(table))
                copied[table] = copy.rows(table)
        for table, count in copied.items():
            if count != origin.rows(table):
                raise StoreError(
                    f"{copy.where}: {table} has {count} rows after the copy, "
                    f"{origin.where} {origin.rows(table)}; copy again into an empty store"
                )
    return copied
